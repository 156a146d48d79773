//! Putting items in and getting them out: `put` and `get`, their `try_`
//! and `_timeout` forms, and the waits behind them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::deadline;
use super::super::wait_queue::{WaitSite, Waited, drop_payload, wait};
use super::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, TryGetError, TryPutError, getters,
    pass_on, putters,
};
use crate::hub::SyncKind;

impl<T> Queue<T> {
    /// Appends `item`, parking while a bounded queue is full.
    ///
    /// In a rendezvous queue (`bounded(0)`) a put that hands its item to a
    /// getter already waiting then yields, so that getter runs before the
    /// putter continues, as with gevent's `Channel` (a getter on another
    /// hub has the item by the time `put` returns, but runs on its own
    /// hub's schedule).
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
    ///
    /// gevent's `Channel` ordering:
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use greenlet::sync::Queue;
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let ch = Queue::bounded(0);
    /// let getter = greenlet::spawn({
    ///     let (ch, log) = (ch.clone(), log.clone());
    ///     move || {
    ///         let word = ch.get().unwrap();
    ///         log.borrow_mut().push(word);
    ///     }
    /// });
    /// greenlet::yield_now(); // the getter waits
    /// log.borrow_mut().push("sending hello");
    /// ch.put("hello").unwrap();
    /// log.borrow_mut().push("sent hello");
    /// getter.join().unwrap();
    /// assert_eq!(*log.borrow(), ["sending hello", "hello", "sent hello"]);
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
        let mut s = self.state();
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
        let mut s = self.state();
        if s.closed {
            return Err(PutTimeoutError::Closed(item));
        }
        let item = match s.try_put(item) {
            Ok(()) if s.cap == 0 => {
                // Handed to a waiting getter (gevent's `Channel`): let it
                // run before this putter goes on.
                drop(s);
                crate::yield_now();
                return Ok(());
            }
            Ok(()) => return Ok(()),
            Err(item) => item,
        };
        // A rendezvous putter's item is what `peek` shows.
        s.wake_peekers();
        match wait(
            &self.inner,
            s,
            putters,
            Some(item),
            deadline,
            drop_payload,
            WaitSite::sole(SyncKind::QueuePut, &|| Arc::strong_count(&self.inner) == 1),
        ) {
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
        let mut s = self.state();
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

    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        let mut s = self.state();
        if let Some(item) = s.try_get() {
            return Ok(item);
        }
        if s.closed {
            return Err(GetTimeoutError::Closed);
        }
        match wait(
            &self.inner,
            s,
            getters,
            None,
            deadline,
            pass_on,
            WaitSite::sole(SyncKind::QueueGet, &|| Arc::strong_count(&self.inner) == 1),
        ) {
            Waited::Notified(Some(item)) => Ok(item),
            // Closed. An item handed to a getter that then died may have
            // come back into the queue since: take it.
            Waited::Notified(None) => self.state().try_get().ok_or(GetTimeoutError::Closed),
            Waited::TimedOut(_) => Err(GetTimeoutError::Timeout),
        }
    }
}
