//! Socket calls std does not make the way the runtime needs them.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The error a blocking socket returns when its `SO_RCVTIMEO` or
/// `SO_SNDTIMEO` expires (and a non-blocking one when it is not ready):
/// `EAGAIN`, which std reports as `ErrorKind::WouldBlock`.
pub(crate) fn would_block() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

/// `send(fd, buf, MSG_NOSIGNAL)`: a write to a stream whose peer is gone
/// returns `EPIPE` instead of raising `SIGPIPE`, whatever the process's
/// signal disposition (std's `UnixStream` and vectored writes use `write`
/// and `writev`, which do raise it).
///
/// Made as a raw `sendto` syscall, like [`recv`]: glibc's `send` wrapper is
/// a thread-cancellation point and brackets the syscall with
/// cancellation-state bookkeeping that costs about 2% of an echo server's
/// CPU time, for a feature Rust code never uses. (It also keeps the
/// runtime's own socket calls out of reach of the `monkey` hooks.)
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length come from a live slice the kernel only
    // reads; `fd` is open for the borrow's lifetime; no address is passed.
    let n = syscall!(syscall(
        libc::SYS_sendto,
        fd.as_raw_fd(),
        buf.as_ptr(),
        buf.len(),
        libc::MSG_NOSIGNAL,
        std::ptr::null::<libc::sockaddr>(),
        0 as libc::socklen_t
    ))?;
    Ok(n as usize)
}

/// `recv(fd, buf, 0)` as a raw `recvfrom` syscall (see [`send`] for why).
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length come from a live, exclusively borrowed
    // slice the kernel writes at most `len` bytes into; `fd` is open; no
    // address is asked for.
    let n = syscall!(syscall(
        libc::SYS_recvfrom,
        fd.as_raw_fd(),
        buf.as_mut_ptr(),
        buf.len(),
        0,
        std::ptr::null_mut::<libc::sockaddr>(),
        std::ptr::null_mut::<libc::socklen_t>()
    ))?;
    Ok(n as usize)
}

/// `sendmsg` of several buffers with `MSG_NOSIGNAL` (see [`send`]).
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is a valid "no address, no control data"
    // header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    // SAFETY: `msg` points at `bufs`, live for the call; the kernel only
    // reads through it.
    let n = syscall!(sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// Calls `listen` again on a listening socket: Linux then only changes its
/// accept-queue length to `backlog` (capped by `net.core.somaxconn`).
pub(crate) fn set_backlog(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    syscall!(listen(fd.as_raw_fd(), backlog)).map(drop)
}

/// Sets or clears `O_NONBLOCK` (one `ioctl(FIONBIO)`, as std does).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let mut flag = libc::c_int::from(on);
    // SAFETY: FIONBIO reads one int through the pointer, which is live.
    syscall!(ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut flag)).map(drop)
}
