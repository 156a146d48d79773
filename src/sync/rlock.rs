//! `RLock<T>`: a re-entrant lock, owned by one greenlet at a time.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, wait};
use super::{Owner, TimedOut, current_owner, deadline};
use crate::hub::SyncKind;

/// A re-entrant lock (gevent's `gevent.lock.RLock`, std's unstable
/// `ReentrantLock`): the greenlet that holds it may lock it again without
/// waiting for itself; it is released when every guard is dropped.
///
/// Ownership is per greenlet, not per thread: two greenlets of one hub
/// exclude each other. The root context of each thread is an owner too,
/// so the lock also works from plain code and plain threads.
///
/// A guard gives shared access (`&T`), as std's `ReentrantLock` does: two
/// guards of the same owner may be alive at once. Put a `Cell` or
/// `RefCell` inside for mutation. For a plain gevent-style lock use
/// `RLock<()>` (`RLock::default()`).
///
/// Fair like [`Mutex`](super::Mutex): released, the lock goes straight to
/// the longest waiter. Not poisoned.
///
/// # Waiting protocol
///
/// Under the internal lock, `lock` succeeds at once if the caller owns the
/// lock (the count goes up) or nobody does; otherwise it registers at the
/// back of the waiter list, naming itself, and parks. The last guard's drop
/// makes the first waiter the owner (count 1) and wakes it; a waiter that
/// dies after that releases again, to the next one. See
/// [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use greenlet::sync::RLock;
///
/// static LOG: RLock<RefCell<Vec<&str>>> = RLock::new(RefCell::new(Vec::new()));
///
/// fn log_twice(s: &'static str) {
///     let log = LOG.lock();
///     log.borrow_mut().push(s);
///     log_once(s); // locks again: fine, this greenlet owns it
/// }
/// fn log_once(s: &'static str) {
///     LOG.lock().borrow_mut().push(s);
/// }
///
/// let gs: Vec<_> = ["a", "b"]
///     .into_iter()
///     .map(|s| greenlet::spawn(move || log_twice(s)))
///     .collect();
/// greenlet::joinall(gs);
/// assert_eq!(*LOG.lock().borrow(), ["a", "a", "b", "b"]);
/// ```
pub struct RLock<T: ?Sized> {
    state: Lock<State>,
    data: T,
}

struct State {
    owner: Option<Owner>,
    /// Guards alive of `owner`.
    count: usize,
    /// Each waiter's node names the waiter.
    waiters: WaitList<Owner>,
}

impl State {
    /// Makes the first waiter the owner, or leaves the lock free.
    fn hand_off(&mut self) {
        match self.waiters.first() {
            Some(k) => {
                self.owner = *self.waiters.payload_mut(k);
                self.count = 1;
                self.waiters.notify(k);
            }
            None => {
                self.owner = None;
                self.count = 0;
            }
        }
    }
}

fn waiters(s: &mut State) -> &mut WaitList<Owner> {
    &mut s.waiters
}

/// The `abandon` hook: ownership handed to a waiter that died goes on.
fn pass_on(s: &mut State, _: Owner) -> Option<Owner> {
    s.hand_off();
    None
}

// SAFETY: `data` is reached only as `&T` through guards, and every guard
// alive at one time belongs to one owner, a single greenlet (or root) of a
// single thread; guards are not `Send`. So `&T` is never used from two
// threads at once unless `T: Sync` lets it be shared by the usual rules:
// `T: Send` suffices, as for std's `ReentrantLock`.
unsafe impl<T: ?Sized + Send> Sync for RLock<T> {}

