//! Time: `sleep`, `sleep_until`, `yield_now`, `with_timeout`, the reusable
//! [`Timeout`], and the [`Interval`] ticker.

use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::hub::task::Wake;
use crate::hub::timers::{TimerAction, TimerKey};
use crate::hub::{self, Hub, TimeoutSignal, deadline_after};

/// Parks the calling greenlet for `dur`; other greenlets run meanwhile
/// (gevent's `sleep`). In root context the hub runs until `dur` has passed.
/// A zero duration is [`yield_now`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let gs: Vec<_> = (0..100)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_millis(50))))
///     .collect();
/// greenlet::joinall(gs);
/// assert!(t.elapsed() < Duration::from_millis(500)); // concurrently, not 5 s
/// ```
pub fn sleep(dur: Duration) {
    if dur.is_zero() {
        yield_now();
        return;
    }
    let deadline = deadline_after(dur);
    while hub::park_until(Some(deadline), hub::WaitReason::Sleep) != Wake::TimedOut {}
}

/// Lets every other ready greenlet run once, then continues (gevent's
/// `sleep(0)`). Also lets the hub fire due timers and poll IO, so a
/// CPU-bound greenlet that calls it now and then keeps the rest responsive.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let gs: Vec<_> = ["a", "b"]
///     .into_iter()
///     .map(|name| {
///         let log = log.clone();
///         greenlet::spawn(move || for i in 0..2 {
///             log.borrow_mut().push(format!("{name}{i}"));
///             greenlet::yield_now();
///         })
///     })
///     .collect();
/// greenlet::joinall(gs);
/// assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1"]);
/// ```
#[inline]
pub fn yield_now() {
    hub::yield_now();
}

/// The error of [`with_timeout`]: the deadline passed before the closure
/// finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `f`, abandoning it if it takes longer than `dur` (gevent's
/// `Timeout`, asyncio's `wait_for`).
///
/// If the time runs out while `f` is parked (sleeping, waiting on IO, a
/// queue, a join...), `f` unwinds from that point, running its destructors,
/// and `with_timeout` returns `Err(Elapsed)`. A closure that never parks
/// cannot be interrupted; if it finishes after the deadline without having
/// parked, its value is returned. Scopes nest: an inner `with_timeout`
/// does not catch the outer one's expiry, and the outermost expired scope
/// wins. Panics inside `f` propagate unchanged.
///
/// Needs `panic = "unwind"` (the default): under `panic = "abort"` an
/// expired timeout aborts the process.
///
/// # Errors
/// [`Elapsed`] if `dur` passed first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let r = greenlet::with_timeout(Duration::from_millis(10), || {
///     greenlet::sleep(Duration::from_secs(3600));
///     "finished"
/// });
/// assert!(r.is_err());
/// assert_eq!(greenlet::with_timeout(Duration::from_secs(1), || 5), Ok(5));
/// ```
pub fn with_timeout<T>(dur: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    run_with_timeout(dur, None, f)
}

/// [`with_timeout`], keeping the armed timer's key in `armed` while `f`
/// runs (so a [`Timeout`] can be cancelled or asked after).
fn run_with_timeout<T>(
    dur: Duration,
    armed: Option<&Cell<Option<TimerKey>>>,
    f: impl FnOnce() -> T,
) -> Result<T, Elapsed> {
    let hub = Hub::current();
    let task = hub.current_task();
    let hdr: &crate::hub::task::Header = &task;
    let depth = hdr.timeout_depth.get();
    let id = hub.next_id();
    hdr.timeout_depth.set(depth + 1);
    let key = hub.timers().insert(
        deadline_after(dur),
        TimerAction::Timeout {
            task: task.clone(),
            depth,
            id,
        },
    );
    if let Some(a) = armed {
        a.set(Some(key));
    }
    let result = catch_unwind(AssertUnwindSafe(f));
    hdr.timeout_depth.set(depth);
    hub.timers().remove(key);
    if let Some(a) = armed {
        a.set(None);
    }
    let delivered =
        matches!(&result, Err(p) if p.downcast_ref::<TimeoutSignal>().is_some_and(|s| s.id == id));
    let pending = matches!(hdr.expired_timeout(), Some((_, p)) if p == id);
    let mut expired_in_hook = false;
    if pending || delivered {
        // This scope expired: whatever a monkey hook noted about it ends
        // with it (a later scope must not inherit it).
        expired_in_hook = hdr
            .cold_if_any()
            .is_some_and(|c| c.timeout_seen_in_hook.replace(false));
    }
    if pending {
        // Expired, and `f` finished before it parked again: it made it,
        // unless a monkey hook failed one of its calls because of it.
        hdr.take_expired_timeout();
    }
    match result {
        Ok(_) if expired_in_hook => Err(Elapsed(())),
        Ok(v) => Ok(v),
        Err(_) if delivered || expired_in_hook => {
            // Our own unwind is over (delivered), or a monkey hook failed a
            // call because of this timeout and the code above it (a foreign
            // event loop, say) panicked on that error: the timeout is what
            // ended `f`. Either way the task is no longer unwinding.
            hdr.unwinding.set(false);
            Err(Elapsed(()))
        }
        Err(payload) => crate::hub::resume_unwind_marked(payload),
    }
}

