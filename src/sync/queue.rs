//! `Queue<T>`: a FIFO channel between greenlets (and threads), bounded or
//! not, closable, joinable.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deadline;
use super::lock::Lock;
use super::wait_queue::{WaitList, Waited, drop_payload, wait};

/// A multi-producer, multi-consumer FIFO queue (gevent's
/// `gevent.queue.Queue` and `JoinableQueue`, Go's channels).
///
/// - [`Queue::new`] is unbounded: [`put`](Queue::put) never waits.
///   [`Queue::bounded`]`(n)` holds at most `n` items and `put` parks while
///   it is full; `bounded(0)` is a rendezvous channel, where each `put`
///   waits for a `get` to take its item.
/// - [`get`](Queue::get) parks while the queue is empty. Items come out in
///   the order they were put; waiting getters are served in the order they
///   came, and so are waiting putters.
/// - [`close`](Queue::close) refuses further puts and wakes every waiter:
///   waiting putters get their item back in [`PutError`], and once the
///   remaining items are drained getters get [`GetError`]. Iterating
///   ([`iter`](Queue::iter), `for item in queue`) ends there.
/// - Every `put` counts an unfinished task; [`task_done`](Queue::task_done)
///   marks one done and [`join`](Queue::join) waits until all are (gevent's
///   `JoinableQueue`).
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
    items: VecDeque<T>,
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

/// The `abandon` hook of getters: an item handed to a getter that died goes
/// to the next getter, or back to the front of the queue.
fn pass_on<T>(s: &mut State<T>, item: T) -> Option<T> {
    if let Err(item) = s.getters.notify_first_with(item) {
        s.items.push_front(item);
    }
    None
}

impl<T> State<T> {
    /// Accepts `item` if a getter waits or there is room; gives it back
    /// otherwise.
    #[inline]
    fn try_put(&mut self, item: T) -> Result<(), T> {
        let item = match self.getters.notify_first_with(item) {
            Ok(()) => {
                self.unfinished += 1;
                return Ok(());
            }
            Err(item) => item,
        };
        if self.items.len() < self.cap {
            self.items.push_back(item);
            self.unfinished += 1;
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Takes the next item, topping the queue up from the first waiting
    /// putter.
    #[inline]
    fn try_get(&mut self) -> Option<T> {
        match self.items.pop_front() {
            Some(item) => {
                if !self.putters.is_empty() && self.items.len() < self.cap {
                    let more = self.take_from_putter();
                    self.items.push_back(more);
                }
                Some(item)
            }
            // Only a rendezvous queue (capacity 0) has putters waiting while
            // it is empty.
            None if !self.putters.is_empty() => Some(self.take_from_putter()),
            None => None,
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
        Queue {
            inner: Arc::new(Lock::new(State {
                items: VecDeque::new(),
                cap,
                closed: false,
                getters: WaitList::new(),
                putters: WaitList::new(),
                unfinished: 0,
                joiners: WaitList::new(),
            })),
        }
    }

    /// Appends `item`, parking while a bounded queue is full.
    ///
    /// # Errors
    /// [`PutError`] with the item if the queue is closed, or closes while
    /// this call waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get(), Ok(1));
    /// ```
    #[inline]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None).map_err(|e| match e {
            PutTimeoutError::Closed(item) | PutTimeoutError::Timeout(item) => PutError(item),
        })
    }

