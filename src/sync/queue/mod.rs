//! `Queue<T>`: a FIFO channel between greenlets (and threads), bounded or
//! not, closable, joinable; and its LIFO and priority variants.

mod error;
mod get_put;
mod items;
mod iter;
mod joinable;
mod peek;
mod variants;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use super::lock::{Lock, LockGuard};
use super::wait_queue::WaitList;

pub use error::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use items::{Items, UserCode};
pub use iter::{IntoIter, Iter};
pub use variants::{LifoQueue, PriorityQueue};

/// A multi-producer, multi-consumer FIFO queue (gevent's
/// `gevent.queue.Queue` and `JoinableQueue`, Go's channels).
///
/// - [`Queue::new`] is unbounded: [`put`](Queue::put) never waits.
///   [`Queue::bounded`]`(n)` holds at most `n` items and `put` parks while
///   it is full; `bounded(0)` is a rendezvous channel (gevent's
///   `Channel`), where each `put` waits for a `get` to take its item, and a
///   `put` that hands its item to a getter already waiting lets that getter
///   run before the putter goes on (when both are on one hub).
/// - [`get`](Queue::get) parks while the queue is empty. Items come out in
///   the order they were put; waiting getters are served in the order they
///   came, and so are waiting putters. A getter handed an item by a put on
///   its own hub runs next (see [the module docs](crate::sync)).
/// - [`close`](Queue::close) refuses further puts and wakes every waiter:
///   waiting putters get their item back in [`PutError`], and once the
///   remaining items are drained getters get [`GetError`]. Iterating
///   ([`iter`](Queue::iter), `for item in queue`) ends there.
/// - Every `put` counts an unfinished task; [`task_done`](Queue::task_done)
///   marks one done and [`join`](Queue::join) waits until all are (gevent's
///   `JoinableQueue`).
/// - [`peek`](Queue::peek) looks at the next item without taking it;
///   [`is_full`](Queue::is_full) and
///   [`unfinished_tasks`](Queue::unfinished_tasks) report the state.
/// - [`LifoQueue`] and [`PriorityQueue`] are the same queue handing items
///   out newest first, or lowest first.
///
/// `Queue` is a cheap handle: clones share one queue, so it moves into many
/// greenlets (and threads, when `T: Send`) without an `Arc`. Dropping every
/// handle does not close it; close it explicitly to end consumers'
/// iteration.
///
/// # Waiting protocol
///
/// Under the queue's internal lock, an operation that can proceed does so
/// at once; otherwise the caller registers at the back of the getters' (or
/// putters') waiter list and parks. A `put` hands its item straight to the
/// first waiting getter (so a getter is never left behind by a later one),
/// and a `get` that frees a slot moves the first waiting putter's item into
/// the queue. A waiter re-checks its own node after every wake-up; a getter
/// that dies (killed, or unwound by [`with_timeout`](crate::with_timeout))
/// after an item was handed to it passes the item to the next getter, or
/// back to the front of the queue. See [the module docs](crate::sync).
///
/// # Examples
///
/// A producer and a consumer with a bounded queue: the producer runs at
/// most two items ahead.
///
/// ```
/// use greenlet::sync::Queue;
///
/// let q = Queue::bounded(2);
/// let producer = greenlet::spawn({
///     let q = q.clone();
///     move || {
///         for i in 0..10 {
///             q.put(i).unwrap();
///         }
///         q.close();
///     }
/// });
/// let consumer = greenlet::spawn({
///     let q = q.clone();
///     move || q.iter().sum::<i32>()
/// });
/// producer.join().unwrap();
/// assert_eq!(consumer.join().unwrap(), 45);
/// ```
pub struct Queue<T> {
    inner: Arc<Lock<State<T>>>,
}

struct State<T> {
    items: Items<T>,
    /// `usize::MAX` when unbounded.
    cap: usize,
    closed: bool,
    /// Parked in `get`; only while `items` is empty. Notified with an item,
    /// or with nothing when the queue closes.
    getters: WaitList<T>,
    /// Parked in `put` with their item; only while `items` is full.
    /// Notified with nothing once their item was taken, or with their item
    /// back when the queue closes.
    putters: WaitList<T>,
    /// Items put and not yet marked done.
    unfinished: usize,
    joiners: WaitList<()>,
    /// Parked in `peek` until there is an item to look at (or the queue
    /// closes); notified with nothing, they look again.
    peekers: WaitList<()>,
}

fn getters<T>(s: &mut State<T>) -> &mut WaitList<T> {
    &mut s.getters
}

fn putters<T>(s: &mut State<T>) -> &mut WaitList<T> {
    &mut s.putters
}

fn joiners<T>(s: &mut State<T>) -> &mut WaitList<()> {
    &mut s.joiners
}

