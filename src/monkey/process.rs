//! Hooks for waiting on a child: `waitpid`, `wait4` and `waitid`.
//!
//! A blocking wait for one child (a pid > 0, or `waitid(P_PID)`) inside a
//! greenlet opens a pidfd for the child (`pidfd_open`, Linux 5.3+), parks
//! until the hub sees it readable (the child exited), then collects the
//! status with the real call and `WNOHANG`. No `SIGCHLD` handler is
//! involved, so no other code's children are reaped. This is what
//! `std::process::Child::wait`, `Command::status` and `Command::output`
//! end in.
//!
//! Waits for any child (`pid` -1 or 0, `wait`), or with `WNOHANG`, pass
//! straight through: the first could be for a child another part of the
//! program waits for, the second does not block. Without `pidfd_open` the
//! real, blocking call is made.

use libc::{c_int, pid_t};
use mio::unix::SourceFd;

use crate::hub::reactor::{Direction, Registration};
use crate::monkey::real::set_errno;
use crate::monkey::{Hook, interrupt_errno, real};

/// Hook: `waitpid(2)`.
///
/// # Safety
/// As libc's `waitpid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    match Hook::enter() {
        Some(h) if pid > 0 && options & libc::WNOHANG == 0 => {
            wait_child(&h, pid, &mut || {
                // SAFETY: the caller's status pointer, as for waitpid.
                let r = unsafe { real::waitpid(pid, status, options | libc::WNOHANG) };
                (r != 0).then_some(r)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::waitpid(pid, status, options) },
    }
}

/// Hook: `wait4(2)`.
///
/// # Safety
/// As libc's `wait4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    match Hook::enter() {
        Some(h) if pid > 0 && options & libc::WNOHANG == 0 => {
            wait_child(&h, pid, &mut || {
                // SAFETY: the caller's pointers, as for wait4.
                let r = unsafe { real::wait4(pid, status, options | libc::WNOHANG, usage) };
                (r != 0).then_some(r)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::wait4(pid, status, options, usage) },
    }
}

/// Hook: `waitid(2)`.
///
/// # Safety
/// As libc's `waitid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    match Hook::enter() {
        Some(h)
            if idtype == libc::P_PID
                && id > 0
                && !info.is_null()
                && options & libc::WNOHANG == 0 =>
        {
            wait_child(&h, id as pid_t, &mut || {
                // With WNOHANG and no state change, waitid returns 0 and
                // leaves si_pid at 0 (which must be zeroed first).
                // SAFETY: `info` is the caller's valid siginfo_t.
                unsafe { std::ptr::write_bytes(info, 0, 1) };
                // SAFETY: the caller's pointer, as for waitid.
                let r = unsafe { real::waitid(idtype, id, info, options | libc::WNOHANG) };
                // SAFETY: as above; the kernel filled it on success.
                let reaped = r != 0 || unsafe { (*info).si_pid() } != 0;
                reaped.then_some(r)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::waitid(idtype, id, info, options) },
    }
}

/// The loop of every wait hook: `poll_once` makes the real call with
/// `WNOHANG` and says `None` while the child has not changed state; in
/// between the greenlet parks on the child's pidfd.
fn wait_child(hook: &Hook, pid: pid_t, poll_once: &mut dyn FnMut() -> Option<c_int>) -> c_int {
    if let Some(e) = interrupt_errno() {
        set_errno(e);
        return -1;
    }
    if let Some(r) = poll_once() {
        return r;
    }
    // Declared before `reg`, so the slot is freed while the fd is open
    // (locals drop in reverse order); the pidfd is ours alone, so closing
    // it takes it out of epoll.
    let Ok(pidfd) = crate::sys::pidfd_open(pid as u32) else {
        return blocking_wait(poll_once, pid);
    };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&pidfd);
    let Ok(reg) = Registration::new(&mut SourceFd(&raw)) else {
        return blocking_wait(poll_once, pid);
    };
    loop {
        // Registering reported the pidfd's state, and nothing runs the
        // loop between `poll_once` and the park: an exit is never missed.
        reg.clear_readiness(Direction::Read);
        if hook.parked(|| reg.wait_raw(Direction::Read, None)).is_err() {
            set_errno(interrupt_errno().unwrap_or(libc::EINTR));
            return -1;
        }
        if let Some(r) = poll_once() {
            return r;
        }
    }
}

/// No pidfd: the real, blocking `waitpid` (the hub stalls, as before
/// patching), then `poll_once` to fill the caller's out-parameters.
fn blocking_wait(poll_once: &mut dyn FnMut() -> Option<c_int>, pid: pid_t) -> c_int {
    // WNOWAIT leaves the child waitable for `poll_once`.
    // SAFETY: zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe {
        real::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    poll_once().unwrap_or(0)
}
