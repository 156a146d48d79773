//! The hub's epoll side: a `mio::Poll`, its event buffer, the waker token
//! through which other threads interrupt a blocked poll, and the readiness
//! state of every registered fd.
//!
//! Each registered source owns one slot of a slab; its mio `Token` is the
//! slot index plus a generation, so a late event for a reused slot is
//! ignored. Registration is edge-triggered for both directions, once per
//! fd. An event sets readiness bits and wakes every task waiting in that
//! direction; a task clears its direction's bit when its syscall says
//! `WouldBlock` (or, where that is proof of it, when a stream call moved
//! fewer bytes than asked: see [`Registration::mark_drained`]), then parks
//! without a syscall until the next edge. Events are only processed by the
//! loop, which never runs between a greenlet's failed syscall and its park,
//! so no edge is lost in between.
//!
//! In a child made by `fork`, the epoll instance is the parent's too: the
//! reactor makes one of its own before it polls or registers there
//! ([`Reactor::refork`], see `sys::fork`).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

mod registration;
mod wait_set;
pub(crate) use registration::Registration;
use wait_set::WaitSet;

use crate::hub::Hub;
use crate::hub::task::Wake;

/// The token of the hub's doorbell: the eventfd other threads write to
/// wake a blocked poll (see `hub::remote`).
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Which half of a socket a task waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;
const ERROR: u8 = 16;
/// `EPOLLPRI`: TCP urgent data is pending. A TCP read stops short at the
/// urgent mark with more data queued behind it, so while this bit is set a
/// short read proves nothing (see [`Registration::mark_drained`]).
const URGENT: u8 = 32;

impl Direction {
    /// Readiness bits that end a wait in this direction.
    fn mask(self) -> u8 {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR | URGENT,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }
}

#[derive(Default)]
struct IoSlot {
    /// The registered fd (to register it again in a forked child's epoll).
    fd: i32,
    generation: u32,
    in_use: bool,
    readiness: u8,
    readers: WaitSet,
    writers: WaitSet,
}

impl IoSlot {
    /// The tasks waiting in direction `dir`.
    fn waiters(&mut self, dir: Direction) -> &mut WaitSet {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }
}

pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    /// The fork generation `poll` belongs to (see `sys::fork`): in a child
    /// forked since, `poll` is the parent's instance, and the reactor makes
    /// its own before it polls or registers ([`Reactor::own`]).
    fork_generation: Cell<u64>,
    events: RefCell<Events>,
    slots: RefCell<Vec<IoSlot>>,
    free: RefCell<Vec<usize>>,
    /// The generation new slots start from: above that of every slot
    /// dropped by [`Reactor::shrink`], so a late event with a token of a
    /// dropped slot never matches the slot's next registration.
    generation_floor: Cell<u32>,
    /// Tasks currently waiting for fd readiness.
    io_waiters: Cell<usize>,
}

/// Registers the hub's doorbell in `poll` (edge-triggered, readable).
fn register_waker(poll: &Poll, fd: i32) -> io::Result<()> {
    poll.registry().register(
        &mut mio::unix::SourceFd(&fd),
        WAKER_TOKEN,
        Interest::READABLE,
    )
}

fn token(key: usize, generation: u32) -> Token {
    Token(key | ((generation as usize) << 32))
}

