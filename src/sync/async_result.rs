//! `AsyncResult<T>`: a one-shot value greenlets can wait for.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, drop_payload, wait};
use super::{TimedOut, deadline};
use crate::hub::SyncKind;

/// A value that is set once and waited for by any number of greenlets
/// (gevent's `gevent.event.AsyncResult`, a one-shot future).
///
/// [`set`](AsyncResult::set) stores the value and wakes every waiter;
/// [`wait`](AsyncResult::wait) borrows it and [`get`](AsyncResult::get)
/// clones it. For gevent's `set_exception`, make the payload a `Result`:
/// an `AsyncResult<Result<T, E>>` carries either outcome.
///
/// `AsyncResult` is a cheap handle: clones share one slot.
///
/// # Waiting protocol
///
/// A waiter reads the slot (lock-free once it is set). If it is empty, it
/// takes the internal lock, looks again and registers at the back of the
/// waiter list, then parks; `set` fills the slot and notifies every waiter
/// under the same lock. See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use greenlet::sync::AsyncResult;
///
/// let result: AsyncResult<Result<u32, String>> = AsyncResult::new();
/// let worker = greenlet::spawn({
///     let result = result.clone();
///     move || {
///         greenlet::sleep(std::time::Duration::from_millis(5));
///         result.set(Ok(42)).unwrap();
///     }
/// });
/// assert_eq!(result.get(), Ok(42)); // the root runs the hub meanwhile
/// worker.join().unwrap();
/// ```
pub struct AsyncResult<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    value: OnceLock<T>,
    waiters: Lock<WaitList<()>>,
}

fn list(w: &mut WaitList<()>) -> &mut WaitList<()> {
    w
}

impl<T> AsyncResult<T> {
    /// A new, empty result.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::<i32>::new();
    /// assert!(!r.is_ready());
    /// ```
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            inner: Arc::new(Inner {
                value: OnceLock::new(),
                waiters: Lock::new(WaitList::new()),
            }),
        }
    }

    /// Stores the value and wakes every waiter.
    ///
    /// # Errors
    /// Gives `value` back if the result was already set: it is one-shot.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::new();
    /// assert_eq!(r.set(1), Ok(()));
    /// assert_eq!(r.set(2), Err(2));
    /// assert_eq!(r.get(), 1);
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut waiters = self.inner.waiters.lock();
        self.inner.value.set(value)?;
        waiters.notify_all();
        Ok(())
    }

    /// Whether the value has been set.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::new();
    /// r.set("x").unwrap();
    /// assert!(r.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.inner.value.get().is_some()
    }

    /// The value if it has been set, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::new();
    /// assert_eq!(r.try_get(), None);
    /// r.set(5).unwrap();
    /// assert_eq!(r.try_get(), Some(&5));
    /// ```
    pub fn try_get(&self) -> Option<&T> {
        self.inner.value.get()
    }

    /// Parks until the value is set and borrows it.
    ///
    /// In root context this runs the hub until then. A wait that nothing
    /// will ever end hangs (see [the module docs](crate::sync)).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::new();
    /// let setter = greenlet::spawn({
    ///     let r = r.clone();
    ///     move || r.set(vec![1, 2, 3]).unwrap()
    /// });
    /// assert_eq!(r.wait().len(), 3);
    /// setter.join().unwrap();
    /// ```
    #[inline]
    pub fn wait(&self) -> &T {
        loop {
            if let Ok(v) = self.wait_until(None) {
                return v;
            }
        }
    }

    /// Parks until the value is set or `timeout` passes, and borrows it.
    ///
    /// # Errors
    /// [`TimedOut`] if `timeout` passed before the value was set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{AsyncResult, TimedOut};
    ///
    /// let r = AsyncResult::<u8>::new();
    /// assert_eq!(r.wait_timeout(Duration::from_millis(5)), Err(TimedOut));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<&T, TimedOut> {
        self.wait_until(Some(deadline(timeout)))
    }

    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn wait_until(&self, deadline: Option<Instant>) -> Result<&T, TimedOut> {
        if let Some(v) = self.inner.value.get() {
            return Ok(v);
        }
        let waiters = self.inner.waiters.lock();
        if let Some(v) = self.inner.value.get() {
            return Ok(v);
        }
        match wait(
            &self.inner.waiters,
            waiters,
            list,
            None,
            deadline,
            drop_payload,
            WaitSite::sole(SyncKind::AsyncResult, &|| {
                std::sync::Arc::strong_count(&self.inner) == 1
            }),
        ) {
            Waited::Notified(_) => Ok(self
                .inner
                .value
                .get()
                .expect("AsyncResult waiters are notified only once it is set")),
            Waited::TimedOut(_) => self.inner.value.get().ok_or(TimedOut),
        }
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Parks until the value is set and returns a clone of it (gevent's
    /// `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = greenlet::sync::AsyncResult::new();
    /// r.set(String::from("done")).unwrap();
    /// assert_eq!(r.get(), "done");
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        self.wait().clone()
    }

    /// Parks until the value is set or `timeout` passes, and returns a clone
    /// of it.
    ///
    /// # Errors
    /// [`TimedOut`] if `timeout` passed before the value was set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{AsyncResult, TimedOut};
    ///
    /// let r = AsyncResult::new();
    /// assert_eq!(r.get_timeout(Duration::from_millis(5)), Err(TimedOut));
    /// r.set(7).unwrap();
    /// assert_eq!(r.get_timeout(Duration::from_millis(5)), Ok(7));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, TimedOut> {
        self.wait_timeout(timeout).cloned()
    }
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("value", &self.inner.value.get())
            .finish()
    }
}

