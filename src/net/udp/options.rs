//! [`UdpSocket`]'s socket options: broadcast, time-to-live, multicast
//! (loop, TTL, group membership), and the pending error.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::UdpSocket;

impl UdpSocket {
    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_broadcast(true)?;
    /// assert!(socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.sock.get().set_broadcast(broadcast)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// assert!(!UdpSocket::bind("127.0.0.1:0")?.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.get().broadcast()
    }

    /// Sets the IP time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(42)?;
    /// assert_eq!(socket.ttl()?, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.get().set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// assert!(UdpSocket::bind("127.0.0.1:0")?.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.get().ttl()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether multicast packets sent from this
    /// socket loop back to local listeners.
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_multicast_loop_v4(false)?;
    /// assert!(!socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, multicast_loop_v4: bool) -> io::Result<()> {
        self.sock.get().set_multicast_loop_v4(multicast_loop_v4)
    }

    /// Whether `IP_MULTICAST_LOOP` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`, the time-to-live of outgoing multicast
    /// packets (1 by default: they stay on the local network).
    ///
    /// # Errors
    ///
    /// As `setsockopt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_multicast_ttl_v4(4)?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, multicast_ttl_v4: u32) -> io::Result<()> {
        self.sock.get().set_multicast_ttl_v4(multicast_ttl_v4)
    }

    /// The `IP_MULTICAST_TTL` of this socket.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP` (IPv6 sockets).
    ///
    /// # Errors
    ///
    /// As `setsockopt` (for example on an IPv4 socket).
    pub fn set_multicast_loop_v6(&self, multicast_loop_v6: bool) -> io::Result<()> {
        self.sock.get().set_multicast_loop_v6(multicast_loop_v6)
    }

    /// Whether `IPV6_MULTICAST_LOOP` is set.
    ///
    /// # Errors
    ///
    /// As `getsockopt`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.get().multicast_loop_v6()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with
    /// address `interface` (`Ipv4Addr::UNSPECIFIED`: the system's choice).
    ///
    /// # Errors
    ///
    /// As `setsockopt(IP_ADD_MEMBERSHIP)`: for example when no interface
    /// can carry multicast.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// use greenlet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:5353")?;
    /// socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &Ipv4Addr::UNSPECIFIED)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on interface index
    /// `interface` (0: the system's choice).
    ///
    /// # Errors
    ///
    /// As `setsockopt(IPV6_ADD_MEMBERSHIP)`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](UdpSocket::join_multicast_v4).
    ///
    /// # Errors
    ///
    /// As `setsockopt(IP_DROP_MEMBERSHIP)`, for example when not a member.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](UdpSocket::join_multicast_v6).
    ///
    /// # Errors
    ///
    /// As `setsockopt(IPV6_DROP_MEMBERSHIP)`, for example when not a member.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.get().leave_multicast_v6(multiaddr, interface)
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
    /// use greenlet::net::UdpSocket;
    ///
    /// assert!(UdpSocket::bind("127.0.0.1:0")?.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.get().take_error()
    }
}
