//! Looking at the next item without taking it (gevent's `Queue.peek`).

use std::time::{Duration, Instant};

use super::super::deadline;
use super::super::wait_queue::{WaitSite, Waited, drop_payload, wait};
use super::{GetError, GetTimeoutError, Queue, TryGetError, UserCode, peekers};
use crate::hub::SyncKind;
use std::sync::Arc;

impl<T> Queue<T> {
    /// Returns a copy of the item the next [`get`](Queue::get) would take,
    /// without taking it, parking while there is none (gevent's `peek`).
    /// In a rendezvous queue that is the first waiting putter's item.
    ///
    /// An item put while a getter is already waiting goes straight to that
    /// getter and is never seen by `peek`.
    ///
    /// The item is cloned under the queue's internal lock, so keep `T`'s
    /// `Clone` cheap and free of waiting (plain data, `Rc`, `Arc`). A
    /// `Clone` that panics leaves the queue as it was (the panic goes on to
    /// the caller); one that calls back into this queue panics, saying so,
    /// where it would otherwise spin on the lock for good.
    ///
    /// # Errors
    /// [`GetError`] once the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// let g = greenlet::spawn({
    ///     let q = q.clone();
    ///     move || q.peek()
    /// });
    /// q.put("first").unwrap();
    /// assert_eq!(g.join().unwrap(), Ok("first"));
    /// assert_eq!(q.len(), 1); // still there
    /// ```
    pub fn peek(&self) -> Result<T, GetError>
    where
        T: Clone,
    {
        self.peek_until(None).map_err(|_| GetError)
    }

    /// Returns a copy of the next item if there is one (see
    /// [`peek`](Queue::peek)).
    ///
    /// # Errors
    /// [`TryGetError::Empty`] if there is none, [`TryGetError::Closed`] if
    /// the queue is also closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{Queue, TryGetError};
    ///
    /// let q = Queue::new();
    /// assert_eq!(q.try_peek(), Err(TryGetError::Empty));
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.try_peek(), Ok(1));
    /// ```
    pub fn try_peek(&self) -> Result<T, TryGetError>
    where
        T: Clone,
    {
        let owner = self.owner();
        let mut s = self.state();
        let closed = s.closed;
        match s.peek() {
            Some(item) => Ok(clone_under_lock(item, owner)),
            None if closed => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        }
    }

    /// Returns a copy of the next item, parking at most `timeout` for one
    /// (see [`peek`](Queue::peek)).
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`] if none came in time,
    /// [`GetTimeoutError::Closed`] once the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{GetTimeoutError, Queue};
    ///
    /// let q = Queue::<u8>::new();
    /// assert_eq!(q.peek_timeout(Duration::from_millis(5)), Err(GetTimeoutError::Timeout));
    /// ```
    pub fn peek_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError>
    where
        T: Clone,
    {
        self.peek_until(Some(deadline(timeout)))
    }

    fn peek_until(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError>
    where
        T: Clone,
    {
        let owner = self.owner();
        loop {
            let mut s = self.state();
            if let Some(item) = s.peek() {
                return Ok(clone_under_lock(item, owner));
            }
            if s.closed {
                return Err(GetTimeoutError::Closed);
            }
            match wait(
                &self.inner,
                s,
                peekers,
                None,
                deadline,
                drop_payload,
                WaitSite::sole(SyncKind::QueuePeek, &|| Arc::strong_count(&self.inner) == 1),
            ) {
                // Something arrived (or the queue closed): look again.
                Waited::Notified(_) => {}
                Waited::TimedOut(_) => return Err(GetTimeoutError::Timeout),
            }
        }
    }
}

/// Clones the item `peek` shows, the queue `owner` marked as running user
/// code (see [`UserCode`]).
#[inline]
fn clone_under_lock<T: Clone>(item: &T, owner: usize) -> T {
    let _user = UserCode::enter(owner);
    item.clone()
}
