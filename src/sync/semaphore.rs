//! `Semaphore`: a counted set of permits, handed out FIFO.

use std::fmt;
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, wait};
use super::{TimedOut, deadline};
use crate::hub::SyncKind;

/// A counting semaphore (gevent's `gevent.lock.Semaphore`): at most `n`
/// holders of a permit at a time.
///
/// [`acquire`](Semaphore::acquire) returns a [`SemaphorePermit`] that gives
/// its permit back when dropped (also when its greenlet is killed and
/// unwinds). Fair: a released permit goes straight to the longest waiter,
/// so a newcomer never takes it first and no waiter starves.
///
/// Share a semaphore as you would a `std::sync::Mutex`: in a `static`
/// (`new` is `const`), an `Arc`, or by reference from the root.
///
/// # Waiting protocol
///
/// Under the internal lock, `acquire` takes a permit if one is free and
/// nobody waits; otherwise it registers at the back of the waiter list and
/// parks. Releasing a permit with waiters present hands it to the first
/// one (the count does not change) and wakes it. A waiter that dies after a
/// permit was handed to it releases that permit again, to the next waiter.
/// See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use greenlet::sync::Semaphore;
///
/// static SLOTS: Semaphore = Semaphore::new(2);
/// let busy = Rc::new(Cell::new(0));
/// let peak = Rc::new(Cell::new(0));
/// let gs: Vec<_> = (0..6)
///     .map(|_| {
///         let (busy, peak) = (busy.clone(), peak.clone());
///         greenlet::spawn(move || {
///             let _permit = SLOTS.acquire();
///             busy.set(busy.get() + 1);
///             peak.set(peak.get().max(busy.get()));
///             greenlet::sleep(Duration::from_millis(2));
///             busy.set(busy.get() - 1);
///         })
///     })
///     .collect();
/// greenlet::joinall(gs);
/// assert_eq!(peak.get(), 2);
/// ```
pub struct Semaphore {
    state: Lock<State>,
}

struct State {
    permits: usize,
    waiters: WaitList<()>,
}

impl State {
    /// Gives `n` permits back: to waiters first, in order.
    fn release(&mut self, mut n: usize) {
        while n > 0 && self.waiters.notify_first_with(()).is_ok() {
            n -= 1;
        }
        self.permits = self
            .permits
            .checked_add(n)
            .expect("Semaphore: permit count overflow");
    }
}

fn waiters(s: &mut State) -> &mut WaitList<()> {
    &mut s.waiters
}

/// The `abandon` hook: a permit handed to a waiter that died goes on.
fn pass_on(s: &mut State, (): ()) -> Option<()> {
    s.release(1);
    None
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(3);
    /// assert_eq!(s.available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Lock::new(State {
                permits,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Takes a permit, parking until one is free.
    ///
    /// In root context this runs the hub until then. A wait that nothing
    /// will ever end hangs (see [the module docs](crate::sync)).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(1);
    /// let permit = s.acquire();
    /// assert_eq!(s.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    #[inline]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        loop {
            if let Ok(p) = self.acquire_until(None) {
                return p;
            }
        }
    }

    /// Takes a permit if one is free and nobody is waiting for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(1);
    /// let p = s.try_acquire();
    /// assert!(p.is_some());
    /// assert!(s.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut s = self.state.lock();
        if s.permits > 0 && s.waiters.is_empty() {
            s.permits -= 1;
            Some(self.permit())
        } else {
            None
        }
    }

    /// Takes a permit, parking at most `timeout` for one.
    ///
    /// # Errors
    /// [`TimedOut`] if no permit came within `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::Semaphore;
    ///
    /// let s = Semaphore::new(1);
    /// let _held = s.acquire();
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, TimedOut> {
        self.acquire_until(Some(deadline(timeout)))
    }

    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn acquire_until(&self, deadline: Option<Instant>) -> Result<SemaphorePermit<'_>, TimedOut> {
        let mut s = self.state.lock();
        if s.permits > 0 && s.waiters.is_empty() {
            s.permits -= 1;
            return Ok(self.permit());
        }
        match wait(
            &self.state,
            s,
            waiters,
            None,
            deadline,
            pass_on,
            WaitSite::of(SyncKind::Semaphore),
        ) {
            Waited::Notified(Some(())) => Ok(self.permit()),
            Waited::Notified(None) => unreachable!("semaphore waiters are notified with a permit"),
            Waited::TimedOut(_) => Err(TimedOut),
        }
    }

    fn permit(&self) -> SemaphorePermit<'_> {
        SemaphorePermit {
            sem: self,
            max: usize::MAX,
        }
    }

    /// Permits free right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(2);
    /// let _p = s.acquire();
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Gives one permit back unless that would make more than `max` free.
    fn release_within(&self, max: usize) -> bool {
        let mut s = self.state.lock();
        if s.permits >= max {
            return false;
        }
        s.release(1);
        true
    }

    /// Adds `n` permits, waking waiters first (gevent's `release` called
    /// without a matching acquire). Pairs with [`SemaphorePermit::forget`].
    ///
    /// # Panics
    /// Panics if the count would overflow `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(0);
    /// s.add_permits(2);
    /// assert_eq!(s.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        self.state.lock().release(n);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after (see `Queue`'s `Debug`).
        let (permits, waiters) = {
            let s = self.state.lock();
            (s.permits, s.waiters.len())
        };
        f.debug_struct("Semaphore")
            .field("permits", &permits)
            .field("waiters", &waiters)
            .finish()
    }
}

