//! Address resolution: [`ToSocketAddrs`], std's trait of the same name made
//! green. Numeric addresses are parsed on the spot; host names are looked
//! up by running std's resolver (`getaddrinfo`, which no hook can make
//! cooperative) whole on the blocking pool while the caller parks.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::{iter, option, slice, vec};

use crate::threadpool::spawn_blocking;

/// Types that can be turned into one or more socket addresses: the green
/// counterpart of [`std::net::ToSocketAddrs`], implemented for the same
/// types, with the same parsing rules and results.
///
/// Every `greenlet::net` function that takes an address takes this trait.
/// Numeric addresses (`"127.0.0.1:80"`, `("::1", 80)`, a [`SocketAddr`])
/// never leave the calling thread. Host names (`"localhost:80"`,
/// `("example.com", 443)`) are resolved by the system resolver on the
/// [blocking pool](crate::threadpool); the calling greenlet parks
/// meanwhile and the others keep running.
///
/// A type that implements only std's trait does not implement this one;
/// resolve it first (`addr.to_socket_addrs()?.collect::<Vec<_>>()`, which
/// blocks the thread for host names) and pass the result as a slice.
///
/// # Errors
///
/// As std: `InvalidInput` for a string that is neither an address nor a
/// `host:port`, or whose port is not a number; for a failed lookup, the
/// error std's resolver returned, with the same [`io::ErrorKind`] and the
/// host name added to its message.
///
/// # Examples
///
/// ```
/// use greenlet::net::ToSocketAddrs;
///
/// let addrs: Vec<_> = "localhost:8080".to_socket_addrs()?.collect();
/// assert!(addrs.iter().all(|a| a.port() == 8080 && a.ip().is_loopback()));
///
/// let numeric: Vec<_> = ("::1", 53).to_socket_addrs()?.collect();
/// assert_eq!(numeric, ["[::1]:53".parse().unwrap()]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait ToSocketAddrs {
    /// The iterator over the addresses.
    type Iter: Iterator<Item = SocketAddr>;

    /// Resolves to socket addresses, parking the calling greenlet while a
    /// host name is looked up.
    ///
    /// # Errors
    ///
    /// See the [trait documentation](ToSocketAddrs#errors).
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

impl ToSocketAddrs for SocketAddr {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(*self).into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V4(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V6(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV4::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddrV6::new(self.0, self.1, 0, 0).to_socket_addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        resolve(self.0, self.1).map(Vec::into_iter)
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (&*self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        let invalid = |msg| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| invalid("invalid port value"))?;
        (host, port).to_socket_addrs()
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = iter::Cloned<slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<T::Iter> {
        (**self).to_socket_addrs()
    }
}

/// `host` (a name or a numeric address) with `port`.
fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    spawn_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
            .map(Iterator::collect)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {name:?}: {e}")))
    })
}

/// Resolves `addr` and calls `f` with each address in turn until one
/// succeeds, returning the last error otherwise (std's `each_addr`).
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(v) => return Ok(v),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
