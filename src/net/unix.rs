//! Unix domain sockets: [`UnixStream`], [`UnixListener`] and
//! [`UnixDatagram`], the API of `std::os::unix::net` on green sockets.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use greenlet::net::unix::{UnixListener, UnixStream};
//!
//! let dir = std::env::temp_dir().join(format!("greenlet-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("echo.sock");
//! # let _ = std::fs::remove_file(&path);
//! let listener = UnixListener::bind(&path)?;
//! let server = greenlet::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//! let mut client = UnixStream::connect(&path)?;
//! client.write_all(b"hello")?;
//! let mut back = [0; 5];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"hello");
//! server.join().unwrap()?;
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net as std_unix;
use std::path::Path;
use std::time::Duration;

pub use std::os::unix::net::SocketAddr;

use crate::hub::reactor::Direction;
use crate::net::socket::Socket;
use crate::net::socket::fd_conversions;

/// A Unix stream socket: [`std::os::unix::net::UnixStream`]'s API, but a
/// call that would block parks the calling greenlet instead of the thread.
///
/// As for [`TcpStream`](crate::net::TcpStream): `Read`/`Write` work through
/// `&UnixStream` too, a `write` returns once it has sent some bytes, writes
/// never raise `SIGPIPE`, and timeouts expire with `WouldBlock`. Kills and
/// timeouts in the middle of IO behave as
/// [for TCP](crate::net#kills-and-timeouts-in-the-middle-of-io).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use greenlet::net::unix::UnixStream;
///
/// let (mut a, mut b) = UnixStream::pair()?;
/// a.write_all(b"hello")?;
/// let mut buf = [0; 5];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    sock: Socket<std_unix::UnixStream>,
}

/// A Unix stream server socket: [`std::os::unix::net::UnixListener`]'s
/// API, but [`accept`](UnixListener::accept) parks the calling greenlet.
///
/// The accept-queue length is the system maximum (`net.core.somaxconn`).
///
/// # Examples
///
/// ```no_run
/// use greenlet::net::unix::UnixListener;
///
/// let listener = UnixListener::bind("/tmp/greenlet.sock")?;
/// for stream in listener.incoming() {
///     let stream = stream?;
///     greenlet::spawn(move || std::io::copy(&mut &stream, &mut &stream));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    sock: Socket<std_unix::UnixListener>,
}

/// An iterator over the connections of a [`UnixListener`], returned by
/// [`UnixListener::incoming`]. It never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

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

