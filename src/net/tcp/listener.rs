//! [`TcpListener`], a TCP server socket, and [`Incoming`], the iterator
//! over its connections.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use super::TcpStream;
use crate::hub::reactor::Direction;
use crate::net::ToSocketAddrs;
use crate::net::dns::each_addr;
use crate::net::socket::{Socket, fd_conversions};

/// A TCP server socket: [`std::net::TcpListener`]'s API, but
/// [`accept`](TcpListener::accept) parks the calling greenlet.
///
/// The accept-queue length is the system maximum (`net.core.somaxconn`)
/// rather than std's 128, since many greenlets tend to connect at once.
///
/// # Examples
///
/// An echo server with a greenlet per connection:
///
/// ```no_run
/// use greenlet::net::{TcpListener, TcpStream};
///
/// fn handle_client(stream: TcpStream) -> std::io::Result<u64> {
///     let mut reader = &stream;
///     std::io::copy(&mut reader, &mut &stream)
/// }
///
/// let listener = TcpListener::bind("127.0.0.1:80")?;
/// for stream in listener.incoming() {
///     let stream = stream?;
///     greenlet::spawn(move || handle_client(stream));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    sock: Socket<std::net::TcpListener>,
}

/// An iterator over the connections of a [`TcpListener`], returned by
/// [`TcpListener::incoming`]. It never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Creates a listener bound to `addr`; each resolved address is tried
    /// until one binds, and the last error is returned otherwise. Port 0
    /// asks the OS for a free port (see [`local_addr`](TcpListener::local_addr)).
    ///
    /// # Errors
    ///
    /// Resolution errors (see [`ToSocketAddrs`]), the bind error of the
    /// last address tried (`AddrInUse`, ...), or `InvalidInput` if `addr`
    /// yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let listener = std::net::TcpListener::bind(a)?;
            crate::sys::set_backlog(listener.as_fd(), -1)?;
            Ok(TcpListener {
                sock: Socket::from_blocking(listener)?,
            })
        })
    }

    /// The local address this listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// A new handle to the same listening socket (a new fd); several
    /// greenlets may accept on it at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let clone = listener.try_clone()?;
    /// assert_eq!(clone.local_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `dup`: `EMFILE` when the process is out of file descriptors.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// # Errors
    ///
    /// As `accept4`. When the process or the system is out of file
    /// descriptors this returns `EMFILE`/`ENFILE` (raw OS errors 24 and 23)
    /// and the connection stays queued. Do not retry at once: the listener
    /// is still readable, so the retry fails again straight away and the
    /// loop spins at full CPU. Sleep before retrying, as Go's `net/http`
    /// does, and let other greenlets close connections meanwhile:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use greenlet::net::TcpListener;
    ///
    /// fn serve(listener: &TcpListener) -> std::io::Result<()> {
    ///     let mut backoff = Duration::from_millis(5);
    ///     loop {
    ///         match listener.accept() {
    ///             Ok((stream, _)) => {
    ///                 backoff = Duration::from_millis(5);
    ///                 greenlet::spawn(move || drop(stream));
    ///             }
    ///             Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
    ///                 // Out of fds (ENFILE/EMFILE): back off, up to 1 s.
    ///                 greenlet::sleep(backoff);
    ///                 backoff = (backoff * 2).min(Duration::from_secs(1));
    ///             }
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    /// }
    /// # let _ = serve(&TcpListener::bind("127.0.0.1:0").unwrap());
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server_side, peer) = listener.accept()?;
    /// assert_eq!(peer, client.local_addr()?);
    /// assert_eq!(server_side.peer_addr()?, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        // Accepted straight into `O_NONBLOCK` mode: no `ioctl` per
        // connection.
        let (fd, addr) = self.sock.io(Direction::Read, |l| {
            crate::sys::accept_nonblocking(l.as_fd())
        })?;
        Ok((
            TcpStream {
                sock: Socket::new(std::net::TcpStream::from(fd)),
            },
            addr,
        ))
    }

    /// An endless iterator over incoming connections, each from
    /// [`accept`](TcpListener::accept) (see there for errors).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let clients = greenlet::spawn(move || {
    ///     (0..3).map(|_| TcpStream::connect(addr)).collect::<Vec<_>>()
    /// });
    /// let accepted = listener.incoming().take(3).filter(Result::is_ok).count();
    /// assert_eq!(accepted, 3);
    /// assert!(clients.join().unwrap().iter().all(Result::is_ok));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets the IP time-to-live of packets sent from accepted sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// The IP time-to-live of packets sent from accepted sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.ttl()? > 0);
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
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }

    /// Chooses non-blocking mode, as std: with `true`,
    /// [`accept`](TcpListener::accept) returns `WouldBlock` when no
    /// connection is queued instead of parking.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// let err = listener.accept().unwrap_err();
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

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

fd_conversions!(TcpListener, std::net::TcpListener);
