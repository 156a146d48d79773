//! Hooks for data transfer: `read`, `write`, `readv`, `writev`, `recv`,
//! `send`, `recvfrom`, `sendto`, `recvmsg`, `sendmsg`, the fortified
//! `__read_chk`, `__recv_chk`, `__recvfrom_chk` (`close` and the calls
//! that close fds behind it are in [`close`](super::close)).
//!
//! On sockets inside greenlets, each call runs with `MSG_DONTWAIT` (plain
//! `read`/`write`/`readv`/`writev` become the equivalent `recv`/`send`/
//! `recvmsg`/`sendmsg`, which behave identically on sockets), so the fd's
//! own blocking mode never has to change. On pipes, FIFOs, ttys and other
//! pollable fds, `read`/`readv`/`write`/`writev` go through
//! [`pipe`] instead.

use libc::{c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};

use crate::hub::reactor::Direction;
use crate::monkey::{Hook, cooperate, is_socket, pipe, real};

const DW: c_int = libc::MSG_DONTWAIT;

fn msghdr_for(iov: *const libc::iovec, n: c_int) -> libc::msghdr {
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iov as *mut libc::iovec;
    m.msg_iovlen = n.max(0) as _;
    m
}

/// Hook: `read(2)`.
///
/// # Safety
/// As libc's `read`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    match Hook::enter() {
        Some(h) if is_socket(fd) => {
            // SAFETY: the caller's buffer, as for read.
            cooperate(&h, "read", fd, Direction::Read, &mut || unsafe {
                real::recv(fd, buf, n, DW)
            })
        }
        Some(h) if pipe::is_pollable(fd) => {
            // SAFETY: the caller's buffer, as for read.
            pipe::cooperate(&h, fd, Direction::Read, &mut || unsafe {
                real::read(fd, buf, n)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::read(fd, buf, n) },
    }
}

/// Hook: `write(2)`.
///
/// # Safety
/// As libc's `write`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    match Hook::enter() {
        Some(h) if is_socket(fd) => {
            // SAFETY: the caller's buffer, as for write.
            cooperate(&h, "write", fd, Direction::Write, &mut || unsafe {
                real::send(fd, buf, n, DW)
            })
        }
        Some(h) if pipe::is_pollable(fd) => {
            let n = pipe::write_len(fd, n);
            // SAFETY: the caller's buffer (a prefix of it), as for write.
            pipe::cooperate(&h, fd, Direction::Write, &mut || unsafe {
                real::write(fd, buf, n)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::write(fd, buf, n) },
    }
}

/// Hook: `readv(2)`.
///
/// # Safety
/// As libc's `readv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if is_socket(fd) => {
            let mut m = msghdr_for(iov, n);
            // SAFETY: the caller's iovecs, as for readv.
            cooperate(&h, "readv", fd, Direction::Read, &mut || unsafe {
                real::recvmsg(fd, &mut m, DW)
            })
        }
        Some(h) if pipe::is_pollable(fd) => {
            // SAFETY: the caller's iovecs, as for readv.
            pipe::cooperate(&h, fd, Direction::Read, &mut || unsafe {
                real::readv(fd, iov, n)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::readv(fd, iov, n) },
    }
}

/// Hook: `writev(2)`.
///
/// # Safety
/// As libc's `writev`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if is_socket(fd) => {
            let m = msghdr_for(iov, n);
            // SAFETY: the caller's iovecs, as for writev.
            cooperate(&h, "writev", fd, Direction::Write, &mut || unsafe {
                real::sendmsg(fd, &m, DW)
            })
        }
        Some(h) if pipe::is_pollable(fd) => {
            // SAFETY: the caller's iovecs, as for writev.
            pipe::cooperate(&h, fd, Direction::Write, &mut || unsafe {
                pipe::capped_writev(fd, iov, n)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::writev(fd, iov, n) },
    }
}

/// Hook: `recv(2)`.
///
/// # Safety
/// As libc's `recv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's buffer, as for recv.
            cooperate(&h, "recv", fd, Direction::Read, &mut || unsafe {
                real::recv(fd, buf, n, flags | DW)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::recv(fd, buf, n, flags) },
    }
}

/// Hook: `send(2)`.
///
/// # Safety
/// As libc's `send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's buffer, as for send.
            cooperate(&h, "send", fd, Direction::Write, &mut || unsafe {
                real::send(fd, buf, n, flags | DW)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::send(fd, buf, n, flags) },
    }
}

/// Hook: `recvfrom(2)`.
///
/// # Safety
/// As libc's `recvfrom`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's buffers, as for recvfrom.
            cooperate(&h, "recvfrom", fd, Direction::Read, &mut || unsafe {
                real::recvfrom(fd, buf, n, flags | DW, addr, len)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::recvfrom(fd, buf, n, flags, addr, len) },
    }
}

/// Hook: `sendto(2)`.
///
/// # Safety
/// As libc's `sendto`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's buffers, as for sendto.
            cooperate(&h, "sendto", fd, Direction::Write, &mut || unsafe {
                real::sendto(fd, buf, n, flags | DW, addr, len)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::sendto(fd, buf, n, flags, addr, len) },
    }
}

/// Hook: `recvmsg(2)`.
///
/// # Safety
/// As libc's `recvmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's message, as for recvmsg.
            cooperate(&h, "recvmsg", fd, Direction::Read, &mut || unsafe {
                real::recvmsg(fd, msg, flags | DW)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::recvmsg(fd, msg, flags) },
    }
}

/// Hook: `sendmsg(2)`.
///
/// # Safety
/// As libc's `sendmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    match Hook::enter() {
        Some(h) if flags & DW == 0 && is_socket(fd) => {
            // SAFETY: the caller's message, as for sendmsg.
            cooperate(&h, "sendmsg", fd, Direction::Write, &mut || unsafe {
                real::sendmsg(fd, msg, flags | DW)
            })
        }
        // SAFETY: forwarding the caller's arguments.
        _ => unsafe { real::sendmsg(fd, msg, flags) },
    }
}

/// Hook: `__read_chk` (`read` in fortified C code).
///
/// # Safety
/// As glibc's `__read_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: glibc reports the overflow and aborts.
        return unsafe { real::__read_chk(fd, buf, n, buflen) };
    }
    // SAFETY: `n` fits the buffer; as read.
    unsafe { read(fd, buf, n) }
}

/// Hook: `__recv_chk` (`recv` in fortified C code).
///
/// # Safety
/// As glibc's `__recv_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        // SAFETY: glibc reports the overflow and aborts.
        return unsafe { real::__recv_chk(fd, buf, n, buflen, flags) };
    }
    // SAFETY: `n` fits the buffer; as recv.
    unsafe { recv(fd, buf, n, flags) }
}

/// Hook: `__recvfrom_chk` (`recvfrom` in fortified C code).
///
/// # Safety
/// As glibc's `__recvfrom_chk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: glibc reports the overflow and aborts.
        return unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, len) };
    }
    // SAFETY: `n` fits the buffer; as recvfrom.
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}