    /// Appends `item` if that needs no waiting.
    ///
    /// # Errors
    /// [`TryPutError::Full`] if a bounded queue is full (for `bounded(0)`:
    /// no getter is waiting), [`TryPutError::Closed`] if it is closed; both
    /// give the item back.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1);
    /// assert_eq!(q.try_put(1), Ok(()));
    /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    /// q.close();
    /// assert_eq!(q.try_put(3), Err(TryPutError::Closed(3)));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut s = self.inner.lock();
        if s.closed {
            return Err(TryPutError::Closed(item));
        }
        s.try_put(item).map_err(TryPutError::Full)
    }

    /// Appends `item`, parking at most `timeout` while the queue is full.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] if the queue stayed full for `timeout`,
    /// [`PutTimeoutError::Closed`] if it is or becomes closed; both give the
    /// item back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{PutTimeoutError, Queue};
    ///
    /// let q = Queue::bounded(1);
    /// q.put(1).unwrap();
    /// let r = q.put_timeout(2, Duration::from_millis(5));
    /// assert_eq!(r, Err(PutTimeoutError::Timeout(2)));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_until(item, Some(deadline(timeout)))
    }

    #[inline]
    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutTimeoutError<T>> {
        let mut s = self.inner.lock();
        if s.closed {
            return Err(PutTimeoutError::Closed(item));
        }
        let item = match s.try_put(item) {
            Ok(()) => return Ok(()),
            Err(item) => item,
        };
        match wait(&self.inner, s, putters, Some(item), deadline, drop_payload) {
            Waited::Notified(None) => Ok(()),
            Waited::Notified(Some(item)) => Err(PutTimeoutError::Closed(item)),
            Waited::TimedOut(Some(item)) => Err(PutTimeoutError::Timeout(item)),
            Waited::TimedOut(None) => unreachable!("a putter keeps its item until it is taken"),
        }
    }

    /// Removes and returns the first item, parking while the queue is
    /// empty.
    ///
    /// In root context this runs the hub until an item comes. A wait that
    /// nothing will ever end hangs (see [the module docs](crate::sync)).
    ///
    /// # Errors
    /// [`GetError`] once the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{GetError, Queue};
    ///
    /// let q = Queue::new();
    /// let producer = greenlet::spawn({
    ///     let q = q.clone();
    ///     move || q.put("hello").unwrap()
    /// });
    /// assert_eq!(q.get(), Ok("hello")); // the root runs the producer meanwhile
    /// producer.join().unwrap();
    /// q.close();
    /// assert_eq!(q.get(), Err(GetError));
    /// ```
    #[inline]
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(None).map_err(|_| GetError)
    }

    /// Removes and returns the first item if there is one.
    ///
    /// # Errors
    /// [`TryGetError::Empty`] if the queue is empty,
    /// [`TryGetError::Closed`] if it is also closed (nothing will come).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{Queue, TryGetError};
    ///
    /// let q = Queue::new();
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// q.put(1).unwrap();
    /// q.close();
    /// assert_eq!(q.try_get(), Ok(1)); // items left at close still drain
    /// assert_eq!(q.try_get(), Err(TryGetError::Closed));
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let mut s = self.inner.lock();
        match s.try_get() {
            Some(item) => Ok(item),
            None if s.closed => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        }
    }

    /// Removes and returns the first item, parking at most `timeout` while
    /// the queue is empty.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] if no item came within `timeout`,
    /// [`GetTimeoutError::Closed`] once the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{GetTimeoutError, Queue};
    ///
    /// let q = Queue::<u8>::new();
    /// assert_eq!(q.get_timeout(Duration::from_millis(5)), Err(GetTimeoutError::Timeout));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_until(Some(deadline(timeout)))
    }

    #[inline]
    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        let mut s = self.inner.lock();
        if let Some(item) = s.try_get() {
            return Ok(item);
        }
        if s.closed {
            return Err(GetTimeoutError::Closed);
        }
        match wait(&self.inner, s, getters, None, deadline, pass_on) {
            Waited::Notified(Some(item)) => Ok(item),
            Waited::Notified(None) => Err(GetTimeoutError::Closed),
            Waited::TimedOut(_) => Err(GetTimeoutError::Timeout),
        }
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
        let mut s = self.inner.lock();
        if !s.closed {
            s.closed = true;
            s.getters.notify_all();
            s.putters.notify_all();
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
        self.inner.lock().closed
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
        self.inner.lock().items.len()
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
        let cap = self.inner.lock().cap;
        (cap != usize::MAX).then_some(cap)
    }

    /// Marks one item taken from the queue as processed (gevent's
    /// `JoinableQueue.task_done`); when every item put so far is done,
    /// [`join`](Queue::join)ers wake.
    ///
    /// # Panics
    /// Panics if called more times than items were put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put("job").unwrap();
    /// let job = q.get().unwrap();
    /// // ... process `job` ...
    /// q.task_done();
    /// q.join(); // returns at once: nothing is unfinished
    /// # let _ = job;
    /// ```
    pub fn task_done(&self) {
        let mut s = self.inner.lock();
        assert!(
            s.unfinished > 0,
            "Queue::task_done called more times than items were put"
        );
        s.unfinished -= 1;
        if s.unfinished == 0 {
            s.joiners.notify_all();
        }
    }

    /// Parks until every item put so far has been marked done with
    /// [`task_done`](Queue::task_done) (gevent's `JoinableQueue.join`).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::Queue;
    ///
    /// let q = Queue::new();
    /// let worker = greenlet::spawn({
    ///     let q = q.clone();
    ///     move || {
    ///         for _job in q.iter() {
    ///             greenlet::sleep(std::time::Duration::from_millis(1));
    ///             q.task_done();
    ///         }
    ///     }
    /// });
    /// for i in 0..5 {
    ///     q.put(i).unwrap();
    /// }
    /// q.join(); // all five processed
    /// assert!(q.is_empty());
    /// q.close();
    /// worker.join().unwrap();
    /// ```
    pub fn join(&self) {
        let s = self.inner.lock();
        if s.unfinished == 0 {
            return;
        }
        let _ = wait(&self.inner, s, joiners, None, None, drop_payload);
    }

    /// An iterator that [`get`](Queue::get)s items until the queue is closed
    /// and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// q.close();
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
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
        let s = self.inner.lock();
        f.debug_struct("Queue")
            .field("len", &s.items.len())
            .field("capacity", &(s.cap != usize::MAX).then_some(s.cap))
            .field("closed", &s.closed)
            .finish()
    }
}

