//! The hub's door for other threads: a lock-free queue plus an eventfd
//! doorbell registered in the hub's epoll.
//!
//! Another thread pushes a message and, only if the hub is (about to be)
//! blocked in epoll, writes the eventfd. The hub announces that it is going
//! to sleep by setting `sleeping` and then re-checks the queue; the sender
//! pushes and then checks `sleeping`. Both sides put a `SeqCst` fence between
//! their store and their load, so at least one of them sees the other: either
//! the hub sees the message and does not block, or the sender sees `sleeping`
//! and wakes it. No wake-up is lost, and an awake hub costs senders no
//! syscall.
//!
//! When the hub is torn down it closes its remote: queued and later
//! messages are dropped (on whichever thread notices), so a closure that
//! owned the sending half of a result channel drops it and its receiver
//! learns that no result will come, instead of waiting forever. The same
//! two-fence argument covers a send racing with the close.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};

use crossbeam_queue::SegQueue;

use crate::sys::EventFd;

/// A message for a hub from another thread.
pub(crate) enum RemoteMsg {
    /// Run this closure on the hub thread (in the loop, as a callback that
    /// usually spawns a greenlet).
    Run(Box<dyn FnOnce() + Send>),
    /// Unpark the task registered in wait slot `key` if its generation is
    /// still `generation`.
    Wake { key: usize, generation: u64 },
}

pub(crate) struct Remote {
    queue: SegQueue<RemoteMsg>,
    waker: EventFd,
    sleeping: AtomicBool,
    /// Set after every push, so the hub can check for messages between
    /// passes with one relaxed load instead of `SegQueue::pop`'s `SeqCst`
    /// fence.
    pending: AtomicBool,
    /// The hub is gone: nothing will drain the queue any more.
    closed: AtomicBool,
}

impl Remote {
    pub(crate) fn new(waker: EventFd) -> Remote {
        Remote {
            queue: SegQueue::new(),
            waker,
            sleeping: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// The doorbell's fd, for the hub's epoll (registered again in a
    /// forked child's own, see `Reactor::refork`).
    pub(crate) fn waker_fd(&self) -> std::os::fd::RawFd {
        self.waker.as_raw_fd()
    }

    /// Sends a message; wakes the hub if it sleeps in epoll.
    pub(crate) fn send(&self, msg: RemoteMsg) {
        self.queue.push(msg);
        self.pending.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.discard();
            return;
        }
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            // An eventfd write only fails if the counter would overflow, and
            // then the hub is already woken.
            let _ = self.waker.wake();
        }
    }

    /// Hub side: whether messages may be queued (cheap). Clears the flag:
    /// the caller must then drain the queue with [`Remote::pop`]. A message
    /// pushed during the drain sets the flag again.
    #[inline]
    pub(crate) fn take_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::Acquire)
    }

    /// Any thread: whether a message was sent that the hub has not taken
    /// yet (for `process_deadlock`).
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) || !self.queue.is_empty()
    }

    pub(crate) fn pop(&self) -> Option<RemoteMsg> {
        self.queue.pop()
    }

    /// Hub side: announce sleep; returns whether it may block (nothing is
    /// queued).
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.queue.is_empty()
    }

    /// Hub teardown: makes later sends drop their messages (on the
    /// sender's thread), and hands each message queued now to `discard`.
    pub(crate) fn close_with(&self, discard: impl Fn(RemoteMsg)) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        while let Some(msg) = self.queue.pop() {
            discard(msg);
        }
    }

    fn discard(&self) {
        while let Some(msg) = self.queue.pop() {
            drop(msg);
        }
    }

    /// Hub side: marks messages as possibly queued again (a drain that
    /// was cut short by a panic).
    pub(crate) fn repend(&self) {
        self.pending.store(true, Ordering::Release);
    }

    /// Hub side: awake again.
    pub(crate) fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

/// A `Send + Sync` token that wakes one parked task of one hub from any
/// thread. Waking after the waiter stopped waiting (its generation moved on)
/// does nothing.
#[derive(Clone)]
pub(crate) struct RemoteWaker {
    pub(crate) remote: Arc<Remote>,
    pub(crate) key: usize,
    pub(crate) generation: u64,
}

impl RemoteWaker {
    /// Wakes the waiter: directly when called on the waiter's own hub
    /// thread, through the remote queue otherwise.
    pub(crate) fn wake(&self) {
        if let Some(hub) = crate::hub::Hub::try_current()
            && Arc::ptr_eq(hub.remote(), &self.remote)
        {
            hub.wake_slot(self.key, self.generation);
            return;
        }
        self.remote.send(RemoteMsg::Wake {
            key: self.key,
            generation: self.generation,
        });
    }

    /// Whether two wakers wake the same wait.
    pub(crate) fn same_as(&self, other: &RemoteWaker) -> bool {
        self.key == other.key
            && self.generation == other.generation
            && Arc::ptr_eq(&self.remote, &other.remote)
    }
}
