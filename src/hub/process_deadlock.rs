//! The process-wide "would block forever" rule (opt-in).
//!
//! The per-hub rule (see `Hub::maintain`) proves a root wait endless only
//! when no other thread could end it: every sync wait of the hub has no
//! handle outside its waiter. A wait on a primitive another thread can
//! reach (a clone, a `static`, a `Semaphore` shared by reference) proves
//! nothing there. This rule looks at the whole process instead: when every
//! OS thread is either a hub asleep with nothing but sync waits (no timer,
//! no registered fd, no blocking-pool job or cross-thread result awaited,
//! no remote message queued) or one of the runtime's own threads with no
//! blocking-pool job queued or running, nothing can ever run again, and the
//! root waits of every such hub panic with "would block forever" and the
//! hub's dump.
//!
//! # Cost
//!
//! Off by default: a hub going to sleep pays one relaxed load of the mode,
//! and only on the path where it is about to sleep with no timer and no fd
//! (never on a switch, spawn or park). Turned on (`GREENLET_DEADLOCK=process`
//! or [`process_wide`]), such a hub also takes a process-wide mutex,
//! reads `/proc/self/stat` (the thread count) and sleeps at most
//! [`RECHECK_MAX`] between re-checks (a thread the runtime does not know
//! may exit meanwhile, or a stuck hub's pending message be read, with no
//! hub left to notice).
//!
//! # Soundness of the count
//!
//! The count of known threads never exceeds the truth: a runtime thread
//! counts itself once it runs and uncounts itself before it exits, and a
//! hub is counted only while it is registered asleep. So a thread the
//! runtime does not know, or one busy elsewhere (running code, blocked in
//! a `std` lock or a syscall), makes the totals differ and nothing is
//! reported. A hub woken after it registered has a remote message pending
//! (the only way to wake a hub with no timer and no fd), which the check
//! sees: a sender sets the flag before it could itself register.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Hub;
use super::remote::{Remote, RemoteMsg};
pub(crate) use crate::sys::RuntimeThread;

const UNREAD: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNREAD);

/// Blocking-pool jobs queued or running.
static POOL_JOBS: AtomicUsize = AtomicUsize::new(0);

/// The first re-check delay of a stuck hub; it doubles up to
/// [`RECHECK_MAX`].
const RECHECK_MIN: Duration = Duration::from_millis(25);
/// The longest a stuck hub sleeps between re-checks.
pub(crate) const RECHECK_MAX: Duration = Duration::from_millis(400);

/// A hub registered asleep with nothing but sync waits.
struct Stuck {
    /// Its remote queue: valid while registered (the hub deregisters
    /// before it wakes from that sleep, under the [`STUCK`] lock).
    remote: *const Remote,
}

// SAFETY: the pointer is only read under the `STUCK` lock, while its hub
// is registered and so alive (see `Stuck::remote`); `Remote` is `Sync`.
unsafe impl Send for Stuck {}

static STUCK: Mutex<Vec<Stuck>> = Mutex::new(Vec::new());

thread_local! {
    /// This hub's next re-check delay.
    static BACKOFF: Cell<Duration> = const { Cell::new(RECHECK_MIN) };
}