/// Parks the calling greenlet until `deadline` (std's `sleep_until`);
/// returns at once if it has passed.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(20);
/// greenlet::sleep_until(deadline);
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    if Instant::now() >= deadline {
        return;
    }
    while hub::park_until(Some(deadline), hub::WaitReason::Sleep) != Wake::TimedOut {}
}

/// A reusable timeout (gevent's `Timeout` object): [`run`](Timeout::run)
/// runs a closure under it as many times as you like, and while it runs
/// the timeout can be [`cancel`](Timeout::cancel)led or asked whether it
/// [`is_pending`](Timeout::is_pending).
///
/// Expiry works as in [`with_timeout`]: the closure unwinds from its park
/// point and `run` returns [`Elapsed`]. gevent's `with Timeout(s):` block
/// is `Timeout::new(d).run(|| ...)`; its `start()`/`cancel()` pair is
/// `run` around the guarded code, with `cancel` to lift the deadline early.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::Timeout;
///
/// let t = Timeout::new(Duration::from_millis(10));
/// assert!(t.run(|| greenlet::sleep(Duration::from_secs(60))).is_err());
/// assert_eq!(t.run(|| 5), Ok(5)); // reused
/// let r = t.run(|| {
///     assert!(t.is_pending());
///     t.cancel(); // no deadline any more
///     greenlet::sleep(Duration::from_millis(30));
///     "made it"
/// });
/// assert_eq!(r, Ok("made it"));
/// ```
#[derive(Debug)]
pub struct Timeout {
    dur: Duration,
    /// The armed timer while `run` runs and the timeout is not cancelled.
    armed: Cell<Option<TimerKey>>,
    running: Cell<bool>,
}

impl Timeout {
    /// A timeout of `dur`, not running.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = greenlet::Timeout::new(std::time::Duration::from_secs(1));
    /// assert!(!t.is_pending());
    /// ```
    pub fn new(dur: Duration) -> Timeout {
        Timeout {
            dur,
            armed: Cell::new(None),
            running: Cell::new(false),
        }
    }

    /// The duration it was made with.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(greenlet::Timeout::new(Duration::from_secs(2)).duration(), Duration::from_secs(2));
    /// ```
    pub fn duration(&self) -> Duration {
        self.dur
    }

    /// Runs `f` with a deadline `duration()` from now (see
    /// [`with_timeout`]).
    ///
    /// # Errors
    /// [`Elapsed`] if the deadline passed while `f` was parked.
    ///
    /// # Panics
    /// Panics if this timeout is running already (from `f` itself, or
    /// another greenlet).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = greenlet::Timeout::new(Duration::from_millis(5));
    /// assert!(t.run(|| greenlet::sleep(Duration::from_secs(60))).is_err());
    /// ```
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
        assert!(
            !self.running.replace(true),
            "greenlet::Timeout::run: this timeout is running already"
        );
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.running);
        run_with_timeout(self.dur, Some(&self.armed), f)
    }

    /// Lifts the deadline of the `run` in progress: the closure goes on
    /// without one. Does nothing if none is running or it expired already.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = greenlet::Timeout::new(Duration::from_millis(5));
    /// let r = t.run(|| {
    ///     t.cancel();
    ///     greenlet::sleep(Duration::from_millis(20));
    /// });
    /// assert!(r.is_ok());
    /// ```
    pub fn cancel(&self) {
        if let Some(key) = self.armed.take() {
            Hub::current().timers().remove(key);
        }
    }

    /// Whether a `run` is in progress with its deadline armed (not
    /// cancelled, not yet expired).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = greenlet::Timeout::new(Duration::from_secs(1));
    /// assert!(!t.is_pending());
    /// t.run(|| assert!(t.is_pending())).unwrap();
    /// assert!(!t.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        match self.armed.get() {
            Some(key) => Hub::current().timers().contains(key),
            None => false,
        }
    }
}

/// A ticker that fires every `period` (Go's `time.Ticker`, tokio's
/// `interval`): [`tick`](Interval::tick) parks until the next tick. The
/// first tick is immediate. A greenlet that falls behind by more than a
/// period skips the missed ticks instead of firing them in a burst.
/// Also an endless iterator of tick instants.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let ticks: Vec<Instant> = greenlet::interval(Duration::from_millis(10)).take(4).collect();
/// assert_eq!(ticks.len(), 4);
/// assert!(start.elapsed() >= Duration::from_millis(30));
/// assert!(ticks.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(10)));
/// ```
pub fn interval(period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "greenlet::interval: the period must be above zero"
    );
    Interval {
        period,
        next: Instant::now(),
    }
}

