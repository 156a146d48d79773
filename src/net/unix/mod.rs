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

mod datagram;
mod listener;
mod stream;

pub use std::os::unix::net::SocketAddr;

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use stream::UnixStream;
