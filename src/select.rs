//! Waiting on several things at once: [`Select`] runs exactly one of
//! several operations, and [`wait`]/[`iwait`] wait for many of them (gevent's
//! `gevent.wait(objects, timeout, count)` and `gevent.iwait`).
//!
//! Everything that can be waited on implements [`Waitable`]: a [`Queue`]
//! (a `get`), a channel [`Receiver`] (a `recv`), a [`Semaphore`] (an
//! `acquire`), a [`Mutex`] (a `lock`), an [`Event`] or [`AsyncResult`] (it
//! is set), a [`Greenlet`] (it finished), references to any of these, and
//! your own types, built from these with [`Attempt::map`] (or [`map`] to
//! give waitables of different output types one output).
//!
//! # No value is lost
//!
//! Each operation first tries to complete at once; otherwise it registers
//! in its primitive's waiter list, as an ordinary waiter would. The caller
//! registers every operation, parks once, and after each wake-up takes the
//! first operation that completed. The others are then withdrawn, exactly
//! as a waiter that times out leaves: an item or permit that a putter on
//! another greenlet or thread handed to a losing operation meanwhile goes
//! to the next waiter or back into its primitive (at the front of a queue),
//! never into the void. The same holds when the wait is killed, times out,
//! or is unwound by [`with_timeout`](crate::with_timeout).
//!
//! [`Queue`]: crate::sync::Queue
//! [`Receiver`]: crate::channel::Receiver
//! [`Semaphore`]: crate::sync::Semaphore
//! [`Event`]: crate::sync::Event
//! [`Mutex`]: crate::sync::Mutex
//! [`AsyncResult`]: crate::sync::AsyncResult
//! [`Greenlet`]: crate::Greenlet

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, Unwatch};
use crate::hub::task::{TaskRef, Wake, Watcher};
use crate::hub::{self, Hub, deadline_after};
use crate::sync::TimedOut;
pub use crate::sync::waitable::{Attempt, Pending, PendingOp, Waitable};

/// One object of a multi-wait.
enum Slot<'a, T> {
    Unstarted,
    Pending(Pending<'a, T>),
    Done,
}

/// The engine of [`Select`], [`wait`] and [`iwait`]: starts every object,
/// registers the ones still pending, parks once, polls after every
/// wake-up.
///
/// The registrations last only as long as one call of [`Multi::next`]: a
/// guard in its frame withdraws them however the call ends. A `Multi` kept
/// between calls (by an [`IwaitAny`] its caller owns, and may leak) holds
/// only unregistered operations, which borrow their primitives and nothing
/// more, so leaking it leaves no waiter behind in a primitive.
struct Multi<'s, T> {
    slots: Vec<Slot<'s, T>>,
}

/// Withdraws every registered operation when dropped (see [`Multi`]).
struct Disarm<'m, 's, T: 's>(&'m mut [Slot<'s, T>]);

impl<'s, T: 's> Drop for Disarm<'_, 's, T> {
    fn drop(&mut self) {
        for s in self.0.iter_mut() {
            if let Slot::Pending(p) = s {
                p.disarm();
            }
        }
    }
}

impl<'s, T: 's> Multi<'s, T> {
    fn new(n: usize) -> Multi<'s, T> {
        Multi {
            slots: (0..n).map(|_| Slot::Unstarted).collect(),
        }
    }

    /// The next object to complete and its output, or `None` once none is
    /// left or `deadline` passed. `start(i)` starts object `i`.
    fn next(
        &mut self,
        start: &dyn Fn(usize) -> Attempt<'s, T>,
        deadline: Option<Instant>,
    ) -> Option<(usize, T)> {
        let slots = Disarm(&mut self.slots);
        loop {
            let mut waiting = false;
            for i in 0..slots.0.len() {
                match &mut slots.0[i] {
                    Slot::Done => {}
                    Slot::Unstarted => match start(i) {
                        Attempt::Ready(v) => {
                            slots.0[i] = Slot::Done;
                            return Some((i, v));
                        }
                        Attempt::Pending(p) => {
                            slots.0[i] = Slot::Pending(p);
                            waiting = true;
                        }
                    },
                    Slot::Pending(p) => {
                        if let Some(v) = p.poll() {
                            slots.0[i] = Slot::Done;
                            return Some((i, v));
                        }
                        waiting = true;
                    }
                }
            }
            if !waiting {
                return None;
            }
            if let Some(d) = deadline
                && Instant::now() >= d
            {
                return None;
            }
            // Register what is still pending (withdrawn by `slots` when
            // this call ends); one that can complete now is polled again
            // instead.
            let mut now = false;
            for s in slots.0.iter_mut() {
                if let Slot::Pending(p) = s {
                    now |= p.arm();
                }
            }
            if now {
                continue;
            }
            // A timed-out park still looks once more: an operation that
            // completed as the time ran out is taken, not withdrawn.
            if hub::park_until(deadline, hub::WaitReason::Select) == Wake::TimedOut {
                return poll_started(&mut *slots.0);
            }
        }
    }
}

