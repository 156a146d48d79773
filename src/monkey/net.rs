//! Hooks for connection set-up and readiness: `socket`, `connect`,
//! `accept`, `accept4`, `setsockopt` (timeouts), `poll`, `ppoll`, `select`
//! and the fortified `__poll_chk`/`__ppoll_chk`.

use std::time::{Duration, Instant};

use libc::{c_int, c_void, sockaddr, socklen_t};

use crate::hub::reactor::Direction;
use crate::hub::task::Wake;
use crate::monkey::real::{errno, set_errno};
use crate::monkey::{Hook, fdtable, interrupt_errno, is_socket, real, wait_fd};

/// Hook: `socket(2)`: a new socket starts with a clean fd-table entry.
///
/// # Safety
/// As libc's `socket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    let fd = unsafe { real::socket(domain, ty, proto) };
    if fd >= 0
        && crate::monkey::is_patched()
        && let Some(info) = fdtable::info(fd)
    {
        info.reset(Some(true));
    }
    fd
}

/// Hook: `setsockopt(2)`: records `SO_RCVTIMEO`/`SO_SNDTIMEO`, which become
/// the park timeouts of cooperative calls.
///
/// # Safety
/// As libc's `setsockopt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    if r == 0
        && crate::monkey::is_patched()
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= std::mem::size_of::<libc::timeval>()
        && let Some(info) = fdtable::info(fd)
    {
        // SAFETY: the kernel accepted `val` as a timeval of `len` bytes.
        let tv = unsafe { *(val as *const libc::timeval) };
        let d = Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000);
        info.set_timeout(name == libc::SO_RCVTIMEO, (!d.is_zero()).then_some(d));
    }
    r
}

/// Runs `op` with `fd` switched to non-blocking mode, restoring its flags
/// (and keeping `op`'s errno) afterwards.
fn nonblocking<R>(fd: c_int, fl: c_int, op: impl FnOnce() -> R) -> R {
    real::set_fl(fd, fl | libc::O_NONBLOCK);
    let r = op();
    let e = errno();
    real::set_fl(fd, fl);
    set_errno(e);
    r
}

/// Hook: `connect(2)`: a blocking connect parks the greenlet until the
/// handshake ends (bounded by `SO_SNDTIMEO`, as in the kernel).
///
/// # Safety
/// As libc's `connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(hook) = Hook::enter().filter(|_| is_socket(fd)) else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::connect(fd, addr, len) };
    };
    let fl = real::get_fl(fd);
    if fl < 0 || fl & libc::O_NONBLOCK != 0 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::connect(fd, addr, len) };
    }
    if let Some(e) = interrupt_errno() {
        set_errno(e);
        return -1;
    }
    // SAFETY: forwarding the caller's arguments.
    let r = nonblocking(fd, fl, || unsafe { real::connect(fd, addr, len) });
    if r == 0 || errno() != libc::EINPROGRESS {
        return r;
    }
    let deadline = fdtable::info(fd)
        .and_then(|i| i.timeout(false))
        .map(crate::hub::deadline_after);
    let failed =
        wait_fd(&hook, "connect", fd, Direction::Write, deadline).failure(libc::EINPROGRESS);
    match failed.unwrap_or_else(|| real::take_socket_error(fd)) {
        0 => 0,
        e => {
            set_errno(e);
            -1
        }
    }
}

/// Hook: `accept(2)`.
///
/// # Safety
/// As libc's `accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: accept(fd, a, l) is accept4(fd, a, l, 0).
    unsafe { accept4(fd, addr, len, 0) }
}

/// Hook: `accept4(2)`: a blocking accept parks the greenlet until a
/// connection arrives (bounded by `SO_RCVTIMEO`, as in the kernel).
///
/// # Safety
/// As libc's `accept4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let fl = match Hook::enter() {
        Some(h) if is_socket(fd) => Some((h, real::get_fl(fd))),
        _ => None,
    };
    let Some((hook, fl)) = fl.filter(|(_, fl)| *fl >= 0 && fl & libc::O_NONBLOCK == 0) else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::accept4(fd, addr, len, flags) };
    };
    let deadline = fdtable::info(fd)
        .and_then(|i| i.timeout(true))
        .map(crate::hub::deadline_after);
    loop {
        if let Some(e) = interrupt_errno() {
            set_errno(e);
            return -1;
        }
        // SAFETY: forwarding the caller's arguments.
        let r = nonblocking(fd, fl, || unsafe { real::accept4(fd, addr, len, flags) });
        if r >= 0 {
            if let Some(info) = fdtable::info(r) {
                info.reset(Some(true));
            }
            return r;
        }
        if errno() != libc::EAGAIN {
            return -1;
        }
        if let Some(e) =
            wait_fd(&hook, "accept4", fd, Direction::Read, deadline).failure(libc::EAGAIN)
        {
            set_errno(e);
            return -1;
        }
    }
}

