//! A TCP server that runs a greenlet per connection (gevent's
//! `gevent.server.StreamServer`), optionally on every core.
//!
//! [`StreamServer`] accepts connections on a listener and calls a handler,
//! `Fn(TcpStream, SocketAddr)`, in a new greenlet for each. It can cap the
//! number of connections served at once
//! ([`max_connections`](StreamServer::max_connections)) and choose what
//! happens past the cap ([`overflow`](StreamServer::overflow): wait, close,
//! or send a "busy" reply), bound each connection's life
//! ([`connection_timeout`](StreamServer::connection_timeout)), run one hub
//! per OS thread on the same address ([`workers`](StreamServer::workers)),
//! each on its own core if asked ([`pin_workers`](StreamServer::pin_workers)),
//! and stop gracefully from any greenlet or thread through a
//! [`ServerHandle`].
//!
//! # Limits against slow and idle clients
//!
//! A server that runs a greenlet per connection is cheap to keep busy: a
//! client that sends one byte every few seconds (slowloris) holds its
//! greenlet, its fd and its buffers for as long as it likes, and enough
//! such clients exhaust fds. The limits, together:
//!
//! ```
//! use std::time::Duration;
//! use greenlet::server::{Overflow, StreamServer};
//!
//! let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?
//!     .max_connections(10_000) // keep under the fd limit (`ulimit -n`)
//!     .overflow(Overflow::Close) // a full server closes new connections at once
//!     .connection_timeout(Duration::from_secs(30)); // no connection outlives this
//! # drop(server);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ```
//! use std::io::{Read, Write};
//! use greenlet::net::{SocketAddr, TcpStream};
//! use greenlet::server::StreamServer;
//!
//! fn echo(mut stream: TcpStream, _peer: SocketAddr) {
//!     let mut buf = [0; 1024];
//!     while let Ok(n @ 1..) = stream.read(&mut buf) {
//!         if stream.write_all(&buf[..n]).is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! let server = StreamServer::bind("127.0.0.1:0", echo)?;
//! let addr = server.local_addr()?;
//! let handle = server.handle();
//! let serving = greenlet::spawn(move || server.serve_forever());
//!
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut back = [0; 5];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"hello");
//!
//! drop(client);
//! handle.stop();
//! serving.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod config;
mod handle;
mod limits;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::sync::Event;
pub use handle::ServerHandle;
use handle::{SetOnDrop, Shared};
use limits::Limits;
pub use limits::Overflow;
use worker::{SpawnWorker, extra_listeners, run_worker};

/// How long [`ServerHandle::stop`] lets running handlers finish before it
/// kills them, unless [`StreamServer::stop_timeout`] says otherwise: one
/// second, as gevent's `StreamServer.stop_timeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// A TCP server that calls `handler(stream, peer)` in a new greenlet for
/// every connection it accepts (gevent's `StreamServer`).
///
/// Build it with [`bind`](StreamServer::bind) or [`new`](StreamServer::new),
/// configure it, then call [`serve_forever`](StreamServer::serve_forever),
/// which returns once the server has been stopped through a
/// [`ServerHandle`] (see [`handle`](StreamServer::handle)).
///
/// # The handler
///
/// `H: Fn(TcpStream, SocketAddr) + 'static` gets the accepted stream (in
/// greenlet's usual mode: calls park the handler's greenlet) and the peer's
/// address. It returns nothing: the server has no use for a result, and
/// deals with none of the handler's errors, so handle them (or log them)
/// inside. A panic in a handler is caught at its greenlet's boundary (the
/// panic hook prints it) and ends that connection only. The handler is
/// shared by every connection of a thread, so it needs no `Clone` and may
/// hold `Rc`s; with [`workers`](StreamServer::workers) each worker thread
/// gets its own clone, so it must then be `Clone + Send`.
///
/// # Accept errors
///
/// An accept that fails because the process or the system is out of file
/// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) leaves
/// the connection queued and the listener readable, so retrying at once
/// would spin. The server sleeps instead, 5 ms at first and twice as long
/// after each further failure, up to 1 s, while handlers run and close
/// connections; the first success resets the pause. Errors that concern one
/// connection only (`ECONNABORTED`, `EPROTO`, `EPERM`, the network errors
/// Linux passes on from the new socket) are skipped. Any other error stops
/// the server, and [`serve_forever`](StreamServer::serve_forever) returns it.
///
/// A server belongs to the thread that made it, like its listener; share
/// its [`ServerHandle`] instead:
///
/// ```compile_fail
/// let server = greenlet::server::StreamServer::bind("127.0.0.1:0", |_s, _p| {}).unwrap();
/// std::thread::spawn(move || server.serve_forever()); // error: not `Send`
/// ```
///
/// # Examples
///
/// A server that greets each client, stopped from another thread:
///
/// ```
/// use std::io::{Read, Write};
/// use greenlet::server::StreamServer;
///
/// let server = StreamServer::bind("127.0.0.1:0", |mut stream: greenlet::net::TcpStream, peer| {
///     let _ = write!(stream, "hello, {}", peer.ip());
/// })?;
/// let addr = server.local_addr()?;
/// let handle = server.handle();
/// let client = std::thread::spawn(move || {
///     let mut reply = String::new();
///     std::net::TcpStream::connect(addr)?.read_to_string(&mut reply)?;
///     handle.stop();
///     Ok::<_, std::io::Error>(reply)
/// });
/// server.serve_forever()?; // runs this thread's hub until the stop
/// assert_eq!(client.join().unwrap()?, "hello, 127.0.0.1");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StreamServer<H> {
    listener: TcpListener,
    handler: H,
    limits: Limits,
    workers: usize,
    /// Pin worker `i` to the `i`-th CPU the caller may use.
    pin_workers: bool,
    /// Set by [`StreamServer::workers`], where `H: Clone + Send` is known.
    spawn_worker: Option<SpawnWorker<H>>,
    shared: Arc<Shared>,
}

