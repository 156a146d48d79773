//! `Event`: a flag greenlets can wait for.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, wait};
use super::{TimedOut, deadline};
use crate::hub::SyncKind;

/// A flag that greenlets wait for until it is set (gevent's
/// `gevent.event.Event`).
///
/// [`set`](Event::set) wakes every waiter; the flag stays set (later
/// [`wait`](Event::wait)s return at once) until [`clear`](Event::clear).
/// A waiter woken by a `set` returns even if the flag was cleared again
/// before it got to run.
///
/// As in gevent, `set` wakes the waiters in the order they began waiting,
/// and a greenlet that calls `wait` while those waiters have been woken
/// but have not yet run (the setter itself, say) yields to them first: it
/// returns after them, not before.
///
/// `Event` is a cheap handle: clones share one flag, so it moves into many
/// greenlets (and threads) without an `Arc`.
///
/// # Waiting protocol
///
/// `wait` first reads the flag (one atomic load) and the number of woken
/// waiters that have not run yet. If the flag is clear, it takes the
/// internal lock, reads the flag again and registers at the back of the
/// waiter list, then parks. `set`, under the same lock, notifies every
/// registered waiter, counts them, and only then stores the flag, so a
/// waiter either sees the flag or is notified: never neither. Each woken
/// waiter uncounts itself (under the lock) when it runs, or, killed before
/// it ran, as it dies. A `wait` that finds the flag set while the count is
/// not zero yields once, so the woken waiters of its own hub, which are
/// ahead of it in the ready queue, run first (woken waiters of other hubs
/// run on their own hub's schedule). See [the module docs](crate::sync)
/// for the protocol shared by all primitives.
///
/// # Examples
///
/// ```
/// use greenlet::sync::Event;
///
/// let ready = Event::new();
/// let waiters: Vec<_> = (0..3)
///     .map(|i| {
///         let ready = ready.clone();
///         greenlet::spawn(move || {
///             ready.wait();
///             i
///         })
///     })
///     .collect();
/// greenlet::yield_now(); // the waiters start and park
/// ready.set();
/// let done: Vec<i32> = greenlet::joinall(waiters).into_iter().map(Result::unwrap).collect();
/// assert_eq!(done, [0, 1, 2]);
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: AtomicBool,
    /// `State::woken`, as last stored under the lock; read without it on
    /// the fast path. Never below the true count (only the `abandon` hook,
    /// which cannot reach it, lowers the count without storing it), so a
    /// stale value costs a trip through the lock, never an early return.
    woken_hint: AtomicUsize,
    state: Lock<State>,
}

#[derive(Default)]
struct State {
    /// Notified with `()`, which stands for "counted in `woken`".
    waiters: WaitList<()>,
    /// Waiters woken by a `set` that have not run yet.
    woken: usize,
}

fn list(s: &mut State) -> &mut WaitList<()> {
    &mut s.waiters
}

/// The `abandon` hook: a waiter woken and then killed before it ran no
/// longer holds anyone up.
fn uncount(s: &mut State, (): ()) -> Option<()> {
    s.woken -= 1;
    None
}