/// A permit from a [`Semaphore`]; gives it back when dropped.
///
/// # Examples
///
/// ```
/// let s = greenlet::sync::Semaphore::new(1);
/// {
///     let _permit = s.acquire();
///     assert_eq!(s.available_permits(), 0);
/// }
/// assert_eq!(s.available_permits(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    /// Most permits the semaphore may have free: its initial count for a
    /// [`BoundedSemaphore`], unbounded otherwise.
    max: usize,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good: dropping does not give it back
    /// (give it back later with [`Semaphore::add_permits`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::Semaphore::new(1);
    /// s.acquire().forget();
    /// assert_eq!(s.available_permits(), 0);
    /// s.add_permits(1);
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.max == usize::MAX {
            self.sem.state.lock().release(1);
        } else {
            // Full only after an erroneous `BoundedSemaphore::release`,
            // which already reported it.
            self.sem.release_within(self.max);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

/// A [`Semaphore`] that refuses to be released more times than it was
/// acquired (gevent's `gevent.lock.BoundedSemaphore`): its free permits
/// never exceed the initial count, and a [`release`](BoundedSemaphore::release)
/// past it is an error instead of silently raising the limit.
///
/// [`acquire`](BoundedSemaphore::acquire) returns an RAII
/// [`SemaphorePermit`]; to release by hand, gevent style, keep the permit
/// with [`SemaphorePermit::forget`] and call `release` later.
///
/// # Examples
///
/// ```
/// use greenlet::sync::{BoundedSemaphore, ReleaseError};
///
/// let s = BoundedSemaphore::new(1);
/// s.acquire().forget(); // gevent's `acquire()`
/// assert_eq!(s.release(), Ok(())); // gevent's `release()`
/// assert_eq!(s.release(), Err(ReleaseError)); // one release too many
/// assert_eq!(s.available_permits(), 1);
/// ```
pub struct BoundedSemaphore {
    sem: Semaphore,
    max: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, which is also the most
    /// it will ever have free.
    ///
    /// # Examples
    ///
    /// ```
    /// static S: greenlet::sync::BoundedSemaphore = greenlet::sync::BoundedSemaphore::new(2);
    /// assert_eq!(S.available_permits(), 2);
    /// ```
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::new(permits),
            max: permits,
        }
    }

    /// Takes a permit, parking until one is free (see
    /// [`Semaphore::acquire`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::BoundedSemaphore::new(1);
    /// let p = s.acquire();
    /// assert_eq!(s.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(s.available_permits(), 1);
    /// ```
    #[inline]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.bound(self.sem.acquire())
    }

    /// Takes a permit if one is free and nobody waits for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::BoundedSemaphore::new(1);
    /// let _p = s.try_acquire().unwrap();
    /// assert!(s.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sem.try_acquire().map(|p| self.bound(p))
    }

    /// Takes a permit, parking at most `timeout` for one.
    ///
    /// # Errors
    /// [`TimedOut`] if no permit came within `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = greenlet::sync::BoundedSemaphore::new(1);
    /// let _p = s.acquire();
    /// assert!(s.acquire_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, TimedOut> {
        self.sem.acquire_timeout(timeout).map(|p| self.bound(p))
    }

    /// Gives back a permit taken with [`acquire`](BoundedSemaphore::acquire)
    /// and kept with [`SemaphorePermit::forget`]; the first waiter gets it.
    ///
    /// # Errors
    /// [`ReleaseError`] if every permit is already free: the count stays
    /// at the initial value.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::{BoundedSemaphore, ReleaseError};
    /// let s = BoundedSemaphore::new(2);
    /// assert_eq!(s.release(), Err(ReleaseError));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.sem.release_within(self.max) {
            Ok(())
        } else {
            Err(ReleaseError)
        }
    }

    /// Permits free right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::sync::BoundedSemaphore::new(3);
    /// let _p = s.acquire();
    /// assert_eq!(s.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.sem.available_permits()
    }

    fn bound<'a>(&self, mut p: SemaphorePermit<'a>) -> SemaphorePermit<'a> {
        p.max = self.max;
        p
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("permits", &self.available_permits())
            .field("max", &self.max)
            .finish()
    }
}

