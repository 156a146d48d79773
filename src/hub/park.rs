//! Parking and waking: how a task leaves the running state (park, yield,
//! a timed park) and how a parked one becomes ready again.

use std::time::Instant;

use super::run::LoopGuard;
use super::task::{Header, State, TaskRef, Wake};
use super::timers::{TimerAction, TimerKey};
use super::{Hub, WaitReason, current_header, deliver_interrupts, interrupt};

impl Hub {
    /// Makes a parked task ready, exactly once: returns false (and does
    /// nothing) when it is not parked.
    #[inline]
    pub(crate) fn unpark(&self, task: &TaskRef, wake: Wake) -> bool {
        self.unpark_as(task, wake, false)
    }

    /// [`unpark`](Hub::unpark) for a hand-off (a queue item or a channel
    /// message given straight to a parked getter): the woken task goes to
    /// the run-next slot, so it runs as soon as the running task parks or
    /// yields, while what it was handed is still in cache (Go's
    /// `runnext`). The slot is emptied by every pick of the next task, so
    /// it holds the first hand-off of the current run; later ones in the
    /// same run go to the back of the ready queue, so that a task handing
    /// items to many getters wakes them in order (unlike Go, where the
    /// last one jumps the queue). Fairness: the slot is taken ahead of the
    /// queue at most [`NEXT_STREAK`](super::NEXT_STREAK) runs in a row; then the queue's first
    /// task runs and the chain goes to the back. Everyone else keeps FIFO
    /// order.
    #[inline]
    pub(crate) fn unpark_next(&self, task: &TaskRef, wake: Wake) -> bool {
        self.unpark_as(task, wake, true)
    }

    #[inline(always)]
    fn unpark_as(&self, task: &TaskRef, wake: Wake, run_next: bool) -> bool {
        let hdr: &Header = task;
        if hdr.state.get() != State::Parked {
            return false;
        }
        hdr.wake.set(wake);
        hdr.state.set(State::Ready);
        if !hdr.is_root() {
            // SAFETY: as in `push_ready`.
            let next = unsafe { &mut *self.next.get() };
            if run_next && next.is_none() {
                *next = Some(task.clone());
            } else {
                self.push_ready(task.clone());
            }
        }
        true
    }

    /// Parks the running task until it is unparked and returns why, without
    /// delivering kills or timeouts (see [`park`]).
    ///
    /// Inlined, as are [`park`] and [`park_until`]: after a switch every
    /// return up the call chain to the parking code mispredicts (the CPU's
    /// return-stack buffer holds the other stack's addresses), so a shallow
    /// chain makes the greenlet side of a switch cheaper.
    ///
    /// `reason` is recorded for dumps and deadlock reports (one two-word
    /// store, see `PackedReason`).
    #[inline(always)]
    pub(crate) fn park_raw(&self, reason: WaitReason) -> Wake {
        let cur = current_header();
        if cur.is_null() {
            self.park_root(reason)
        } else {
            // SAFETY: CURRENT points at the header of the task that is
            // running this code; `run_task` keeps it alive.
            let hdr = unsafe { &*cur };
            hdr.set_reason(reason);
            hdr.since.set(self.clock.get());
            hdr.state.set(State::Parked);
            switch_out(hdr);
            hdr.wake.get()
        }
    }

    /// The root's park: runs the loop on the root's stack until the root is
    /// unparked. Out of line, so the greenlet path of `park_raw` stays small
    /// enough to inline.
    #[inline(never)]
    fn park_root(&self, reason: WaitReason) -> Wake {
        // Refuse re-entry before touching the root's state: a blocking call
        // made from inside the loop (a destructor the loop ran) must leave
        // the outer wait parked, even if its panic is caught.
        let _loop = LoopGuard::enter(self);
        self.monitor.left();
        let root: &Header = &self.root;
        root.set_reason(reason);
        root.since.set(self.clock.get());
        root.state.set(State::Parked);
        interrupt::note_suspend(root);
        let guard = RootUnpark(root);
        self.run_until_root_ready();
        drop(guard);
        self.monitor.root_running();
        self.guard_exit();
        root.wake.get()
    }
}

/// Suspends the running greenlet back into the loop, keeping its unwinding
/// state (see [`interrupt`]).
#[inline(always)]
fn switch_out(hdr: &Header) {
    interrupt::note_suspend(hdr);
    suspend(hdr);
    interrupt::note_resume(hdr);
}

/// Suspends the running greenlet back into the loop.
#[inline]
fn suspend(hdr: &Header) {
    // Only its address is used: left uninitialized, it costs no store.
    let here = std::mem::MaybeUninit::<u8>::uninit();
    hdr.park_sp.set(here.as_ptr() as usize);
    let y = hdr.yielder.get();
    // SAFETY: `yielder` was set by the fiber prologue and points into this
    // fiber's own stack, which is live: we are running on it.
    unsafe { (*y).suspend(()) };
}

