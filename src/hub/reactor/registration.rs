//! [`Registration`]: one fd's membership in the hub's epoll, its
//! readiness, and the waits of the greenlets that use it.

use std::io;
use std::time::{Duration, Instant};

use mio::Interest;
use mio::event::Source;

use super::{Direction, IoSlot, READABLE, URGENT, WRITABLE, token};
use crate::hub::task::{TaskRef, Wake};
use crate::hub::{Hub, IoDirection, WaitReason, park_until_with};

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

    pub(super) fn with_slot<R>(&self, f: impl FnOnce(&mut IoSlot) -> R) -> Option<R> {
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