fn peekers<T>(s: &mut State<T>) -> &mut WaitList<()> {
    &mut s.peekers
}

/// The `abandon` hook of getters: an item handed to a getter that died goes
/// to the next getter, or back to the front of the queue.
fn pass_on<T>(s: &mut State<T>, item: T) -> Option<T> {
    if let Err(item) = s.getters.notify_first_with(item) {
        s.items.push_front(item);
        s.wake_peekers();
    }
    None
}

impl<T> State<T> {
    /// Accepts `item` if a getter waits or there is room; gives it back
    /// otherwise.
    #[inline]
    fn try_put(&mut self, item: T) -> Result<(), T> {
        let item = match self.getters.hand_off_first(item) {
            Ok(()) => {
                self.unfinished += 1;
                return Ok(());
            }
            Err(item) => item,
        };
        if self.items.len() < self.cap {
            // Counted first: a panicking `Ord` leaves the item in.
            self.unfinished += 1;
            self.wake_peekers();
            self.items.push(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Takes the next item, topping the queue up from the first waiting
    /// putter.
    #[inline]
    fn try_get(&mut self) -> Option<T> {
        match self.items.len() {
            // Only a rendezvous queue (capacity 0) has putters waiting while
            // it is empty.
            0 if !self.putters.is_empty() => Some(self.take_from_putter()),
            0 => None,
            // Room for the first waiting putter's item once one is out.
            len if len <= self.cap && !self.putters.is_empty() => {
                let more = self.take_from_putter();
                Some(self.items.pop_then_push(more))
            }
            _ => self.items.pop(),
        }
    }

    /// The item the next get would return: the next buffered one, or (in
    /// a rendezvous queue) the first waiting putter's.
    fn peek(&mut self) -> Option<&T> {
        if !self.items.is_empty() {
            return self.items.peek();
        }
        let k = self.putters.first()?;
        self.putters.payload_mut(k).as_ref()
    }

    #[inline]
    fn wake_peekers(&mut self) {
        if !self.peekers.is_empty() {
            self.peekers.notify_all();
        }
    }

    fn take_from_putter(&mut self) -> T {
        let k = self.putters.first().expect("checked by the caller");
        let item = self
            .putters
            .payload_mut(k)
            .take()
            .expect("a waiting putter holds its item");
        self.putters.notify(k);
        self.unfinished += 1;
        item
    }
}

impl<T> Queue<T> {
    /// A new unbounded queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// for i in 0..1000 {
    ///     q.put(i).unwrap(); // never waits
    /// }
    /// assert_eq!(q.len(), 1000);
    /// ```
    pub fn new() -> Queue<T> {
        Queue::with_cap(usize::MAX)
    }

    /// A new queue that holds at most `cap` items; `put` parks while it is
    /// full. `bounded(0)` makes a rendezvous channel: each `put` waits until
    /// a `get` takes its item.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1);
    /// q.put('a').unwrap();
    /// assert_eq!(q.try_put('b'), Err(TryPutError::Full('b')));
    /// ```
    pub fn bounded(cap: usize) -> Queue<T> {
        Queue::with_cap(cap)
    }

    fn with_cap(cap: usize) -> Queue<T> {
        Queue::with_items(Items::Fifo(VecDeque::new()), cap)
    }

    fn with_items(items: Items<T>, cap: usize) -> Queue<T> {
        let q = Queue {
            inner: Arc::new(Lock::new(State {
                items,
                cap,
                closed: false,
                getters: WaitList::new(),
                putters: WaitList::new(),
                unfinished: 0,
                joiners: WaitList::new(),
                peekers: WaitList::new(),
            })),
        };
        if let Items::Heap { owner, .. } = &mut q.inner.lock().items {
            *owner = q.owner();
        }
        q
    }

    /// The queue's identity for [`UserCode`]: its lock's address.
    #[inline]
    fn owner(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Locks the queue's state. The lock is held only for a few
    /// instructions, and for the user's `Ord` (a priority queue's) or
    /// `Clone` (`peek`'s) of an item: finding it taken while this thread
    /// runs such code for this very queue means that code called back into
    /// the queue (or parked, and another greenlet of this thread came), and
    /// would spin for good. That panics instead.
    #[inline]
    fn state(&self) -> LockGuard<'_, State<T>> {
        match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.state_contended(),
        }
    }

    #[cold]
    fn state_contended(&self) -> LockGuard<'_, State<T>> {
        if UserCode::running(self.owner()) {
            panic!(
                "greenlet::sync: an item's `Ord` or `Clone` called back into the queue \
                 it runs for (or waited); they run under the queue's internal lock, \
                 which this would wait for forever"
            );
        }
        self.inner.lock()
    }

    /// Closes the queue: later puts fail, waiting putters wake with their
    /// item back, and getters wake with [`GetError`] once the items already
    /// queued are drained. Closing twice does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{PutError, Queue};
    ///
    /// let q = Queue::new();
    /// q.put(1).unwrap();
    /// q.close();
    /// assert!(q.is_closed());
    /// assert_eq!(q.put(2), Err(PutError(2)));
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1]);
    /// ```
    pub fn close(&self) {
        let mut s = self.state();
        if !s.closed {
            s.closed = true;
            s.getters.notify_all();
            s.putters.notify_all();
            s.peekers.notify_all();
        }
    }

    /// Whether [`close`](Queue::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::<()>::new();
    /// assert!(!q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Items in the queue (not counting putters still waiting to add
    /// theirs).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put(()).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state().items.len()
    }

    /// Whether the queue holds no items.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(greenlet::sync::Queue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound given to [`Queue::bounded`]; `None` when unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::Queue;
    /// assert_eq!(Queue::<u8>::bounded(4).capacity(), Some(4));
    /// assert_eq!(Queue::<u8>::new().capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        let cap = self.state().cap;
        (cap != usize::MAX).then_some(cap)
    }

    /// Whether a [`put`](Queue::put) would have to wait now: a bounded
    /// queue holds as many items as it may (a rendezvous queue is always
    /// full, as gevent's `Channel` is). Never for an unbounded queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::Queue;
    ///
    /// let q = Queue::bounded(1);
    /// assert!(!q.is_full());
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// assert!(Queue::<u8>::bounded(0).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        let s = self.state();
        s.items.len() >= s.cap
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after: the formatter's sink is the
        // caller's code, which may use this queue.
        let (len, cap, closed) = {
            let s = self.state();
            (s.items.len(), s.cap, s.closed)
        };
        f.debug_struct("Queue")
            .field("len", &len)
            .field("capacity", &(cap != usize::MAX).then_some(cap))
            .field("closed", &closed)
            .finish()
    }
}

