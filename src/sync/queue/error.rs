//! The errors of [`Queue`](super::Queue)'s operations.

use std::fmt;

/// The error of [`Queue::put`](super::Queue::put): the queue is closed. Holds the item that
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

/// The error of [`Queue::try_put`](super::Queue::try_put). Holds the item that could not be put.
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

/// The error of [`Queue::put_timeout`](super::Queue::put_timeout). Holds the item that could not be
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

/// The error of [`Queue::get`](super::Queue::get): the queue is closed and empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetError;

/// The error of [`Queue::try_get`](super::Queue::try_get).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryGetError {
    /// The queue is empty right now.
    Empty,
    /// The queue is closed and empty: no item will ever come.
    Closed,
}

/// The error of [`Queue::get_timeout`](super::Queue::get_timeout).
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
