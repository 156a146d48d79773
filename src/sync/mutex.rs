//! `Mutex<T>`: a fair lock for greenlets, with an RAII guard.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{Sole, WaitList, WaitSite, Waited, wait};
use super::{TimedOut, deadline};
use crate::hub::deadlock::{TaskKey, WaitsFor};
use crate::hub::{Hub, SyncKind};

/// A mutual-exclusion lock that parks the waiting greenlet instead of
/// blocking the thread (gevent's `gevent.lock.RLock`/`Semaphore(1)`, minus
/// re-entrancy).
///
/// Unlike `std::sync::Mutex`, a guard may be held across parks (sleeps,
/// IO, queue operations): other greenlets keep running, and those that want
/// the lock wait in line. Fair: unlocking hands the lock straight to the
/// longest waiter (FIFO), so a greenlet that unlocks and locks again in a
/// loop cannot starve the others.
///
/// Not re-entrant: a greenlet (or the root) that locks a mutex it already
/// holds panics at once ("deadlock: ... already holds this Mutex"), as std
/// allows its `Mutex` to. A lock that would close a wait-for cycle among
/// the greenlets of one thread ('a' holds this mutex and waits for one
/// that 'b' holds, or joins 'b', while 'b' waits for this one) panics too,
/// naming the cycle. Not poisoned: a greenlet killed (or panicking) while
/// holding the guard unwinds and unlocks it, and the next holder sees the
/// data as it was left.
///
/// # Waiting protocol
///
/// Under a small internal lock, `lock` takes the mutex if it is free and
/// nobody waits; otherwise it registers at the back of the waiter list and
/// parks. Dropping the guard with waiters present hands ownership to the
/// first one (the mutex never looks free in between) and wakes it; a waiter
/// that dies after ownership was handed to it unlocks again, to the next
/// waiter. See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use greenlet::sync::Mutex;
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let gs: Vec<_> = (0..3)
///     .map(|i| {
///         let log = log.clone();
///         greenlet::spawn(move || {
///             let mut log = log.lock();
///             log.push(i);
///             greenlet::sleep(Duration::from_millis(1)); // still holding the lock
///             log.push(i);
///         })
///     })
///     .collect();
/// greenlet::joinall(gs);
/// assert_eq!(*log.lock(), [0, 0, 1, 1, 2, 2]);
/// ```
pub struct Mutex<T: ?Sized> {
    state: Lock<State>,
    data: UnsafeCell<T>,
}

struct State {
    locked: bool,
    /// Who holds the lock (`None` when free). Each waiter's node holds its
    /// own key, which a hand-off copies here.
    owner: Option<TaskKey>,
    waiters: WaitList<TaskKey>,
}

impl State {
    /// Hands the lock to the first waiter, or marks it free.
    fn unlock(&mut self) {
        match self.waiters.first() {
            Some(k) => {
                self.owner = *self.waiters.payload_mut(k);
                self.waiters.notify(k);
            }
            None => {
                self.locked = false;
                self.owner = None;
            }
        }
    }
}

fn waiters(s: &mut State) -> &mut WaitList<TaskKey> {
    &mut s.waiters
}

/// The `abandon` hook: ownership handed to a waiter that died goes on.
fn pass_on(s: &mut State, _: TaskKey) -> Option<TaskKey> {
    s.unlock();
    None
}

/// [`crate::hub::deadlock::OwnerOf`] for a mutex's state.
///
/// # Safety
/// `p` points at the live `Lock<State>` of a mutex.
unsafe fn owner_of(p: *const ()) -> Option<TaskKey> {
    // SAFETY: per the contract.
    let lock = unsafe { &*p.cast::<Lock<State>>() };
    lock.try_lock().and_then(|s| s.owner)
}

