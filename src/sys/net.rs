//! Socket calls std does not make the way the runtime needs them.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// `accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC)` of an IPv4 or IPv6 stream
/// listener: the new connection comes out in `O_NONBLOCK` mode, with no
/// `ioctl(FIONBIO)` after it (std's `accept` asks only for
/// `SOCK_CLOEXEC`). A raw syscall, like [`recv`], so the `monkey` hooks
/// never see the runtime's own accepts.
pub(crate) fn accept_nonblocking(
    fd: BorrowedFd<'_>,
) -> io::Result<(OwnedFd, std::net::SocketAddr)> {
    // SAFETY: an all-zero `sockaddr_storage` is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the address buffer is a live `sockaddr_storage`, large enough
    // for every family, and `len` holds its size: the kernel writes at most
    // that much. `fd` is open for the borrow.
    let raw = syscall!(syscall(
        libc::SYS_accept4,
        fd.as_raw_fd(),
        (&raw mut storage).cast::<libc::sockaddr>(),
        &raw mut len,
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
    ))?;
    // SAFETY: `accept4` just returned this fd, open and owned by nobody
    // else.
    let conn = unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) };
    match super::sockname::inet_addr(&storage) {
        Some(addr) => Ok((conn, addr)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "accept4 returned an address that is neither IPv4 nor IPv6",
        )),
    }
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

/// Sets `SO_REUSEPORT` on a socket. On a listener that is already bound and
/// listening, Linux (4.6+) accepts this and lets later sockets with the
/// option bind the same address, joining one reuse-port group that the
/// kernel load-balances incoming connections over.
pub(crate) fn set_reuseport(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
}

fn set_int_opt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` and its exact size is
    // passed; `fd` is open for the borrow.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&raw const value).cast::<libc::c_void>(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t
    ))
    .map(drop)
}

/// A new TCP listener with `SO_REUSEADDR` and `SO_REUSEPORT` set before it
/// binds `addr`, listening with the system's largest accept queue: one more
/// member of the reuse-port group of the listeners already on `addr`.
pub(crate) fn reuseport_listener(addr: &std::net::SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        std::net::SocketAddr::V4(_) => libc::AF_INET,
        std::net::SocketAddr::V6(_) => libc::AF_INET6,
    };
    let raw = syscall!(socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?;
    // SAFETY: `socket` just returned this fd, open and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_reuseport(fd.as_fd())?;
    // SAFETY: an all-zero `sockaddr_storage` is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for
            // every socket address type, `sockaddr_in` included.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds a valid address of `len` bytes for the call.
    syscall!(bind(
        fd.as_raw_fd(),
        (&raw const storage).cast::<libc::sockaddr>(),
        len as libc::socklen_t
    ))?;
    set_backlog(fd.as_fd(), -1)?;
    Ok(fd)
}
