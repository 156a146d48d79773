//! Greenlets: spawning, joining, killing, and the handles that name them.

mod builder;
mod lifecycle;
mod link;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::hub::task::{Collector, Header, ResultSlot, State, TaskRef, Wake, Watcher};
use crate::hub::{self, Hub, KillSignal};

pub use crate::hub::JoinError;
pub use builder::Builder;
pub(crate) use builder::default_stack_size;
pub(crate) use lifecycle::kill_task_nowait;
pub use lifecycle::{killall, killall_nowait, killall_timeout, try_joinall};

/// A handle to a spawned greenlet: join it, kill it, or ask after it.
///
/// Dropping the handle detaches the greenlet: it keeps running, and the
/// hub drops its result when it finishes. A panic out of that result's
/// `Drop` comes out of the call that was running the hub (a `join`, or a
/// `sleep` of the thread's main code), except while that call is itself
/// part of an unwinding (a guard's destructor joining a greenlet): there a
/// second panic would abort the process, so the hub catches it (the panic
/// hook reports it). A `Greenlet` never leaves the thread that spawned it;
/// it is neither `Send` nor `Sync`:
///
/// ```compile_fail
/// let g = greenlet::spawn(|| 1);
/// std::thread::spawn(move || g.join()); // error: `Greenlet` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// let g = greenlet::spawn(|| 6 * 7);
/// assert_eq!(g.join().unwrap(), 42);
/// ```
pub struct Greenlet<T> {
    task: TaskRef,
    /// Invariant: points at the `ResultSlot<T>` inside `task`'s allocation,
    /// which `task` keeps alive.
    slot: *const ResultSlot<T>,
}

/// A greenlet's unique id on its thread's hub (the root is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GreenletId(pub(crate) u64);

impl GreenletId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GreenletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Spawns a greenlet running `f` on this thread's hub.
///
/// The greenlet starts when the hub next gets control: when the spawner
/// blocks (joins, sleeps, waits on IO) or yields. No `Send` bound: it never
/// leaves this thread.
///
/// # Panics
/// Panics if no stack can be had (see [`Builder::spawn`] for the error).
///
/// # Examples
///
/// ```
/// let g = greenlet::spawn(|| "done");
/// assert_eq!(g.join().unwrap(), "done");
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let size = default_stack_size();
    match Hub::current().spawn(f, None, size, None, std::panic::Location::caller()) {
        Ok(task) => Greenlet::from_parts(task),
        Err(e) => panic!("greenlet::spawn: cannot spawn a greenlet: {e}"),
    }
}

/// Spawns a greenlet that starts after `delay` (gevent's `spawn_later`).
///
/// # Panics
/// As [`spawn`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let g = greenlet::spawn_later(Duration::from_millis(20), || 1);
/// assert_eq!(g.join().unwrap(), 1);
/// assert!(t.elapsed() >= Duration::from_millis(20));
/// ```
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("greenlet::spawn_later: cannot spawn a greenlet: {e}"))
}

/// Parks the caller until the task `hdr` has finished.
pub(crate) fn wait_finished(task: &TaskRef) {
    wait_finished_until(task, None);
}

/// Parks the caller until the task has finished (true) or `deadline`
/// passed (false).
pub(crate) fn wait_finished_until(task: &TaskRef, deadline: Option<std::time::Instant>) -> bool {
    if task.is_finished() {
        return true;
    }
    if task.state.get() == State::Running {
        panic!("greenlet: a greenlet cannot wait for itself to finish (it would wait forever)");
    }
    let hub = Hub::current();
    let me = hub.current_task();
    let reason = hub::join_reason(task);
    let _cycle = hub.wait_for_task(&me, task, reason, deadline.is_none());
    task.watch_task(me.clone());
    // One entry per wait, removed however the wait ends (a timeout or kill
    // unwinding out of `park`): timed joins in a loop do not grow the list.
    let _unwatch = Unwatch { task, me: &me };
    while !task.is_finished() {
        if hub::park_until(deadline, reason) == Wake::TimedOut {
            return task.is_finished();
        }
    }
    true
}

/// Removes a waiter's entry from a task's watchers unless the task finished
/// (which took the whole list).
pub(crate) struct Unwatch<'a> {
    pub(crate) task: &'a TaskRef,
    pub(crate) me: &'a TaskRef,
}

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        if !self.task.is_finished() {
            self.task.unwatch_task(self.me.as_ptr());
        }
    }
}

