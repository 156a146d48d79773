//! Groups of greenlets: [`Pool`] (bounded concurrency) and [`Group`]
//! (unbounded), gevent's `gevent.pool`.

mod group;
mod map;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::greenlet::{Greenlet, kill_task, spawn, wait_finished};
use crate::hub::task::TaskRef;
use crate::sync::{Semaphore, TimedOut};

pub use group::Group;
use map::reraise;
pub use map::{Imap, ImapUnordered};

/// A set of greenlets running at most `n` at a time (gevent's
/// `gevent.pool.Pool`).
///
/// [`spawn`](Pool::spawn) parks the caller while `n` members are running,
/// then starts the new one; slots are handed out in FIFO order. A member
/// leaves the pool when it finishes (returns, panics or is killed).
/// [`join`](Pool::join) waits for every member, [`kill`](Pool::kill) kills
/// them all, [`map`](Pool::map), [`imap`](Pool::imap) and
/// [`imap_unordered`](Pool::imap_unordered) run a function over many inputs
/// with the pool's concurrency. [`apply`](Pool::apply) runs one job and
/// returns its result (inline when called from a member, so it cannot
/// deadlock), [`apply_async`](Pool::apply_async) starts one without
/// waiting for a slot, [`add`](Pool::add) adopts a greenlet spawned
/// elsewhere, and [`wait_available`](Pool::wait_available) and
/// [`is_full`](Pool::is_full) tell whether a spawn would wait.
///
/// A pool belongs to the thread that made it, like its greenlets: it is a
/// cheap `Clone` handle (so members can spawn more work into it), but not
/// `Send`:
///
/// ```compile_fail
/// let pool = greenlet::pool::Pool::new(2);
/// std::thread::spawn(move || pool.join()); // error: `Rc<..>` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use greenlet::pool::Pool;
///
/// let pool = Pool::new(10);
/// let t = Instant::now();
/// // 50 jobs of 20 ms, 10 at a time: about 100 ms.
/// let results = pool.map(0..50, |i| {
///     greenlet::sleep(Duration::from_millis(20));
///     i * 2
/// });
/// assert_eq!(results, (0..50).map(|i| i * 2).collect::<Vec<_>>());
/// assert!(t.elapsed() >= Duration::from_millis(100));
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    /// `None` for a [`Group`].
    slots: Option<Semaphore>,
    size: usize,
    members: RefCell<Vec<Member>>,
    next_key: Cell<u64>,
}

struct Member {
    key: u64,
    /// The member's greenlet: what `kill` kills.
    task: TaskRef,
    /// For a greenlet [`add`](Pool::add)ed from outside: the watcher that
    /// takes it out of the pool once it has finished. `join` waits for the
    /// watcher, so the member is gone when `join` moves on.
    watcher: Option<TaskRef>,
}

/// Held by a member's closure (or its watcher's): leaves the pool, and
/// frees its slot if it holds one, when dropped, whether the closure ran or
/// was killed before it started.
struct Membership {
    pool: Rc<Inner>,
    key: u64,
    /// Whether this member holds one of the pool's slots (an
    /// [`apply_async`](Pool::apply_async) job does only once it starts its
    /// work).
    holds_slot: Cell<bool>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut members = self.pool.members.borrow_mut();
        if let Some(i) = members.iter().position(|m| m.key == self.key) {
            // Order does not matter; drop the task references after the
            // borrow ends.
            let member = members.swap_remove(i);
            drop(members);
            drop(member);
        } else {
            drop(members);
        }
        if self.holds_slot.get()
            && let Some(slots) = &self.pool.slots
        {
            slots.add_permits(1);
        }
    }
}

impl Pool {
    /// A pool that runs at most `size` greenlets at a time.
    ///
    /// # Panics
    /// Panics if `size` is 0 (nothing could ever run).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(4);
    /// assert_eq!(pool.free_count(), 4);
    /// ```
    pub fn new(size: usize) -> Pool {
        assert!(
            size > 0,
            "greenlet::pool::Pool::new: a pool needs at least one slot"
        );
        Pool::with_slots(Some(Semaphore::new(size)), size)
    }

