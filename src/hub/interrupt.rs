//! Kills and expired timeouts: recorded on the target task, delivered by
//! unwinding at its next park, and never delivered to a task that is
//! unwinding already.
//!
//! # Unwinding is tracked per task
//!
//! Starting an unwind inside a destructor that runs during another unwind
//! aborts the process, so a kill or timeout must not be delivered to a task
//! whose destructors are running because it unwinds (they may park: close a
//! connection, wait for a lock). `std::thread::panicking()` cannot answer
//! that question: its count is per OS thread, and every greenlet of the
//! thread shares it. While greenlet A is parked inside a destructor during
//! its own unwind, `panicking()` is true in every other greenlet too, and
//! skipping their kills and timeouts on that basis lost them (a `kill` that
//! never returned, a `with_timeout` that ran to the end).
//!
//! Each task therefore carries its own `unwinding` flag, computed whenever
//! it suspends (the only moments other tasks can run) from the thread's
//! count and the flags of the other suspended tasks:
//!
//! - the thread is not panicking: no task is unwinding;
//! - it is, and no other suspended task is marked unwinding: the unwind is
//!   this task's own;
//! - it is, and another suspended task is marked unwinding: the count could
//!   be theirs alone, so the flag keeps its last known value. That value is
//!   set when the task starts unwinding: by a panic (the panic hook this
//!   module installs, which chains to the one it replaces), by a kill or
//!   timeout delivered to it, or by the runtime re-raising a payload in it
//!   (`join` of a pool task, `spawn_blocking`); and cleared when it suspends
//!   on a thread that is not panicking, or when `with_timeout` catches its
//!   own timeout.
//!
//! What stays out of reach: a greenlet that unwinds from the user's own
//! `resume_unwind` while another greenlet is parked mid-unwind, or with the
//! panic hook replaced by a later `set_hook`, is not seen as unwinding until
//! it suspends while no other greenlet is parked mid-unwind; and a greenlet
//! that catches a panic itself while another one is parked mid-unwind is
//! taken for unwinding (its kills and timeouts wait) until it suspends with
//! no greenlet parked mid-unwind.
//!
//! A park delivers nothing to a task that was unwinding when it suspended;
//! its interrupt stays pending and is delivered at its first park after the
//! unwind has been caught. Between a task's suspension and the delivery
//! check after it resumes, none of its own code runs, so the flag is exact
//! for the delivery that follows.
//!
//! std's panic count itself stays per thread (see the crate docs'
//! "Limitations").

use std::panic::resume_unwind;
use std::sync::Once;

use super::task::Header;
use super::{Hub, current_header};

/// The unwind payload that delivers `kill`.
pub(crate) struct KillSignal;

/// The unwind payload that delivers an expired `with_timeout` scope.
pub(crate) struct TimeoutSignal {
    pub(crate) id: u64,
}

/// Records `hdr`'s unwinding state as it suspends. Inlined into every
/// switch: when the thread is not panicking (always, in practice) it is one
/// relaxed atomic load and one store.
#[inline(always)]
pub(super) fn note_suspend(hdr: &Header) {
    if std::thread::panicking() {
        note_suspend_panicking(hdr);
    } else {
        hdr.unwinding.set(false);
    }
}

#[cold]
#[inline(never)]
fn note_suspend_panicking(hdr: &Header) {
    let hub = Hub::current();
    let unwinding = hub.parked_unwinding.get() == 0 || hdr.unwinding.get();
    hdr.unwinding.set(unwinding);
    if unwinding {
        hdr.counted_unwinding.set(true);
        hub.parked_unwinding.set(hub.parked_unwinding.get() + 1);
    }
}

/// Ends the suspension [`note_suspend`] recorded. Keyed on whether the
/// suspension was counted, not on the flag: the flag of a suspended root
/// can change meanwhile (a panic in code the loop runs on the root's
/// stack).
#[inline(always)]
pub(super) fn note_resume(hdr: &Header) {
    if hdr.counted_unwinding.get() {
        note_resume_counted(hdr);
    }
}

/// After a yield's suspension, when [`Header::resume_needs_attention`]:
/// [`note_resume`], then the pending interrupt's delivery, as a park does.
#[cold]
#[inline(never)]
pub(super) fn resume_slow(hdr: &Header) {
    note_resume(hdr);
    if hdr.interrupt_pending() {
        deliver_slow(hdr);
    }
}

#[cold]
#[inline(never)]
fn note_resume_counted(hdr: &Header) {
    hdr.counted_unwinding.set(false);
    let hub = Hub::current();
    hub.parked_unwinding.set(hub.parked_unwinding.get() - 1);
}

