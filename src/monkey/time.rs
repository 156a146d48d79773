//! Hooks for sleeping: `clock_nanosleep` (what `std::thread::sleep` calls),
//! `nanosleep`, `usleep` and `sleep`. Inside a greenlet they park on a hub
//! timer; a kill or an expired `with_timeout` ends the sleep early (`EINTR`
//! with nothing left to sleep, so callers that loop on `EINTR` stop).

use std::time::Duration;

use libc::{c_int, c_uint};

use crate::hub::task::Wake;
use crate::monkey::real::set_errno;
use crate::monkey::{Hook, interrupt_errno, real};

/// Parks for `d`; `Err(())` if interrupted. `call` is the hooked libc
/// function's name, as dumps show it.
pub(crate) fn green_sleep(hook: &Hook, d: Duration, call: &'static str) -> Result<(), ()> {
    if interrupt_errno().is_some() {
        return Err(());
    }
    if d.is_zero() {
        return Ok(());
    }
    let deadline = crate::hub::deadline_after(d);
    loop {
        let w = hook.parked(|| {
            crate::hub::park_until_with(
                Some(deadline),
                false,
                crate::hub::WaitReason::Hook { call, fd: -1 },
            )
        });
        if crate::hub::interrupt_pending() {
            let _ = interrupt_errno();
            return Err(());
        }
        if w == Wake::TimedOut {
            return Ok(());
        }
    }
}

fn ts_duration(ts: &libc::timespec) -> Duration {
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn now(clock: libc::clockid_t) -> Duration {
    // SAFETY: zeroed timespec is a valid out-parameter.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; clock_gettime is not hooked.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts_duration(&ts)
}

fn zero_rem(rem: *mut libc::timespec) {
    if !rem.is_null() {
        // SAFETY: a non-null out-pointer from the caller.
        unsafe {
            (*rem).tv_sec = 0;
            (*rem).tv_nsec = 0;
        }
    }
}

/// Hook: `clock_nanosleep(2)` (std's `thread::sleep`). Returns an error
/// number, as the real one does.
///
/// # Safety
/// As libc's `clock_nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let known = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
    );
    match Hook::enter() {
        Some(h) if known && !req.is_null() => {
            // SAFETY: a non-null request from the caller.
            let req = ts_duration(unsafe { &*req });
            let d = if flags & libc::TIMER_ABSTIME != 0 {
                req.saturating_sub(now(clock))
            } else {
                req
            };
            match green_sleep(&h, d, "clock_nanosleep") {
                Ok(()) => 0,
                Err(()) => {
                    if flags & libc::TIMER_ABSTIME == 0 {
                        zero_rem(rem);
                    }
                    libc::EINTR
                }
            }
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::clock_nanosleep(clock, flags, req, rem) },
    }
}

/// Hook: `nanosleep(2)`.
///
/// # Safety
/// As libc's `nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    match Hook::enter() {
        Some(h) if !req.is_null() => {
            // SAFETY: a non-null request from the caller.
            match green_sleep(&h, ts_duration(unsafe { &*req }), "nanosleep") {
                Ok(()) => 0,
                Err(()) => {
                    zero_rem(rem);
                    set_errno(libc::EINTR);
                    -1
                }
            }
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::nanosleep(req, rem) },
    }
}

/// Hook: `usleep(3)`.
///
/// # Safety
/// As libc's `usleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    match Hook::enter() {
        Some(h) => match green_sleep(&h, Duration::from_micros(usec as u64), "usleep") {
            Ok(()) => 0,
            Err(()) => {
                set_errno(libc::EINTR);
                -1
            }
        },
        // SAFETY: forwarding the caller's argument.
        None => unsafe { real::usleep(usec) },
    }
}

/// Hook: `sleep(3)`. Returns 0, or (interrupted) the whole seconds left.
///
/// # Safety
/// As libc's `sleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    match Hook::enter() {
        Some(h) => match green_sleep(&h, Duration::from_secs(secs as u64), "sleep") {
            Ok(()) => 0,
            Err(()) => secs,
        },
        // SAFETY: forwarding the caller's argument.
        None => unsafe { real::sleep(secs) },
    }
}