/// Waiting for the value as one operation of a
/// [`Select`](crate::select::Select) or [`wait`](crate::select::wait):
/// completes once the value is set (read it with
/// [`wait`](AsyncResult::wait), which then returns at once).
///
/// # Examples
///
/// ```
/// use greenlet::select::Select;
/// use greenlet::sync::AsyncResult;
///
/// let r = AsyncResult::new();
/// let setter = greenlet::spawn({
///     let r = r.clone();
///     move || r.set(5).unwrap()
/// });
/// Select::new().on(&r, |()| ()).wait();
/// assert_eq!(*r.wait(), 5);
/// setter.join().unwrap();
/// ```
impl<T> super::waitable::Waitable for AsyncResult<T> {
    type Output = ();

    fn start(&self) -> super::waitable::Attempt<'_, ()> {
        use super::waitable::{Attempt, Pending};
        if self.is_ready() {
            return Attempt::Ready(());
        }
        Attempt::Pending(Pending::new(ReadyOp {
            result: self,
            armed: None,
        }))
    }
}

/// A select wait cannot end while the selecting task holds the only
/// handle.
impl<T> super::wait_queue::Sole for AsyncResult<T> {
    fn sole(&self) -> bool {
        std::sync::Arc::strong_count(&self.inner) == 1
    }
}

/// A select wait for an [`AsyncResult`]: checked again when polled,
/// registered only while a select parks (see
/// [`PendingOp`](super::waitable::PendingOp)).
struct ReadyOp<'r, T> {
    result: &'r AsyncResult<T>,
    armed: Option<super::wait_queue::Armed<'r, WaitList<()>, ()>>,
}

impl<T> super::waitable::PendingOp<()> for ReadyOp<'_, T> {
    fn poll(&mut self) -> Option<()> {
        match &mut self.armed {
            Some(armed) => armed.poll().map(|_| ()),
            None => self.result.is_ready().then_some(()),
        }
    }

    fn arm(&mut self, _: super::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let inner = &self.result.inner;
        let waiters = inner.waiters.lock();
        if inner.value.get().is_some() {
            return true;
        }
        self.armed = Some(super::wait_queue::arm(
            &inner.waiters,
            waiters,
            list,
            None,
            drop_payload,
            Some(self.result),
        ));
        false
    }

    fn disarm(&mut self, _: super::waitable::ArmToken) {
        self.armed = None;
    }
}