/// Whether the running task `hdr` is unwinding right now (it has not
/// suspended since it may have started): the best answer from the thread's
/// panic count and the other tasks' flags (see the module docs).
pub(crate) fn unwinding_now(hdr: &Header) -> bool {
    if !std::thread::panicking() {
        return false;
    }
    match Hub::try_current() {
        Some(hub) if hub.parked_unwinding.get() > 0 => hdr.unwinding.get(),
        _ => true,
    }
}

/// Installs (once per process, from the first hub) a panic hook that
/// records which task of the panicking thread starts unwinding, then calls
/// the hook it replaced. Skipped while the thread panics (`set_hook` would
/// panic then); a later hub installs it.
pub(super) fn install_panic_marker() {
    static ONCE: Once = Once::new();
    if std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            mark_running_unwinding();
            prev(info);
        }));
    });
}

/// Marks the running greenlet of this thread, if any, as unwinding.
///
/// Not the root: root code commonly catches panics (a top-level handler,
/// a test around a "would block forever" report), and a root flag left set
/// by a caught panic would stay set for as long as some greenlet is parked
/// mid-unwind, holding up the root's own timeouts. The root's flag comes
/// from its suspensions alone (see the module docs).
fn mark_running_unwinding() {
    let cur = current_header();
    if !cur.is_null() {
        // SAFETY: as in `pending_interrupt`.
        unsafe { (*cur).unwinding.set(true) };
    }
}

/// `std::panic::resume_unwind` for the runtime's own re-raising of a
/// payload (a pool task's panic, a blocking job's): records that the
/// running task unwinds.
pub(crate) fn resume_unwind_marked(payload: Box<dyn std::any::Any + Send>) -> ! {
    mark_running_unwinding();
    resume_unwind(payload)
}

/// Starts unwinding the running task with `payload`, recording that it
/// unwinds.
pub(crate) fn unwind_with(hdr: &Header, payload: Box<dyn std::any::Any + Send>) -> ! {
    hdr.unwinding.set(true);
    resume_unwind(payload)
}

/// The running task's pending interrupt, without delivering it: `Some(true)`
/// for a kill, `Some(false)` for an expired `with_timeout`.
#[cfg(feature = "monkey")]
pub(crate) fn pending_interrupt() -> Option<bool> {
    let hdr = running();
    if hdr.kill.get() {
        Some(true)
    } else if hdr.interrupt_pending() {
        // Not a kill: the expired timeout's flag.
        Some(false)
    } else {
        None
    }
}

/// Records that a monkey hook failed a call because of the running task's
/// pending expired timeout.
#[cfg_attr(not(feature = "monkey"), allow(dead_code))]
pub(crate) fn mark_timeout_seen_in_hook() {
    running().cold().timeout_seen_in_hook.set(true);
}

/// Whether a kill or an expired `with_timeout` is pending for the running
/// task.
pub(crate) fn interrupt_pending() -> bool {
    running().interrupt_pending()
}

/// Unwinds the running task if a kill or an expired `with_timeout` is
/// pending for it. Called right after a park, so the task's `unwinding`
/// flag is the one recorded when it suspended.
pub(crate) fn deliver_interrupts() {
    let hdr = running();
    if hdr.interrupt_pending() {
        deliver_slow(hdr);
    }
}

/// Before a park: unwinds the running task at once if a kill or expired
/// timeout is pending for it and it is not unwinding. Such an interrupt
/// was skipped while the task unwound (and the unwind was caught since), or
/// it is a kill the task caught: parking without delivering it would lose
/// it, since nothing will unpark the task for it again.
#[inline]
pub(crate) fn deliver_before_park() {
    let hdr = running();
    if hdr.interrupt_pending() {
        deliver_before_park_slow(hdr);
    }
}

#[cold]
#[inline(never)]
fn deliver_before_park_slow(hdr: &Header) {
    if !unwinding_now(hdr) {
        deliver(hdr);
    }
}

/// The running task's header (the root's in root context).
#[inline]
fn running() -> &'static Header {
    let cur = current_header();
    if cur.is_null() {
        &Hub::current().root
    } else {
        // SAFETY: CURRENT points at the running greenlet's header, which
        // `run_task` keeps alive while it runs (the `'static` borrow does
        // not outlive the callers here, which use it before they park).
        unsafe { &*cur }
    }
}

/// Delivers `hdr`'s pending interrupt by unwinding, unless it is unwinding
/// already (as recorded when it suspended). A kill stays set (see
/// `Header::kill`); a timeout is consumed.
#[cold]
pub(super) fn deliver_slow(hdr: &Header) {
    if !hdr.unwinding.get() {
        deliver(hdr);
    }
}

fn deliver(hdr: &Header) {
    if hdr.kill.get() {
        unwind_with(hdr, Box::new(KillSignal));
    }
    if let Some((_, id)) = hdr.take_expired_timeout() {
        unwind_with(hdr, Box::new(TimeoutSignal { id }));
    }
}