/// How long a connect to a full accept queue waits before its first retry;
/// doubled after each, up to [`CONNECT_RETRY_MAX`].
const CONNECT_RETRY_MIN: Duration = Duration::from_millis(1);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(64);

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// When the listener's accept queue is full, a blocking Unix connect
    /// waits for room; this one retries with a short back-off (from 1 ms up
    /// to 64 ms) while the greenlet sleeps, since the kernel gives no
    /// readiness event for that.
    ///
    /// # Errors
    ///
    /// As `connect`: `NotFound` if nothing is bound at `path`,
    /// `ConnectionRefused` if the socket there does not listen.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{UnixListener, UnixStream};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-c-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("connect.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let _listener = UnixListener::bind(&path)?;
    /// let stream = UnixStream::connect(&path)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Connects to the socket at `addr` (see [`connect`](UnixStream::connect)).
    ///
    /// # Errors
    ///
    /// As [`connect`](UnixStream::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{UnixListener, UnixStream};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-ca-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("connect-addr.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _stream = UnixStream::connect_addr(&listener.local_addr()?)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let mut retry = CONNECT_RETRY_MIN;
        loop {
            match mio::net::UnixStream::connect_addr(addr) {
                Ok(s) => {
                    let stream = std_unix::UnixStream::from(OwnedFd::from(s));
                    return Ok(UnixStream {
                        sock: Socket::new(stream),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(retry);
                    retry = (retry * 2).min(CONNECT_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates a connected pair of unnamed sockets.
    ///
    /// # Errors
    ///
    /// As `socketpair` (`EMFILE` when out of file descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed() && b.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((
            UnixStream {
                sock: Socket::from_blocking(a)?,
            },
            UnixStream {
                sock: Socket::from_blocking(b)?,
            },
        ))
    }

    /// A new handle to the same socket (a new fd), sharing its non-blocking
    /// mode and timeouts; one greenlet may read while another writes.
    ///
    /// # Errors
    ///
    /// As `dup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let _a2 = a.try_clone()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
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
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// The address of the peer.
    ///
    /// # Errors
    ///
    /// As `getpeername`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// Sets the read timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `dur` is zero, as std.
    ///
    /// # Platform-specific behavior
    ///
    /// As std on Unix, an expired read returns `WouldBlock`, not `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = (&a).read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
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
    /// As std on Unix, an expired write returns `WouldBlock` (or the count
    /// written so far), not `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
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
    /// use greenlet::net::unix::UnixStream;
    ///
    /// assert_eq!(UnixStream::pair()?.0.read_timeout()?, None);
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
    /// use greenlet::net::unix::UnixStream;
    ///
    /// assert_eq!(UnixStream::pair()?.0.write_timeout()?, None);
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
    /// use std::io::Read;
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!((&a).read(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
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
    /// use greenlet::net::unix::UnixStream;
    ///
    /// assert!(UnixStream::pair()?.0.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// Shuts down the read half, the write half, or both. A greenlet parked
    /// reading this socket (through a clone) wakes up and reads EOF.
    ///
    /// # Errors
    ///
    /// As `shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// use greenlet::net::unix::UnixStream;
    ///
    /// let (a, b) = UnixStream::pair()?;
    /// a.shutdown(Shutdown::Write)?;
    /// assert_eq!((&b).read(&mut [0; 8])?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.get().shutdown(how)
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Write for &UnixStream {
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

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

impl UnixListener {
    /// Creates a listener bound to `path` (which must not exist yet).
    ///
    /// # Errors
    ///
    /// As `bind`: `AddrInUse` if `path` exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixListener;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-b-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("bind.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Creates a listener bound to `addr`.
    ///
    /// # Errors
    ///
    /// As [`bind`](UnixListener::bind).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{SocketAddr, UnixListener};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-ba-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let addr = SocketAddr::from_pathname(dir.join("bind-addr.sock"))?;
    /// # let _ = std::fs::remove_file(dir.join("bind-addr.sock"));
    /// let _listener = UnixListener::bind_addr(&addr)?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let listener = mio::net::UnixListener::bind_addr(addr)?;
        Ok(UnixListener {
            sock: Socket::new(std_unix::UnixListener::from(OwnedFd::from(listener))),
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    ///
    /// As `accept4`; see [`TcpListener::accept`](crate::net::TcpListener::accept)
    /// for how to retry after `EMFILE`/`ENFILE` without spinning.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{UnixListener, UnixStream};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-a-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("accept.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _client = UnixStream::connect(&path)?;
    /// let (_server_side, _) = listener.accept()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.sock.io(Direction::Read, |l| l.accept())?;
        Ok((
            UnixStream {
                sock: Socket::from_blocking(stream)?,
            },
            addr,
        ))
    }

    /// A new handle to the same listening socket (a new fd).
    ///
    /// # Errors
    ///
    /// As `dup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixListener;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-tc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("clone.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _clone = listener.try_clone()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// The local address this listener is bound to.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixListener;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-la-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("local.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// Chooses non-blocking mode, as std: with `true`,
    /// [`accept`](UnixListener::accept) returns `WouldBlock` when no
    /// connection is queued.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` mirrors std.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::UnixListener;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-nb-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("nb.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// listener.set_nonblocking(true)?;
    /// assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # std::fs::remove_dir_all(&dir)?;
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
    /// use greenlet::net::unix::UnixListener;
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-te-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("err.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert!(listener.take_error()?.is_none());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// An endless iterator over incoming connections, each from
    /// [`accept`](UnixListener::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::unix::{UnixListener, UnixStream};
    ///
    /// # let dir = std::env::temp_dir().join(format!("greenlet-doc-in-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("incoming.sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _clients: Vec<_> = (0..3).map(|_| UnixStream::connect(&path)).collect();
    /// assert_eq!(listener.incoming().take(3).filter(Result::is_ok).count(), 3);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
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

    /// Sends one datagram to the socket at `path`.
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
        self.sock.io(Direction::Write, |s| s.send_to(buf, path))
    }

    /// Sends one datagram to `addr`.
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
        self.sock
            .io(Direction::Write, |s| s.send_to_addr(buf, addr))
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

fd_conversions!(UnixStream, std_unix::UnixStream);
fd_conversions!(UnixListener, std_unix::UnixListener);
fd_conversions!(UnixDatagram, std_unix::UnixDatagram);
