//! Time: `sleep`, `yield_now`, and `with_timeout`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::hub::task::Wake;
use crate::hub::timers::TimerAction;
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
    let result = catch_unwind(AssertUnwindSafe(f));
    hdr.timeout_depth.set(depth);
    hub.timers().remove(key);
    let delivered =
        matches!(&result, Err(p) if p.downcast_ref::<TimeoutSignal>().is_some_and(|s| s.id == id));
    let pending = matches!(hdr.timeout.get(), Some((_, p)) if p == id);
    let mut expired_in_hook = false;
    if pending || delivered {
        // This scope expired: whatever a monkey hook noted about it ends
        // with it (a later scope must not inherit it).
        expired_in_hook = hdr.timeout_seen_in_hook.replace(false);
    }
    if pending {
        // Expired, and `f` finished before it parked again: it made it,
        // unless a monkey hook failed one of its calls because of it.
        hdr.timeout.set(None);
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

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
