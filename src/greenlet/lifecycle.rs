//! A handle's life beyond `spawn`/`join`: unstarted greenlets
//! (`Greenlet::new` + `start`), timed joins that keep the handle, the
//! result by reference, non-blocking and timed kills, `killall` and
//! `try_joinall`.

use std::collections::HashMap;
use std::time::Duration;

use super::{Greenlet, JoinError, default_stack_size, iwait, kill_task, wait_finished_until};
use crate::hub::task::{Header, State, TaskRef, Wake};
use crate::hub::{Hub, UNSCHEDULED, deadline_after};
use crate::sync::TimedOut;

/// What an empty result slot of a finished greenlet means: it was killed
/// before it ran.
pub(super) static KILLED: JoinError = JoinError::killed();

impl<T: 'static> Greenlet<T> {
    /// Creates a greenlet running `f` without starting it (gevent's
    /// `Greenlet(f)`); it runs once [`start`](Greenlet::start) or
    /// [`start_later`](Greenlet::start_later) is called.
    ///
    /// Dropping the handle of a greenlet that was never started drops the
    /// greenlet (nobody could start it any more); killing it does too. A
    /// `join` of a greenlet nobody starts waits forever (in root context:
    /// the hub reports that it would block forever).
    ///
    /// # Panics
    /// Panics if no stack can be had (see [`Builder::spawn`](crate::Builder::spawn);
    /// [`Builder::build`](crate::Builder::build) returns the error instead).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::Greenlet;
    ///
    /// let g = Greenlet::new(|| "ran");
    /// greenlet::yield_now();
    /// assert!(!g.is_started());
    /// g.start();
    /// assert!(g.is_started());
    /// assert_eq!(g.join().unwrap(), "ran");
    /// ```
    #[track_caller]
    pub fn new<F>(f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
    {
        match Hub::current().spawn(
            f,
            None,
            default_stack_size(),
            Some(UNSCHEDULED),
            std::panic::Location::caller(),
        ) {
            Ok(parts) => Greenlet::from_parts(parts),
            Err(e) => panic!("greenlet::Greenlet::new: cannot create a greenlet: {e}"),
        }
    }

    /// Starts a greenlet made by [`Greenlet::new`]: it runs when the hub
    /// next gets control. Does nothing if it was started already.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = greenlet::Greenlet::new(|| 1);
    /// g.start();
    /// g.start(); // no effect
    /// assert_eq!(g.join().unwrap(), 1);
    /// ```
    pub fn start(&self) {
        Hub::current().start_unscheduled(&self.task, None);
    }

    /// Starts a greenlet made by [`Greenlet::new`] after `delay` (gevent's
    /// `start_later`). Does nothing if it was started already.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = Instant::now();
    /// let g = greenlet::Greenlet::new(|| 1);
    /// g.start_later(Duration::from_millis(20));
    /// assert!(g.is_started());
    /// assert_eq!(g.join().unwrap(), 1);
    /// assert!(t.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn start_later(&self, delay: Duration) {
        Hub::current().start_unscheduled(&self.task, Some(delay));
    }

    /// Whether the greenlet was started: spawned, or started with
    /// [`start`](Greenlet::start)/[`start_later`](Greenlet::start_later)
    /// (even if its delay has not passed yet). False only for a greenlet
    /// made by [`Greenlet::new`] and not started; a finished greenlet
    /// counts as started.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert!(g.is_started());
    /// assert!(!greenlet::Greenlet::new(|| ()).is_started());
    /// ```
    pub fn is_started(&self) -> bool {
        !is_unscheduled(&self.task)
    }

    /// Waits at most `timeout` for the greenlet to finish, keeping the
    /// handle: after a timeout it can still be joined, killed or waited for
    /// again (gevent's `join(timeout)`). Read the result with
    /// [`result`](Greenlet::result) or [`join`](Greenlet::join).
    ///
    /// # Errors
    /// [`TimedOut`] if it is still running after `timeout`.
    ///
    /// # Panics
    /// Panics if a greenlet waits for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// assert!(g.join_timeout(Duration::from_millis(5)).is_err());
    /// g.kill(); // the handle is still ours
    /// assert!(g.join_timeout(Duration::from_millis(5)).is_ok());
    /// assert!(g.join().unwrap_err().is_killed());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        if wait_finished_until(&self.task, Some(deadline_after(timeout))) {
            Ok(())
        } else {
            Err(TimedOut)
        }
    }

    /// The result of a finished greenlet, by reference (gevent's `value`
    /// and `exception`); `None` while it has not finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let g = greenlet::spawn(|| String::from("hi"));
    /// assert!(g.result().is_none());
    /// greenlet::yield_now();
    /// assert_eq!(g.result().unwrap().unwrap(), "hi");
    /// assert_eq!(g.join().unwrap(), "hi"); // the value is still there
    /// ```
    pub fn result(&self) -> Option<Result<&T, &JoinError>> {
        if !self.is_finished() {
            return None;
        }
        // SAFETY: the task is finished, so its fiber never runs again (it
        // is gone, or frozen at thread exit) and nobody writes the slot;
        // only this handle reads it, and `join` (which takes the value)
        // consumes the handle, so the references cannot outlive the value.
        let slot = unsafe { &*self.slot().get() };
        Some(match slot {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e),
            None => Err(&KILLED),
        })
    }

    /// Takes the result if the greenlet has finished; gives the handle back
    /// otherwise, to try again later.
    ///
    /// # Errors
    /// `Err(self)` while the greenlet is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut g = greenlet::spawn(|| 5);
    /// g = g.try_join().unwrap_err(); // not run yet
    /// greenlet::yield_now();
    /// assert_eq!(g.try_join().unwrap().unwrap(), 5);
    /// ```
    pub fn try_join(self) -> Result<Result<T, JoinError>, Greenlet<T>> {
        if self.is_finished() {
            Ok(self.join())
        } else {
            Err(self)
        }
    }

    /// Asks the greenlet to die and returns at once (gevent's
    /// `kill(block=False)`): it unwinds at its current or next park, as with
    /// [`kill`](Greenlet::kill). A greenlet that has not started is dropped
    /// right away. Called by the greenlet on itself, it unwinds at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// greenlet::yield_now();
    /// g.kill_nowait();
    /// assert!(!g.is_finished()); // it dies when it next runs
    /// assert!(g.join().unwrap_err().is_killed());
    /// ```
    pub fn kill_nowait(&self) {
        kill_task_nowait(&self.task);
    }

    /// Kills the greenlet and waits at most `timeout` for it to die (its
    /// destructors may park); the handle stays usable either way (gevent's
    /// `kill(timeout=...)`).
    ///
    /// # Errors
    /// [`TimedOut`] if it is still unwinding after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// struct SlowClose;
    /// impl Drop for SlowClose {
    ///     fn drop(&mut self) {
    ///         greenlet::sleep(Duration::from_millis(200)); // a slow shutdown
    ///     }
    /// }
    /// let g = greenlet::spawn(|| {
    ///     let _c = SlowClose;
    ///     greenlet::sleep(Duration::from_secs(60));
    /// });
    /// greenlet::yield_now();
    /// assert!(g.kill_timeout(Duration::from_millis(10)).is_err());
    /// assert!(g.kill_timeout(Duration::from_secs(5)).is_ok());
    /// assert!(g.join().unwrap_err().is_killed());
    /// ```
    pub fn kill_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        let deadline = deadline_after(timeout);
        kill_task_nowait(&self.task);
        if wait_finished_until(&self.task, Some(deadline)) {
            Ok(())
        } else {
            Err(TimedOut)
        }
    }
}

