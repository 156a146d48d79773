//! Coordination between greenlets (gevent's `gevent.event`, `gevent.queue`
//! and `gevent.lock`, and std's `Mutex`, `RwLock`, `Condvar` and `Barrier`):
//!
//! - events: [`Event`], [`AsyncResult`];
//! - queues: [`Queue`] (FIFO; bounded, unbounded or rendezvous; joinable),
//!   [`LifoQueue`], [`PriorityQueue`] (for std's mpsc shape see
//!   [`crate::channel`]);
//! - locks: [`Mutex`], re-entrant [`RLock`], [`RwLock`], [`Semaphore`],
//!   [`BoundedSemaphore`], and [`Condvar`] (with [`Mutex`]);
//! - [`Barrier`].
//!
//! std's `Mutex`, `Condvar`, `mpsc` and `thread::park` block the whole OS
//! thread, so a greenlet waiting on one of them stalls every other greenlet
//! of its hub (and can deadlock it: the greenlet that would release the lock
//! never gets to run). Inside greenlets use these types instead: waiting
//! parks only the calling greenlet. They also work from plain code outside
//! any greenlet (the *root context*), which runs the hub loop while it
//! waits, and from other OS threads.
//!
//! # Common ground
//!
//! - **FIFO**: waiters are served in the order they started waiting. A
//!   [`Mutex`] or [`Semaphore`] hands a released lock or permit straight to
//!   the first waiter, so a newcomer cannot barge ahead and no waiter
//!   starves.
//! - **Hand-offs run next**: a [`Queue`] put or a
//!   [`channel`](crate::channel) send that finds a getter parked on the same
//!   hub hands it the item and runs it as soon as the putter parks or
//!   yields, ahead of greenlets already ready, while the item is still in
//!   cache (Go's `runnext`). Getters woken by a run of puts still run in
//!   the order they were woken, and a pair that keeps handing items back
//!   and forth lets the other ready greenlets run after at most 16 such
//!   runs in a row.
//! - **Any thread**: every primitive is `Send + Sync` (when its contents
//!   allow). A waiter on another thread is woken through its hub's remote
//!   queue; a waiter on the notifier's own hub is made ready directly.
//! - **Timeouts and kills**: the `*_timeout` methods say why they returned
//!   ([`TimedOut`], or the queue's own errors). A waiter that times out, is
//!   killed or is unwound by [`with_timeout`](crate::with_timeout) leaves the
//!   waiter list at once, and never swallows a wake-up meant for someone
//!   else: a permit or an item already handed to it is passed on to the next
//!   waiter.
//! - **No poisoning**: a greenlet killed while holding a [`Mutex`] guard
//!   unwinds and releases it, like any panic; the data is not marked
//!   poisoned (as with `parking_lot`).
//!
//! # The waiting protocol
//!
//! Every primitive uses one waiter-list implementation and the same steps.
//! Under the primitive's internal lock (a spin lock held for a few
//! instructions, never across a park) the waiter checks its condition; if it
//! must wait it *registers*: it links a node naming itself at the back of
//! the list (the node lives in the waiter's own stack frame, so waiting
//! allocates nothing), releases the lock and *parks*. A notifier, under the
//! same lock, unlinks the first node, leaves in it what the waiter was
//! given (an item, a permit), marks it picked and wakes its owner: directly
//! when the owner is a greenlet (or the root) of the notifier's own hub,
//! through the owner's hub remote queue otherwise. Woken for any reason,
//! the waiter *re-checks* its node: picked means done; otherwise it was a
//! spurious wake-up and it parks again, keeping its place, until its
//! deadline.
//!
//! # Waiting that nothing can end
//!
//! A root-context wait with no greenlet ready, no timer and no I/O panics
//! with "this operation would block forever" when every wait on these
//! primitives is provably unreachable: a [`Queue`], [`Event`] or
//! [`AsyncResult`] with no handle left but its waiter's own, a [`Mutex`] or
//! [`RLock`] held by a greenlet of the same thread, an [`RwLock`] whose
//! holders and waiters are all of the same thread, or a `select` whose
//! every arm is one of these. [`Semaphore`], [`BoundedSemaphore`],
//! [`Condvar`] and [`Barrier`] are shared by reference, so any thread might
//! still release them: their waits are never proven endless by one thread
//! alone, only by the opt-in process-wide rule
//! ([`dump::process_wide`](crate::dump::process_wide)), which sees that no
//! thread is left to do it. Otherwise another OS thread might still signal
//! the wait, the hub cannot know that nobody will, and the wait hangs (the
//! [`monitor`](crate::monitor) reports such a hub, and
//! [`dump`](crate::dump) shows who waits on what). Locking a [`Mutex`] one
//! already holds, or closing a wait-for cycle of `Mutex` holders and join
//! targets, panics at once. See the crate docs' "Deadlocks and dumps".
//!
//! # Examples
//!
//! ```
//! use greenlet::sync::Queue;
//!
//! let q = Queue::bounded(2);
//! let producer = greenlet::spawn({
//!     let q = q.clone();
//!     move || {
//!         for i in 0..5 {
//!             q.put(i).unwrap(); // parks while the queue is full
//!         }
//!         q.close();
//!     }
//! });
//! let received: Vec<i32> = q.iter().collect(); // ends when closed and drained
//! producer.join().unwrap();
//! assert_eq!(received, [0, 1, 2, 3, 4]);
//! ```

mod async_result;
mod barrier;
mod condvar;
mod event;
pub(crate) mod lock;
mod mutex;
mod queue;
mod rlock;
mod rwlock;
mod semaphore;
pub(crate) mod wait_queue;
pub(crate) mod waitable;

use std::fmt;

pub use async_result::AsyncResult;
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use queue::{
    GetError, GetTimeoutError, IntoIter, Iter, LifoQueue, PriorityQueue, PutError, PutTimeoutError,
    Queue, TryGetError, TryPutError,
};
pub use rlock::{RLock, RLockGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{BoundedSemaphore, ReleaseError, Semaphore, SemaphorePermit};

/// The error of a timed wait whose time ran out before its condition held.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::sync::{Event, TimedOut};
///
/// let e = Event::new();
/// assert_eq!(e.wait_timeout(Duration::from_millis(5)), Err(TimedOut));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting")
    }
}

impl std::error::Error for TimedOut {}

/// Who holds a lock: a greenlet (or the root, id 0) of one OS thread.
type Owner = (std::thread::ThreadId, u64);

/// The running greenlet (or root) as a lock owner.
fn current_owner() -> Owner {
    let id = crate::current().map_or(0, |c| c.id().as_u64());
    (std::thread::current().id(), id)
}

/// The deadline of a `*_timeout` call.
fn deadline(timeout: std::time::Duration) -> std::time::Instant {
    crate::hub::deadline_after(timeout)
}
