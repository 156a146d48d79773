//! Running a function over many inputs with a [`Pool`]'s concurrency:
//! [`Pool::map`], and the lazy iterators [`Imap`] (input order) and
//! [`ImapUnordered`] (completion order).

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use super::Pool;
use crate::greenlet::{Greenlet, JoinError};
use crate::sync::Queue;

impl Pool {
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
    /// results lazily, in input order (gevent's `Pool.imap`). Items are
    /// taken from the input and spawned as slots free up; a result that is
    /// ready early waits (in its finished greenlet) until the ones before
    /// it have been yielded, so a slow first item still comes out first.
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
    /// let out: Vec<u64> = pool
    ///     .imap([30, 10, 20], |ms| {
    ///         greenlet::sleep(Duration::from_millis(ms));
    ///         ms
    ///     })
    ///     .collect();
    /// assert_eq!(out, [30, 10, 20]); // input order
    /// ```
    pub fn imap<I, F, R>(&self, items: I, f: F) -> Imap<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        Imap::new(self.clone(), items.into_iter(), f)
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
        ImapUnordered::new(self.clone(), items.into_iter(), f)
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

impl<I, F, R> ImapUnordered<I, F, R> {
    pub(super) fn new(pool: Pool, items: I, f: F) -> Self {
        ImapUnordered {
            pool,
            items: Some(items),
            f: Rc::new(f),
            done: Queue::new(),
            in_flight: 0,
        }
    }
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

/// The iterator of [`Pool::imap`]: results in input order, computed with
/// the pool's concurrency.
///
/// # Examples
///
/// ```
/// let pool = greenlet::pool::Pool::new(2);
/// let squares: Vec<u32> = pool.imap(1..=4, |x| x * x).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub struct Imap<I, F, R> {
    pool: Pool,
    /// `None` once the input is exhausted.
    items: Option<I>,
    f: Rc<F>,
    /// Spawned jobs, in input order.
    pending: VecDeque<Greenlet<R>>,
}

impl<I, F, R> Imap<I, F, R> {
    pub(super) fn new(pool: Pool, items: I, f: F) -> Self {
        Imap {
            pool,
            items: Some(items),
            f: Rc::new(f),
            pending: VecDeque::new(),
        }
    }
}

impl<I, F, R> Iterator for Imap<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    type Item = R;

    fn next(&mut self) -> Option<R> {
        // Top up while slots are free (and at least one job, so the
        // iterator always makes progress, parking for a slot if needed).
        while let Some(items) = &mut self.items {
            if !self.pending.is_empty() && self.pool.free_count() == 0 {
                break;
            }
            let Some(item) = items.next() else {
                self.items = None;
                break;
            };
            let f = self.f.clone();
            self.pending.push_back(self.pool.spawn(move || f(item)));
        }
        let first = self.pending.pop_front()?;
        Some(first.join().unwrap_or_else(|e| reraise(e)))
    }
}

impl<I, F, R> fmt::Debug for Imap<I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("in_flight", &self.pending.len())
            .field("input_done", &self.items.is_none())
            .finish()
    }
}

/// Re-raises a job's panic in the caller; a killed job becomes a panic.
pub(super) fn reraise(e: JoinError) -> ! {
    match e.try_into_panic() {
        Ok(payload) => crate::hub::resume_unwind_marked(payload),
        Err(_) => panic!("greenlet::pool: a job was killed before it finished"),
    }
}
