//! `monkey::patch_all()`: unmodified `std::net`, `std::thread::sleep` and
//! blocking C libraries cooperate inside greenlets.
//!
//! With the `monkey` feature, this crate defines the libc functions that
//! blocking code ends up in (`recv`, `send`, `read`, `write`, `connect`,
//! `accept4`, `poll`, `clock_nanosleep`, `getaddrinfo`, `close`, ... and the
//! fortified `__recv_chk` family). Because the executable defines them, the
//! dynamic linker binds every caller to them: std, third-party crates, and C
//! libraries loaded in the process. Each hook finds the real function with
//! `dlsym(RTLD_NEXT)` and, until [`patch_all`] is called, or when called
//! outside a greenlet, simply calls it after one cheap check.
//!
//! After [`patch_all`], a hooked call made inside a greenlet cooperates:
//!
//! | call | inside a greenlet |
//! |---|---|
//! | socket `read`/`recv`/`write`/`send`/vectored/`*msg`/`*from`/`*to` | tried with `MSG_DONTWAIT`; on `EAGAIN` the greenlet parks until the hub sees the fd ready |
//! | `connect`, `accept`, `accept4` | made non-blocking for the call; the greenlet parks meanwhile |
//! | `poll`, `ppoll`, `select` | wait through the hub |
//! | `sleep`, `usleep`, `nanosleep`, `clock_nanosleep` | park on a timer |
//! | `getaddrinfo` | runs whole on the blocking thread pool |
//! | `read`/`write`/`readv`/`writev` on pipes, FIFOs, ttys, eventfds | wait through the hub until `poll` says ready; a pipe write moves at most 4 KiB per call (see below) |
//! | `waitpid`, `wait4`, `waitid` for one child | park on the child's pidfd (`std::process::Child::wait`, `Command::status`) |
//! | `epoll_wait`, `epoll_pwait`, `epoll_pwait2` | a foreign event loop parks on its epoll fd's readiness, its timeout as the park's |
//! | `close`, `dup2`, `dup3`, `close_range` | remove each fd they close from the hub and the fd table first |
//!
//! And, in or out of greenlets: `listen` asks for the largest accept queue
//! (`net.core.somaxconn`) instead of std's 128, so a burst of connects to a
//! server that accepts between other work loses no SYN (each lost one
//! costs its client a 1 s retry).
//!
//! User intent is kept: a socket the user made non-blocking still returns
//! `EAGAIN`; `SO_RCVTIMEO`/`SO_SNDTIMEO` become the park's timeout and give
//! std's `WouldBlock` when they expire. Regular files pass straight
//! through. Outside greenlets (root context, other threads, signal
//! handlers) every hook is the real call.
//!
//! # Kills and timeouts
//!
//! A hook cannot unwind (it is called through the C ABI, often from C
//! code), so a greenlet killed or timed out by [`with_timeout`] while parked
//! in a patched call sees that call fail: `ECANCELED` for a kill
//! (`io::ErrorKind::Other`), `ETIMEDOUT` for a timeout (`TimedOut`), and a
//! sleep ends early. Every later patched blocking call fails the same way at
//! once, so the greenlet quickly returns; it is then reported as killed by
//! `join`, and `with_timeout` returns `Err(Elapsed)`. A kill or timeout that
//! meets a Rust-level park point (`greenlet::sleep`, a join, `greenlet::net`)
//! unwinds as usual.
//!
//! # What cannot be patched
//!
//! - std's `Mutex`, `Condvar`, `mpsc` and `thread::park` block on futexes
//!   through raw `syscall`, which no hook sees: they block the whole hub
//!   thread. Use [`crate::sync`]-style primitives from this crate instead.
//! - Statically linked programs (`crt-static`): refused at build time.
//! - Code in a `dlopen`ed shared library that binds its own symbols first
//!   (`-Bsymbolic`), and hooks inside a `cdylib`: preload the program
//!   instead (`LD_PRELOAD`).
//! - Regular files: epoll cannot watch them (they always count as ready)
//!   and a read blocks on the disk, so `read`/`write` on files (`std::fs`,
//!   sqlite) still block the hub. Use [`crate::fs`], which runs file IO on
//!   the blocking pool.
//! - Waits for *any* child (`wait`, `waitpid(-1)`): they could take a child
//!   that other code waits for, so they pass straight through.
//! - A blocking pipe `write` is cut to 4 KiB per call (readiness promises
//!   no more room than that): code that loops on `write`, as `write_all`
//!   and stdio do, is unaffected; code that assumes one blocking pipe write
//!   writes everything would lose the rest.
//!
//! # Foreign event loops and tokio
//!
//! A library that runs its own epoll loop inside a greenlet cooperates: its
//! `epoll_wait` parks the greenlet until the hub sees the library's epoll
//! fd ready or the wait's timeout passes. A tokio current-thread runtime
//! driven by `block_on` in a greenlet (as the `postgres` crate and
//! `reqwest::blocking` do internally) therefore leaves the other greenlets
//! running. A kill or [`with_timeout`] makes its `epoll_wait` fail; tokio
//! panics on that error ("unexpected error when polling the I/O driver"),
//! which unwinds `block_on`, and `with_timeout` returns `Err(Elapsed)`.
//! That runtime has lost its I/O driver in the panic: drop it (a
//! `postgres::Client` whose call was ended this way cannot even close its
//! connection cleanly; `mem::forget` it). Tested with the `postgres` crate
//! against a real server: `pg_sleep(0.3)` in one greenlet leaves the others
//! running, and `with_timeout(100 ms)` ends a `pg_sleep(1)` after 100 ms.
//!
//! **Only one `block_on` per thread at a time.** tokio keeps the running
//! runtime in a thread-local, which all greenlets of a thread share: while
//! one greenlet is parked inside `block_on`, a second greenlet's
//! `block_on` (any runtime) panics with "Cannot start a runtime from within
//! a runtime". So tokio-based blocking clients (`postgres`,
//! `reqwest::blocking`) cannot overlap inside the greenlets of one hub,
//! patched or not. What does overlap them: run each call on the blocking
//! pool, one OS thread per call in flight, while its greenlet parks:
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let calls: Vec<_> = (0..5)
//!     .map(|_| {
//!         greenlet::spawn(|| {
//!             greenlet::threadpool::spawn_blocking(|| {
//!                 // e.g. postgres::Client::query, which block_on's inside.
//!                 std::thread::sleep(Duration::from_millis(100));
//!             })
//!         })
//!     })
//!     .collect();
//! greenlet::joinall(calls);
//! assert!(start.elapsed() < Duration::from_millis(450));
//! ```
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! greenlet::monkey::patch_all();
//! let start = Instant::now();
//! let sleepers: Vec<_> = (0..50)
//!     .map(|_| greenlet::spawn(|| std::thread::sleep(Duration::from_millis(100))))
//!     .collect();
//! greenlet::joinall(sleepers);
//! // 50 x 100 ms of std::thread::sleep, concurrently on one thread.
//! assert!(start.elapsed() < Duration::from_millis(1000));
//! ```
//!
//! [`with_timeout`]: crate::with_timeout