/// The iterator of [`Queue::iter`]: gets items until the queue is closed
/// and drained.
///
/// # Examples
///
/// ```
/// let q = greenlet::sync::Queue::new();
/// q.put('x').unwrap();
/// q.close();
/// for item in &q {
///     assert_eq!(item, 'x');
/// }
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.get().ok()
    }
}

/// The owning iterator of a [`Queue`]: gets items until the queue is closed
/// and drained.
///
/// # Examples
///
/// ```
/// let q = greenlet::sync::Queue::new();
/// q.put(1).unwrap();
/// q.close();
/// assert_eq!(q.into_iter().collect::<Vec<_>>(), [1]);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    queue: Queue<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.get().ok()
    }
}

impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Queue<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { queue: self }
    }
}

/// The error of [`Queue::put`]: the queue is closed. Holds the item that
/// could not be put.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PutError<T>(pub T);

impl<T> PutError<T> {
    /// The item that could not be put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.close();
    /// assert_eq!(q.put(5).unwrap_err().into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// The error of [`Queue::try_put`]. Holds the item that could not be put.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is full (a rendezvous queue: no getter is waiting).
    Full(T),
    /// The queue is closed.
    Closed(T),
}

impl<T> TryPutError<T> {
    /// The item that could not be put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::bounded(0);
    /// assert_eq!(q.try_put(5).unwrap_err().into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(t) | TryPutError::Closed(t) => t,
        }
    }
}

/// The error of [`Queue::put_timeout`]. Holds the item that could not be
/// put.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the timeout.
    Timeout(T),
    /// The queue is closed (or closed while waiting).
    Closed(T),
}

impl<T> PutTimeoutError<T> {
    /// The item that could not be put.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenlet::sync::Queue::bounded(0);
    /// let e = q.put_timeout('z', Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(e.into_inner(), 'z');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(t) | PutTimeoutError::Closed(t) => t,
        }
    }
}

/// The error of [`Queue::get`]: the queue is closed and empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetError;

/// The error of [`Queue::try_get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryGetError {
    /// The queue is empty right now.
    Empty,
    /// The queue is closed and empty: no item will ever come.
    Closed,
}

/// The error of [`Queue::get_timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetTimeoutError {
    /// No item came within the timeout.
    Timeout,
    /// The queue is closed and empty: no item will ever come.
    Closed,
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("putting into a closed queue")
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("putting into a full queue"),
            TryPutError::Closed(_) => f.write_str("putting into a closed queue"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("timed out putting into a full queue"),
            PutTimeoutError::Closed(_) => f.write_str("putting into a closed queue"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("getting from a closed and empty queue")
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("getting from an empty queue"),
            TryGetError::Closed => f.write_str("getting from a closed and empty queue"),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out getting from an empty queue"),
            GetTimeoutError::Closed => f.write_str("getting from a closed and empty queue"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}
impl<T> std::error::Error for TryPutError<T> {}
impl<T> std::error::Error for PutTimeoutError<T> {}
impl std::error::Error for GetError {}
impl std::error::Error for TryGetError {}
impl std::error::Error for GetTimeoutError {}