impl<T> RLock<T> {
    /// A new, free lock around `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static LOCK: greenlet::sync::RLock<()> = greenlet::sync::RLock::new(());
    /// let _a = LOCK.lock();
    /// let _b = LOCK.lock(); // same owner: no wait
    /// ```
    pub const fn new(value: T) -> RLock<T> {
        RLock {
            state: Lock::new(State {
                owner: None,
                count: 0,
                waiters: WaitList::new(),
            }),
            data: value,
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RLock::new(5);
    /// assert_eq!(l.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T: ?Sized> RLock<T> {
    /// Locks, parking until no other greenlet owns the lock; returns at
    /// once if the calling greenlet already does.
    ///
    /// # Panics
    /// If one owner nests more than `usize::MAX` guards.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RLock::new(());
    /// let outer = l.lock();
    /// let inner = l.lock();
    /// drop(inner);
    /// drop(outer); // now free
    /// assert!(!l.is_locked());
    /// ```
    pub fn lock(&self) -> RLockGuard<'_, T> {
        let me = current_owner();
        loop {
            if let Ok(g) = self.lock_until(me, None) {
                return g;
            }
        }
    }

    /// Locks if that needs no waiting (the caller owns the lock, or it is
    /// free).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::RLock;
    /// let l = std::sync::Arc::new(RLock::new(()));
    /// let _g = l.try_lock().unwrap();
    /// assert!(l.try_lock().is_some()); // re-entry
    /// let other = greenlet::spawn({
    ///     let l = l.clone();
    ///     move || l.try_lock().is_some()
    /// });
    /// assert!(!other.join().unwrap()); // another greenlet owns it
    /// ```
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        let me = current_owner();
        let mut s = self.state.lock();
        self.try_take(&mut s, me).then(|| self.guard())
    }

    /// Locks, parking at most `timeout`.
    ///
    /// # Errors
    /// [`TimedOut`] if another owner kept the lock for `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::RLock;
    ///
    /// let l = std::sync::Arc::new(RLock::new(()));
    /// let _g = l.lock();
    /// let other = greenlet::spawn({
    ///     let l = l.clone();
    ///     move || l.lock_timeout(Duration::from_millis(5)).is_err()
    /// });
    /// assert!(other.join().unwrap());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_, T>, TimedOut> {
        self.lock_until(current_owner(), Some(deadline(timeout)))
    }

    fn try_take(&self, s: &mut State, me: Owner) -> bool {
        if s.owner == Some(me) {
            s.count = s.count.checked_add(1).expect("RLock: too many guards");
            true
        } else if s.owner.is_none() {
            s.owner = Some(me);
            s.count = 1;
            true
        } else {
            false
        }
    }

    fn lock_until(
        &self,
        me: Owner,
        deadline: Option<Instant>,
    ) -> Result<RLockGuard<'_, T>, TimedOut> {
        let mut s = self.state.lock();
        if self.try_take(&mut s, me) {
            return Ok(self.guard());
        }
        let state = &self.state;
        // Only the owner releases (its guards are not `Send`): an owner of
        // this thread is up to this hub's own progress.
        let sole = || {
            state
                .try_lock()
                .is_some_and(|s| s.owner.is_some_and(|(t, _)| t == me.0))
        };
        match wait(
            &self.state,
            s,
            waiters,
            Some(me),
            deadline,
            pass_on,
            WaitSite::sole(SyncKind::RLock, &sole),
        ) {
            Waited::Notified(_) => Ok(self.guard()),
            Waited::TimedOut(_) => Err(TimedOut),
        }
    }

    /// Whether some greenlet (or root) owns the lock right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RLock::new(());
    /// assert!(!l.is_locked());
    /// let _g = l.lock();
    /// assert!(l.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.lock().owner.is_some()
    }

    /// A mutable reference to the data; the borrow proves no guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut l = greenlet::sync::RLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.lock(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.data
    }

    fn guard(&self) -> RLockGuard<'_, T> {
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        RLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RLock");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RLock`]'s data; the lock is released when the
/// owner's last guard is dropped.
///
/// Not `Send`: the owner is the greenlet that locked.
///
/// ```compile_fail
/// let l = std::sync::Arc::new(greenlet::sync::RLock::new(0));
/// let g = l.lock();
/// std::thread::spawn(move || drop(g)); // error: `RLockGuard` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// let l = greenlet::sync::RLock::new(Cell::new(1));
/// let g = l.lock();
/// g.set(g.get() + 1);
/// assert_eq!(g.get(), 2);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, T: ?Sized> {
    lock: &'a RLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`: sharing it is sharing `&T`, fine
// when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RLockGuard<'_, T> {}

impl<T: ?Sized> Deref for RLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.lock.data
    }
}

impl<T: ?Sized> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        let mut s = self.lock.state.lock();
        s.count -= 1;
        if s.count == 0 {
            s.hand_off();
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
