//! Hooks: `sigaction(2)` and `signal(2)`, so that signal handlers make real
//! calls.
//!
//! A signal handler runs on whatever the thread was doing, which may be a
//! greenlet. The calls it makes (`write` to a self-pipe, a `nanosleep`)
//! reach the hooks like any other; if they cooperated, the handler would
//! park the interrupted greenlet and switch stacks from inside a signal
//! handler, in the middle of whatever the handler interrupted. So every
//! handler installed through these hooks (std's own and ours included) runs
//! behind a trampoline that marks the thread as inside a hook for the
//! handler's duration: each hook it calls is the real call.
//!
//! `oldact` (and `signal`'s return value) give back the handler the user
//! installed, never the trampoline, so code that saves and restores
//! handlers, or chains to the previous one, sees what it expects.
//! Handlers installed by raw `rt_sigaction` syscalls, or with `sigset` /
//! `sysv_signal`, are not wrapped.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_int, c_void, sighandler_t};

use crate::monkey::real;

/// Signal numbers are below this (`_NSIG` on Linux).
const NSIG: usize = 65;

/// The user's handlers, by signal: those installed without `SA_SIGINFO`
/// (`fn(c_int)`) and those installed with it (`fn(c_int, *mut siginfo_t,
/// *mut c_void)`). Two tables and two trampolines, so that a trampoline
/// the kernel still has installed always finds a handler of its own arity,
/// even while `sigaction` switches a signal from one kind to the other.
static PLAIN: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];
static INFO: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];

extern "C" fn plain_trampoline(sig: c_int) {
    let f = PLAIN[sig as usize % NSIG].load(Ordering::Acquire);
    if f != 0 {
        super::in_signal_handler(|| {
            // SAFETY: stored by `sigaction` below from a `sa_sigaction` that
            // was installed without SA_SIGINFO: a `void (*)(int)`.
            let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(f) };
            f(sig);
        });
    }
}

extern "C" fn info_trampoline(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let f = INFO[sig as usize % NSIG].load(Ordering::Acquire);
    if f != 0 {
        super::in_signal_handler(|| {
            // SAFETY: stored by `sigaction` below from a `sa_sigaction` that
            // was installed with SA_SIGINFO: the three-argument form.
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute(f) };
            f(sig, info, ctx);
        });
    }
}

/// Whether `h` is a handler of the user's (not `SIG_DFL`, `SIG_IGN`,
/// `SIG_ERR`, nor one of our trampolines).
fn is_users(h: sighandler_t) -> bool {
    h != libc::SIG_DFL
        && h != libc::SIG_IGN
        && h != libc::SIG_ERR
        && h != plain_addr()
        && h != info_addr()
}

fn plain_addr() -> sighandler_t {
    plain_trampoline as extern "C" fn(c_int) as sighandler_t
}

fn info_addr() -> sighandler_t {
    info_trampoline as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as sighandler_t
}

/// Hook: `sigaction(2)`. Installs a handler behind a trampoline that makes
/// every hooked call inside it the real call (see the module docs).
///
/// # Safety
/// As libc's `sigaction`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oldact: *mut libc::sigaction,
) -> c_int {
    let idx = sig as usize;
    if sig <= 0 || idx >= NSIG {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::sigaction(sig, act, oldact) };
    }
    let prev_plain = PLAIN[idx].load(Ordering::Acquire);
    let prev_info = INFO[idx].load(Ordering::Acquire);
    let mut wrapped: libc::sigaction;
    let act = if act.is_null() {
        act
    } else {
        // SAFETY: a non-null `act` points at a valid sigaction (caller).
        wrapped = unsafe { *act };
        let h = wrapped.sa_sigaction;
        if is_users(h) {
            if wrapped.sa_flags & libc::SA_SIGINFO != 0 {
                INFO[idx].store(h, Ordering::Release);
                wrapped.sa_sigaction = info_addr();
            } else {
                PLAIN[idx].store(h, Ordering::Release);
                wrapped.sa_sigaction = plain_addr();
            }
        }
        &wrapped
    };
    // SAFETY: `act` is the caller's or our copy of it; `oldact` is the
    // caller's.
    let r = unsafe { real::sigaction(sig, act, oldact) };
    if r == 0 && !oldact.is_null() {
        // SAFETY: a non-null `oldact` was just filled in by the kernel.
        let old = unsafe { &mut *oldact };
        if old.sa_sigaction == plain_addr() {
            old.sa_sigaction = prev_plain;
        } else if old.sa_sigaction == info_addr() {
            old.sa_sigaction = prev_info;
        }
    }
    r
}

/// Hook: `signal(2)`, with glibc's (BSD) semantics: `SA_RESTART`, the
/// signal blocked while its handler runs. Goes through [`sigaction`] so
/// the handler gets the trampoline.
///
/// # Safety
/// As libc's `signal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: zeroed is a valid sigaction (empty mask, no flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: zeroed is a valid sigaction.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    act.sa_mask = real::sigset_of(sig);
    // SAFETY: valid pointers to local sigactions.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}
