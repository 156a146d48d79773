//! Groups of greenlets: [`Pool`] (bounded concurrency) and [`Group`]
//! (unbounded), gevent's `gevent.pool`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use crate::greenlet::{Greenlet, JoinError, kill_task, spawn, wait_finished};
use crate::hub::task::TaskRef;
use crate::sync::{Queue, Semaphore, TimedOut};

/// A set of greenlets running at most `n` at a time (gevent's
/// `gevent.pool.Pool`).
///
/// [`spawn`](Pool::spawn) parks the caller while `n` members are running,
/// then starts the new one; slots are handed out in FIFO order. A member
/// leaves the pool when it finishes (returns, panics or is killed).
/// [`join`](Pool::join) waits for every member, [`kill`](Pool::kill) kills
/// them all, [`map`](Pool::map) and [`imap_unordered`](Pool::imap_unordered)
/// run a function over many inputs with the pool's concurrency.
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
    members: RefCell<Vec<(u64, TaskRef)>>,
    next_key: Cell<u64>,
}

/// Held by a member's closure: leaves the pool (and frees the slot) when
/// the closure is dropped, whether it ran or was killed before it started.
struct Membership {
    pool: Rc<Inner>,
    key: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut members = self.pool.members.borrow_mut();
        if let Some(i) = members.iter().position(|(k, _)| *k == self.key) {
            // Order does not matter; drop the task reference after the
            // borrow ends.
            let (_, task) = members.swap_remove(i);
            drop(members);
            drop(task);
        } else {
            drop(members);
        }
        if let Some(slots) = &self.pool.slots {
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
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        let membership = Membership {
            pool: self.inner.clone(),
            key,
        };
        let g = spawn(move || {
            let _membership = membership;
            f()
        });
        self.inner
            .members
            .borrow_mut()
            .push((key, g.task().clone()));
        g
    }

    /// Runs `f` on every item with the pool's concurrency and returns the
    /// results in input order (gevent's `Pool.map`). Items are spawned as
    /// slots free up, so a long input never floods the hub.
    ///
    /// # Panics
    /// If a call of `f` panics, `map` re-raises that panic (once the results
    /// before it are in); it also panics if a job was killed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(3);
    /// let out = pool.map([30, 10, 20], |ms| {
    ///     greenlet::sleep(Duration::from_millis(ms));
    ///     ms
    /// });
    /// assert_eq!(out, [30, 10, 20]); // input order, not completion order
    /// ```
    pub fn map<I, F, R>(&self, items: I, f: F) -> Vec<R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        let f = Rc::new(f);
        let jobs: Vec<Greenlet<R>> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        jobs.into_iter()
            .map(|g| g.join().unwrap_or_else(|e| reraise(e)))
            .collect()
    }

    /// Runs `f` on every item with the pool's concurrency and yields the
    /// results as they complete (gevent's `Pool.imap_unordered`). Items are
    /// taken from the input and spawned lazily, as slots free up.
    ///
    /// # Panics
    /// The iterator re-raises the panic of a call of `f` when it reaches
    /// that result, and panics if a job was killed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(3);
    /// let order: Vec<u64> = pool
    ///     .imap_unordered([30, 10, 20], |ms| {
    ///         greenlet::sleep(Duration::from_millis(ms));
    ///         ms
    ///     })
    ///     .collect();
    /// assert_eq!(order, [10, 20, 30]); // completion order
    /// ```
    pub fn imap_unordered<I, F, R>(&self, items: I, f: F) -> ImapUnordered<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        ImapUnordered {
            pool: self.clone(),
            items: Some(items.into_iter()),
            f: Rc::new(f),
            done: Queue::new(),
            in_flight: 0,
        }
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
            let next = self.inner.members.borrow().first().map(|(_, t)| t.clone());
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
            let others: Vec<TaskRef> = self
                .inner
                .members
                .borrow()
                .iter()
                .map(|(_, t)| t.clone())
                .filter(|t| {
                    let is_me = t.as_ptr() == me.as_ptr();
                    caller_is_member |= is_me;
                    !is_me
                })
                .collect();
            if others.is_empty() {
                break;
            }
            for task in &others {
                kill_task(task);
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

/// A [`Pool`] without a bound: every spawn starts at once (gevent's
/// `gevent.pool.Group`). Derefs to [`Pool`] for `spawn`, `map`,
/// `imap_unordered`, `join`, `kill` and the rest.
///
/// # Examples
///
/// ```
/// use greenlet::pool::Group;
///
/// let group = Group::new();
/// let gs: Vec<_> = (0..3).map(|i| group.spawn(move || i)).collect();
/// group.join();
/// let got: Vec<i32> = greenlet::joinall(gs).into_iter().map(Result::unwrap).collect();
/// assert_eq!(got, [0, 1, 2]);
/// ```
#[derive(Clone)]
pub struct Group(Pool);

impl Group {
    /// An empty group.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = greenlet::pool::Group::new();
    /// assert!(group.is_empty());
    /// ```
    pub fn new() -> Group {
        Group(Pool::with_slots(None, usize::MAX))
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Deref for Group {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("members", &self.len())
            .finish()
    }
}

/// The iterator of [`Pool::imap_unordered`]: results in completion order.
///
/// # Examples
///
/// ```
/// let pool = greenlet::pool::Pool::new(2);
/// let mut squares: Vec<u32> = pool.imap_unordered(1..=4, |x| x * x).collect();
/// squares.sort();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub struct ImapUnordered<I, F, R> {
    pool: Pool,
    /// `None` once the input is exhausted.
    items: Option<I>,
    f: Rc<F>,
    done: Queue<Result<R, JoinError>>,
    in_flight: usize,
}

/// Reports a job's outcome exactly once: its result, its panic, or (if the
/// job is dropped unrun, killed before it started) that it was killed.
struct Report<R> {
    done: Queue<Result<R, JoinError>>,
    sent: bool,
}

impl<R> Report<R> {
    fn send(mut self, r: Result<R, JoinError>) {
        self.sent = true;
        // Unbounded and never closed: cannot fail.
        let _ = self.done.put(r);
    }
}

impl<R> Drop for Report<R> {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.done.put(Err(JoinError::killed()));
        }
    }
}

impl<I, F, R> Iterator for ImapUnordered<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    type Item = R;

    fn next(&mut self) -> Option<R> {
        // Top up: start jobs while slots are free (and at least one, so the
        // iterator always makes progress, parking for a slot if needed).
        while let Some(items) = &mut self.items {
            if self.in_flight > 0 && self.pool.free_count() == 0 {
                break;
            }
            let Some(item) = items.next() else {
                self.items = None;
                break;
            };
            let f = self.f.clone();
            let report = Report {
                done: self.done.clone(),
                sent: false,
            };
            self.pool.spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(|| f(item)));
                report.send(r.map_err(JoinError::from_payload));
            });
            self.in_flight += 1;
        }
        if self.in_flight == 0 {
            return None;
        }
        let r = self.done.get().expect("the results queue is never closed");
        self.in_flight -= 1;
        Some(r.unwrap_or_else(|e| reraise(e)))
    }
}

impl<I, F, R> fmt::Debug for ImapUnordered<I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("in_flight", &self.in_flight)
            .field("input_done", &self.items.is_none())
            .finish()
    }
}

/// Re-raises a job's panic in the caller; a killed job becomes a panic.
fn reraise(e: JoinError) -> ! {
    match e.try_into_panic() {
        Ok(payload) => crate::hub::resume_unwind_marked(payload),
        Err(_) => panic!("greenlet::pool: a job was killed before it finished"),
    }
}