/// Resets the root to `Running` when its park ends, even by unwinding.
struct RootUnpark<'a>(&'a Header);

impl Drop for RootUnpark<'_> {
    fn drop(&mut self) {
        self.0.state.set(State::Running);
        interrupt::note_resume(self.0);
    }
}

/// Ends a root "suspension" that did not park it (a root `yield_now`).
pub(super) struct RootResume<'a>(pub(super) &'a Header);

impl Drop for RootResume<'_> {
    fn drop(&mut self) {
        interrupt::note_resume(self.0);
    }
}

/// Lets the other ready greenlets run, then continues; delivers a pending
/// kill or timeout. Always inlined: the greenlet side of a switch should
/// return straight into user code (with the unwinding bookkeeping of
/// `switch_out`, plain `#[inline]` no longer inlined it, and a yield
/// ping-pong went from 8 to 30 ns).
#[inline(always)]
pub(crate) fn yield_now() {
    let cur = current_header();
    if cur.is_null() {
        Hub::current().run_round();
        deliver_interrupts();
    } else {
        // SAFETY: CURRENT points at the running greenlet's header, kept
        // alive by `run_task`.
        let hdr = unsafe { &*cur };
        hdr.state.set(State::Ready);
        // `switch_out` with its resume bookkeeping folded into the one
        // check below (the same steps, in the same order, off the hot
        // path).
        interrupt::note_suspend(hdr);
        suspend(hdr);
        if hdr.resume_needs_attention() {
            interrupt::resume_slow(hdr);
        }
    }
}

/// Parks the running task and delivers a pending kill or expired timeout by
/// unwinding (never while already unwinding).
#[inline(always)]
pub(crate) fn park(reason: WaitReason) -> Wake {
    interrupt::deliver_before_park();
    let hub = Hub::current();
    let wake = hub.park_raw(reason);
    deliver_interrupts();
    wake
}

/// Parks the running task until it is unparked or `deadline` passes
/// (`None`: no deadline). Returns `Wake::TimedOut` if the deadline passed
/// (the timer is cleaned up either way, also when the park unwinds). Like
/// every park, it may return spuriously with `Wake::Ready`: callers re-check
/// their condition in a loop.
#[inline]
pub(crate) fn park_until(deadline: Option<Instant>, reason: WaitReason) -> Wake {
    park_until_with(deadline, true, reason)
}

/// [`park_until`], delivering kills and timeouts by unwinding only if
/// `deliver`; otherwise the caller checks [`interrupt_pending`](super::interrupt_pending).
///
/// The untimed park is inlined whole into its callers (the fd waits):
/// every frame between the user's code and the switch is one more
/// return to mispredict and more stack to bring back into cache when the
/// greenlet resumes. The timed one stays out of line.
#[inline(always)]
pub(crate) fn park_until_with(
    deadline: Option<Instant>,
    deliver: bool,
    reason: WaitReason,
) -> Wake {
    match deadline {
        None => park_untimed(deliver, reason),
        Some(deadline) => park_timed(deadline, deliver, reason),
    }
}

/// Parks until unparked, delivering kills and timeouts before and after
/// if `deliver`.
#[inline(always)]
fn park_untimed(deliver: bool, reason: WaitReason) -> Wake {
    if deliver {
        interrupt::deliver_before_park();
    }
    let wake = Hub::current().park_raw(reason);
    if deliver {
        deliver_interrupts();
    }
    wake
}

/// The timed park: [`park_untimed`] with the task marked timed and its
/// deadline in the hub's timers for as long as it lasts (both undone
/// however it ends, a kill delivered before the park included).
#[inline(never)]
fn park_timed(deadline: Instant, deliver: bool, reason: WaitReason) -> Wake {
    let hub = Hub::current();
    let task = hub.current_task();
    task.timed.set(true);
    let _clear = ClearTimed(&task);
    let guard = TimerGuard(Some(
        hub.timers()
            .insert(deadline, TimerAction::Wake(task.clone())),
    ));
    let wake = park_untimed(deliver, reason);
    if wake == Wake::TimedOut || guard.fired(hub) {
        std::mem::forget(guard);
        Wake::TimedOut
    } else {
        wake
    }
}

/// Ends a timed park's mark however the park ends.
struct ClearTimed<'a>(&'a TaskRef);

impl Drop for ClearTimed<'_> {
    fn drop(&mut self) {
        self.0.timed.set(false);
    }
}

/// A timer that is removed when dropped (also when its waiter unwinds).
struct TimerGuard(Option<TimerKey>);

impl TimerGuard {
    /// Whether the timer already fired (it is no longer armed).
    fn fired(&self, hub: &Hub) -> bool {
        match self.0 {
            Some(k) => !hub.timers.borrow().contains(k),
            None => true,
        }
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            Hub::current().timers.borrow_mut().remove(k);
        }
    }
}
