//! Green networking: std's socket types whose blocking calls park the
//! calling greenlet instead of the OS thread (gevent's `gevent.socket`).
//!
//! Swap `std::net` for `greenlet::net` (and `std::os::unix::net` for
//! [`greenlet::net::unix`](unix)) and the same code serves thousands of
//! connections concurrently on one thread: each connection gets a
//! greenlet, and every read, write, accept, connect and name lookup lets
//! the others run while it waits.
//!
//! ```
//! use std::io::{Read, Write};
//! use greenlet::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! greenlet::spawn(move || {
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         greenlet::spawn(move || {
//!             let mut buf = [0; 1024];
//!             while let Ok(n @ 1..) = stream.read(&mut buf) {
//!                 stream.write_all(&buf[..n]).unwrap();
//!             }
//!         });
//!     }
//! });
//! let clients: Vec<_> = (0..100)
//!     .map(|i: u32| {
//!         greenlet::spawn(move || -> std::io::Result<u32> {
//!             let mut s = TcpStream::connect(addr)?;
//!             s.write_all(&i.to_le_bytes())?;
//!             let mut back = [0; 4];
//!             s.read_exact(&mut back)?;
//!             Ok(u32::from_le_bytes(back))
//!         })
//!     })
//!     .collect();
//! for (i, c) in clients.into_iter().enumerate() {
//!     assert_eq!(c.join().unwrap()?, i as u32);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How it works
//!
//! Every socket is in `O_NONBLOCK` mode underneath. A call first tries the
//! syscall; on `WouldBlock` the socket is registered with the thread's hub
//! (once: `mio`, edge-triggered, read and write) and the greenlet parks
//! until epoll reports readiness, then retries. From root context the
//! thread runs its hub while it waits, so greenlet sockets work in plain
//! code too. Dropping a socket deregisters and closes it; a greenlet killed
//! while parked in a socket call unwinds and leaves nothing registered.
//!
//! std's semantics are kept where users rely on them: the timeouts set
//! with `set_read_timeout`/`set_write_timeout` expire with `WouldBlock`, as
//! std's do on Unix; after `set_nonblocking(true)` calls return
//! `WouldBlock` instead of parking; writes never raise `SIGPIPE`. A stream
//! `write` sends what the socket takes and returns that count (it waits
//! only while it has sent nothing), so it may be partial as
//! [`Write::write`](std::io::Write::write) allows; `write_all` loops.
//!
//! A read returns what is queued, and a short read is not taken as proof
//! that nothing more is: TCP urgent data and Unix messages carrying file
//! descriptors (`SCM_RIGHTS`) stop a read early, and the bytes behind them
//! are read by the next call without waiting for new data.
//!
//! # Kills and timeouts in the middle of IO
//!
//! A [`kill`](crate::Greenlet::kill) or an expired
//! [`with_timeout`](crate::with_timeout) unwinds a greenlet at the point
//! where it parks. Stream calls park only before they have moved any
//! bytes, so:
//!
//! - an interrupted `read` or `write` call moved nothing: retrying the same
//!   call (or `write(&buf[sent..])` with the counts of the calls that did
//!   return) neither loses nor repeats a byte;
//! - an interrupted `write_all` has sent some prefix of its buffer, of
//!   unknown length (the counts of its inner `write`s are lost with the
//!   unwind), as gevent documents for `sendall`: the stream's position is
//!   unknown to the caller, so close the connection, or write with `write`
//!   in a loop of your own that keeps the count;
//! - an interrupted `read_exact` (or `read_to_end`, `BufRead::read_line`...)
//!   has consumed some bytes from the stream, of unknown number, into the
//!   start of its buffer: they are not delivered again, so the same
//!   applies.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use greenlet::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (mut server, _) = listener.accept()?;
//! server.write_all(b"abcd")?; // half of what the client waits for
//! let mut buf = [0; 8];
//! let r = greenlet::with_timeout(Duration::from_millis(20), || client.read_exact(&mut buf));
//! assert!(r.is_err()); // timed out; "abcd" was consumed into buf[..4]
//! server.write_all(b"efgh")?;
//! let mut rest = [0; 4];
//! client.read_exact(&mut rest)?;
//! assert_eq!(&rest, b"efgh"); // the stream goes on after what was consumed
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Host names are resolved on the [blocking pool](crate::threadpool) (see
//! [`ToSocketAddrs`]); numeric addresses never leave the thread.
//!
//! Sockets are neither `Send` nor `Sync`: each belongs to its thread's hub.
//! To move one to another thread, convert it to an
//! [`OwnedFd`](std::os::fd::OwnedFd) and back (`From` both ways).

mod dns;
mod socket;
mod tcp;
mod udp;
pub mod unix;

pub use dns::ToSocketAddrs;
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
