//! UDP: [`UdpSocket`], std's API on a green socket.

mod options;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::hub::reactor::Direction;
use crate::net::ToSocketAddrs;
use crate::net::dns::each_addr;
use crate::net::socket::Socket;
use crate::net::socket::fd_conversions;

/// A UDP socket: [`std::net::UdpSocket`]'s API, but a receive (or a send
/// into a full buffer) parks the calling greenlet instead of the thread.
///
/// # Examples
///
/// ```
/// use greenlet::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0")?;
/// let b = UdpSocket::bind("127.0.0.1:0")?;
/// a.send_to(b"ping", b.local_addr()?)?;
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    sock: Socket<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Creates a UDP socket bound to `addr`; each resolved address is tried
    /// until one binds, and the last error is returned otherwise.
    ///
    /// # Errors
    ///
    /// Resolution errors (see [`ToSocketAddrs`]), the bind error of the
    /// last address tried, or `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| {
            Ok(UdpSocket {
                sock: Socket::from_blocking(std::net::UdpSocket::bind(a)?)?,
            })
        })
    }

    /// Receives one datagram and returns its length and sender; waits for
    /// one if none is queued. Bytes beyond `buf`'s length are discarded.
    ///
    /// # Errors
    ///
    /// As `recvfrom`; `WouldBlock` when the read timeout expires or, in
    /// non-blocking mode, when nothing is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let sender = greenlet::spawn({
    ///     let to = socket.local_addr()?;
    ///     move || UdpSocket::bind("127.0.0.1:0")?.send_to(b"hi", to)
    /// });
    /// let mut buf = [0; 8];
    /// let (n, _) = socket.recv_from(&mut buf)?;
    /// assert_eq!(&buf[..n], b"hi");
    /// assert_eq!(sender.join().unwrap()?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), but leaves the datagram
    /// queued.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.send_to(b"hi", socket.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.peek_from(&mut buf)?.0, 2);
    /// assert_eq!(socket.recv_from(&mut buf)?.0, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.io(Direction::Read, |s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr` (resolved, its first address used) and
    /// returns the number of bytes sent.
    ///
    /// # Errors
    ///
    /// Resolution errors, `InvalidInput` if `addr` yields no address, or
    /// the send error (a datagram larger than the protocol allows fails
    /// with `EMSGSIZE`).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.send_to(b"hello", socket.local_addr()?)?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        match addr.to_socket_addrs()?.next() {
            Some(to) => self.sock.io(Direction::Write, |s| s.send_to(buf, to)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to send data to",
            )),
        }
    }

    /// The address of the peer this socket is connected to.
    ///
    /// # Errors
    ///
    /// `NotConnected` if [`connect`](UdpSocket::connect) was not called.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.peer_addr().is_err());
    /// socket.connect("127.0.0.1:9")?;
    /// assert_eq!(socket.peer_addr()?.port(), 9);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().peer_addr()
    }

    /// The local address this socket is bound to.
    ///
    /// # Errors
    ///
    /// As `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.get().local_addr()
    }

    /// A new handle to the same socket (a new fd), sharing its non-blocking
    /// mode and timeouts; one greenlet may receive while another sends.
    ///
    /// # Errors
    ///
    /// As `dup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let clone = socket.try_clone()?;
    /// assert_eq!(clone.local_addr()?, socket.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.try_clone()?,
        })
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
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = socket.recv_from(&mut [0; 8]).unwrap_err();
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
    /// As std on Unix, an expired send returns `WouldBlock`, not
    /// `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.write_timeout()?, Some(Duration::from_secs(1)));
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
    /// use greenlet::net::UdpSocket;
    ///
    /// assert_eq!(UdpSocket::bind("127.0.0.1:0")?.read_timeout()?, None);
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
    /// use greenlet::net::UdpSocket;
    ///
    /// assert_eq!(UdpSocket::bind("127.0.0.1:0")?.write_timeout()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Connects the socket to a peer: [`send`](UdpSocket::send) goes there
    /// and only its datagrams are received. Each resolved address is tried
    /// until one works.
    ///
    /// # Errors
    ///
    /// Resolution errors, the error of the last address tried, or
    /// `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// a.send(b"ping")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(b.recv(&mut buf)?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.sock.get().connect(a))
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` without [`connect`](UdpSocket::connect); otherwise as
    /// `send` (`ConnectionRefused` may report an ICMP error for an earlier
    /// datagram).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(socket.local_addr()?)?;
    /// assert_eq!(socket.send(b"me")?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.io(Direction::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(socket.local_addr()?)?;
    /// socket.send(b"me")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.recv(&mut buf)?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.io(Direction::Read, |s| s.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv), but leaves the datagram queued.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](UdpSocket::recv_from).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.connect(socket.local_addr()?)?;
    /// socket.send(b"me")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.peek(&mut buf)?, 2);
    /// assert_eq!(socket.recv(&mut buf)?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.io(Direction::Read, |s| s.peek(buf))
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
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_nonblocking(true)?;
    /// let err = socket.recv(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

fd_conversions!(UdpSocket, std::net::UdpSocket);
