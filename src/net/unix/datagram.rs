//! [`UnixDatagram`], a Unix datagram socket.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net as std_unix;
use std::path::Path;
use std::time::Duration;

use super::SocketAddr;
use crate::hub::reactor::Direction;
use crate::net::socket::Socket;
use crate::net::socket::fd_conversions;
use crate::time::Backoff;

/// The first pause of a send to an address that keeps finding its
/// receiver full (see [`UnixDatagram::send_unconnected`]), doubled after
/// each, up to [`SEND_RETRY_MAX`].
const SEND_RETRY_MIN: Duration = Duration::from_millis(1);
const SEND_RETRY_MAX: Duration = Duration::from_millis(64);

/// A Unix datagram socket: [`std::os::unix::net::UnixDatagram`]'s API,
/// but a receive (or a send into a full buffer) parks the calling greenlet.
///
/// # Examples
///
/// ```
/// use greenlet::net::unix::UnixDatagram;
///
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"ping")?;
/// let mut buf = [0; 8];
/// assert_eq!(b.recv(&mut buf)?, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    sock: Socket<std_unix::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a datagram socket bound to `path`.
    ///
    /// # Errors
    ///
    /// As `bind`: `AddrInUse` if `path` exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-db-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("dgram.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let _socket = UnixDatagram::bind(&path)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::bind(path)?)
    }

    /// Creates a datagram socket bound to `addr`.
    ///
    /// # Errors
    ///
    /// As [`bind`](UnixDatagram::bind).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{SocketAddr, UnixDatagram};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-dba-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let _ = std::fs::remove_file(dir.join("dgram-addr.sock"));
    /// let addr = SocketAddr::from_pathname(dir.join("dgram-addr.sock"))?;
    /// let _socket = UnixDatagram::bind_addr(&addr)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::bind_addr(addr)?)
    }

    /// Creates a datagram socket bound to no address.
    ///
    /// # Errors
    ///
    /// As `socket`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let socket = UnixDatagram::unbound()?;
    /// assert!(socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::unbound()?)
    }

    /// Creates a connected pair of unnamed datagram sockets.
    ///
    /// # Errors
    ///
    /// As `socketpair`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// b.send(b"x")?;
    /// assert_eq!(a.recv(&mut [0; 4])?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std_unix::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    fn from_std(socket: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: Socket::from_blocking(socket)?,
        })
    }

    /// Connects the socket to the socket at `path`: [`send`](UnixDatagram::send)
    /// goes there and only its datagrams are received.
    ///
    /// # Errors
    ///
    /// As `connect`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-dc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("server.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// client.send(b"hi")?;
    /// assert_eq!(server.recv(&mut [0; 8])?, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.sock.get().connect(path)
    }

    /// Connects the socket to `addr` (see [`connect`](UnixDatagram::connect)).
    ///
    /// # Errors
    ///
    /// As `connect`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-dca-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("server-addr.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect_addr(&server.local_addr()?)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.get().connect_addr(addr)
    }

    /// A new handle to the same socket (a new fd), sharing its non-blocking
    /// mode and timeouts.
    ///
    /// # Errors
    ///
    /// As `dup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let socket = UnixDatagram::unbound()?;
    /// let _clone = socket.try_clone()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: self.sock.try_clone()?,
        })
    }

    /// The local address of this socket.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// assert!(UnixDatagram::unbound()?.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// The address of the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the socket is not connected.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// assert!(UnixDatagram::unbound()?.peer_addr().is_err());
    /// assert!(UnixDatagram::pair()?.0.peer_addr().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// Receives one datagram and returns its length and sender; waits for
    /// one if none is queued.
    ///
    /// # Errors
    ///
    /// As `recvfrom`; `WouldBlock` when the read timeout expires or, in
    /// non-blocking mode, when nothing is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"hello")?;
    /// let mut buf = [0; 8];
    /// let (n, from) = b.recv_from(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hello");
    /// assert!(from.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UnixDatagram::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"hello")?;
    /// assert_eq!(b.recv(&mut [0; 8])?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.io(Direction::Read, |s| s.recv(buf))
    }

    /// Sends one datagram to the socket at `path`. While the receiver's
    /// queue is full it waits, as a blocking std send does; the kernel
    /// signals no readiness for another socket's queue, so it retries after
    /// pauses growing to 64 ms (a `connect`ed socket's [`send`] is woken as
    /// soon as there is room).
    ///
    /// [`send`]: UnixDatagram::send
    ///
    /// # Errors
    ///
    /// As `sendto`: `NotFound` if nothing is bound at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-st-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("to.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// UnixDatagram::unbound()?.send_to(b"hi", &path)?;
    /// assert_eq!(server.recv(&mut [0; 8])?, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_unconnected(|s| s.send_to(buf, path))
    }

    /// Sends one datagram to `addr`, waiting while the receiver is full as
    /// [`send_to`](UnixDatagram::send_to) does.
    ///
    /// # Errors
    ///
    /// As `sendto`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-sta-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("to-addr.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// UnixDatagram::unbound()?.send_to_addr(b"hi", &server.local_addr()?)?;
    /// assert_eq!(server.recv(&mut [0; 8])?, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_unconnected(|s| s.send_to_addr(buf, addr))
    }

    /// A send to an address (`send_to`, `send_to_addr`), waiting while the
    /// socket or the receiver is full.
    ///
    /// A receiver whose queue is full gives the sender no readiness edge
    /// when it drains (the kernel links a sender to its receiver's queue
    /// only through `connect`); what wakes the sender instead is its own
    /// failed attempt, whose buffer, freed, makes it "writable" again at
    /// once. Retrying on that alone spun the hub for as long as the
    /// receiver stayed full, so from the second failure in a row each
    /// retry first sleeps, 1 ms doubling to [`SEND_RETRY_MAX`], cut to the
    /// time left before the write timeout: the send times out when it
    /// would without the pauses. A sender whose own buffer was full is
    /// woken by a true edge and succeeds at its first retry, without a
    /// sleep.
    fn send_unconnected(
        &self,
        mut send: impl FnMut(&std_unix::UnixDatagram) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut calls = 0u32;
        let mut backoff = Backoff::new(SEND_RETRY_MIN, SEND_RETRY_MAX);
        self.sock.io_paced(Direction::Write, |s, deadline| {
            calls += 1;
            if calls > 2 {
                let pause = backoff.next(deadline);
                if !pause.is_zero() {
                    crate::sleep(pause);
                }
            }
            send(s)
        })
    }

    /// Sends one datagram to the connected peer (never raising `SIGPIPE`).
    ///
    /// # Errors
    ///
    /// `NotConnected` without a peer; `ConnectionRefused` if the peer's
    /// socket is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"hello")?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock
            .io(Direction::Write, |s| crate::sys::send(s.as_fd(), buf))
    }

    /// Sets the read timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `dur` is zero, as std.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Unix, an expired receive returns `WouldBlock`, not
    /// `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Sets the write timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `dur` is zero, as std.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Unix, an expired send returns `WouldBlock`, not
    /// `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Write, dur)
    }

    /// The read timeout.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// assert_eq!(UnixDatagram::unbound()?.read_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Read))
    }

    /// The write timeout.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// assert_eq!(UnixDatagram::unbound()?.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Chooses non-blocking mode, as std: with `true`, calls that cannot
    /// proceed at once return `WouldBlock` instead of parking.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!(a.recv(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// assert!(UnixDatagram::unbound()?.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// As `shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use greenlet::net::unix::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.shutdown(Shutdown::Both)?;
    /// assert!(a.send(b"x").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }
}

fd_conversions!(UnixDatagram, std_unix::UnixDatagram);
