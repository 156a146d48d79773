//! [`TcpStream`]: a TCP connection, and its `Read`/`Write` impls.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::hub::deadline_after;
use crate::hub::reactor::Direction;
use crate::net::ToSocketAddrs;
use crate::net::dns::each_addr;
use crate::net::socket::{Socket, fd_conversions};

/// A TCP connection: [`std::net::TcpStream`]'s API, but a call that would
/// block parks the calling greenlet instead of the thread.
///
/// Reading and writing work through `&TcpStream` too, and
/// [`try_clone`](TcpStream::try_clone) gives a second handle, so one
/// greenlet can read while another writes. Called from root context
/// (outside any greenlet) every call blocks by running the hub, so the same
/// code works everywhere.
///
/// Writes never raise `SIGPIPE`: a write to a closed peer returns an error
/// (`BrokenPipe` or `ConnectionReset`). A `write` returns as soon as it has
/// sent some bytes, so a kill or timeout never loses its count; what an
/// interrupted `write_all` or `read_exact` has done is described in
/// [the module docs](crate::net#kills-and-timeouts-in-the-middle-of-io).
///
/// A `TcpStream` belongs to the thread that made it (it is neither `Send`
/// nor `Sync`); move a connection to another thread as an [`OwnedFd`]:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<greenlet::net::TcpStream>();
/// ```
///
/// # Examples
///
/// ```no_run
/// use std::io::{Read, Write};
/// use greenlet::net::TcpStream;
///
/// let mut stream = TcpStream::connect("127.0.0.1:34254")?;
/// stream.write_all(&[1])?;
/// stream.read(&mut [0; 128])?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    pub(super) sock: Socket<std::net::TcpStream>,
}

impl TcpStream {
    /// Opens a TCP connection to a remote host.
    ///
    /// `addr` may resolve to several addresses (a host name resolved on the
    /// blocking pool, or a slice); each is tried in order until one
    /// connects, and the error of the last one is returned if none does.
    ///
    /// # Errors
    ///
    /// Resolution errors (see [`ToSocketAddrs`]), the connection error of
    /// the last address tried (`ConnectionRefused`, ...), or
    /// `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| TcpStream::connect_addr(a, None))
    }

    /// Opens a TCP connection to `addr`, giving up after `timeout`.
    ///
    /// Unlike [`connect`](TcpStream::connect) it takes one address: resolve
    /// first and try each with its own timeout.
    ///
    /// # Errors
    ///
    /// `TimedOut` if `timeout` passes first; `InvalidInput` if `timeout` is
    /// zero; otherwise the connection error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let _stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    /// let zero = TcpStream::connect_timeout(&addr, Duration::ZERO);
    /// assert_eq!(zero.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_addr(*addr, Some(timeout))
    }

    fn connect_addr(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        // A non-blocking socket whose connect is in progress.
        let stream = std::net::TcpStream::from(OwnedFd::from(mio::net::TcpStream::connect(addr)?));
        let sock = Socket::new(stream);
        let reg = sock.registration()?;
        // In progress: wait for the write edge first. And nothing can be
        // readable yet: the first read after connecting (a client's
        // response) waits for epoll's read edge instead of failing a
        // `recv` with EAGAIN. Both edges are reported from now on, as the
        // fd was registered after the connect call.
        reg.clear_readiness(Direction::Write);
        reg.clear_readiness(Direction::Read);
        // Writable means the handshake ended (epoll reports no EPOLLOUT
        // for a socket still in SYN_SENT, so no `getpeername` check is
        // needed). Plain EPOLLOUT means it succeeded; with EPOLLERR or
        // EPOLLHUP, `SO_ERROR` says why it failed.
        let connected = reg.do_io(Direction::Write, timeout.map(deadline_after), || {
            if reg.writable_without_error() {
                return Ok(());
            }
            match sock.get().take_error()? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        match connected {
            Ok(()) => Ok(TcpStream { sock }),
            Err(e) if timeout.is_some() && e.kind() == io::ErrorKind::TimedOut => Err(
                io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
            ),
            Err(e) => Err(e),
        }
    }

    /// The remote address this stream is connected to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// The local address of this end of the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Shuts down the read half, the write half, or both. A greenlet parked
    /// reading this socket (through a clone) wakes up and reads EOF.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Linux: shutting down a half twice is not an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.shutdown(Shutdown::Read)?;
    /// assert_eq!((&stream).read(&mut [0; 8])?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }

    /// A new handle to the same socket (a new fd): one greenlet may read
    /// through one handle while another writes through the other. The
    /// handles share their non-blocking mode and timeouts, as std's do.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut peer, _) = listener.accept()?;
    /// let mut writer = stream.try_clone()?;
    /// let reader = greenlet::spawn(move || {
    ///     let mut buf = [0; 4];
    ///     (&stream).read_exact(&mut buf).map(|()| buf)
    /// });
    /// writer.write_all(b"ping")?;
    /// let mut echo = [0; 4];
    /// peer.read_exact(&mut echo)?;
    /// peer.write_all(&echo)?;
    /// assert_eq!(&reader.join().unwrap()?, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `dup`: `EMFILE` when the process is out of file descriptors.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// Sets the read timeout: a read that waits longer fails. `None` waits
    /// forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `dur` is zero, as std.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Unix, an expired read returns `WouldBlock` (`EAGAIN`), not
    /// `TimedOut`. The timer starts when the read first has to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = (&stream).read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// assert!(stream.set_read_timeout(Some(Duration::ZERO)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Sets the write timeout: a write that waits longer for buffer space
    /// fails (or returns what it wrote so far). `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `dur` is zero, as std.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Unix, an expired write returns `WouldBlock` (`EAGAIN`),
    /// not `TimedOut`. The timer starts each time the write has to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(stream.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Write, dur)
    }

    /// The read timeout (`None`: reads wait forever).
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Read))
    }

    /// The write timeout (`None`: writes wait forever).
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Reads without removing the data from the queue; waits like
    /// [`read`](Read::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// listener.accept()?.0.write_all(b"hi")?;
    /// let mut buf = [0; 2];
    /// assert_eq!(stream.peek(&mut buf)?, 2);
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`read`](Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.io(Direction::Read, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.get().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(!stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get().nodelay()
    }

    /// Sets the IP time-to-live of outgoing packets.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(100)?;
    /// assert_eq!(stream.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing packets.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get().ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// Chooses non-blocking mode, as std: with `true`, a read or write that
    /// cannot proceed at once returns `WouldBlock` instead of parking the
    /// greenlet. The mode is shared with [`try_clone`](TcpStream::try_clone)
    /// handles.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// # use greenlet::net::{TcpListener, TcpStream};
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nonblocking(true)?;
    /// let err = (&stream).read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Write for &TcpStream {
    /// Sends all of `buf` before returning, as a write to a blocking socket
    /// does (or the part sent before an error or timeout); one `send` in
    /// non-blocking mode.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fd_conversions!(TcpStream, std::net::TcpStream);