/// A task made by `Greenlet::new` and not started.
fn is_unscheduled(task: &TaskRef) -> bool {
    task.state.get() == State::Delayed && task.start_timer().is_none()
}

/// Drops an unstarted greenlet whose last handle goes: nobody could start
/// it any more.
pub(super) fn drop_handle(task: &TaskRef) {
    if is_unscheduled(task)
        && let Some(hub) = Hub::try_current()
    {
        hub.finish_unstarted(task);
    }
}

/// Requests a kill without waiting (see [`Greenlet::kill_nowait`]).
pub(crate) fn kill_task_nowait(task: &TaskRef) {
    let hub = Hub::current();
    let hdr: &Header = task;
    match hdr.state.get() {
        State::Finished => {}
        // Killing itself: unwinds at once, nothing to wait for.
        State::Running => kill_task(task),
        State::Delayed => hub.finish_unstarted(task),
        State::Ready if !hub.has_started(hdr) => hub.finish_unstarted(task),
        State::Ready | State::Parked => {
            hdr.kill.set(true);
            hub.unpark(task, Wake::Interrupted);
        }
    }
}

/// Kills every greenlet and waits until all are dead (gevent's `killall`).
///
/// They are all asked to die first, then waited for, so they unwind
/// concurrently. If the caller is one of them, it kills the others, waits
/// for them, and then itself.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let gs: Vec<_> = (0..3)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60))))
///     .collect();
/// greenlet::yield_now();
/// greenlet::killall(&gs);
/// assert!(gs.iter().all(|g| g.is_finished()));
/// ```
pub fn killall<'a, T: 'static>(greenlets: impl IntoIterator<Item = &'a Greenlet<T>>) {
    let (others, me) = request_kills(greenlets);
    for t in &others {
        wait_finished_until(t, None);
    }
    if let Some(me) = me {
        kill_task(&me);
    }
}

