//! Hooks for foreign event loops: `epoll_wait`, `epoll_pwait` and
//! `epoll_pwait2`.
//!
//! A library that runs its own epoll loop inside a greenlet (a C library's
//! event loop; a tokio current-thread runtime driven by `block_on`, as
//! inside the `postgres` crate) would block the hub for as long as its
//! loop waits. Inside a greenlet, a waiting call is made without waiting
//! first (timeout 0); if nothing is ready, the greenlet parks until the
//! hub's own epoll sees the foreign epoll fd readable (an epoll fd is
//! itself pollable: it turns readable when one of its fds has an event),
//! or until the call's timeout passes, then tries again. The hub keeps
//! running the other greenlets meanwhile.
//!
//! A kill or an expired `with_timeout` makes the call fail with
//! `ECANCELED`/`ETIMEDOUT`, as every hook does; the foreign loop decides
//! what that means (tokio panics with "unexpected error when polling the
//! I/O driver", which unwinds its `block_on` out of the greenlet:
//! `with_timeout` then returns `Err(Elapsed)`).
//!
//! `epoll_pwait` and `epoll_pwait2` with a signal mask pass straight
//! through: their point is to change the mask atomically for the wait,
//! which a park cannot do.

use std::time::{Duration, Instant};

use libc::{c_int, epoll_event};

use crate::hub::reactor::Direction;
use crate::monkey::real::set_errno;
use crate::monkey::{Hook, Waited, interrupt_errno, real, wait_fd};

/// Hook: `epoll_wait(2)`.
///
/// # Safety
/// As libc's `epoll_wait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    match Hook::enter() {
        Some(h) if timeout != 0 => wait_foreign(&h, epfd, ms_deadline(timeout), &mut || {
            // SAFETY: the caller's event buffer, as for epoll_wait.
            unsafe { real::epoll_wait(epfd, events, max, 0) }
        }),
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::epoll_wait(epfd, events, max, timeout) },
    }
}

/// Hook: `epoll_pwait(2)`.
///
/// # Safety
/// As libc's `epoll_pwait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    match Hook::enter() {
        Some(h) if timeout != 0 && mask.is_null() => {
            wait_foreign(&h, epfd, ms_deadline(timeout), &mut || {
                // SAFETY: the caller's event buffer, as for epoll_pwait.
                unsafe { real::epoll_wait(epfd, events, max, 0) }
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::epoll_pwait(epfd, events, max, timeout, mask) },
    }
}

/// Hook: `epoll_pwait2(2)` (a `timespec` timeout; null waits forever).
///
/// # Safety
/// As libc's `epoll_pwait2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let dur = if timeout.is_null() {
        None
    } else {
        // SAFETY: a non-null timeout points at the caller's timespec.
        let ts = unsafe { *timeout };
        Some(Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.clamp(0, 999_999_999) as u32,
        ))
    };
    match Hook::enter() {
        Some(h) if dur != Some(Duration::ZERO) && mask.is_null() => {
            let deadline = dur.map(crate::hub::deadline_after);
            wait_foreign(&h, epfd, deadline, &mut || {
                // SAFETY: the caller's event buffer, as for epoll_pwait2.
                unsafe { real::epoll_wait(epfd, events, max, 0) }
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::epoll_pwait2(epfd, events, max, timeout, mask) },
    }
}

/// The deadline of a millisecond timeout (negative: none).
fn ms_deadline(timeout: c_int) -> Option<Instant> {
    (timeout > 0).then(|| crate::hub::deadline_after(Duration::from_millis(timeout as u64)))
}

/// Harvests with `try_now` (the real call, timeout 0); while it finds
/// nothing, parks on the foreign epoll fd's readiness until `deadline`.
fn wait_foreign(
    hook: &Hook,
    epfd: c_int,
    deadline: Option<Instant>,
    try_now: &mut dyn FnMut() -> c_int,
) -> c_int {
    if let Some(e) = interrupt_errno() {
        set_errno(e);
        return -1;
    }
    loop {
        let n = try_now();
        if n != 0 {
            return n; // events, or an error (EBADF, EINVAL, EINTR) as is
        }
        // `wait_fd` forgets the fd's known readiness first, and nothing
        // runs the hub loop between the harvest above and the park: an
        // event that arrives in between wakes the park.
        match wait_fd(hook, epfd, Direction::Read, deadline) {
            Waited::Ready => {}
            Waited::TimedOut => return try_now(),
            Waited::Interrupted(e) => {
                set_errno(e);
                return -1;
            }
        }
    }
}