/// The error of [`BoundedSemaphore::release`]: it was released more times
/// than acquired (gevent raises `ValueError` here).
///
/// # Examples
///
/// ```
/// let s = greenlet::sync::BoundedSemaphore::new(0);
/// assert!(s.release().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for ReleaseError {}

/// An `acquire` as one operation of a [`Select`](crate::select::Select) or
/// [`wait`](crate::select::wait): completes with a permit. A permit handed
/// to an acquire that loses the select goes to the next waiter.
///
/// # Examples
///
/// ```
/// use greenlet::select::Select;
/// use greenlet::sync::Semaphore;
///
/// let (a, b) = (Semaphore::new(0), Semaphore::new(1));
/// let which = Select::new().on(&a, |_p| "a").on(&b, |_p| "b").wait();
/// assert_eq!(which, "b");
/// assert_eq!(b.available_permits(), 1); // the permit was dropped
/// ```
impl<'s> super::waitable::Waitable for &'s Semaphore {
    type Output = SemaphorePermit<'s>;

    fn start(&self) -> super::waitable::Attempt<'_, SemaphorePermit<'s>> {
        use super::waitable::{Attempt, Pending};
        let sem: &'s Semaphore = self;
        match sem.try_acquire() {
            Some(p) => Attempt::Ready(p),
            None => Attempt::Pending(Pending::new(AcquireOp { sem, armed: None })),
        }
    }
}

/// A select `acquire`: tried again when polled, registered only while a
/// select parks (see [`PendingOp`](super::waitable::PendingOp)).
struct AcquireOp<'s> {
    sem: &'s Semaphore,
    armed: Option<super::wait_queue::Armed<'s, State, ()>>,
}

impl<'s> super::waitable::PendingOp<SemaphorePermit<'s>> for AcquireOp<'s> {
    fn poll(&mut self) -> Option<SemaphorePermit<'s>> {
        match &mut self.armed {
            Some(armed) => armed.poll().map(|_| self.sem.permit()),
            None => self.sem.try_acquire(),
        }
    }

    fn arm(&mut self, _: super::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let s = self.sem.state.lock();
        if s.permits > 0 && s.waiters.is_empty() {
            return true;
        }
        self.armed = Some(super::wait_queue::arm(
            &self.sem.state,
            s,
            waiters,
            None,
            pass_on,
            None,
        ));
        false
    }

    fn disarm(&mut self, _: super::waitable::ArmToken) {
        self.armed = None;
    }
}