/// One last look at the registered operations.
fn poll_started<'s, T: 's>(slots: &mut [Slot<'s, T>]) -> Option<(usize, T)> {
    for (i, s) in slots.iter_mut().enumerate() {
        if let Slot::Pending(p) = s
            && let Some(v) = p.poll()
        {
            *s = Slot::Done;
            return Some((i, v));
        }
    }
    None
}

/// Runs exactly one of several operations: whichever completes first
/// (Go's `select`, crossbeam's `Select`). Arms are tried in the order they
/// were added, so an earlier arm wins when several are ready at once.
///
/// The operation that completes is the only one that takes anything: an
/// item or permit handed to another arm while the select waited goes back
/// (see [the module docs](self)).
///
/// # Examples
///
/// ```
/// use greenlet::select::Select;
/// use greenlet::sync::Queue;
///
/// let numbers = Queue::new();
/// let words = Queue::new();
/// let sender = greenlet::spawn({
///     let words = words.clone();
///     move || words.put("hello").unwrap()
/// });
/// let got = Select::new()
///     .on(&numbers, |n: Result<i32, _>| format!("number {}", n.unwrap()))
///     .on(&words, |w| format!("word {}", w.unwrap()))
///     .wait();
/// assert_eq!(got, "word hello");
/// assert!(numbers.is_empty());
/// sender.join().unwrap();
/// ```
pub struct Select<'a, R> {
    arms: Vec<Box<dyn Arm<R> + 'a>>,
}

/// One arm: an operation and what to do with its output.
trait Arm<R> {
    fn start<'s>(&'s self) -> Attempt<'s, Box<dyn FnOnce() -> R + 's>>
    where
        R: 's;
}

struct ArmOf<W, F> {
    w: W,
    f: std::cell::Cell<Option<F>>,
}

impl<W, F, R> Arm<R> for ArmOf<W, F>
where
    W: Waitable,
    F: FnOnce(W::Output) -> R,
{
    fn start<'s>(&'s self) -> Attempt<'s, Box<dyn FnOnce() -> R + 's>>
    where
        R: 's,
    {
        match self.w.start() {
            Attempt::Ready(v) => Attempt::Ready(self.finish(v)),
            Attempt::Pending(p) => Attempt::Pending(p.map(move |v| self.finish(v))),
        }
    }
}

