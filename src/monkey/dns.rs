//! Hook for name resolution: `getaddrinfo`. glibc's resolver uses its own
//! internal socket calls, which no hook sees, so inside a greenlet the whole
//! call runs on the blocking thread pool while the greenlet parks.

use libc::{c_char, c_int};

use crate::monkey::{Hook, real};

/// The caller's arguments, moved to a pool thread. The greenlet that owns
/// them stays parked until the pool is done with them.
struct Args {
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
}

// SAFETY: the pointers stay valid while the calling greenlet is parked
// waiting for the pool thread, and nothing else touches them meanwhile.
unsafe impl Send for Args {}

/// Hook: `getaddrinfo(3)`.
///
/// # Safety
/// As libc's `getaddrinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let Some(hook) = Hook::enter() else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    };
    let args = Args {
        node,
        service,
        hints,
        res,
    };
    hook.parked(|| {
        crate::threadpool::run_blocking_uninterruptible(move || {
            let a = args;
            // SAFETY: the caller's arguments (see `Args`).
            unsafe { real::getaddrinfo(a.node, a.service, a.hints, a.res) }
        })
    })
}
