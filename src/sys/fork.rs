//! Whether this process is a child made by `fork` from a process that ran
//! hubs.
//!
//! A forked child shares its parent's epoll instances (the fd is
//! inherited, and epoll's interest lists live with the open file), so a
//! hub's `EPOLL_CTL_DEL` in the child removes the *parent's* registration:
//! std's `Command` (when it forks, as with `pre_exec`) `dup2`s the child's
//! stdio onto 0-2, and with monkey patching that `dup2` deregisters
//! whatever the parent's hub had registered there, so the parent's
//! greenlet waiting on it never wakes. The hub therefore leaves its epoll
//! alone in a forked child.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set in the child by the `pthread_atfork` handler; never in the parent.
static FORKED: AtomicBool = AtomicBool::new(false);

extern "C" fn in_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Installs the handler (once per process); called when a hub is made, so
/// it is in place before any fork that could touch a hub's epoll.
pub(crate) fn watch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `in_child` is async-signal-safe (one atomic store), as a
        // handler run between `fork` and `exec` must be.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork: {rc}");
    });
}

/// Whether this process was forked from one that had made a hub.
#[inline]
pub(crate) fn forked() -> bool {
    FORKED.load(Ordering::Relaxed)
}