/// The cooperative `poll`: a real non-blocking `poll` first; if nothing is
/// ready, the greenlet waits on the hub for any of the fds (or the
/// timeout), then polls again.
fn green_poll(hook: &Hook, fds: &mut [libc::pollfd], timeout: Option<Duration>) -> c_int {
    let deadline = timeout.map(crate::hub::deadline_after);
    loop {
        // SAFETY: `fds` is a valid array of pollfds.
        let r = unsafe { real::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if r != 0 || timeout == Some(Duration::ZERO) {
            return r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        if let Some(e) = interrupt_errno() {
            set_errno(e);
            return -1;
        }
        match wait_any(hook, fds, deadline) {
            Some(Wake::TimedOut) => {}
            Some(_) => {}
            None => {
                // An fd epoll cannot watch: wait for real (blocks the hub).
                let ms = deadline.map_or(-1, |d| {
                    d.saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(i32::MAX as u128) as c_int
                });
                // SAFETY: as above.
                return unsafe { real::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            }
        }
        if crate::hub::interrupt_pending() {
            set_errno(interrupt_errno().unwrap_or(libc::EINTR));
            return -1;
        }
    }
}

/// Parks until any fd in `fds` may be ready or `deadline` passes; `None` if
/// an fd cannot be registered with epoll.
fn wait_any(hook: &Hook, fds: &[libc::pollfd], deadline: Option<Instant>) -> Option<Wake> {
    let hub = crate::hub::Hub::current();
    let me = hub.current_task();
    // The registrations themselves, not fd numbers: an fd closed during
    // the wait must still have its waiter removed (or the hub would count
    // a waiter that no event can ever wake).
    let mut added: Vec<(fdtable::HookRegistration, Direction)> = Vec::with_capacity(fds.len() * 2);
    let mut ok = true;
    let mut ready_now = false;
    for p in fds.iter().filter(|p| p.fd >= 0) {
        let Some(info) = fdtable::info(p.fd) else {
            ok = false;
            break;
        };
        for dir in poll_directions(p.events) {
            let Some(reg) = fdtable::registration(p.fd, info) else {
                ok = false;
                continue;
            };
            // The real poll just said "not ready": forget stale edges.
            reg.clear_readiness(dir);
            if reg.add_waiter(dir, &me) {
                added.push((reg, dir));
            } else {
                ready_now = true;
            }
        }
    }
    let wake = if ok && !ready_now {
        Some(hook.parked(|| {
            crate::hub::park_until_with(
                deadline,
                false,
                crate::hub::WaitReason::Hook {
                    call: "poll",
                    fd: -1,
                },
            )
        }))
    } else if ok {
        Some(Wake::Ready)
    } else {
        None
    };
    for (reg, dir) in added {
        reg.remove_waiter(dir, &me);
    }
    wake
}

/// The directions to wait in for a pollfd's `events`. Read covers more
/// than `POLLIN`: urgent data (`POLLPRI`, epoll's `EPOLLPRI`) and the
/// peer's hang-up (`POLLRDHUP`) end a read wait too; and `poll` reports
/// hang-ups and errors even for `events == 0`, which end a wait in either
/// direction. So an fd asked for anything but writability alone is
/// waited for in the read direction.
fn poll_directions(events: libc::c_short) -> impl Iterator<Item = Direction> {
    const WRITE: libc::c_short = libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND;
    let write = events & WRITE != 0;
    let read = events & !WRITE != 0 || !write;
    [(read, Direction::Read), (write, Direction::Write)]
        .into_iter()
        .filter_map(|(on, dir)| on.then_some(dir))
}

fn ms_timeout(ms: c_int) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

/// `ppoll`'s timeout. One the kernel rejects (negative seconds, or
/// nanoseconds outside `0..1_000_000_000`) is zero, so the hook forwards
/// the call and the real `ppoll` fails with EINVAL, as unpatched.
fn ts_timeout(ts: *const libc::timespec) -> Option<Duration> {
    if ts.is_null() {
        return None;
    }
    // SAFETY: a non-null timespec from the caller.
    let ts = unsafe { *ts };
    Some(
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            Duration::ZERO
        } else {
            Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        },
    )
}

/// Hook: `poll(2)`.
///
/// # Safety
/// As libc's `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    match Hook::enter() {
        Some(h) if timeout != 0 && !fds.is_null() => {
            // SAFETY: the caller's array of `n` pollfds.
            let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
            green_poll(&h, fds, ms_timeout(timeout))
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::poll(fds, n, timeout) },
    }
}

