//! Hooks for the calls that close fds: `close`, and `dup2`, `dup3` and
//! `close_range`, which close fds behind `close`'s back (`dup2` and `dup3`
//! the target fd they replace).
//!
//! After [`patch_all`](crate::monkey::patch_all), each fd they close
//! leaves this thread's hub (waking any greenlet still waiting on it) and
//! has its fd-table entry cleared, before the real call: the next fd given
//! the same number starts afresh instead of inheriting the old one's kind
//! and timeouts. In a child made by `fork` (std's `Command` forks when
//! given `pre_exec`, and then `dup2`s the child's stdio) whose hub has not
//! yet made its own epoll, the fd leaves the tables but not the epoll it
//! still shares with its parent: removing it there would remove the
//! parent's registration (see `sys::fork`).

use libc::{c_int, c_uint};

use crate::monkey::{fdtable, real};

/// Whether the hooks keep their tables for this call (see the module docs).
#[inline]
fn tracking() -> bool {
    crate::monkey::is_patched()
}

/// Whether this thread runs a hub, whose registrations an fd about to
/// close must leave.
#[inline]
fn on_hub_thread() -> bool {
    !crate::hub::current_header().is_null() || crate::hub::Hub::try_current().is_some()
}

/// `fd` is about to be closed: out of this thread's hub and the fd table.
fn forget(fd: c_int) {
    if on_hub_thread() {
        fdtable::forget_registration(fd);
    }
    if let Some(info) = fdtable::info(fd) {
        info.reset(None);
    }
}

/// Hook: `close(2)`. After [`patch_all`](crate::monkey::patch_all), the fd
/// leaves this thread's hub (waking any greenlet still waiting on it) and
/// the fd table before it closes.
///
/// # Safety
/// As libc's `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if tracking() {
        forget(fd);
    }
    // SAFETY: forwarding the caller's argument.
    unsafe { real::close(fd) }
}

/// Hook: `dup2(2)`. The fd `new` it replaces (if open, and not `old`
/// itself) is forgotten as [`close`] forgets it.
///
/// # Safety
/// As libc's `dup2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if tracking() && old != new && valid(old) {
        forget(new);
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { real::dup2(old, new) }
}

/// Hook: `dup3(2)`: as [`dup2`] (`old == new` is an error and closes
/// nothing).
///
/// # Safety
/// As libc's `dup3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if tracking() && old != new && valid(old) {
        forget(new);
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { real::dup3(old, new, flags) }
}

/// Hook: `close_range(2)`. Every fd in `first..=last` is forgotten as
/// [`close`] forgets it, unless the call only marks them close-on-exec
/// (`CLOSE_RANGE_CLOEXEC`) or is invalid (`first > last`). With
/// `CLOSE_RANGE_UNSHARE` the fds close in the caller's private copy of
/// the fd table only, but the hooks' table is the process's: their
/// entries are cleared too (the other threads' uses of those fds find out
/// their kind again, and lose the `SO_RCVTIMEO`/`SO_SNDTIMEO` the hooks
/// recorded). Only the parts of the table in use are walked, so closing
/// "everything from 3 up" costs a few thousand entries at most.
///
/// # Safety
/// As libc's `close_range`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if tracking() && first <= last && flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        if on_hub_thread() {
            fdtable::forget_registrations(first, last);
        }
        fdtable::reset_range(first, last);
    }
    // SAFETY: forwarding the caller's arguments.
    unsafe { real::close_range(first, last, flags) }
}

/// Whether `fd` is open: a `dup2` from a closed fd fails (`EBADF`) and
/// closes nothing.
fn valid(fd: c_int) -> bool {
    fd >= 0 && real::get_fl(fd) >= 0
}