impl<T: 'static> Greenlet<T> {
    pub(crate) fn from_parts((task, slot): (TaskRef, *const ResultSlot<T>)) -> Greenlet<T> {
        Greenlet { task, slot }
    }

    fn slot(&self) -> &ResultSlot<T> {
        // SAFETY: the invariant on `slot`.
        unsafe { &*self.slot }
    }

    /// Waits for the greenlet to finish and returns its value.
    ///
    /// From a greenlet this parks the caller; from root context it runs the
    /// hub until the greenlet is done.
    ///
    /// # Errors
    /// [`JoinError`] if the greenlet panicked (with the payload) or was
    /// killed.
    ///
    /// # Panics
    /// Panics if a greenlet joins itself, if it is joined from one of its
    /// own [link](Greenlet::link) callbacks, or (root context) if nothing
    /// could ever finish it ("this operation would block forever").
    pub fn join(self) -> Result<T, JoinError> {
        wait_finished(&self.task);
        if self.task.links_running() > 0 {
            panic!(
                "greenlet: a greenlet cannot be joined from its own link callback (the callback \
                 holds a reference to its result)"
            );
        }
        // SAFETY: the task is finished, so its fiber never runs again (it
        // is gone, or frozen at thread exit, see `hub::exit`) and nobody
        // else touches the slot; `join` consumes the only typed handle.
        unsafe { (*self.slot().get()).take() }.unwrap_or_else(|| Err(JoinError::killed()))
    }

    /// Whether the greenlet has finished (returned, panicked or was killed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The greenlet's id.
    pub fn id(&self) -> GreenletId {
        GreenletId(self.task.id)
    }

    /// The greenlet's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name()
    }

    /// Kills the greenlet and waits until it is dead.
    ///
    /// The greenlet unwinds from the point where it is parked (or from its
    /// next park, if it is ready to run), so its destructors run and its
    /// sockets close; [`join`](Greenlet::join) then reports
    /// [`JoinError::is_killed`]. A greenlet that has not started is simply
    /// dropped. Killing a finished greenlet does nothing. A greenlet may
    /// kill itself: it unwinds at once.
    ///
    /// A kill cannot be caught for good. Greenlet code that catches the
    /// unwind (with `std::panic::catch_unwind`) keeps running only until its
    /// next park, which unwinds again, and so does every park after it; if
    /// it returns instead, [`join`](Greenlet::join) still reports it killed.
    /// (gevent lets `GreenletExit` be caught; here the kill is level-
    /// triggered, like a cancelled scope, so `kill` cannot hang on a
    /// greenlet that swallows it.) A greenlet that is unwinding already
    /// (from a panic, or from its destructors) is not interrupted: its
    /// destructors may still park, and the kill takes effect once the
    /// unwind is over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let g = greenlet::spawn(|| {
    ///     // Catching the kill only lasts until the next park.
    ///     let _ = std::panic::catch_unwind(|| greenlet::sleep(Duration::from_secs(60)));
    ///     greenlet::sleep(Duration::from_secs(60));
    ///     "finished"
    /// });
    /// greenlet::yield_now(); // let it start and park
    /// g.kill();
    /// assert!(g.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        kill_task(&self.task);
    }

    /// The task behind the handle (for the pool).
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }
}

/// Kills a task and waits until it is dead (see [`Greenlet::kill`]). An
/// unstarted task's result slot stays empty, which `join` reports as
/// killed.
pub(crate) fn kill_task(task: &TaskRef) {
    let hub = Hub::current();
    let hdr: &Header = task;
    match hdr.state.get() {
        State::Finished => {}
        State::Running => {
            // The greenlet is killing itself. The kill stays set: if it is
            // unwinding already (a destructor killing its own group), it
            // dies at its first park after that unwind is caught.
            hdr.kill.set(true);
            if !hub::unwinding_now(hdr) {
                hub::unwind_with(hdr, Box::new(KillSignal));
            }
        }
        State::Delayed => hub.finish_unstarted(task),
        State::Ready if !hub.has_started(hdr) => hub.finish_unstarted(task),
        State::Ready | State::Parked => {
            hdr.kill.set(true);
            hub.unpark(task, Wake::Interrupted);
            wait_finished(task);
        }
    }
}

