//! [`LifoQueue`] and [`PriorityQueue`]: a [`Queue`] with another order
//! (gevent's `gevent.queue.LifoQueue` and `PriorityQueue`).

use std::fmt;
use std::ops::Deref;

use super::Queue;
use super::items::Items;

/// A [`Queue`] that hands out the newest item first (gevent's
/// `LifoQueue`). Everything else (bounds, close, timeouts, `task_done`,
/// cross-thread use) is [`Queue`]'s, reached through `Deref`; a `&LifoQueue`
/// can be passed where a `&Queue` is expected.
///
/// # Examples
///
/// ```
/// use greenlet::sync::LifoQueue;
///
/// let stack = LifoQueue::new();
/// for i in 1..=3 {
///     stack.put(i).unwrap();
/// }
/// stack.close();
/// assert_eq!(stack.iter().collect::<Vec<_>>(), [3, 2, 1]);
/// ```
pub struct LifoQueue<T>(Queue<T>);

impl<T> LifoQueue<T> {
    /// A new unbounded LIFO queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::LifoQueue::new();
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// assert_eq!(q.get(), Ok('b'));
    /// ```
    pub fn new() -> LifoQueue<T> {
        LifoQueue(Queue::with_items(Items::Lifo(Vec::new()), usize::MAX))
    }

    /// A new LIFO queue holding at most `cap` items (see
    /// [`Queue::bounded`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::LifoQueue::bounded(1);
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(cap: usize) -> LifoQueue<T> {
        LifoQueue(Queue::with_items(Items::Lifo(Vec::new()), cap))
    }
}

impl<T> Deref for LifoQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T> Clone for LifoQueue<T> {
    fn clone(&self) -> Self {
        LifoQueue(self.0.clone())
    }
}

impl<T> Default for LifoQueue<T> {
    fn default() -> Self {
        LifoQueue::new()
    }
}

impl<T> fmt::Debug for LifoQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LifoQueue").field(&self.0).finish()
    }
}

/// A [`Queue`] that hands out the lowest item first (gevent's
/// `PriorityQueue`, Python's `heapq` order; wrap items in
/// [`std::cmp::Reverse`] for highest first). Items that compare equal come
/// out in no particular order: add a sequence number to make it FIFO.
/// Everything else is [`Queue`]'s, reached through `Deref`.
///
/// `T`'s `Ord` runs under the queue's internal lock: keep it cheap and free
/// of waiting. A panicking `Ord` (a logic error, as for std's
/// [`BinaryHeap`](std::collections::BinaryHeap)) releases the lock and
/// loses or duplicates no item: the call it panicked in takes nothing (a
/// `get`) or leaves its item in (a `put`), the counts stay right, and the
/// items then in the queue may come out in any order. An `Ord` that calls
/// back into its own queue would wait for that lock forever; it panics
/// instead, saying so (the project's rule: no silent hang).
///
/// # Examples
///
/// ```
/// use greenlet::sync::PriorityQueue;
///
/// let jobs = PriorityQueue::new();
/// jobs.put((2, "later")).unwrap();
/// jobs.put((0, "urgent")).unwrap();
/// jobs.put((1, "soon")).unwrap();
/// assert_eq!(jobs.get(), Ok((0, "urgent")));
/// assert_eq!(jobs.get(), Ok((1, "soon")));
/// ```
pub struct PriorityQueue<T>(Queue<T>);

fn less<T: Ord>(a: &T, b: &T) -> bool {
    a < b
}

impl<T: Ord> PriorityQueue<T> {
    /// A new unbounded priority queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::PriorityQueue::new();
    /// q.put(5).unwrap();
    /// q.put(3).unwrap();
    /// assert_eq!(q.try_peek(), Ok(3));
    /// ```
    pub fn new() -> PriorityQueue<T> {
        PriorityQueue::bounded(usize::MAX)
    }

    /// A new priority queue holding at most `cap` items (see
    /// [`Queue::bounded`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::PriorityQueue::bounded(2);
    /// q.put(1).unwrap();
    /// q.put(0).unwrap();
    /// assert!(q.is_full());
    /// assert_eq!(q.get(), Ok(0));
    /// ```
    pub fn bounded(cap: usize) -> PriorityQueue<T> {
        PriorityQueue(Queue::with_items(
            Items::Heap {
                heap: Vec::new(),
                less: less::<T>,
                owner: 0, // set by `with_items`
            },
            cap,
        ))
    }
}

impl<T> Deref for PriorityQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T> Clone for PriorityQueue<T> {
    fn clone(&self) -> Self {
        PriorityQueue(self.0.clone())
    }
}

impl<T: Ord> Default for PriorityQueue<T> {
    fn default() -> Self {
        PriorityQueue::new()
    }
}

impl<T> fmt::Debug for PriorityQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PriorityQueue").field(&self.0).finish()
    }
}
