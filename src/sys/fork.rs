//! Which fork of the process this is: a count of the `fork`s that led to
//! it from a process that ran hubs.
//!
//! A forked child shares its parent's epoll instances: the fd is
//! inherited, and an epoll's interest list lives with the open file, not
//! with the fd. Left as it is, a hub in the child would wait on the
//! parent's instance, take events meant for the parent (edge-triggered:
//! each is reported once), add its own fds to the parent's list, and
//! remove the parent's with `EPOLL_CTL_DEL`. So every reactor records the
//! generation it was made in (or last made its own epoll in), and one that
//! finds a newer generation makes a new epoll before it polls or registers
//! (see `hub::reactor`). Until then, in particular between `fork` and
//! `exec` (std's `Command` with `pre_exec` `dup2`s the child's stdio there,
//! which the monkey hooks see), it leaves the inherited instance alone:
//! removing an fd from it would remove the parent's registration.
//!
//! A `pthread_atfork` child handler counts, not a pid check: a daemonizing
//! child keeps its hub, and a pid can be reused by a grandchild. `vfork`
//! and `posix_spawn` run no fork handlers; their child shares the parent's
//! memory until it `exec`s, and runs no hub code.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many forks separate this process from the first that watched; 0
/// in that one. Only the `pthread_atfork` child handler changes it.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler (once per process); called when a hub is made, so
/// it is in place before any fork that could touch a hub's epoll.
pub(crate) fn watch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `in_child` is async-signal-safe (one lock-free atomic
        // add), as a handler run between `fork` and `exec` must be.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork: {rc}");
    });
}

/// This process's fork generation: it differs from the one a hub recorded
/// when the process is a child forked since. Only the child changes it,
/// before any of its code runs, so a relaxed load suffices.
#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