impl<T> Drop for Greenlet<T> {
    fn drop(&mut self) {
        lifecycle::drop_handle(&self.task);
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.task.id)
            .field("name", &self.task.name())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

/// Waits for every greenlet and returns their results in input order
/// (gevent's `joinall`, asyncio's `gather`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let gs: Vec<_> = [30, 10, 20]
///     .into_iter()
///     .map(|ms| greenlet::spawn(move || { greenlet::sleep(Duration::from_millis(ms)); ms }))
///     .collect();
/// let results: Vec<u64> = greenlet::joinall(gs).into_iter().map(Result::unwrap).collect();
/// assert_eq!(results, [30, 10, 20]);
/// ```
pub fn joinall<T: 'static>(
    greenlets: impl IntoIterator<Item = Greenlet<T>>,
) -> Vec<Result<T, JoinError>> {
    greenlets.into_iter().map(Greenlet::join).collect()
}

/// Yields the greenlets as they finish, in completion order (gevent's
/// `iwait`, asyncio's `as_completed`). Each yielded greenlet is finished, so
/// its [`join`](Greenlet::join) returns at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let gs: Vec<_> = [30, 10, 20]
///     .into_iter()
///     .map(|ms| greenlet::spawn(move || { greenlet::sleep(Duration::from_millis(ms)); ms }))
///     .collect();
/// let order: Vec<u64> = greenlet::iwait(gs).map(|g| g.join().unwrap()).collect();
/// assert_eq!(order, [10, 20, 30]);
/// ```
pub fn iwait<T: 'static>(greenlets: impl IntoIterator<Item = Greenlet<T>>) -> Iwait<T> {
    let collector = Rc::new(Collector {
        done: RefCell::new(VecDeque::new()),
        waiter: RefCell::new(None),
    });
    let pending: Vec<Option<Greenlet<T>>> = greenlets.into_iter().map(Some).collect();
    for (i, g) in pending.iter().enumerate() {
        let g = g.as_ref().expect("just filled");
        if g.is_finished() {
            collector.done.borrow_mut().push_back(i);
        } else {
            g.task.watch(Watcher::Collect(collector.clone(), i));
        }
    }
    Iwait {
        remaining: pending.len(),
        pending,
        collector,
    }
}

/// The iterator returned by [`iwait`].
pub struct Iwait<T> {
    pending: Vec<Option<Greenlet<T>>>,
    collector: Rc<Collector>,
    remaining: usize,
}

impl<T: 'static> Iterator for Iwait<T> {
    type Item = Greenlet<T>;

    fn next(&mut self) -> Option<Greenlet<T>> {
        if self.remaining == 0 {
            return None;
        }
        let hub = Hub::current();
        loop {
            let next = self.collector.done.borrow_mut().pop_front();
            if let Some(i) = next {
                self.remaining -= 1;
                return self.pending[i].take();
            }
            if self
                .pending
                .iter()
                .flatten()
                .any(|g| g.task.state.get() == State::Running)
            {
                panic!(
                    "greenlet: a greenlet cannot wait for itself to finish (iwait over a set \
                     that contains the caller would wait forever)"
                );
            }
            *self.collector.waiter.borrow_mut() = Some(hub.current_task());
            let _clear = ClearWaiter(&self.collector);
            hub::park(hub::WaitReason::Iwait);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

struct ClearWaiter<'a>(&'a Collector);

impl Drop for ClearWaiter<'_> {
    fn drop(&mut self) {
        self.0.waiter.borrow_mut().take();
    }
}

/// The running greenlet, as returned by [`current`].
pub struct Current {
    task: TaskRef,
}

impl Current {
    /// Its id.
    pub fn id(&self) -> GreenletId {
        GreenletId(self.task.id)
    }

    /// Its name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name()
    }
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "<Greenlet \"{n}\" #{}>", self.task.id),
            None => write!(f, "<Greenlet #{}>", self.task.id),
        }
    }
}

/// The greenlet this code runs in, or `None` in root context (gevent's
/// `getcurrent()`).
///
/// # Examples
///
/// ```
/// assert!(greenlet::current().is_none());
/// let id = greenlet::spawn(|| greenlet::current().unwrap().id()).join().unwrap();
/// assert!(id.as_u64() > 0);
/// ```
pub fn current() -> Option<Current> {
    let hub = Hub::current();
    if hub.in_root() {
        None
    } else {
        Some(Current {
            task: hub.current_task(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_timed_joins_leave_no_watcher_behind() {
        crate::test_util::within(Duration::from_secs(20), || {
            let g = spawn(|| crate::sleep(Duration::from_secs(3600)));
            for _ in 0..1000 {
                let r = crate::with_timeout(Duration::from_micros(1), || wait_finished(g.task()));
                assert!(r.is_err());
            }
            assert_eq!(g.task().watcher_count(), 0);
            g.kill();
            assert!(g.join().unwrap_err().is_killed());
        });
    }
}