/// Kills every greenlet without waiting for any of them to die (gevent's
/// `killall(block=False)`). If the caller is one of them, it unwinds
/// last, after the others were asked.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let gs: Vec<_> = (0..3)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60))))
///     .collect();
/// greenlet::yield_now();
/// greenlet::killall_nowait(&gs);
/// for g in gs {
///     assert!(g.join().unwrap_err().is_killed());
/// }
/// ```
pub fn killall_nowait<'a, T: 'static>(greenlets: impl IntoIterator<Item = &'a Greenlet<T>>) {
    let (_, me) = request_kills(greenlets);
    if let Some(me) = me {
        kill_task(&me);
    }
}

/// Kills every greenlet and waits at most `timeout` for all of them to die
/// (gevent's `killall(timeout=...)`). The caller, if it is one of them, is
/// killed last, once the others are dead.
///
/// # Errors
/// [`TimedOut`] if some are still unwinding after `timeout`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let gs: Vec<_> = (0..3)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60))))
///     .collect();
/// greenlet::yield_now();
/// assert!(greenlet::killall_timeout(&gs, Duration::from_secs(5)).is_ok());
/// ```
pub fn killall_timeout<'a, T: 'static>(
    greenlets: impl IntoIterator<Item = &'a Greenlet<T>>,
    timeout: Duration,
) -> Result<(), TimedOut> {
    let deadline = deadline_after(timeout);
    let (others, me) = request_kills(greenlets);
    for t in &others {
        if !wait_finished_until(t, Some(deadline)) {
            return Err(TimedOut);
        }
    }
    if let Some(me) = me {
        kill_task(&me);
    }
    Ok(())
}

/// Asks every greenlet but the caller to die; returns them, and the caller
/// if it was among them.
fn request_kills<'a, T: 'static>(
    greenlets: impl IntoIterator<Item = &'a Greenlet<T>>,
) -> (Vec<TaskRef>, Option<TaskRef>) {
    let mut me = None;
    let mut others = Vec::new();
    for g in greenlets {
        if g.task.state.get() == State::Running {
            me = Some(g.task.clone());
        } else {
            kill_task_nowait(&g.task);
            others.push(g.task.clone());
        }
    }
    (others, me)
}

/// Waits for the greenlets and returns their values in input order, or the
/// first error as soon as one of them fails (gevent's
/// `joinall(raise_error=True)`). "First" is in completion order; on an
/// error the greenlets still running keep running (their handles are
/// dropped, which detaches them).
///
/// # Errors
/// The [`JoinError`] of the first greenlet to panic or be killed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ok = greenlet::try_joinall([greenlet::spawn(|| 1), greenlet::spawn(|| 2)]);
/// assert_eq!(ok.unwrap(), [1, 2]);
///
/// let slow = greenlet::spawn(|| { greenlet::sleep(Duration::from_secs(60)); 1 });
/// let failing = greenlet::spawn(|| -> i32 { panic!("boom") });
/// let err = greenlet::try_joinall([slow, failing]).unwrap_err();
/// assert_eq!(err.panic_message(), Some("boom"));
/// ```
pub fn try_joinall<T: 'static>(
    greenlets: impl IntoIterator<Item = Greenlet<T>>,
) -> Result<Vec<T>, JoinError> {
    let gs: Vec<Greenlet<T>> = greenlets.into_iter().collect();
    let index: HashMap<u64, usize> = gs.iter().enumerate().map(|(i, g)| (g.task.id, i)).collect();
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(gs.len()).collect();
    for g in iwait(gs) {
        let i = index[&g.task.id];
        out[i] = Some(g.join()?);
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("iwait yields every greenlet"))
        .collect())
}