/// The ticker of [`interval`].
#[derive(Debug, Clone)]
pub struct Interval {
    period: Duration,
    next: Instant,
}

impl Interval {
    /// Parks until the next tick and returns when it was due.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut every = greenlet::interval(Duration::from_millis(5));
    /// let first = every.tick();
    /// let second = every.tick();
    /// assert_eq!(second - first, Duration::from_millis(5));
    /// ```
    pub fn tick(&mut self) -> Instant {
        let due = self.next;
        sleep_until(due);
        let now = Instant::now();
        self.next = due + self.period;
        if self.next <= now {
            // Fell behind by more than a period: skip the missed ticks.
            let behind = now.duration_since(self.next).as_nanos() / self.period.as_nanos();
            self.next += self.period * (behind as u32 + 1);
        }
        due
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(greenlet::interval(Duration::from_secs(1)).period(), Duration::from_secs(1));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl Iterator for Interval {
    type Item = Instant;

    fn next(&mut self) -> Option<Instant> {
        Some(self.tick())
    }
}

/// The growing pauses between retries of an operation that has no
/// readiness edge to wait for (a Unix datagram send to a full receiver):
/// `min`, doubled after each pause up to `max`, each cut to the time left
/// before the operation's deadline, so the retries never overshoot it.
pub(crate) struct Backoff {
    pause: Duration,
    max: Duration,
}

impl Backoff {
    /// Pauses from `min` doubling up to `max`.
    pub(crate) const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { pause: min, max }
    }

    /// The next pause, cut to the time left before `deadline` (zero once
    /// it has passed: the caller retries once more at once, then times out
    /// as it would without the pauses).
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Duration {
        self.next_at(deadline, Instant::now())
    }

    /// [`next`](Backoff::next) at `now`.
    fn next_at(&mut self, deadline: Option<Instant>, now: Instant) -> Duration {
        let pause = self.pause;
        self.pause = (pause * 2).min(self.max);
        deadline.map_or(pause, |d| pause.min(d.saturating_duration_since(now)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max_and_never_passes_the_deadline() {
        let ms = Duration::from_millis;
        let now = Instant::now();
        let mut b = Backoff::new(ms(1), ms(64));
        let pauses: Vec<_> = (0..9).map(|_| b.next_at(None, now)).collect();
        let want: Vec<_> = [1, 2, 4, 8, 16, 32, 64, 64, 64].map(ms).to_vec();
        assert_eq!(pauses, want);
        // 10 ms before the deadline a 64 ms pause is cut to 10 ms...
        assert_eq!(b.next_at(Some(now + ms(10)), now), ms(10));
        // ...a shorter one is not cut...
        let mut short = Backoff::new(ms(4), ms(64));
        assert_eq!(short.next_at(Some(now + ms(10)), now), ms(4));
        // ...and at or past the deadline it is zero, while still growing.
        assert_eq!(short.next_at(Some(now), now), Duration::ZERO);
        assert_eq!(short.next_at(Some(now), now + ms(5)), Duration::ZERO);
        assert_eq!(short.next_at(None, now), ms(32));
    }

    /// What a monkey hook does when a park of its is interrupted by an
    /// expired scope: it cannot unwind, so it notes the expiry and fails
    /// its call.
    fn hook_park(d: Duration) {
        let _ = hub::park_until_with(Some(Instant::now() + d), false, hub::WaitReason::Sleep);
        if hub::interrupt_pending() {
            hub::mark_timeout_seen_in_hook();
        }
    }

    #[test]
    fn an_expiry_seen_by_a_hook_ends_with_its_scope() {
        crate::test_util::within(Duration::from_secs(20), an_expiry_seen_by_a_hook_body);
    }

    fn an_expiry_seen_by_a_hook_body() {
        let g = crate::spawn(|| {
            // A hook sees the expiry, then a Rust park delivers it.
            let first = with_timeout(Duration::from_millis(1), || {
                hook_park(Duration::from_millis(50));
                sleep(Duration::from_secs(5));
            });
            // A later scope expires while its body is parked where nothing
            // is delivered and no hook notes it; the body then finishes:
            // it made it.
            let later = with_timeout(Duration::from_millis(1), || {
                let _ = hub::park_until_with(
                    Some(Instant::now() + Duration::from_millis(50)),
                    false,
                    hub::WaitReason::Sleep,
                );
                "made it"
            });
            (first, later)
        });
        let (first, later) = g.join().unwrap();
        assert!(first.is_err());
        assert_eq!(later, Ok("made it"));
    }
}