impl<W: Waitable, F> ArmOf<W, F> {
    fn finish<'s, R: 's>(&'s self, v: W::Output) -> Box<dyn FnOnce() -> R + 's>
    where
        F: FnOnce(W::Output) -> R,
    {
        let f = self.f.take().expect("an arm runs once");
        Box::new(move || f(v))
    }
}

impl<'a, R: 'a> Select<'a, R> {
    /// A select with no arms.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = greenlet::select::Select::<()>::new();
    /// assert!(s.try_wait().is_none());
    /// ```
    pub fn new() -> Select<'a, R> {
        Select { arms: Vec::new() }
    }

    /// Adds an arm: when `w` completes first, its output goes to `f`, whose
    /// result the select returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::Select;
    /// let e = greenlet::sync::Event::new();
    /// e.set();
    /// assert_eq!(Select::new().on(&e, |()| "set").wait(), "set");
    /// ```
    pub fn on<W, F>(mut self, w: W, f: F) -> Select<'a, R>
    where
        W: Waitable + 'a,
        W::Output: 'a,
        F: FnOnce(W::Output) -> R + 'a,
    {
        self.arms.push(Box::new(ArmOf {
            w,
            f: std::cell::Cell::new(Some(f)),
        }));
        self
    }

    /// Parks until one arm completes and returns its result.
    ///
    /// # Panics
    /// Panics if there are no arms (nothing could ever complete).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::select::Select;
    /// use greenlet::sync::Semaphore;
    ///
    /// let slow = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(50)));
    /// let sem = Semaphore::new(1);
    /// let r = Select::new()
    ///     .on(&slow, |()| "joined")
    ///     .on(&sem, |_permit| "acquired")
    ///     .wait();
    /// assert_eq!(r, "acquired");
    /// ```
    pub fn wait(self) -> R {
        assert!(
            !self.arms.is_empty(),
            "greenlet::select::Select::wait: no arms (it would wait forever)"
        );
        self.run(None)
            .expect("a select without a deadline ends with an arm")
    }

    /// Parks until one arm completes or `timeout` passes.
    ///
    /// # Errors
    /// [`TimedOut`] if no arm completed in time (none took anything).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::select::Select;
    /// use greenlet::sync::Queue;
    ///
    /// let q: Queue<u8> = Queue::new();
    /// let r = Select::new().on(&q, |_| ()).wait_timeout(Duration::from_millis(5));
    /// assert!(r.is_err());
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<R, TimedOut> {
        self.run(Some(deadline_after(timeout))).ok_or(TimedOut)
    }

    /// Runs an arm that can complete without waiting, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::Select;
    /// use greenlet::sync::Queue;
    ///
    /// let q = Queue::new();
    /// assert_eq!(Select::new().on(&q, |r| r.ok()).try_wait(), None);
    /// q.put(1).unwrap();
    /// assert_eq!(Select::new().on(&q, |r| r.ok()).try_wait(), Some(Some(1)));
    /// ```
    pub fn try_wait(self) -> Option<R> {
        self.run(Some(Instant::now()))
    }

    fn run(self, deadline: Option<Instant>) -> Option<R> {
        let arms = &self.arms;
        let mut multi = Multi::new(arms.len());
        let chosen = multi.next(&|i| arms[i].start(), deadline);
        // Withdraw the losing arms before running the winner's closure.
        drop(multi);
        chosen.map(|(_, run)| run())
    }
}

impl<'a, R: 'a> Default for Select<'a, R> {
    fn default() -> Self {
        Select::new()
    }
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("arms", &self.arms.len())
            .finish()
    }
}

/// Waits until `count` of `objects` (all of them if `None`) have completed,
/// or `timeout` passes, and returns the completed ones as (index, output)
/// in completion order (gevent's `wait(objects, timeout, count)`).
///
/// Objects that did not complete are withdrawn: a consuming one (a queue
/// get) that did not complete took nothing. Every object that completed is
/// in the result, so nothing taken is lost.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::select::{Waitable, wait};
/// use greenlet::sync::Event;
///
/// let (a, b) = (Event::new(), Event::new());
/// let setter = greenlet::spawn({
///     let b = b.clone();
///     move || b.set()
/// });
/// let done = wait(&[&a as &dyn Waitable<Output = ()>, &b], Some(1), None);
/// assert_eq!(done, [(1, ())]);
/// let none = wait(&[&a as &dyn Waitable<Output = ()>], None, Some(Duration::from_millis(5)));
/// assert!(none.is_empty());
/// setter.join().unwrap();
/// ```
pub fn wait<'w, T>(
    objects: &'w [&'w dyn Waitable<Output = T>],
    count: Option<usize>,
    timeout: Option<Duration>,
) -> Vec<(usize, T)> {
    let deadline = timeout.map(deadline_after);
    let want = count.unwrap_or(objects.len()).min(objects.len());
    let mut it = iwait(objects);
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        match it.next_until(deadline) {
            Some(x) => out.push(x),
            None => break,
        }
    }
    out
}