impl<H> StreamServer<H>
where
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    /// Binds a listener to `addr` (as [`TcpListener::bind`]) and makes a
    /// server that calls `handler` for each connection. Port 0 asks the OS
    /// for a free port: read it with [`local_addr`](StreamServer::local_addr).
    ///
    /// The listener is bound (and clients can connect, their connections
    /// queued) from now on; they are accepted once
    /// [`serve_forever`](StreamServer::serve_forever) runs.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`]: resolution errors, the bind error of the
    /// last address tried (`AddrInUse`, `PermissionDenied`, ...), or
    /// `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// assert_ne!(server.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A, handler: H) -> io::Result<StreamServer<H>> {
        Ok(StreamServer::new(TcpListener::bind(addr)?, handler))
    }

    /// A server accepting on `listener`, which it takes over (its
    /// non-blocking mode is turned off: the server parks in `accept`).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::net::TcpListener;
    /// use greenlet::server::StreamServer;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let server = StreamServer::new(listener, |_stream, _peer| {});
    /// assert_eq!(server.local_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(listener: TcpListener, handler: H) -> StreamServer<H> {
        StreamServer {
            listener,
            handler,
            limits: Limits::default(),
            workers: 1,
            pin_workers: false,
            spawn_worker: None,
            shared: Arc::new(Shared {
                stop: Event::new(),
                stopped: Event::new(),
                stop_timeout: Mutex::new(DEFAULT_STOP_TIMEOUT),
                error: Mutex::new(None),
            }),
        }
    }

    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// assert!(server.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops this server from any greenlet or thread. Taken
    /// before [`serve_forever`](StreamServer::serve_forever), which
    /// consumes the server.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// let handle = server.handle();
    /// handle.stop(); // a stop before serving makes serve_forever return at once
    /// server.serve_forever()?;
    /// assert!(handle.is_stopped());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts connections and runs the handler for each, until the server
    /// is stopped; then it shuts down and returns.
    ///
    /// Called from root context it runs this thread's hub (the thread does
    /// nothing else meanwhile); from a greenlet it parks that greenlet, and
    /// the hub serves the connections alongside its other greenlets. With
    /// [`workers`](StreamServer::workers)`(n)`, `n - 1` more OS threads
    /// serve too, each with its own hub.
    ///
    /// On a stop (see [`ServerHandle::stop`]) every worker closes its
    /// listener at once, so new connections are refused, then waits up to
    /// the stop timeout for its running handlers (and greenlets sending an
    /// [`Overflow::Reply`]) to return, then kills the rest (they unwind
    /// from their park point, so their streams close).
    /// `serve_forever` returns when every worker has finished. If the
    /// greenlet calling it is killed, that counts as a stop: the shutdown
    /// goes on without it.
    ///
    /// # Errors
    ///
    /// The error that stopped the server: an accept error that is not
    /// transient (see [the type's docs](StreamServer#accept-errors)), or,
    /// with several workers, a failure to set up a worker's listener
    /// or thread. The server has shut down when it is returned.
    ///
    /// # Panics
    ///
    /// Re-raises the panic of a worker thread that panicked outside the
    /// handlers (handlers' own panics end only their connection). Panics
    /// as [`spawn`](crate::spawn) if no stack can be had for a greenlet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use greenlet::net::TcpStream;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _peer| {
    ///     let _ = (&stream).read(&mut [0; 1]); // waits for the client
    /// })?;
    /// let addr = server.local_addr()?;
    /// let handle = server.handle();
    /// let serving = greenlet::spawn(move || server.serve_forever());
    /// let client = TcpStream::connect(addr)?; // never sends: its handler parks
    /// greenlet::sleep(std::time::Duration::from_millis(10));
    /// handle.stop_with_timeout(std::time::Duration::from_millis(10));
    /// serving.join().unwrap()?; // the handler was killed after 10 ms
    /// assert_eq!((&client).read(&mut [0; 1])?, 0); // and its stream closed
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_forever(self) -> io::Result<()> {
        let StreamServer {
            listener,
            handler,
            limits,
            workers,
            pin_workers,
            spawn_worker,
            shared,
        } = self;
        // Whatever happens below, handles see the end.
        let _stopped = SetOnDrop {
            event: shared.stopped.clone(),
            on_panic: Some(shared.stop.clone()),
        };
        let mut threads = Vec::new();
        // The CPUs to pin workers to, and this thread's own affinity back
        // when serving ends.
        let (cpus, _restore) = if pin_workers {
            match pin_first_worker() {
                Ok((cpus, restore)) => (cpus, Some(restore)),
                Err(e) => {
                    shared.fail(e);
                    shared.stop.set();
                    (Vec::new(), None)
                }
            }
        } else {
            (Vec::new(), None)
        };
        let cpu_of = |i: usize| (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
        if let Err(e) = listener.set_nonblocking(false) {
            shared.fail(e);
        } else if let (Some(spawn_worker), true) = (spawn_worker, workers > 1) {
            match extra_listeners(&listener, workers - 1) {
                Ok(fds) => {
                    for (i, fd) in fds.into_iter().enumerate() {
                        match spawn_worker(&handler, fd, limits, &shared, i + 1, cpu_of(i + 1)) {
                            Ok(w) => threads.push(w),
                            Err(e) => {
                                shared.fail(e);
                                break;
                            }
                        }
                    }
                }
                Err(e) => shared.fail(e),
            }
        }
        run_worker(listener, handler, limits, &shared);
        let mut panicked = None;
        for w in threads {
            w.done.wait();
            if let Err(payload) = w.thread.join() {
                panicked.get_or_insert(payload);
            }
        }
        if let Some(payload) = panicked {
            crate::hub::resume_unwind_marked(payload);
        }
        let error = shared
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Pins the calling thread (worker 0) to the first CPU it may use; returns
/// those CPUs and a guard that gives the thread its affinity back.
fn pin_first_worker() -> io::Result<(Vec<usize>, RestoreAffinity)> {
    let cpus = crate::sys::affinity::current_cpus()?;
    let first = *cpus
        .first()
        .ok_or_else(|| io::Error::other("no CPU in the affinity mask"))?;
    crate::sys::affinity::set_current_cpus(&[first])?;
    Ok((cpus.clone(), RestoreAffinity(cpus)))
}

/// Gives the calling thread back the affinity it had (the CPUs listed).
struct RestoreAffinity(Vec<usize>);

impl Drop for RestoreAffinity {
    fn drop(&mut self) {
        // Nothing to do about a failure here: the thread keeps the one CPU.
        let _ = crate::sys::affinity::set_current_cpus(&self.0);
    }
}

impl<H> fmt::Debug for StreamServer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .field("workers", &self.workers)
            .field("pin_workers", &self.pin_workers)
            .finish_non_exhaustive()
    }
}
