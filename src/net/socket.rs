//! The core every green socket type is built on: a std socket kept in
//! `O_NONBLOCK` mode, its registration with the hub, and the options std
//! users expect a blocking socket to have (non-blocking mode, read and write
//! timeouts), emulated on top.
//!
//! Every IO call goes through [`Socket::io`]: in user-chosen non-blocking
//! mode it is the bare syscall, as in std; otherwise it is
//! [`Registration::do_io_timeout`], the one would-block loop. The fd is
//! registered lazily, the first time a call would block, so sockets that
//! never wait (or that only ever pass through) cost no `epoll_ctl`.
//!
//! Options are shared by every [`try_clone`](Socket::try_clone) of a
//! socket, as the kernel shares `O_NONBLOCK` and `SO_RCVTIMEO` between
//! duplicated fds: inline in the socket until its first `try_clone`, then
//! in an `Rc` the duplicates hold.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;

use crate::hub::reactor::{Direction, Registration};

/// A socket in `O_NONBLOCK` mode, green on top.
pub(crate) struct Socket<S> {
    /// Declared before `inner`, so it deregisters while the fd is open.
    reg: OnceCell<FdRegistration>,
    /// # Invariant
    /// An open socket in `O_NONBLOCK` mode.
    inner: S,
    opts: Opts,
}

/// What std keeps per open file description and a `try_clone` shares.
#[derive(Default, Clone)]
struct Options {
    nonblocking: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

/// A socket's [`Options`]: inline in the socket (no allocation per
/// connection, and no separate cache line for every call to read) until a
/// [`try_clone`](Socket::try_clone) makes them shared by the duplicates.
/// Once shared, the socket outlives any one fd's close.
#[derive(Default)]
struct Opts {
    local: Options,
    shared: OnceCell<Rc<Options>>,
}

impl Opts {
    #[inline]
    fn get(&self) -> &Options {
        match self.shared.get() {
            Some(r) => r,
            None => &self.local,
        }
    }

    /// The shared options, made from the inline ones at the first call.
    fn share(&self) -> Rc<Options> {
        self.shared
            .get_or_init(|| Rc::new(self.local.clone()))
            .clone()
    }

    fn is_shared(&self) -> bool {
        self.shared.get().is_some()
    }
}

/// A socket's registration with the hub. Dropping it frees the hub's
/// slot; whether the fd also leaves epoll explicitly depends on what
/// happens to the fd next:
///
/// - The fd closes and nothing else refers to the socket (the common case,
///   a stream dropped): the kernel removes the epoll entry by itself when
///   the last fd of the socket closes, so no `EPOLL_CTL_DEL` is made (one
///   syscall less per connection; tokio makes it). An event already
///   fetched for the old slot is ignored (its token's generation is stale).
/// - A `try_clone` exists, or the fd lives on ([`Socket::into_inner`]):
///   the entry would outlive this close (epoll entries belong to the
///   socket, not to the fd number), so it is removed first.
///
/// A duplicate made behind the socket's back (`dup` of `as_raw_fd`) keeps
/// the old entry until it closes; its events carry a stale token and are
/// ignored.
struct FdRegistration {
    reg: Registration,
    fd: RawFd,
    /// A [`try_clone`](Socket::try_clone) of the socket exists (or it is
    /// one): the epoll entry can outlive this fd's close.
    duplicated: Cell<bool>,
    deregistered: Cell<bool>,
}

impl FdRegistration {
    fn deregister(&self) {
        if !self.deregistered.replace(true) {
            let _ = self.reg.deregister(&mut SourceFd(&self.fd));
        }
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        if self.duplicated.get() {
            self.deregister();
        }
    }
}

impl<S: AsFd> Socket<S> {
    /// Wraps a socket that is already in `O_NONBLOCK` mode.
    pub(crate) fn new(inner: S) -> Socket<S> {
        Socket {
            reg: OnceCell::new(),
            inner,
            opts: Opts::default(),
        }
    }

    /// Wraps a socket in either mode, switching it to `O_NONBLOCK`.
    pub(crate) fn from_blocking(inner: S) -> io::Result<Socket<S>> {
        crate::sys::set_nonblocking(inner.as_fd(), true)?;
        Ok(Socket::new(inner))
    }

    /// [`from_blocking`](Socket::from_blocking) for conversions that cannot
    /// fail (`From`, `FromRawFd`): only an fd that is not open fails, which
    /// their contracts rule out.
    pub(crate) fn adopt(inner: S) -> Socket<S> {
        match crate::sys::set_nonblocking(inner.as_fd(), true) {
            Ok(()) => Socket::new(inner),
            Err(e) => panic!(
                "greenlet: cannot put fd {} in non-blocking mode: {e}",
                inner.as_fd().as_raw_fd()
            ),
        }
    }

    /// The std socket (in `O_NONBLOCK` mode: for calls that never block).
    #[inline]
    pub(crate) fn get(&self) -> &S {
        &self.inner
    }

