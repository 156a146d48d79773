//! Iterating over a queue: `get` until it is closed and drained.

use super::Queue;

impl<T> Queue<T> {
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