// SAFETY: the data is reached only through a `MutexGuard`, and at most one
// guard exists at a time (ownership moves only under `state`'s lock), so
// sharing the mutex shares `T` one holder at a time, as for std's `Mutex`:
// `T: Send` suffices.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static COUNTER: greenlet::sync::Mutex<u32> = greenlet::sync::Mutex::new(0);
    /// *COUNTER.lock() += 1;
    /// assert_eq!(*COUNTER.lock(), 1);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: Lock::new(State {
                locked: false,
                owner: None,
                waiters: WaitList::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns its data.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = greenlet::sync::Mutex::new(String::from("x"));
    /// assert_eq!(m.into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking until it is this caller's turn.
    ///
    /// In root context this runs the hub until then. A wait that nothing
    /// will ever end hangs (see [the module docs](crate::sync)).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = greenlet::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        loop {
            if let Ok(g) = self.lock_until(None) {
                return g;
            }
        }
    }

    /// Locks the mutex if it is free and nobody is waiting for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = greenlet::sync::Mutex::new(());
    /// let g = m.try_lock();
    /// assert!(g.is_some());
    /// assert!(m.try_lock().is_none());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut s = self.state.lock();
        if !s.locked {
            debug_assert!(s.waiters.is_empty());
            s.locked = true;
            s.owner = Some(TaskKey::current());
            Some(self.guard())
        } else {
            None
        }
    }

    /// Locks the mutex, parking at most `timeout` for it.
    ///
    /// # Errors
    /// [`TimedOut`] if the lock did not come within `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = greenlet::sync::Mutex::new(0);
    /// let _held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, TimedOut> {
        self.lock_until(Some(deadline(timeout)))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Result<MutexGuard<'_, T>, TimedOut> {
        let me = TaskKey::current();
        let mut s = self.state.lock();
        if !s.locked {
            s.locked = true;
            s.owner = Some(me);
            return Ok(self.guard());
        }
        let owner = s.owner;
        // A timed wait (its own deadline, or a `with_timeout` around it)
        // ends anyway: only an untimed one is a deadlock.
        let untimed = deadline.is_none() && !crate::hub::in_timeout_scope();
        if owner == Some(me) && untimed {
            drop(s);
            self.self_deadlock();
        }
        let hub = Hub::current();
        let me = hub.current_key();
        if let (Some(o), true) = (owner, untimed) {
            self.check_cycle(hub, o);
        }
        let sole = || self.held_here();
        let site = WaitSite {
            kind: SyncKind::Mutex,
            sole: Some(&sole),
            waits_for: WaitsFor::Object((&self.state as *const Lock<State>).cast(), owner_of),
        };
        match wait(&self.state, s, waiters, Some(me), deadline, pass_on, site) {
            Waited::Notified(Some(_)) => Ok(self.guard()),
            Waited::Notified(None) => unreachable!("mutex waiters are notified with the lock"),
            Waited::TimedOut(_) => Err(TimedOut),
        }
    }

    /// Whether the holder is a task of this hub (see [`Sole`]).
    fn held_here(&self) -> bool {
        // Only the holder can unlock: if it is a task of this hub, the
        // hub's own progress decides.
        self.state
            .try_lock()
            .is_some_and(|s| s.owner.is_some_and(|o| Hub::current().owns(o)))
    }

    #[cold]
    fn self_deadlock(&self) -> ! {
        let hub = Hub::current();
        panic!(
            "deadlock: {} already holds this Mutex (#{}) and locks it again, which would wait \
             forever (greenlet::sync::Mutex is not re-entrant; sync::RLock is)",
            hub.name_of(hub.current_key()),
            self.state.id()
        );
    }

    /// Panics if waiting for `owner` closes a wait-for cycle (see
    /// [`crate::hub::deadlock`]).
    fn check_cycle(&self, hub: &Hub, owner: TaskKey) {
        let Some(owner) = hub.task_ptr(owner) else {
            return; // held on another thread: nothing to prove
        };
        let me = hub.current_task();
        me.set_reason(crate::hub::WaitReason::Sync {
            kind: SyncKind::Mutex,
            id: self.state.id(),
        });
        me.waits_for.set(WaitsFor::Object(
            (&self.state as *const Lock<State>).cast(),
            owner_of,
        ));
        let _clear = crate::hub::deadlock::WaitsForGuard(&me);
        hub.check_cycle(owner);
    }

    /// Whether some greenlet or thread holds the lock right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = greenlet::sync::Mutex::new(0);
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.lock().locked
    }

    /// A mutable reference to the data; no locking needed, the borrow
    /// proves exclusive access.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = greenlet::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Exclusive access to a [`Mutex`]'s data; unlocks (handing the lock to the