    /// The socket without its registration (still in `O_NONBLOCK` mode).
    pub(crate) fn into_inner(self) -> S {
        let Socket { reg, inner, .. } = self;
        // The fd stays open: take it out of epoll now.
        if let Some(r) = reg.into_inner() {
            r.deregister();
        }
        inner
    }

    /// A new fd for the same socket, sharing the options.
    pub(crate) fn try_clone(&self) -> io::Result<Socket<S>>
    where
        S: From<OwnedFd>,
    {
        let fd = self.inner.as_fd().try_clone_to_owned()?;
        let shared = self.opts.share();
        if let Some(r) = self.reg.get() {
            r.duplicated.set(true);
        }
        Ok(Socket {
            reg: OnceCell::new(),
            inner: S::from(fd),
            opts: Opts {
                local: Options::default(),
                shared: OnceCell::from(shared),
            },
        })
    }

    /// This socket's registration, made now if it has none yet.
    pub(crate) fn registration(&self) -> io::Result<&Registration> {
        if let Some(r) = self.reg.get() {
            return Ok(&r.reg);
        }
        let fd = self.inner.as_fd().as_raw_fd();
        let reg = match Registration::new(fd) {
            // A std socket that waited in a monkey hook before it was
            // converted (`TcpStream::from(std_stream)`) is registered by the
            // hook layer already: that registration gives way to ours.
            #[cfg(feature = "monkey")]
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                crate::monkey::fdtable::forget_registration(fd);
                Registration::new(fd)?
            }
            r => r?,
        };
        Ok(&self
            .reg
            .get_or_init(|| FdRegistration {
                reg,
                fd,
                duplicated: Cell::new(self.opts.is_shared()),
                deregistered: Cell::new(false),
            })
            .reg)
    }

    /// Runs one IO call the way a std socket in the user's chosen mode
    /// would: in non-blocking mode the bare syscall; otherwise the syscall
    /// retried on readiness, within the direction's timeout (whose expiry is
    /// `WouldBlock`, like the kernel's `SO_RCVTIMEO`).
    #[inline]
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_noting(dir, |_| {}, op)
    }

    /// [`io`](Socket::io) for an `op` that paces its own retries (see
    /// [`Backoff`](crate::time::Backoff)): it is also given the call's
    /// deadline, `None` until the call first waits (when the timeout
    /// starts) or without a timeout.
    pub(crate) fn io_paced<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S, Option<Instant>) -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = Cell::new(None);
        self.io_noting(dir, |d| deadline.set(d), |s| op(s, deadline.get()))
    }

    /// [`io`](Socket::io), handing the deadline the call sets when it
    /// first waits to `noted`.
    #[inline]
    fn io_noting<R>(
        &self,
        dir: Direction,
        noted: impl FnMut(Option<Instant>),
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.opts.get().nonblocking.get() {
            return op(&self.inner);
        }
        let reg = match self.reg.get() {
            Some(r) => &r.reg,
            None => match op(&self.inner) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let reg = self.registration()?;
                    reg.clear_readiness(dir);
                    reg
                }
                done => return done,
            },
        };
        reg.do_io_timeout(dir, self.timeout(dir), noted, || op(&self.inner))
    }

    /// A stream call moved fewer bytes than asked where that proves the
    /// kernel buffer drained (read) or full (write): the next call can
    /// wait for the edge without first failing a syscall. See
    /// [`Registration::mark_drained`] for when it is proof.
    #[inline]
    fn drained(&self, dir: Direction) {
        if let Some(r) = self.reg.get() {
            r.reg.mark_drained(dir);
        }
    }

    /// A stream read: any bytes available, or waits for some.
    ///
    /// A short read is taken as "drained" (the next read parks without a
    /// syscall) only where [`StreamKind::SHORT_READ_DRAINS`] says the kernel
    /// guarantees it; elsewhere the next read tries the syscall first and
    /// parks only on `WouldBlock`, so queued data is never stranded.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize>
    where
        S: StreamKind,
    {
        let len = buf.len();
        let n = self.io(Direction::Read, |s| crate::sys::recv(s.as_fd(), buf))?;
        if S::SHORT_READ_DRAINS && n > 0 && n < len {
            self.drained(Direction::Read);
        }
        Ok(n)
    }

    /// A vectored stream read (see [`read`](Socket::read)).
    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>
    where
        S: StreamKind,
        for<'a> &'a S: Read,
    {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Direction::Read, |mut s| s.read_vectored(bufs))?;
        if S::SHORT_READ_DRAINS && n > 0 && n < len {
            self.drained(Direction::Read);
        }
        Ok(n)
    }

    /// A stream write: sends what the socket takes now, or waits until it
    /// takes something. Never raises `SIGPIPE`.
    ///
    /// Once a call has sent any bytes it returns their count instead of
    /// parking again for the rest (`Write::write` may be partial;
    /// `write_all` loops). So a kill or a `with_timeout` that unwinds a
    /// write can only unwind one that sent nothing, and a caller that
    /// retries `write(&buf[sent..])` after a timeout never sends a byte
    /// twice. A short write marks the buffer full, so the next call waits
    /// for the edge without a syscall that would only say `WouldBlock`.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.io(Direction::Write, |s| crate::sys::send(s.as_fd(), buf))?;
        if n > 0 && n < buf.len() {
            self.drained(Direction::Write);
        }
        Ok(n)
    }

    /// The vectored form of [`write`](Socket::write).
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Direction::Write, |s| {
            crate::sys::send_vectored(s.as_fd(), bufs)
        })?;
        if n > 0 && n < len {
            self.drained(Direction::Write);
        }
        Ok(n)
    }

    /// User-chosen non-blocking mode (std's `set_nonblocking`): calls
    /// return `WouldBlock` instead of waiting.
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.opts.get().nonblocking.set(on);
    }

    /// Sets the read or write timeout, refusing a zero one as std does.
    pub(crate) fn set_timeout(&self, dir: Direction, dur: Option<Duration>) -> io::Result<()> {
        if dur == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        match dir {
            Direction::Read => self.opts.get().read_timeout.set(dur),
            Direction::Write => self.opts.get().write_timeout.set(dur),
        }
        Ok(())
    }

    /// The read or write timeout.
    #[inline]
    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        match dir {
            Direction::Read => self.opts.get().read_timeout.get(),
            Direction::Write => self.opts.get().write_timeout.get(),
        }
    }
}