/// Turns the process-wide deadlock rule on or off (see the crate docs'
/// "Deadlocks and dumps"). Also turned on by the environment variable
/// `GREENLET_DEADLOCK=process` (`hub`, the default, leaves it off), read
/// the first time a hub needs it; a call overrides it.
///
/// On: when every OS thread of the process is a hub thread whose root waits
/// with nothing but sync waits (no timer, no fd, no pool job) or one of the
/// runtime's own idle threads, and no hub has a message pending, every such
/// root wait panics with "this operation would block forever" and its
/// hub's dump, whatever handles the waits' primitives have. A thread the
/// runtime does not know (one your program or a library spawned, not
/// running a hub loop) keeps the rule from firing while it lives.
///
/// # Examples
///
/// ```no_run
/// use greenlet::sync::Semaphore;
///
/// greenlet::dump::process_wide(true);
/// // No other thread exists, no permit can ever come back: this panics
/// // ("would block forever") instead of hanging.
/// let s = Semaphore::new(0);
/// let _p = s.acquire();
/// ```
pub fn process_wide(enabled: bool) {
    MODE.store(if enabled { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether the rule is on (reads `GREENLET_DEADLOCK` on first use).
#[inline]
pub(crate) fn enabled() -> bool {
    match MODE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => read_env(),
    }
}

#[cold]
fn read_env() -> bool {
    let on = match std::env::var("GREENLET_DEADLOCK") {
        Ok(v) if v == "process" => true,
        Ok(v) if v.is_empty() || v == "hub" => false,
        Ok(v) => panic!("greenlet: GREENLET_DEADLOCK={v:?} is not `process` or `hub`"),
        Err(_) => false,
    };
    // A call to `process_wide` made meanwhile wins.
    let _ = MODE.compare_exchange(
        UNREAD,
        if on { ON } else { OFF },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    MODE.load(Ordering::Relaxed) == ON
}

/// A blocking-pool job was queued (call before it can run).
pub(crate) fn pool_job_queued() {
    POOL_JOBS.fetch_add(1, Ordering::SeqCst);
}

/// A blocking-pool job finished (call after it ran, or was dropped
/// unrun).
pub(crate) fn pool_job_done() {
    POOL_JOBS.fetch_sub(1, Ordering::SeqCst);
}

impl Hub {
    /// Called instead of sleeping without a deadline, with nothing but
    /// sync waits left (no timer, no fd, no wait slot) and the rule on:
    /// registers this hub as stuck, and panics if the whole process is.
    /// Returns how long to sleep before checking again; the caller calls
    /// [`Hub::stuck_leave`] once awake.
    #[cold]
    pub(super) fn stuck_enter(&self) -> Duration {
        let mut stuck = STUCK.lock().unwrap_or_else(|e| e.into_inner());
        stuck.push(Stuck {
            remote: Arc::as_ptr(self.remote()),
        });
        if process_is_stuck(&stuck) {
            // Every other stuck hub panics at its next loop turn, this
            // one at once.
            let me = Arc::as_ptr(self.remote());
            for s in stuck.iter().filter(|s| s.remote != me) {
                // SAFETY: registered, so its hub and remote queue are alive
                // (see `Stuck::remote`); the count taken here is ours.
                let remote = unsafe {
                    Arc::increment_strong_count(s.remote);
                    Arc::from_raw(s.remote)
                };
                remote.send(RemoteMsg::Run(Box::new(|| {
                    if let Some(hub) = Hub::try_current() {
                        hub.process_blocks_forever();
                    }
                })));
            }
            stuck.retain(|s| s.remote != me);
            drop(stuck);
            self.process_blocks_forever();
        }
        drop(stuck);
        BACKOFF.with(|b| {
            let d = b.get();
            b.set((d * 2).min(RECHECK_MAX));
            d
        })
    }

    /// Deregisters this hub once awake (see [`Hub::stuck_enter`]).
    #[cold]
    pub(super) fn stuck_leave(&self) {
        // Woken by a message (the only way), not only to re-check: start
        // the re-check delays over.
        let progressed = self.remote().has_pending();
        let me = Arc::as_ptr(self.remote());
        let mut stuck = STUCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = stuck.iter().position(|s| s.remote == me) {
            stuck.swap_remove(i);
        }
        drop(stuck);
        if progressed {
            BACKOFF.with(|b| b.set(RECHECK_MIN));
        }
    }

    #[cold]
    fn process_blocks_forever(&self) -> ! {
        panic!(
            "greenlet: this operation would block forever: every thread of the process is a hub \
             waiting with nothing but sync waits (no timer, no I/O, no blocking-pool job) or an \
             idle runtime thread, so none can ever wake another (process-wide deadlock \
             detection)\n{}",
            self.dump()
        );
    }
}

/// Whether every thread of the process is accounted for as stuck (see the
/// module docs). Called under the `STUCK` lock.
fn process_is_stuck(stuck: &[Stuck]) -> bool {
    if POOL_JOBS.load(Ordering::SeqCst) != 0 {
        return false;
    }
    for s in stuck {
        // SAFETY: registered, so alive (see `Stuck::remote`).
        if unsafe { (*s.remote).has_pending() } {
            return false;
        }
    }
    let known = stuck.len() + crate::sys::runtime_threads();
    crate::sys::thread_count() == Some(known)
}