/// next waiter) when dropped.
///
/// Not `Send`: unlock where you locked.
///
/// ```compile_fail
/// let m = std::sync::Arc::new(greenlet::sync::Mutex::new(0));
/// let g = m.lock();
/// std::thread::spawn(move || drop(g)); // error: `MutexGuard` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// let m = greenlet::sync::Mutex::new(vec![1]);
/// let mut g = m.lock();
/// g.push(2);
/// drop(g);
/// assert_eq!(m.lock().len(), 2);
/// ```
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so sharing it across threads is
// sharing `&T`: fine when `T: Sync`, as for std's `MutexGuard`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condvar`](super::Condvar)).
    pub(super) fn mutex(this: &Self) -> &'a Mutex<T> {
        this.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `Sync for Mutex`), so no
        // `&mut T` exists while it lends `&T`.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one, and `&mut self` makes this
        // the only borrow through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.state.lock().unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A `lock` as one operation of a [`Select`](crate::select::Select) or
/// [`wait`](crate::select::wait): completes with the guard. A lock handed
/// to a `lock` that loses the select goes on to the next waiter.
///
/// # Examples
///
/// ```
/// use greenlet::select::Select;
/// use greenlet::sync::Mutex;
///
/// let (a, b) = (Mutex::new(1), Mutex::new(2));
/// let held = a.lock();
/// let got = Select::new().on(&a, |g| *g).on(&b, |g| *g).wait();
/// assert_eq!(got, 2);
/// drop(held);
/// ```
impl<'m, T> super::waitable::Waitable for &'m Mutex<T> {
    type Output = MutexGuard<'m, T>;

    fn start(&self) -> super::waitable::Attempt<'_, MutexGuard<'m, T>> {
        use super::waitable::{Attempt, Pending};
        let m: &'m Mutex<T> = self;
        match m.try_lock() {
            Some(g) => Attempt::Ready(g),
            None => Attempt::Pending(Pending::new(LockOp { m, armed: None })),
        }
    }
}

impl<T: ?Sized> Sole for Mutex<T> {
    fn sole(&self) -> bool {
        self.held_here()
    }
}

/// A select `lock`: tried again when polled, registered only while a
/// select parks (see [`PendingOp`](super::waitable::PendingOp)).
struct LockOp<'m, T> {
    m: &'m Mutex<T>,
    armed: Option<super::wait_queue::Armed<'m, State, TaskKey>>,
}

impl<'m, T> super::waitable::PendingOp<MutexGuard<'m, T>> for LockOp<'m, T> {
    fn poll(&mut self) -> Option<MutexGuard<'m, T>> {
        match &mut self.armed {
            Some(armed) => armed.poll().map(|_| self.m.guard()),
            None => self.m.try_lock(),
        }
    }

    fn arm(&mut self, _: super::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let s = self.m.state.lock();
        if !s.locked {
            return true;
        }
        let me = Hub::current().current_key();
        self.armed = Some(super::wait_queue::arm(
            &self.m.state,
            s,
            waiters,
            Some(me),
            pass_on,
            Some(self.m),
        ));
        false
    }

    fn disarm(&mut self, _: super::waitable::ArmToken) {
        self.armed = None;
    }
}
