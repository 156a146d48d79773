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

use std::cell::{Cell, RefCell};
use std::io;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};

mod wait_set;
use wait_set::WaitSet;

use crate::hub::task::{TaskRef, Wake};
use crate::hub::{Hub, IoDirection, WaitReason, park_until_with};

/// The token of the cross-thread `mio::Waker`.
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
    /// The hub's doorbell (its remote's eventfd), registered under
    /// [`WAKER_TOKEN`].
    waker_fd: i32,
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
    /// A reactor with a new epoll, `waker_fd` (an eventfd that outlives
    /// the reactor) registered in it.
    pub(crate) fn new(waker_fd: i32) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        register_waker(&poll, waker_fd)?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            fork_generation: Cell::new(crate::sys::fork::generation()),
            waker_fd,
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
    /// was closed behind the hub's back) gets the error bit, so its
    /// waiters' syscalls report why. The inherited instance is closed (in
    /// this process only).
    /// Returns whether it woke a waiter.
    #[cold]
    #[inline(never)]
    fn refork(&self, hub: &Hub) -> bool {
        let poll = Poll::new()
            .and_then(|poll| register_waker(&poll, self.waker_fd).map(|()| poll))
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
        // Drops (closes) this process's fd of the parent's instance.
        *self.poll.borrow_mut() = poll;
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

/// A source registered with this thread's hub. Deregister it (with the
/// source) before closing the fd; dropping a `Registration` frees its slot
/// and wakes any task still waiting on it.
///
/// Not `Send`: it belongs to the hub of the thread that made it.
pub(crate) struct Registration {
    /// The registered fd (for wait reasons).
    fd: i32,
    key: usize,
    generation: u32,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Registration {
    /// Registers `source` for read, write and priority (`EPOLLPRI`: TCP
    /// urgent data) readiness, edge-triggered.
    /// Both directions start out as ready, so the first call in each tries
    /// its syscall; a caller that has just seen `WouldBlock` clears that
    /// direction with [`clear_readiness`](Registration::clear_readiness).
    pub(crate) fn new(fd: i32) -> io::Result<Registration> {
        let source = &mut mio::unix::SourceFd(&fd);
        let hub = Hub::current();
        let r = &hub.reactor;
        // Waiters it wakes are queued; they run at the next switch.
        r.own(hub);
        let (key, generation) = {
            let mut slots = r.slots.borrow_mut();
            let key = match r.free.borrow_mut().pop() {
                Some(k) => k,
                None => {
                    slots.push(IoSlot {
                        generation: r.generation_floor.get(),
                        ..IoSlot::default()
                    });
                    slots.len() - 1
                }
            };
            let slot = &mut slots[key];
            slot.generation = slot.generation.wrapping_add(1);
            slot.in_use = true;
            slot.fd = fd;
            // Unknown counts as ready: the first call tries its syscall.
            slot.readiness = READABLE | WRITABLE;
            (key, slot.generation)
        };
        let res = r.poll.borrow().registry().register(
            source,
            token(key, generation),
            Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY,
        );
        let reg = Registration {
            fd,
            key,
            generation,
            _not_send: std::marker::PhantomData,
        };
        res.map(|()| reg)
    }

    /// Removes `source` from epoll. Call before the fd closes, so a dup of
    /// it (`try_clone`) does not keep delivering events to this slot.
    /// Does nothing once the hub is gone (its epoll fd is closed then).
    pub(crate) fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        match Hub::try_current() {
            // In a forked child that has not made its own epoll yet, the
            // instance is the parent's too: removing the fd there would
            // remove the parent's registration (see `sys::fork`). Its own
            // will not have the fd: the slot is freed with the
            // `Registration`.
            Some(hub) if hub.reactor.inherited() => Ok(()),
            Some(hub) => hub.reactor.poll.borrow().registry().deregister(source),
            None => Ok(()),
        }
    }

    fn with_slot<R>(&self, f: impl FnOnce(&mut IoSlot) -> R) -> Option<R> {
        let hub = Hub::current();
        let mut slots = hub.reactor.slots.borrow_mut();
        match slots.get_mut(self.key) {
            Some(s) if s.in_use && s.generation == self.generation => Some(f(s)),
            _ => None,
        }
    }

    /// Forgets the readiness of `dir` after a syscall said `WouldBlock`
    /// (closed and error bits too: the syscall has the last word).
    pub(crate) fn clear_readiness(&self, dir: Direction) {
        self.with_slot(|s| s.readiness &= !dir.mask());
    }

    /// Forgets that `dir` is readable/writable after a stream syscall moved
    /// fewer bytes than asked, for sockets where that proves the kernel
    /// buffer drained (or filled), so the next call would say `WouldBlock`
    /// and can wait for the edge without making it. Keeps the closed and
    /// error bits, which an edge-triggered epoll reports only once: a read
    /// after the peer's FIN must find them and return EOF instead of
    /// waiting forever. Call it right after the syscall, before anything
    /// can park (events are only processed by the loop, so none is lost in
    /// between).
    ///
    /// A short read is that proof only for TCP, and only with no urgent
    /// data about: `tcp_recvmsg` copies from every queued segment until the
    /// queue is empty, except that it stops at the urgent mark. Urgent data
    /// present at the last epoll report set the `URGENT` bit (`EPOLLPRI`),
    /// which this then keeps the read readiness for, until a read says
    /// `WouldBlock` (the queue is then truly empty: at the mark with nothing
    /// copied yet, a read steps over the urgent byte). Urgent data that came
    /// after the last report has an edge of its own still to come, which
    /// wakes the parked reader. Unix stream reads also stop after a message
    /// carrying file descriptors (`SCM_RIGHTS`) or other credentials, with
    /// no epoll bit telling so: callers never mark those drained.
    pub(crate) fn mark_drained(&self, dir: Direction) {
        let bit = match dir {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        };
        self.with_slot(|s| {
            if dir == Direction::Write || s.readiness & URGENT == 0 {
                s.readiness &= !bit;
            }
        });
    }

    /// Whether epoll has reported nothing but plain writability since
    /// the write readiness was last cleared: no error, no hang-up. After a
    /// non-blocking `connect`, that means the handshake succeeded and
    /// `SO_ERROR` need not be asked. A slot that is gone says `false`.
    pub(crate) fn writable_without_error(&self) -> bool {
        self.with_slot(|s| s.readiness & Direction::Write.mask() == WRITABLE)
            .unwrap_or(false)
    }

    /// Whether `dir` is known to be ready (or closed, or in error). A slot
    /// that is gone counts as ready, so the caller's syscall reports why.
    fn is_ready(&self, dir: Direction) -> bool {
        self.with_slot(|s| s.readiness & dir.mask() != 0)
            .unwrap_or(true)
    }

    /// Parks the running task until `dir` is ready (or closed, or in error)
    /// or `deadline` passes. Returns at once if readiness is already known.
    ///
    /// # Errors
    /// `TimedOut` when the deadline passed first. Kills and `with_timeout`
    /// unwind out of it as from any park, leaving no registration behind.
    #[inline]
    pub(crate) fn wait(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let reason = WaitReason::Io {
            fd: self.fd,
            direction: match dir {
                Direction::Read => IoDirection::Read,
                Direction::Write => IoDirection::Write,
            },
        };
        self.wait_with(dir, deadline, true, reason)
    }

    /// [`Registration::wait`] without unwinding: a pending kill or expired
    /// `with_timeout` ends the wait with `ErrorKind::Interrupted` instead
    /// (for callers that cannot unwind, like the monkey-patching hooks).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    /// `reason` is what the wait records (a monkey hook names its call).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn wait_raw(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        reason: WaitReason,
    ) -> io::Result<()> {
        self.wait_with(dir, deadline, false, reason)
    }

    #[inline]
    fn wait_with(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        deliver: bool,
        reason: WaitReason,
    ) -> io::Result<()> {
        let me = Hub::current().current_task();
        if !self.add_waiter(dir, &me) {
            return Ok(());
        }
        let _cleanup = WaitCleanup {
            reg: self,
            dir,
            me: &me,
        };
        loop {
            let wake = park_until_with(deadline, deliver, reason);
            if !deliver && wake == Wake::Interrupted && crate::hub::interrupt_pending() {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let still_waiting = self
                .with_slot(|s| s.waiters(dir).contains(me.as_ptr()))
                .unwrap_or(false);
            if !still_waiting {
                return Ok(());
            }
            if wake == Wake::TimedOut {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
        }
    }

    /// Runs `op` until it does not return `WouldBlock`, parking for `dir`
    /// readiness in between: the one would-block loop (socket calls go
    /// through its [`do_io_timeout`](Registration::do_io_timeout) form).
    ///
    /// # Errors
    /// `op`'s error, or `TimedOut` if `deadline` passed.
    pub(crate) fn do_io<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop(dir, || deadline, || io::ErrorKind::TimedOut.into(), op)
    }

    /// [`do_io`](Registration::do_io) with the semantics of a blocking
    /// socket's `SO_RCVTIMEO`/`SO_SNDTIMEO`: `timeout` (`None`: wait
    /// forever) starts when the call first has to wait, and its expiry is
    /// the kernel's `EAGAIN` (`ErrorKind::WouldBlock`), as std reports it.
    /// The deadline it sets then is handed to `noted` (for an `op` that
    /// paces its retries by it).
    ///
    /// # Errors
    /// `op`'s error, or `EAGAIN` if the timeout passed.
    pub(crate) fn do_io_timeout<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut noted: impl FnMut(Option<Instant>),
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop(
            dir,
            || {
                let deadline = timeout.map(crate::hub::deadline_after);
                noted(deadline);
                deadline
            },
            crate::sys::would_block,
            op,
        )
    }

    /// The loop behind `do_io*`. Known readiness is trusted both ways: a
    /// direction known ready is tried at once, one known not ready (its
    /// last syscall said `WouldBlock`, or the kernel buffer was drained) is
    /// waited for without a syscall that would only say `WouldBlock` again.
    /// The deadline is computed only if the call has to wait.
    #[inline]
    fn io_loop<R>(
        &self,
        dir: Direction,
        mut deadline: impl FnMut() -> Option<Instant>,
        timed_out: impl FnOnce() -> io::Error,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut limit: Option<Option<Instant>> = None;
        loop {
            if !self.is_ready(dir) {
                let deadline = *limit.get_or_insert_with(&mut deadline);
                if self.wait(dir, deadline).is_err() {
                    return Err(timed_out());
                }
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

impl Registration {
    /// Adds `task` as a waiter for `dir` unless readiness is already known
    /// (then returns false). Pair every `true` with [`remove_waiter`].
    ///
    /// [`remove_waiter`]: Registration::remove_waiter
    pub(crate) fn add_waiter(&self, dir: Direction, task: &TaskRef) -> bool {
        let added = self.with_slot(|s| {
            if s.readiness & dir.mask() != 0 {
                return false;
            }
            s.waiters(dir).push(task.clone());
            true
        }) == Some(true);
        if added {
            let r = &Hub::current().reactor;
            r.io_waiters.set(r.io_waiters.get() + 1);
        }
        added
    }

    /// Undoes a successful [`Registration::add_waiter`].
    pub(crate) fn remove_waiter(&self, dir: Direction, task: &TaskRef) {
        let me = task.as_ptr();
        self.with_slot(|s| s.waiters(dir).remove(me));
        let r = &Hub::current().reactor;
        r.io_waiters.set(r.io_waiters.get() - 1);
    }
}

/// Takes a waiting task off its slot's list however the wait ends.
struct WaitCleanup<'a> {
    reg: &'a Registration,
    dir: Direction,
    me: &'a TaskRef,
}

impl Drop for WaitCleanup<'_> {
    fn drop(&mut self) {
        self.reg.remove_waiter(self.dir, self.me);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.retire();
    }
}

impl Registration {
    /// Gives up the slot (the fd is being closed, or the registration
    /// dropped), waking every task still waiting on it. Later calls, and
    /// the drop after it, do nothing. A waiter removes itself afterwards as
    /// usual ([`Registration::remove_waiter`]), which keeps the count of
    /// fd waiters exact.
    pub(crate) fn retire(&self) {
        let Some(hub) = Hub::try_current() else {
            return;
        };
        let r = &hub.reactor;
        let waiters = {
            let mut slots = r.slots.borrow_mut();
            match slots.get_mut(self.key) {
                Some(s) if s.in_use && s.generation == self.generation => {
                    s.in_use = false;
                    s.readiness = 0;
                    // Taken: a free slot keeps no buffers.
                    Some((
                        std::mem::take(&mut s.readers),
                        std::mem::take(&mut s.writers),
                    ))
                }
                _ => None,
            }
        };
        if let Some((mut readers, mut writers)) = waiters {
            r.free.borrow_mut().push(self.key);
            for t in readers.take().chain(writers.take()) {
                hub.unpark(&t, Wake::Ready);
            }
        }
    }
}

#[cfg(test)]
mod tests;