/// A `get` as one operation of a [`Select`](crate::select::Select) or
/// [`wait`](crate::select::wait): completes with the next item, or with
/// [`GetError`] once the queue is closed and drained. An item handed to a
/// get that loses the select goes to the next getter or back to the front
/// of the queue.
///
/// # Examples
///
/// ```
/// use greenlet::select::Select;
/// use greenlet::sync::Queue;
///
/// let (a, b) = (Queue::new(), Queue::new());
/// b.put(2).unwrap();
/// let got = Select::new().on(&a, |r| r.unwrap()).on(&b, |r| r.unwrap()).wait();
/// assert_eq!(got, 2);
/// ```
impl<T> super::waitable::Waitable for Queue<T> {
    type Output = Result<T, GetError>;

    fn start(&self) -> super::waitable::Attempt<'_, Result<T, GetError>> {
        use super::waitable::{Attempt, Pending};
        let op = GetOp {
            q: self,
            armed: None,
        };
        match op.try_now() {
            Some(r) => Attempt::Ready(r),
            None => Attempt::Pending(Pending::new(op)),
        }
    }
}

/// A select `get` cannot end while the selecting task holds the only
/// handle (see [`WaitSite::sole`](super::wait_queue::WaitSite)).
impl<T> super::wait_queue::Sole for Queue<T> {
    fn sole(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }
}

/// A select `get`: tried again when polled, registered only while a
/// select parks (see [`PendingOp`](super::waitable::PendingOp)).
struct GetOp<'q, T> {
    q: &'q Queue<T>,
    armed: Option<super::wait_queue::Armed<'q, State<T>, T>>,
}

impl<T> GetOp<'_, T> {
    /// A `try_get` that also reports a closed queue.
    fn try_now(&self) -> Option<Result<T, GetError>> {
        let mut s = self.q.state();
        match s.try_get() {
            Some(item) => Some(Ok(item)),
            None if s.closed => Some(Err(GetError)),
            None => None,
        }
    }
}

impl<T> super::waitable::PendingOp<Result<T, GetError>> for GetOp<'_, T> {
    fn poll(&mut self) -> Option<Result<T, GetError>> {
        let Some(armed) = &mut self.armed else {
            return self.try_now();
        };
        Some(match armed.poll()? {
            Some(item) => Ok(item),
            // Closed; an item a dying getter passed back may be there.
            None => self.q.state().try_get().ok_or(GetError),
        })
    }

    fn arm(&mut self, _: super::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let inner: &Lock<State<T>> = &self.q.inner;
        let s = self.q.state();
        if !s.items.is_empty() || !s.putters.is_empty() || s.closed {
            return true;
        }
        self.armed = Some(super::wait_queue::arm(
            inner,
            s,
            getters,
            None,
            pass_on,
            Some(self.q),
        ));
        false
    }

    fn disarm(&mut self, _: super::waitable::ArmToken) {
        self.armed = None;
    }
}