/// Hook: `ppoll(2)`. The signal mask is not applied while the greenlet
/// waits on the hub (other greenlets run meanwhile); it is applied to the
/// final real `ppoll`. An invalid timeout fails with EINVAL at once, as
/// unpatched.
///
/// # Safety
/// As libc's `ppoll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let timeout = ts_timeout(ts);
    match Hook::enter() {
        Some(h) if timeout != Some(Duration::ZERO) && !fds.is_null() && mask.is_null() => {
            // SAFETY: the caller's array of `n` pollfds.
            let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
            green_poll(&h, fds, timeout)
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::ppoll(fds, n, ts, mask) },
    }
}

/// Hook: `__poll_chk` (`poll` in fortified C code).
///
/// # Safety
/// As glibc's `__poll_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: c_int,
    fdslen: libc::size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<libc::pollfd>()) < n as usize {
        // SAFETY: glibc reports the overflow and aborts.
        return unsafe { real::__poll_chk(fds, n, timeout, fdslen) };
    }
    // SAFETY: the array is as long as claimed; as poll.
    unsafe { poll(fds, n, timeout) }
}

/// Hook: `__ppoll_chk` (`ppoll` in fortified C code).
///
/// # Safety
/// As glibc's `__ppoll_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
    fdslen: libc::size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<libc::pollfd>()) < n as usize {
        // SAFETY: glibc reports the overflow and aborts.
        return unsafe { real::__ppoll_chk(fds, n, ts, mask, fdslen) };
    }
    // SAFETY: the array is as long as claimed; as ppoll.
    unsafe { ppoll(fds, n, ts, mask) }
}

/// Hook: `select(2)`, served by the cooperative `poll`.
///
/// # Safety
/// As libc's `select`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    let timeout = if tv.is_null() {
        None
    } else {
        // SAFETY: a non-null timeval from the caller.
        let t = unsafe { *tv };
        // Negative: zero, so the real call reports EINVAL. Microseconds
        // past a second carry into seconds, as in the kernel.
        Some(if t.tv_sec < 0 || t.tv_usec < 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(t.tv_sec as u64)
                .saturating_add(Duration::from_micros(t.tv_usec as u64))
        })
    };
    let Some(h) = Hook::enter().filter(|_| timeout != Some(Duration::ZERO)) else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::select(nfds, r, w, e, tv) };
    };
    let nfds = nfds.clamp(0, libc::FD_SETSIZE as c_int);
    let isset = |set: *mut libc::fd_set, fd: c_int| {
        // SAFETY: a non-null set from the caller, at least FD_SETSIZE bits,
        // and `fd` < FD_SETSIZE.
        !set.is_null() && unsafe { libc::FD_ISSET(fd, set) }
    };
    let mut fds: Vec<libc::pollfd> = (0..nfds)
        .filter_map(|fd| {
            let mut events = 0;
            if isset(r, fd) {
                events |= libc::POLLIN;
            }
            if isset(w, fd) {
                events |= libc::POLLOUT;
            }
            if isset(e, fd) {
                events |= libc::POLLPRI;
            }
            (events != 0).then_some(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        })
        .collect();
    let n = green_poll(&h, &mut fds, timeout);
    if n < 0 {
        return n;
    }
    let mut count = 0;
    for set in [r, w, e] {
        if !set.is_null() {
            // SAFETY: a caller's fd_set.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    for p in &fds {
        let mut hit = |set: *mut libc::fd_set, mask: libc::c_short| {
            if !set.is_null() && p.revents & mask != 0 {
                // SAFETY: a caller's fd_set; `p.fd` < FD_SETSIZE.
                unsafe { libc::FD_SET(p.fd, set) };
                count += 1;
            }
        };
        hit(r, libc::POLLIN | libc::POLLHUP | libc::POLLERR);
        hit(w, libc::POLLOUT | libc::POLLERR);
        hit(e, libc::POLLPRI);
    }
    count
}
