//! Configuring a server before it serves: the connection limits, the
//! stop timeout, and the worker threads and their pinning.

use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::Duration;

use super::worker::spawn_worker;
use super::{Overflow, StreamServer};
use crate::net::TcpStream;

#[cfg(doc)]
use super::{DEFAULT_STOP_TIMEOUT, ServerHandle};

impl<H> StreamServer<H>
where
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    /// Serves at most `n` connections at once on each worker (gevent's
    /// `StreamServer(..., spawn=Pool(n))`); by default there is no limit.
    ///
    /// With `n` handlers running, the server accepts one more connection
    /// and waits for a handler to finish before it starts that one's
    /// greenlet; further clients wait in the listener's accept queue.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0 (no connection could ever be served).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?
    ///     .max_connections(1000);
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_connections(mut self, n: usize) -> StreamServer<H> {
        assert!(
            n > 0,
            "greenlet::server::StreamServer::max_connections: the limit must be at least 1"
        );
        self.limits.max_connections = Some(n);
        self
    }

    /// What to do with connections that arrive while
    /// [`max_connections`](StreamServer::max_connections) handlers are
    /// running (default [`Overflow::Wait`]); without a limit it has no
    /// effect. [`Overflow::Reply`] and [`Overflow::Close`] keep a full
    /// server answering at once, instead of leaving clients to time out in
    /// the accept queue.
    ///
    /// # Examples
    ///
    /// One connection at a time; the others are told so:
    ///
    /// ```
    /// use std::io::Read;
    /// use greenlet::net::TcpStream;
    /// use greenlet::server::{Overflow, StreamServer};
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _peer| {
    ///     let _ = (&stream).read(&mut [0; 1]); // holds its slot until the client closes
    /// })?
    /// .max_connections(1)
    /// .overflow(Overflow::Reply(b"busy, try later\n"));
    /// let addr = server.local_addr()?;
    /// let handle = server.handle();
    /// let serving = greenlet::spawn(move || server.serve_forever());
    ///
    /// let first = TcpStream::connect(addr)?;
    /// greenlet::sleep(std::time::Duration::from_millis(10)); // its handler runs
    /// let mut reply = String::new();
    /// TcpStream::connect(addr)?.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "busy, try later\n");
    ///
    /// drop(first);
    /// handle.stop();
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn overflow(mut self, overflow: Overflow) -> StreamServer<H> {
        self.limits.overflow = overflow;
        self
    }

    /// Bounds each connection's whole life: a handler still running
    /// `timeout` after its connection was accepted is unwound from its
    /// park point, as by [`with_timeout`](crate::with_timeout), and its
    /// stream closes. This is the one-call defence against clients that
    /// hold a connection open by sending slowly or not at all (slowloris),
    /// for protocols where a connection does one exchange.
    ///
    /// For a connection that carries many requests (HTTP keep-alive), bound
    /// each request instead: wrap the reading of one request in
    /// [`with_timeout`](crate::with_timeout) inside the handler, and use
    /// [`TcpStream::set_read_timeout`] for the idle time between requests.
    /// `examples/http_server.rs` does both.
    ///
    /// # Panics
    ///
    /// Panics if `timeout` is zero.
    ///
    /// # Examples
    ///
    /// A client that never sends its request is cut off:
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    /// use greenlet::net::TcpStream;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _peer| {
    ///     let mut request = String::new();
    ///     let _ = (&stream).read_to_string(&mut request); // waits for the client
    /// })?
    /// .connection_timeout(Duration::from_millis(50));
    /// let addr = server.local_addr()?;
    /// let handle = server.handle();
    /// let serving = greenlet::spawn(move || server.serve_forever());
    ///
    /// let start = Instant::now();
    /// let silent = TcpStream::connect(addr)?;
    /// assert_eq!((&silent).read(&mut [0; 1])?, 0); // closed by the server
    /// assert!(start.elapsed() >= Duration::from_millis(50));
    ///
    /// handle.stop();
    /// serving.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> StreamServer<H> {
        assert!(
            !timeout.is_zero(),
            "greenlet::server::StreamServer::connection_timeout: the timeout must not be zero"
        );
        self.limits.connection_timeout = Some(timeout);
        self
    }

    /// How long a stop lets running handlers finish before killing them
    /// (default [`DEFAULT_STOP_TIMEOUT`]); [`ServerHandle::stop_with_timeout`]
    /// overrides it for one stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?
    ///     .stop_timeout(Duration::from_secs(5));
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_timeout(self, timeout: Duration) -> StreamServer<H> {
        *self
            .shared
            .stop_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = timeout;
        self
    }

    /// Pins each worker thread to its own CPU while it serves (off by
    /// default), as `may` does with its workers: worker `i` runs only on
    /// the `i`-th of the CPUs the calling thread may use (wrapping around
    /// if there are more workers than CPUs). The calling thread is worker
    /// 0; its own affinity is restored when
    /// [`serve_forever`](StreamServer::serve_forever) returns.
    ///
    /// Unpinned, the OS may put two busy workers on one core while another
    /// idles (or on the core of a local load generator), and the rate of a
    /// multi-worker server can swing by 2x from one start to the next;
    /// pinned, each hub keeps a core. Leave it off when other busy threads
    /// share the machine's cores.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?
    ///     .workers(2)
    ///     .pin_workers(true);
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pin_workers(mut self, on: bool) -> StreamServer<H> {
        self.pin_workers = on;
        self
    }
}

impl<H> StreamServer<H>
where
    H: Fn(TcpStream, SocketAddr) + Clone + Send + 'static,
{
    /// Serves on `n` OS threads, each running its own hub with its own
    /// listener on the server's address, so one server uses `n` cores.
    /// `n = 1` (the default) serves on the calling thread only. The calling
    /// thread is one of the `n`; the others are named
    /// `greenlet-server-<i>`, and each gets a clone of the handler.
    ///
    /// [`max_connections`](StreamServer::max_connections) applies to each
    /// worker. A stop stops every worker.
    ///
    /// # Platform-specific behavior
    ///
    /// The workers' listeners form a Linux `SO_REUSEPORT` group (the option
    /// is set on the server's listener too, even one given to
    /// [`new`](StreamServer::new)), and the kernel spreads incoming
    /// connections over them by a hash of the addresses. If the kernel
    /// refuses to add a listener to the group, the workers share the one
    /// listening socket instead.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |mut stream: greenlet::net::TcpStream, _| {
    ///     use std::io::Write;
    ///     let _ = write!(stream, "{:?}", std::thread::current().id());
    /// })?
    /// .workers(2);
    /// let addr = server.local_addr()?;
    /// let handle = server.handle();
    /// let client = std::thread::spawn(move || {
    ///     let mut reply = String::new();
    ///     std::net::TcpStream::connect(addr)?.read_to_string(&mut reply)?;
    ///     handle.stop();
    ///     Ok::<_, std::io::Error>(reply)
    /// });
    /// server.serve_forever()?;
    /// assert!(client.join().unwrap()?.starts_with("ThreadId"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn workers(mut self, n: usize) -> StreamServer<H> {
        assert!(
            n > 0,
            "greenlet::server::StreamServer::workers: a server needs at least one worker"
        );
        self.workers = n;
        self.spawn_worker = Some(spawn_worker::<H>);
        self
    }
}
