//! [`UnixStream`]: a connected Unix stream socket, and its `Read`/`Write`
//! impls.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net as std_unix;
use std::path::Path;
use std::time::Duration;

use super::SocketAddr;
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
    pub(super) sock: Socket<std_unix::UnixStream>,
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

fd_conversions!(UnixStream, std_unix::UnixStream);