/// What a stream socket type's short reads prove.
pub(crate) trait StreamKind {
    /// Whether a read that returns fewer bytes than asked proves the
    /// receive queue empty (see [`Registration::mark_drained`]): true for
    /// TCP, whose urgent mark is tracked through `EPOLLPRI`; false for Unix
    /// streams, whose reads stop after a message carrying file descriptors
    /// (`SCM_RIGHTS`) or different credentials with no epoll bit to say
    /// so. Where false, every short read is followed by another syscall
    /// before the socket waits for an edge.
    const SHORT_READ_DRAINS: bool;
}

impl StreamKind for std::net::TcpStream {
    const SHORT_READ_DRAINS: bool = true;
}

impl StreamKind for std::os::unix::net::UnixStream {
    const SHORT_READ_DRAINS: bool = false;
}

impl<S: AsFd> AsFd for Socket<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<S: fmt::Debug> fmt::Debug for Socket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// The fd conversions every green socket type has, as its std
/// counterpart does (plus `From<std type>`): `$green` wraps a
/// `Socket<$std>` in a field named `sock`.
macro_rules! fd_conversions {
    ($green:ident, $std:ty) => {
        impl std::os::fd::AsFd for $green {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.sock)
            }
        }

        impl std::os::fd::AsRawFd for $green {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.sock))
            }
        }

        /// The fd stays in `O_NONBLOCK` mode (how greenlet keeps every
        /// socket); set it back with std's `set_nonblocking(false)` before
        /// blocking on it outside greenlet.
        impl std::os::fd::IntoRawFd for $green {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.sock.into_inner())
            }
        }

        /// Takes ownership of `fd`, an open socket of the right type, and
        /// switches it to `O_NONBLOCK` (greenlet's own non-blocking mode
        /// starts off, so calls park as on a blocking socket).
        impl std::os::fd::FromRawFd for $green {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $green {
                // SAFETY: the caller passes ownership of an open socket.
                let inner = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                $green {
                    sock: $crate::net::socket::Socket::adopt(inner),
                }
            }
        }

        /// Makes a std socket green (switching the fd to `O_NONBLOCK`).
        impl From<$std> for $green {
            fn from(inner: $std) -> $green {
                $green {
                    sock: $crate::net::socket::Socket::adopt(inner),
                }
            }
        }

        /// Takes ownership of an open socket of the right type, as
        /// `FromRawFd` does; `OwnedFd` is `Send`, so this is how a socket
        /// moves to another thread's hub.
        impl From<std::os::fd::OwnedFd> for $green {
            fn from(fd: std::os::fd::OwnedFd) -> $green {
                <$green>::from(<$std>::from(fd))
            }
        }

        /// Gives the fd back, deregistered and in `O_NONBLOCK` mode.
        impl From<$green> for std::os::fd::OwnedFd {
            fn from(green: $green) -> std::os::fd::OwnedFd {
                green.sock.into_inner().into()
            }
        }

        impl std::fmt::Debug for $green {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.sock, f)
            }
        }
    };
}
pub(crate) use fd_conversions;

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use crate::hub::Hub;
    use crate::net::{TcpListener, TcpStream};

    /// A greenlet killed while parked in a read leaves no waiter and no
    /// registration behind: its socket was deregistered and closed.
    #[test]
    fn kill_while_parked_in_io_leaks_nothing() {
        let reactor = &Hub::current().reactor;
        let before = reactor.registrations();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let reader = crate::spawn(move || (&s).read(&mut [0; 8]).map(drop));
        crate::sleep(Duration::from_millis(5));
        assert!(reactor.has_waiters());
        reader.kill();
        assert!(reader.join().unwrap_err().is_killed());
        assert!(!reactor.has_waiters());
        drop((l, c));
        assert_eq!(reactor.registrations(), before);
    }
}