/// Yields (index, output) for each of `objects` as it completes (gevent's
/// `iwait` over any waitables; [`crate::iwait`] is the greenlets-only
/// form). The objects are registered with their primitives only while a
/// `next` call parks: between calls nothing is registered (an item put
/// meanwhile waits in its queue for the next call), so dropping or leaking
/// the iterator leaves nothing behind.
///
/// # Examples
///
/// ```
/// use greenlet::select::{Waitable, iwait, map};
/// use greenlet::sync::{Event, Queue};
///
/// let (q, e) = (Queue::new(), Event::new());
/// let g = greenlet::spawn({
///     let (q, e) = (q.clone(), e.clone());
///     move || {
///         e.set();
///         greenlet::yield_now();
///         q.put("item").unwrap();
///     }
/// });
/// // Mixed types: map each output to one type.
/// let set = map(&e, |()| "set");
/// let got = map(&q, |r| r.unwrap());
/// let objects: [&dyn Waitable<Output = &str>; 2] = [&got, &set];
/// let order: Vec<_> = iwait(&objects).collect();
/// assert_eq!(order, [(1, "set"), (0, "item")]);
/// g.join().unwrap();
/// ```
pub fn iwait<'w, T>(objects: &'w [&'w dyn Waitable<Output = T>]) -> IwaitAny<'w, T> {
    IwaitAny {
        objects,
        multi: Multi::new(objects.len()),
    }
}

/// The iterator of [`iwait`](fn@iwait).
pub struct IwaitAny<'w, T> {
    objects: &'w [&'w dyn Waitable<Output = T>],
    multi: Multi<'w, T>,
}

impl<'w, T> IwaitAny<'w, T> {
    fn next_until(&mut self, deadline: Option<Instant>) -> Option<(usize, T)> {
        let objects = self.objects;
        self.multi.next(&|i| objects[i].start(), deadline)
    }
}

impl<T> Iterator for IwaitAny<'_, T> {
    type Item = (usize, T);

    fn next(&mut self) -> Option<(usize, T)> {
        self.next_until(None)
    }
}

impl<T> fmt::Debug for IwaitAny<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IwaitAny")
            .field("objects", &self.objects.len())
            .finish()
    }
}

/// A waitable whose output goes through `f` (to mix waitables of different
/// output types in one [`wait`] or [`iwait`](fn@iwait)).
///
/// # Examples
///
/// ```
/// use greenlet::select::{Waitable, map, wait};
/// let e = greenlet::sync::Event::new();
/// e.set();
/// let m = map(&e, |()| 42);
/// assert_eq!(wait(&[&m as &dyn Waitable<Output = i32>], None, None), [(0, 42)]);
/// ```
pub fn map<W, F, U>(w: W, f: F) -> Map<W, F, U>
where
    W: Waitable,
    F: Fn(W::Output) -> U,
{
    Map {
        w,
        f,
        _out: PhantomData,
    }
}

/// The waitable of [`map`].
pub struct Map<W, F, U> {
    w: W,
    f: F,
    _out: PhantomData<fn() -> U>,
}

impl<W: fmt::Debug, F, U> fmt::Debug for Map<W, F, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("w", &self.w)
            .finish_non_exhaustive()
    }
}

impl<W, F, U> Waitable for Map<W, F, U>
where
    W: Waitable,
    F: Fn(W::Output) -> U,
{
    type Output = U;

    fn start(&self) -> Attempt<'_, U> {
        match self.w.start() {
            Attempt::Ready(v) => Attempt::Ready((self.f)(v)),
            Attempt::Pending(p) => Attempt::Pending(p.map(|v| (self.f)(v))),
        }
    }
}

// ---- built-in waitables that live outside `crate::sync` ----

/// A greenlet completes when it finishes; its result stays in the handle.
impl<T: 'static> Waitable for Greenlet<T> {
    type Output = ();

    fn start(&self) -> Attempt<'_, ()> {
        if self.is_finished() {
            return Attempt::Ready(());
        }
        let task = self.task().clone();
        if task.state.get() == crate::hub::task::State::Running {
            panic!("greenlet: a greenlet cannot wait for itself to finish");
        }
        let me = Hub::current().current_task();
        task.watch(Watcher::Task(me.clone()));
        Attempt::Pending(Pending::new(JoinOp { task, me }))
    }
}

struct JoinOp {
    task: TaskRef,
    me: TaskRef,
}

impl PendingOp<()> for JoinOp {
    fn poll(&mut self) -> Option<()> {
        self.task.is_finished().then_some(())
    }
}

impl Drop for JoinOp {
    fn drop(&mut self) {
        drop(Unwatch {
            task: &self.task,
            me: &self.me,
        });
    }
}
