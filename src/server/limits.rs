//! What bounds a [`StreamServer`](super::StreamServer)'s connections: how
//! many run at once, what happens to the ones past that, and how long each
//! may last. Together they keep slow or idle clients (slowloris) from
//! holding a server's greenlets and fds for good.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use crate::net::TcpStream;

/// How long a refused connection gets to read its [`Overflow::Reply`].
pub(super) const REJECT_LINGER: Duration = Duration::from_secs(1);

/// What a [`StreamServer`](super::StreamServer) does with a connection that
/// arrives while [`max_connections`](super::StreamServer::max_connections)
/// handlers are running; set with
/// [`overflow`](super::StreamServer::overflow).
///
/// # Examples
///
/// An HTTP server that answers `503` when full:
///
/// ```
/// use greenlet::server::{Overflow, StreamServer};
///
/// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?
///     .max_connections(10_000)
///     .overflow(Overflow::Reply(
///         b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
///     ));
/// # drop(server);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Wait for a handler to finish (the default, as gevent's
    /// `StreamServer` with a `Pool`): the server accepts one more
    /// connection and holds it; the next clients wait in the listener's
    /// accept queue, and time out there if nothing finishes.
    #[default]
    Wait,
    /// Accept the connection and close it at once.
    Close,
    /// Accept the connection, send these bytes (a protocol's "busy"
    /// answer, such as an HTTP `503`), shut down the writing half and close
    /// once the client has closed, or after one second. The reply runs in
    /// a greenlet of its own, outside the limit; a stop ends it as it ends
    /// the handlers (waited for up to the stop timeout, then killed).
    Reply(&'static [u8]),
}

/// A server's connection limits, copied into every worker.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Limits {
    pub(super) max_connections: Option<usize>,
    pub(super) overflow: Overflow,
    pub(super) connection_timeout: Option<Duration>,
}

/// Turns away a connection accepted past the limit with `reply`, within
/// [`REJECT_LINGER`].
pub(super) fn reject(stream: TcpStream, reply: &'static [u8]) {
    let _ = crate::with_timeout(REJECT_LINGER, || -> io::Result<()> {
        (&stream).write_all(reply)?;
        stream.shutdown(Shutdown::Write)?;
        // Read what the client sends until it closes: a close with unread
        // bytes would reset the connection, and the reset could discard the
        // reply before the client reads it.
        let mut sink = [0; 1024];
        while (&stream).read(&mut sink)? > 0 {}
        Ok(())
    });
}