impl Reactor {
    /// A reactor with a new epoll, the hub's doorbell `waker_fd` (its
    /// remote's eventfd) registered in it under [`WAKER_TOKEN`].
    pub(crate) fn new(waker_fd: i32) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        register_waker(&poll, waker_fd)?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            fork_generation: Cell::new(crate::sys::fork::generation()),
            events: RefCell::new(Events::with_capacity(1024)),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            generation_floor: Cell::new(0),
            io_waiters: Cell::new(0),
        })
    }

    /// Whether `poll` is an instance inherited through `fork` (shared with
    /// the parent), not yet replaced by one of this process's own.
    #[inline]
    fn inherited(&self) -> bool {
        self.fork_generation.get() != crate::sys::fork::generation()
    }

    /// Makes sure `poll` is this process's own epoll: in a child forked
    /// since it was made, replaces it first (see [`Reactor::refork`]).
    /// Returns whether that woke a waiter.
    #[inline]
    fn own(&self, hub: &Hub) -> bool {
        self.inherited() && self.refork(hub)
    }

    /// In a forked child: a new epoll instance with the doorbell and every
    /// registered fd in it, under the same tokens, so the child no longer
    /// takes the parent's events nor adds its fds to the parent's list
    /// (libev's `ev_loop_fork`, which gevent calls in the child). Every
    /// registered fd then counts as ready in both directions, and its
    /// waiters are woken: each retries its syscall and parks again on the
    /// new instance if it would block, so an edge the parent took after
    /// the fork is not missed. An fd that cannot be registered again (it
    /// was closed or replaced behind the hub's back) gets the error bit,
    /// so its waiters' syscalls report why. The inherited instance is
    /// closed (in this process only).
    ///
    /// Returns whether it woke a waiter.
    #[cold]
    #[inline(never)]
    fn refork(&self, hub: &Hub) -> bool {
        let poll = Poll::new()
            .and_then(|poll| register_waker(&poll, hub.remote().waker_fd()).map(|()| poll))
            .unwrap_or_else(|e| {
                panic!("greenlet: cannot make a forked child's hub its own epoll: {e}")
            });
        let mut woke = false;
        {
            let mut slots = self.slots.borrow_mut();
            for (key, slot) in slots.iter_mut().enumerate() {
                if !slot.in_use {
                    continue;
                }
                let res = poll.registry().register(
                    &mut mio::unix::SourceFd(&slot.fd),
                    token(key, slot.generation),
                    Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY,
                );
                slot.readiness |= READABLE | WRITABLE;
                if res.is_err() {
                    slot.readiness |= ERROR;
                }
                for t in slot.readers.take().chain(slot.writers.take()) {
                    woke |= hub.unpark(&t, Wake::Ready);
                }
            }
        }
        // Closes this process's fd of the parent's instance, with the raw
        // call: this may run inside a monkey hook's table borrow (a hooked
        // call registering an fd), which the `close` hook would take again.
        let inherited = std::mem::replace(&mut *self.poll.borrow_mut(), poll);
        let fd = inherited.as_raw_fd();
        // `Poll` holds no more than its epoll fd, closed below instead.
        std::mem::forget(inherited);
        // SAFETY: the forgotten `Poll` owned `fd`; nothing uses it after.
        unsafe { crate::sys::close_unhooked(fd) };
        self.fork_generation.set(crate::sys::fork::generation());
        woke
    }

    /// Whether any fd wait could still wake someone.
    pub(crate) fn has_waiters(&self) -> bool {
        self.io_waiters.get() > 0
    }

    /// Drops the slots past the last one in use, when at least half the
    /// slab and more than a few are free (the hub calls it as it goes
    /// idle): after a peak of connections the slab shrinks back. Slots in
    /// use never move (their index is in their token).
    pub(crate) fn shrink(&self) {
        let mut slots = self.slots.borrow_mut();
        let mut free = self.free.borrow_mut();
        if free.len() < 64 || free.len() * 2 < slots.len() {
            return;
        }
        let mut floor = self.generation_floor.get();
        while let Some(last) = slots.last()
            && !last.in_use
        {
            floor = floor.max(last.generation);
            slots.pop();
        }
        self.generation_floor.set(floor);
        let len = slots.len();
        free.retain(|&k| k < len);
        slots.shrink_to(len.max(16));
        let keep = free.len().max(16);
        free.shrink_to(keep);
    }

    /// How many sources are registered (for leak tests).
    #[cfg(test)]
    pub(crate) fn registrations(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.in_use).count()
    }

    /// Waits for events up to `timeout` (`None`: forever) and dispatches
    /// them. Interrupted waits (`EINTR`) return normally.
    pub(crate) fn poll(&self, hub: &Hub, timeout: Option<Duration>) {
        // Waiters woken by a new epoll must run before anything blocks.
        let timeout = if self.own(hub) {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => panic!("greenlet: epoll_wait failed: {e}"),
        }
        let mut slots = self.slots.borrow_mut();
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                continue; // the loop drains the remote queue right after
            }
            let key = ev.token().0 & 0xffff_ffff;
            let generation = (ev.token().0 >> 32) as u32;
            let Some(slot) = slots.get_mut(key) else {
                continue;
            };
            if !slot.in_use || slot.generation != generation {
                continue;
            }
            let mut bits = 0;
            if ev.is_readable() {
                bits |= READABLE;
            }
            if ev.is_writable() {
                bits |= WRITABLE;
            }
            if ev.is_read_closed() {
                bits |= READ_CLOSED;
            }
            if ev.is_write_closed() {
                bits |= WRITE_CLOSED;
            }
            if ev.is_error() {
                bits |= ERROR;
            }
            if ev.is_priority() {
                bits |= URGENT;
            }
            slot.readiness |= bits;
            if bits & Direction::Read.mask() != 0 {
                for t in slot.readers.take() {
                    hub.unpark(&t, Wake::Ready);
                }
            }
            if bits & Direction::Write.mask() != 0 {
                for t in slot.writers.take() {
                    hub.unpark(&t, Wake::Ready);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