impl Event {
    /// A new event, not set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = greenlet::sync::Event::new();
    /// assert!(!e.is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = greenlet::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// e.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut s = self.inner.state.lock();
        while s.waiters.notify_first_with(()).is_ok() {
            s.woken += 1;
        }
        // The count before the flag: a lock-free reader that sees the flag
        // sees the count too.
        self.inner.woken_hint.store(s.woken, Ordering::Release);
        self.inner.flag.store(true, Ordering::Release);
    }

    /// Clears the flag: later waits park until the next [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = greenlet::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        let _s = self.inner.state.lock();
        self.inner.flag.store(false, Ordering::Release);
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = greenlet::sync::Event::new();
    /// assert!(!e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// Parks until the flag is set; returns at once if it already is.
    ///
    /// In root context this runs the hub until then. A wait that nothing
    /// will ever end hangs (see [the module docs](crate::sync)).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::Event;
    ///
    /// let e = Event::new();
    /// let setter = greenlet::spawn({
    ///     let e = e.clone();
    ///     move || e.set()
    /// });
    /// e.wait(); // the root runs the hub, so `setter` runs
    /// setter.join().unwrap();
    /// ```
    #[inline]
    pub fn wait(&self) {
        // Without a deadline the wait can only end by being notified.
        let _ = self.wait_until(None);
    }

    /// Parks until the flag is set or `timeout` passes.
    ///
    /// # Errors
    /// [`TimedOut`] if `timeout` passed while the flag stayed clear.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{Event, TimedOut};
    ///
    /// let e = Event::new();
    /// assert_eq!(e.wait_timeout(Duration::from_millis(10)), Err(TimedOut));
    /// e.set();
    /// assert_eq!(e.wait_timeout(Duration::from_millis(10)), Ok(()));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        self.wait_until(Some(deadline(timeout)))
    }

    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), TimedOut> {
        if self.is_set() && self.inner.woken_hint.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let s = self.inner.state.lock();
        if self.is_set() {
            let woken = s.woken;
            self.inner.woken_hint.store(woken, Ordering::Release);
            drop(s);
            if woken > 0 {
                // Woken waiters have not run yet: let them go first.
                crate::yield_now();
            }
            return Ok(());
        }
        match wait(
            &self.inner.state,
            s,
            list,
            None,
            deadline,
            uncount,
            WaitSite::sole(SyncKind::Event, &|| Arc::strong_count(&self.inner) == 1),
        ) {
            Waited::Notified(_) => {
                let mut s = self.inner.state.lock();
                s.woken -= 1;
                self.inner.woken_hint.store(s.woken, Ordering::Release);
                Ok(())
            }
            Waited::TimedOut(_) => Err(TimedOut),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

/// Waiting for the flag as one operation of a
/// [`Select`](crate::select::Select) or [`wait`](crate::select::wait).
///
/// # Examples
///
/// ```
/// use greenlet::select::{Waitable, wait};
/// let e = greenlet::sync::Event::new();
/// e.set();
/// assert_eq!(wait(&[&e as &dyn Waitable<Output = ()>], None, None), [(0, ())]);
/// ```
impl super::waitable::Waitable for Event {
    type Output = ();

    fn start(&self) -> super::waitable::Attempt<'_, ()> {
        use super::waitable::{Attempt, Pending};
        if self.is_set() {
            return Attempt::Ready(());
        }
        Attempt::Pending(Pending::new(EventOp {
            event: self,
            armed: None,
        }))
    }
}

/// A select wait cannot end while the selecting task holds the only
/// handle.
impl super::wait_queue::Sole for Event {
    fn sole(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
    }
}

/// A select wait for an [`Event`]: checked again when polled, registered
/// only while a select parks (see
/// [`PendingOp`](super::waitable::PendingOp)).
struct EventOp<'e> {
    event: &'e Event,
    armed: Option<super::wait_queue::Armed<'e, State, ()>>,
}

impl super::waitable::PendingOp<()> for EventOp<'_> {
    fn poll(&mut self) -> Option<()> {
        let Some(armed) = &mut self.armed else {
            return self.event.is_set().then_some(());
        };
        armed.poll()?;
        let inner: &Inner = &self.event.inner;
        let mut s = inner.state.lock();
        s.woken -= 1;
        inner.woken_hint.store(s.woken, Ordering::Release);
        Some(())
    }

    fn arm(&mut self, _: super::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let inner: &Inner = &self.event.inner;
        let s = inner.state.lock();
        if self.event.is_set() {
            return true;
        }
        self.armed = Some(super::wait_queue::arm(
            &inner.state,
            s,
            list,
            None,
            uncount,
            Some(self.event),
        ));
        false
    }

    fn disarm(&mut self, _: super::waitable::ArmToken) {
        self.armed = None;
    }
}