    pub(crate) fn with_slots(slots: Option<Semaphore>, size: usize) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                slots,
                size,
                members: RefCell::new(Vec::new()),
                next_key: Cell::new(0),
            }),
        }
    }

    /// Spawns `f` as a member, first parking until a slot is free.
    ///
    /// # Panics
    /// As [`greenlet::spawn`](crate::spawn): if no stack can be had.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(2);
    /// let g = pool.spawn(|| 40 + 2);
    /// assert_eq!(g.join().unwrap(), 42);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if let Some(slots) = &self.inner.slots {
            slots.acquire().forget();
        }
        let membership = self.membership(true);
        let key = membership.key;
        let g = spawn(move || {
            let _membership = membership;
            f()
        });
        self.enroll(key, g.task().clone(), None);
        g
    }

    /// A new membership key and its guard.
    fn membership(&self, holds_slot: bool) -> Membership {
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        Membership {
            pool: self.inner.clone(),
            key,
            holds_slot: Cell::new(holds_slot),
        }
    }

    fn enroll(&self, key: u64, task: TaskRef, watcher: Option<TaskRef>) {
        self.inner
            .members
            .borrow_mut()
            .push(Member { key, task, watcher });
    }

    /// Spawns `f` as a member without waiting for a slot, and returns its
    /// handle at once (gevent's `Pool.apply_async`, minus the callback:
    /// join the handle, or have `f` send its result on). If the pool is
    /// full, the new greenlet first waits for a slot, in line with parked
    /// [`spawn`](Pool::spawn)s, then runs `f`; it is a member meanwhile
    /// ([`join`](Pool::join) waits for it, [`kill`](Pool::kill) kills it,
    /// [`len`](Pool::len) counts it).
    ///
    /// # Panics
    /// As [`greenlet::spawn`](crate::spawn): if no stack can be had.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(1);
    /// let first = pool.spawn(|| greenlet::sleep(Duration::from_millis(5)));
    /// let second = pool.apply_async(|| "ran after the first"); // does not wait
    /// assert!(pool.is_full());
    /// assert_eq!(second.join().unwrap(), "ran after the first");
    /// first.join().unwrap();
    /// ```
    pub fn apply_async<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let permit = self.inner.slots.as_ref().map(|s| s.try_acquire());
        let has_slot = match permit {
            None => true, // a group: nothing to wait for
            Some(Some(p)) => {
                p.forget();
                true
            }
            Some(None) => false,
        };
        let membership = self.membership(has_slot);
        let key = membership.key;
        let g = spawn(move || {
            if !membership.holds_slot.get()
                && let Some(slots) = &membership.pool.slots
            {
                slots.acquire().forget();
                membership.holds_slot.set(true);
            }
            let _membership = membership;
            f()
        });
        self.enroll(key, g.task().clone(), None);
        g
    }

    /// Runs `f` in the pool and returns its result (gevent's `Pool.apply`):
    /// spawns it as a member (waiting for a slot) and joins it. Called from
    /// a member of this pool it runs `f` inline instead, so a member that
    /// applies more work to a full pool cannot deadlock waiting for a slot
    /// that only it could free.
    ///
    /// # Panics
    /// Re-raises a panic of `f`; panics if the job was killed.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::pool::Pool;
    ///
    /// let pool = Pool::new(1);
    /// assert_eq!(pool.apply(|| 6 * 7), 42);
    /// // From a member of a full pool: runs inline, no deadlock.
    /// let outer = pool.spawn({
    ///     let pool = pool.clone();
    ///     move || pool.apply(|| "inner")
    /// });
    /// assert_eq!(outer.join().unwrap(), "inner");
    /// ```
    pub fn apply<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.contains_current() {
            return f();
        }
        self.spawn(f).join().unwrap_or_else(|e| reraise(e))
    }

    /// Whether the running greenlet is a member of this pool.
    fn contains_current(&self) -> bool {
        let Some(me) = crate::current() else {
            return false;
        };
        let me = me.id().as_u64();
        self.inner.members.borrow().iter().any(|m| m.task.id == me)
    }

    /// Adds a greenlet spawned elsewhere to the pool (gevent's `Pool.add`),
    /// first parking until a slot is free. It counts as a member, and holds
    /// its slot, until it finishes; [`join`](Pool::join) waits for it and
    /// [`kill`](Pool::kill) kills it. A greenlet that has already finished,
    /// or is already a member, is left alone.
    ///
    /// A small watcher greenlet takes the member out of the pool when it
    /// finishes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::pool::Pool;
    ///
    /// let pool = Pool::new(2);
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(5)));
    /// pool.add(&g);
    /// assert_eq!((pool.len(), pool.free_count()), (1, 1));
    /// pool.join();
    /// assert!(g.is_finished());
    /// assert_eq!(pool.free_count(), 2);
    /// ```
    pub fn add<T: 'static>(&self, g: &Greenlet<T>) {
        let task = g.task().clone();
        if task.is_finished() || self.has_task(&task) {
            return;
        }
        if let Some(slots) = &self.inner.slots {
            slots.acquire().forget();
        }
        if task.is_finished() {
            // It finished while we waited for the slot.
            if let Some(slots) = &self.inner.slots {
                slots.add_permits(1);
            }
            return;
        }
        let membership = self.membership(true);
        let key = membership.key;
        let watched = task.clone();
        let watcher = spawn(move || {
            let _membership = membership;
            wait_finished(&watched);
        });
        self.enroll(key, task, Some(watcher.task().clone()));
    }

    fn has_task(&self, task: &TaskRef) -> bool {
        let id = task.id;
        self.inner.members.borrow().iter().any(|m| m.task.id == id)
    }

    /// Parks until a slot is free, so that a [`spawn`](Pool::spawn) would
    /// not wait (gevent's `Pool.wait_available`); returns at once for a
    /// [`Group`]. Waits in line with parked spawns.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(1);
    /// pool.spawn(|| greenlet::sleep(Duration::from_millis(5)));
    /// assert!(pool.is_full());
    /// pool.wait_available();
    /// assert!(!pool.is_full());
    /// ```
    pub fn wait_available(&self) {
        if let Some(slots) = &self.inner.slots {
            drop(slots.acquire());
        }
    }

    /// Parks at most `timeout` until a slot is free (see
    /// [`wait_available`](Pool::wait_available)).
    ///
    /// # Errors
    /// [`TimedOut`] if the pool stayed full for `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(1);
    /// pool.spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// assert!(pool.wait_available_timeout(Duration::from_millis(5)).is_err());
    /// pool.kill();
    /// ```
    pub fn wait_available_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        match &self.inner.slots {
            Some(slots) => slots.acquire_timeout(timeout).map(drop),
            None => Ok(()),
        }
    }

    /// Whether every slot is taken, so a [`spawn`](Pool::spawn) would wait
    /// (gevent's `Pool.full`). Never for a [`Group`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(1);
    /// assert!(!pool.is_full());
    /// let g = pool.spawn(|| ());
    /// assert!(pool.is_full());
    /// g.join().unwrap();
    /// assert!(!pool.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Parks until every member has finished, including members spawned
    /// while waiting.
    ///
    /// # Panics
    /// Panics if called from a member of this pool (it would wait for
    /// itself).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(2);
    /// for _ in 0..5 {
    ///     pool.spawn(|| greenlet::sleep(std::time::Duration::from_millis(1)));
    /// }
    /// pool.join();
    /// assert!(pool.is_empty());
    /// ```
    pub fn join(&self) {
        loop {
            let next = self
                .inner
                .members
                .borrow()
                .first()
                .map(|m| m.watcher.as_ref().unwrap_or(&m.task).clone());
            match next {
                Some(task) => wait_finished(&task),
                None => return,
            }
        }
    }

    /// Parks until every member has finished or `timeout` passes.
    ///
    /// # Errors
    /// [`TimedOut`] if members are still running after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(1);
    /// pool.spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// assert!(pool.join_timeout(Duration::from_millis(5)).is_err());
    /// pool.kill();
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        crate::with_timeout(timeout, || self.join()).map_err(|_| TimedOut)
    }

    /// Kills every member and waits until they are dead (gevent's
    /// `Group.kill`). Members not yet started are simply dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(2);
    /// let g = pool.spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// greenlet::yield_now();
    /// pool.kill();
    /// assert!(g.join().unwrap_err().is_killed());
    /// assert_eq!(pool.len(), 0);
    /// ```
    ///
    /// Called from one of its own members (a member's destructor, say), it
    /// kills the others first and then the caller itself, which unwinds at
    /// once unless it is unwinding already, in which case it dies at its
    /// first park after that unwind.
    pub fn kill(&self) {
        let me = crate::hub::Hub::current().current_task();
        let mut caller_is_member = false;
        loop {
            let members: Vec<(TaskRef, Option<TaskRef>)> = self
                .inner
                .members
                .borrow()
                .iter()
                .filter(|m| {
                    let is_me = m.task.as_ptr() == me.as_ptr();
                    caller_is_member |= is_me;
                    !is_me
                })
                .map(|m| (m.task.clone(), m.watcher.clone()))
                .collect();
            if members.is_empty() {
                break;
            }
            for (task, watcher) in &members {
                kill_task(task);
                // An added greenlet's watcher would take it out of the pool
                // only when it next runs: end it now.
                if let Some(w) = watcher {
                    kill_task(w);
                }
            }
        }
        if caller_is_member {
            kill_task(&me);
        }
    }

    /// Slots free right now: how many spawns would not wait. `usize::MAX`
    /// for a [`Group`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(2);
    /// let _g = pool.spawn(|| ());
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn free_count(&self) -> usize {
        match &self.inner.slots {
            Some(s) => s.available_permits(),
            None => usize::MAX,
        }
    }

    /// The most members that run at once (`usize::MAX` for a [`Group`]).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(greenlet::pool::Pool::new(8).size(), 8);
    /// ```
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Members not yet finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = greenlet::pool::Pool::new(2);
    /// let g = pool.spawn(|| ());
    /// assert_eq!(pool.len(), 1);
    /// g.join().unwrap();
    /// assert_eq!(pool.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.members.borrow().len()
    }

    /// Whether no member is left.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(greenlet::pool::Pool::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.inner.size)
            .field("members", &self.len())
            .finish()
    }
}
