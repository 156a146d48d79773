//! Describes the socket behind an fd, for dumps: `getsockopt(SO_TYPE)`,
//! `getpeername` and `getsockname`. Called only when a dump is formatted,
//! never when a greenlet parks.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// `"tcp 127.0.0.1:5432"` (a connected stream: its peer), `"tcp listening
/// on 0.0.0.0:80"` (a stream with no peer: its own address), `"udp
/// 127.0.0.1:53"` / `"udp on 127.0.0.1:9000"`, `"unix /path"` (its peer's
/// path, or its own, or `unnamed`); `None` when `fd` is not a socket (or
/// not one of these families).
///
/// `fd` should be open; if it was closed or reused since, the answer only
/// describes whatever it names now (or fails), nothing unsafe happens.
pub(crate) fn describe_socket(fd: RawFd) -> Option<String> {
    let ty = socket_type(fd)?;
    let (proto, stream) = match ty {
        libc::SOCK_STREAM => ("tcp", true),
        libc::SOCK_DGRAM => ("udp", false),
        libc::SOCK_SEQPACKET => ("seqpacket", true),
        _ => return None,
    };
    if let Some(peer) = name(fd, libc::getpeername) {
        return Some(match peer {
            Name::Inet(a) => format!("{proto} {a}"),
            Name::Unix(p) => format!("unix {p}"),
        });
    }
    let own = name(fd, libc::getsockname)?;
    Some(match (own, stream) {
        (Name::Inet(a), true) => format!("{proto} listening on {a}"),
        (Name::Inet(a), false) => format!("{proto} on {a}"),
        (Name::Unix(p), _) => format!("unix on {p}"),
    })
}

fn socket_type(fd: RawFd) -> Option<libc::c_int> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the out-pointers name a live `c_int` and its exact size; a
    // bad or non-socket fd only makes the call fail.
    syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        (&raw mut ty).cast::<libc::c_void>(),
        &mut len
    ))
    .ok()?;
    Some(ty)
}

enum Name {
    Inet(SocketAddr),
    Unix(String),
}

type NameCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// The IPv4 or IPv6 address a call like `accept4` or `getpeername` wrote
/// into `storage`; `None` for any other family.
pub(crate) fn inet_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`,
            // and the storage is aligned and large enough for one.
            let sin = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `getpeername` or `getsockname` of `fd`, decoded.
fn name(fd: RawFd, call: NameCall) -> Option<Name> {
    // SAFETY: an all-zero `sockaddr_storage` is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the buffer is a live `sockaddr_storage` (large enough for
    // every address family) and `len` holds its size; the kernel writes at
    // most that much. A bad fd only makes the call fail.
    let rc = unsafe { call(fd, (&raw mut storage).cast::<libc::sockaddr>(), &mut len) };
    if rc != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET | libc::AF_INET6 => inet_addr(&storage).map(Name::Inet),
        libc::AF_UNIX => {
            // SAFETY: as above, for `sockaddr_un`.
            let sun = unsafe { &*(&raw const storage).cast::<libc::sockaddr_un>() };
            let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
            let path_len = (len as usize)
                .saturating_sub(offset)
                .min(sun.sun_path.len());
            let bytes: Vec<u8> = sun.sun_path[..path_len].iter().map(|&c| c as u8).collect();
            Some(Name::Unix(match bytes.first() {
                None => "unnamed".to_string(),
                // An abstract address: a NUL, then a name (not a path).
                Some(0) => format!("@{}", String::from_utf8_lossy(&bytes[1..])),
                Some(_) => {
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    String::from_utf8_lossy(&bytes[..end]).into_owned()
                }
            }))
        }
        _ => None,
    }
}
