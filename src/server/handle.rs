//! [`ServerHandle`] and the state every worker of a server shares.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::sync::Event;

#[cfg(doc)]
use super::StreamServer;

/// What every worker and every [`ServerHandle`] share.
pub(super) struct Shared {
    /// Set: stop accepting and shut down.
    pub(super) stop: Event,
    /// Set: `serve_forever` has returned (or unwound).
    pub(super) stopped: Event,
    pub(super) stop_timeout: Mutex<Duration>,
    /// The error that stopped the server, for `serve_forever` to return.
    pub(super) error: Mutex<Option<io::Error>>,
}

impl Shared {
    pub(super) fn fail(&self, e: io::Error) {
        let mut error = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if error.is_none() {
            *error = Some(e);
        }
        drop(error);
        self.stop.set();
    }

    pub(super) fn stop_timeout(&self) -> Duration {
        *self
            .stop_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `Send + Sync` handle that stops a [`StreamServer`], from any greenlet
/// or thread; cheap to clone.
///
/// # Examples
///
/// ```
/// use greenlet::server::StreamServer;
///
/// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
/// let handle = server.handle();
/// let serving = greenlet::spawn(move || server.serve_forever());
/// handle.stop();
/// handle.wait();
/// assert!(handle.is_stopped());
/// serving.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<Shared>,
}

impl ServerHandle {
    /// Asks the server to stop, with its configured stop timeout, and
    /// returns at once (from a handler too): every worker stops accepting,
    /// lets its running handlers finish for up to the timeout, then kills
    /// the rest. Wait for the end with [`wait`](ServerHandle::wait) or the
    /// return of [`serve_forever`](StreamServer::serve_forever). Stopping
    /// again does nothing more.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// let handle = server.handle();
    /// std::thread::spawn(move || handle.stop());
    /// server.serve_forever()?; // returns once the other thread stopped it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&self) {
        self.shared.stop.set();
    }

    /// [`stop`](ServerHandle::stop), giving running handlers `timeout`
    /// (instead of the configured stop timeout) before they are killed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// server.handle().stop_with_timeout(Duration::ZERO); // kill handlers at once
    /// server.serve_forever()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_with_timeout(&self, timeout: Duration) {
        *self
            .shared
            .stop_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = timeout;
        self.stop();
    }

    /// Waits until the server has stopped: it was stopped and
    /// [`serve_forever`](StreamServer::serve_forever) has finished. Parks a
    /// greenlet; from root context it runs the hub; from a thread without
    /// greenlets it blocks. Do not call it from one of the server's own
    /// handlers: the stop would wait for that handler until the timeout,
    /// then kill it.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// let handle = server.handle();
    /// let serving = greenlet::spawn(move || server.serve_forever());
    /// handle.stop();
    /// handle.wait();
    /// assert!(serving.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) {
        self.shared.stopped.wait();
    }

    /// Whether a stop was asked for (by a handle, or by an error).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// let handle = server.handle();
    /// assert!(!handle.is_stopping());
    /// handle.stop();
    /// assert!(handle.is_stopping());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.is_set()
    }

    /// Whether the server has stopped ([`wait`](ServerHandle::wait) would
    /// return at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {})?;
    /// let handle = server.handle();
    /// assert!(!handle.is_stopped());
    /// handle.stop();
    /// server.serve_forever()?;
    /// assert!(handle.is_stopped());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_set()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("stopping", &self.is_stopping())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Sets `event` when dropped, and `on_panic` too if dropped by a panic.
pub(super) struct SetOnDrop {
    pub(super) event: Event,
    pub(super) on_panic: Option<Event>,
}

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        if thread::panicking()
            && let Some(e) = &self.on_panic
        {
            e.set();
        }
        self.event.set();
    }
}
