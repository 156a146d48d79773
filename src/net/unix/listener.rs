//! [`UnixListener`], a Unix stream server socket, and [`Incoming`], the
//! iterator over its connections.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net as std_unix;
use std::path::Path;

use super::{SocketAddr, UnixStream};
use crate::hub::reactor::Direction;
use crate::net::socket::Socket;
use crate::net::socket::fd_conversions;

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

fd_conversions!(UnixListener, std_unix::UnixListener);
