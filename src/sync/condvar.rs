//! `Condvar`: wait for a condition on a [`Mutex`]'s data.

use std::fmt;
use std::time::{Duration, Instant};

use super::deadline;
use super::lock::Lock;
use super::mutex::{Mutex, MutexGuard};
use super::wait_queue::{WaitList, Waited, wait};

/// A condition variable for the crate's [`Mutex`] (std's `Condvar`,
/// gevent's `threading.Condition` under monkey patching).
///
/// [`wait`](Condvar::wait) unlocks the mutex, parks until notified, and
/// locks it again before returning. Waiters are notified in the order they
/// began waiting. There are no spurious wake-ups from this implementation,
/// but as with any condition variable, check the condition in a loop (or
/// use [`wait_while`](Condvar::wait_while)): another greenlet may change
/// the data between the notification and the re-lock.
///
/// # Waiting protocol
///
/// `wait` takes the condition variable's internal lock, *then* unlocks the
/// mutex, registers at the back of the waiter list and parks: a notifier
/// (which takes the same internal lock) cannot slip in between the unlock
/// and the registration, so no notification is lost. `notify_one` hands one
/// notification to the first waiter; a waiter that dies holding one passes
/// it on. See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use greenlet::sync::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let g = greenlet::spawn({
///     let pair = pair.clone();
///     move || {
///         let (ready, cv) = &*pair;
///         *ready.lock() = true;
///         cv.notify_one();
///     }
/// });
/// let (ready, cv) = &*pair;
/// let guard = cv.wait_while(ready.lock(), |ready| !*ready);
/// assert!(*guard);
/// drop(guard);
/// g.join().unwrap();
/// ```
pub struct Condvar {
    waiters: Lock<WaitList<()>>,
}

fn list(w: &mut WaitList<()>) -> &mut WaitList<()> {
    w
}

/// The `abandon` hook: a notification handed to a waiter that died goes
/// to the next waiter.
fn pass_on(w: &mut WaitList<()>, (): ()) -> Option<()> {
    let _ = w.notify_first_with(());
    None
}

/// Whether a timed condition-variable wait timed out (std's
/// `WaitTimeoutResult`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::sync::{Condvar, Mutex};
///
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_guard, r) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
/// assert!(r.timed_out());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (_g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(5), |n| *n == 0);
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable with no waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// static CV: greenlet::sync::Condvar = greenlet::sync::Condvar::new();
    /// CV.notify_all(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            waiters: Lock::new(WaitList::new()),
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified, then locks the mutex
    /// again and returns its guard.
    ///
    /// If the greenlet is killed (or unwound by
    /// [`with_timeout`](crate::with_timeout)) while parked, it unwinds with
    /// the mutex unlocked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let state = Arc::new((Mutex::new(0), Condvar::new()));
    /// let g = greenlet::spawn({
    ///     let state = state.clone();
    ///     move || {
    ///         *state.0.lock() = 1;
    ///         state.1.notify_all();
    ///     }
    /// });
    /// let mut n = state.0.lock();
    /// while *n == 0 {
    ///     n = state.1.wait(n);
    /// }
    /// assert_eq!(*n, 1);
    /// # drop(n);
    /// # g.join().unwrap();
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Waits (as [`wait`](Condvar::wait)) for as long as `condition`
    /// returns `true`, checking it first; returns the guard once it returns
    /// `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let jobs = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    /// let producer = greenlet::spawn({
    ///     let jobs = jobs.clone();
    ///     move || {
    ///         for i in 0..3 {
    ///             jobs.0.lock().push(i);
    ///             jobs.1.notify_one();
    ///             greenlet::yield_now();
    ///         }
    ///     }
    /// });
    /// let full = jobs.1.wait_while(jobs.0.lock(), |v| v.len() < 3);
    /// assert_eq!(*full, [0, 1, 2]);
    /// # drop(full);
    /// # producer.join().unwrap();
    /// ```
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Waits as [`wait`](Condvar::wait) does, for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
    /// assert!(r.timed_out()); // nobody notified
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let (g, timed_out) = self.wait_until(guard, Some(deadline(timeout)));
        (g, WaitTimeoutResult(timed_out))
    }

    /// Waits as [`wait_while`](Condvar::wait_while) does, for at most
    /// `timeout` in all; the result says whether the time ran out with the
    /// condition still `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let s = Arc::new((Mutex::new(0), Condvar::new()));
    /// let g = greenlet::spawn({
    ///     let s = s.clone();
    ///     move || {
    ///         *s.0.lock() = 5;
    ///         s.1.notify_all();
    ///     }
    /// });
    /// let (n, r) = s.1.wait_timeout_while(s.0.lock(), Duration::from_secs(5), |n| *n == 0);
    /// assert!(!r.timed_out());
    /// assert_eq!(*n, 5);
    /// # drop(n);
    /// # g.join().unwrap();
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = deadline(timeout);
        while condition(&mut *guard) {
            if Instant::now() >= deadline {
                return (guard, WaitTimeoutResult(true));
            }
            guard = self.wait_until(guard, Some(deadline)).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex: &'a Mutex<T> = MutexGuard::mutex(&guard);
        let waiters = self.waiters.lock();
        // Unlock while holding our own lock: a notifier waits for it, so it
        // cannot notify before we are registered.
        drop(guard);
        let timed_out = match wait(&self.waiters, waiters, list, None, deadline, pass_on) {
            Waited::Notified(_) => false,
            Waited::TimedOut(_) => true,
        };
        (mutex.lock(), timed_out)
    }

    /// Wakes the longest-waiting waiter, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::sync::Condvar::new().notify_one(); // no waiter: no effect
    /// ```
    pub fn notify_one(&self) {
        let _ = self.waiters.lock().notify_first_with(());
    }

    /// Wakes every waiter, in the order they began waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::sync::Condvar::new().notify_all(); // no waiter: no effect
    /// ```
    pub fn notify_all(&self) {
        let mut w = self.waiters.lock();
        while w.notify_first_with(()).is_ok() {}
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