mod close;
mod dns;
mod epoll;
pub(crate) mod fdtable;
mod io;
mod listen;
mod net;
mod pipe;
mod process;
pub(crate) mod real;
mod signal;
mod time;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use libc::c_int;

use crate::hub::WaitReason;
use crate::hub::reactor::Direction;
use real::{errno, set_errno};

static PATCHED: AtomicBool = AtomicBool::new(false);

/// Activates the hooks: from now on, blocking libc calls made inside
/// greenlets cooperate (see the [module docs](self)). Idempotent; cannot be
/// undone.
///
/// # Examples
///
/// ```
/// greenlet::monkey::patch_all();
/// assert!(greenlet::monkey::is_patched());
/// ```
pub fn patch_all() {
    PATCHED.store(true, Ordering::SeqCst);
}

/// Whether [`patch_all`] has been called.
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed)
}

thread_local! {
    /// Set while a hook runs its own (non-parking) code, so hooked calls it
    /// makes itself (a panic message's `write`, say) go straight through.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Proof that the calling hook should cooperate; clears the re-entrancy
/// flag on drop.
pub(crate) struct Hook(());

impl Hook {
    /// The one cheap check every hook starts with: patched, inside a
    /// greenlet, and not already inside a hook.
    #[inline]
    pub(crate) fn enter() -> Option<Hook> {
        if !PATCHED.load(Ordering::Relaxed) || crate::hub::current_header().is_null() {
            return None;
        }
        if IN_HOOK.with(|h| h.replace(true)) {
            return None;
        }
        Some(Hook(()))
    }

    /// Runs `park` with the re-entrancy flag lowered: other greenlets run
    /// meanwhile, and their hooks must cooperate too.
    pub(crate) fn parked<R>(&self, park: impl FnOnce() -> R) -> R {
        IN_HOOK.with(|h| h.set(false));
        let r = park();
        IN_HOOK.with(|h| h.set(true));
        r
    }
}

/// Runs a signal handler `f` with every hook making the real call (see
/// `signal.rs`). Async-signal-safe: one constant thread-local.
pub(crate) fn in_signal_handler(f: impl FnOnce()) {
    let prev = IN_HOOK.with(|h| h.replace(true));
    f();
    IN_HOOK.with(|h| h.set(prev));
}

impl Drop for Hook {
    fn drop(&mut self) {
        IN_HOOK.with(|h| h.set(false));
    }
}

/// The errno a hook returns for a pending kill (`ECANCELED`) or expired
/// `with_timeout` (`ETIMEDOUT`), marking the latter so the scope reports
/// `Elapsed`.
pub(crate) fn interrupt_errno() -> Option<c_int> {
    match crate::hub::pending_interrupt() {
        Some(true) => Some(libc::ECANCELED),
        Some(false) => {
            crate::hub::mark_timeout_seen_in_hook();
            Some(libc::ETIMEDOUT)
        }
        None => None,
    }
}

/// How a cooperative wait ended.
pub(crate) enum Waited {
    Ready,
    TimedOut,
    /// Killed or timed out by `with_timeout`: fail with this errno.
    Interrupted(c_int),
}

impl Waited {
    /// The errno the hook fails with, if the wait did not end ready: the
    /// kernel's errno for an expired socket timeout is `on_timeout`
    /// (`EAGAIN` for IO and accept, `EINPROGRESS` for connect).
    pub(crate) fn failure(self, on_timeout: c_int) -> Option<c_int> {
        match self {
            Waited::Ready => None,
            Waited::TimedOut => Some(on_timeout),
            Waited::Interrupted(e) => Some(e),
        }
    }
}

/// Parks until `fd` is ready in `dir` or `deadline` passes. An fd epoll
/// cannot watch is waited for with a real (hub-blocking) `poll`.
/// `call` names the hooked libc function (for wait reasons).
pub(crate) fn wait_fd(
    hook: &Hook,
    call: &'static str,
    fd: c_int,
    dir: Direction,
    deadline: Option<Instant>,
) -> Waited {
    if let Some(e) = interrupt_errno() {
        return Waited::Interrupted(e);
    }
    let Some(info) = fdtable::info(fd) else {
        return real_poll_one(fd, dir, deadline);
    };
    let res = fdtable::with_registration(fd, info, |reg| {
        reg.clear_readiness(dir);
        hook.parked(|| reg.wait_raw(dir, deadline, WaitReason::Hook { call, fd }))
    });
    match res {
        None => real_poll_one(fd, dir, deadline),
        Some(Ok(())) => Waited::Ready,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Waited::TimedOut,
        Some(Err(_)) => Waited::Interrupted(interrupt_errno().unwrap_or(libc::EINTR)),
    }
}

/// A real, blocking `poll` on one fd (the fallback for fds epoll refuses).
fn real_poll_one(fd: c_int, dir: Direction, deadline: Option<Instant>) -> Waited {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let timeout = deadline.map_or(-1, |d| {
        d.saturating_duration_since(Instant::now())
            .as_millis()
            .min(i32::MAX as u128) as c_int
    });
    // SAFETY: one valid pollfd.
    match unsafe { real::poll(&mut p, 1, timeout) } {
        0 => Waited::TimedOut,
        _ => Waited::Ready,
    }
}

/// The socket-op loop every IO hook shares: `op` performs the real call
/// with `MSG_DONTWAIT` (or on an fd made non-blocking for it); on `EAGAIN`,
/// a blocking-mode fd parks until ready, bounded by the user's socket
/// timeout, which then fails with `EAGAIN` as the kernel would.
///
/// It parks only after the real call said `EAGAIN`, never because a call
/// moved fewer bytes than asked: a short read is no proof that nothing is
/// queued (TCP urgent data and `SCM_RIGHTS` messages stop reads early), so
/// the caller's next read always makes the syscall.
pub(crate) fn cooperate(
    hook: &Hook,
    call: &'static str,
    fd: c_int,
    dir: Direction,
    op: &mut dyn FnMut() -> isize,
) -> isize {
    if let Some(e) = interrupt_errno() {
        set_errno(e);
        return -1;
    }
    let mut deadline: Option<Option<Instant>> = None;
    let mut failures = 0u32;
    let mut backoff = crate::time::Backoff::new(SEND_RETRY_MIN, SEND_RETRY_MAX);
    loop {
        if dir == Direction::Write && failures >= 2 {
            // A send that failed again right after its wake-up: a Unix
            // datagram to a receiver whose queue is full, whose failed
            // attempt made the socket writable again at once (the kernel
            // gives an unconnected sender no other wake-up). Pause before
            // the next attempt (whose failure wakes the wait after it), or
            // the retries spin the hub until the receiver drains. Cut to
            // the time left: the call times out when it would without.
            let pause = backoff.next(deadline.flatten());
            if time::green_sleep(hook, pause, call).is_err() {
                set_errno(interrupt_errno().unwrap_or(libc::EINTR));
                return -1;
            }
        }
        let r = op();
        if r >= 0 {
            return r;
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
            return r;
        }
        if real::get_fl(fd) & libc::O_NONBLOCK != 0 {
            set_errno(e);
            return -1; // the user's own non-blocking socket
        }
        let deadline = *deadline.get_or_insert_with(|| {
            fdtable::info(fd)
                .and_then(|i| i.timeout(dir == Direction::Read))
                .map(crate::hub::deadline_after)
        });
        failures += 1;
        if let Some(e) = wait_fd(hook, call, fd, dir, deadline).failure(libc::EAGAIN) {
            set_errno(e);
            return -1;
        }
    }
}

/// The first pause of a send that keeps failing right after its wake-ups
/// (see [`cooperate`]), doubled after each, up to [`SEND_RETRY_MAX`].
const SEND_RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(1);
const SEND_RETRY_MAX: std::time::Duration = std::time::Duration::from_millis(64);

/// Whether `fd` is a socket (cached per fd).
pub(crate) fn is_socket(fd: c_int) -> bool {
    fdtable::info(fd).is_some_and(|i| i.is_socket(fd))
}
