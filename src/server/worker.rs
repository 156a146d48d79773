//! The worker side of a [`StreamServer`](super::StreamServer): one accept
//! loop per OS thread, feeding handler greenlets, and the graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::handle::{SetOnDrop, Shared};
use super::limits::{Limits, Overflow, reject};
use crate::net::{TcpListener, TcpStream};
use crate::pool::Pool;
use crate::sync::Event;

/// The first pause after an out-of-resources accept error; it doubles on
/// each further failure up to [`BACKOFF_MAX`] and resets on success.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(super) type SpawnWorker<H> =
    fn(&H, OwnedFd, Limits, &Arc<Shared>, usize, Option<usize>) -> io::Result<Worker>;

/// A worker thread and the event it sets when it is done, so that the
/// first worker can wait for it without blocking its hub.
pub(super) struct Worker {
    pub(super) done: Event,
    pub(super) thread: thread::JoinHandle<()>,
}

/// Starts worker thread `index` on its own listener, pinned to `cpu` if
/// given.
pub(super) fn spawn_worker<H>(
    handler: &H,
    fd: OwnedFd,
    limits: Limits,
    shared: &Arc<Shared>,
    index: usize,
    cpu: Option<usize>,
) -> io::Result<Worker>
where
    H: Fn(TcpStream, SocketAddr) + Clone + Send + 'static,
{
    let handler = handler.clone();
    let shared = shared.clone();
    let done = Event::new();
    let set_done = SetOnDrop {
        event: done.clone(),
        on_panic: Some(shared.stop.clone()),
    };
    let thread = thread::Builder::new()
        .name(format!("greenlet-server-{index}"))
        .spawn(move || {
            let _done = set_done;
            if let Some(cpu) = cpu
                && let Err(e) = crate::sys::affinity::set_current_cpus(&[cpu])
            {
                shared.fail(e);
                shared.stop.set();
                return;
            }
            run_worker(TcpListener::from(fd), handler, limits, &shared);
        })?;
    Ok(Worker { done, thread })
}

/// `n` more listeners on `first`'s address, one per extra worker: members
/// of one `SO_REUSEPORT` group, or, if the kernel will not make one, new
/// fds for `first`'s own socket.
pub(super) fn extra_listeners(first: &TcpListener, n: usize) -> io::Result<Vec<OwnedFd>> {
    let addr = first.local_addr()?;
    if crate::sys::set_reuseport(first.as_fd()).is_ok() {
        let mut fds = Vec::with_capacity(n);
        for _ in 0..n {
            match crate::sys::reuseport_listener(&addr) {
                Ok(fd) => fds.push(fd),
                // The kernel would not join `first`'s group: share it.
                Err(e) if fds.is_empty() && e.kind() == io::ErrorKind::AddrInUse => break,
                Err(e) => return Err(e),
            }
        }
        if fds.len() == n {
            return Ok(fds);
        }
    }
    (0..n).map(|_| first.as_fd().try_clone_to_owned()).collect()
}

/// One worker's life, on its thread: an accept loop feeding handler
/// greenlets until the stop, then the graceful shutdown. Returns when the
/// worker is done, its handlers and its [`Overflow::Reply`] greenlets
/// included (a worker thread that exited with one still parked would leak
/// it, and its socket, for good).
///
/// The shutdown runs in a greenlet of its own, so it happens even if the
/// caller of `serve_forever` is killed while it waits (its unwind asks for
/// the stop).
pub(super) fn run_worker<H>(listener: TcpListener, handler: H, limits: Limits, shared: &Arc<Shared>)
where
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    let pool = match limits.max_connections {
        Some(n) => Pool::new(n),
        None => Pool::with_slots(None, usize::MAX),
    };
    // The greenlets turning away connections past the limit: outside it,
    // but ended with the worker.
    let rejects = Pool::with_slots(None, usize::MAX);
    let acceptor = {
        let pool = pool.clone();
        let rejects = rejects.clone();
        let handler = Rc::new(handler);
        let stop = shared.stop.clone();
        crate::spawn(move || accept_loop(&listener, &pool, &rejects, &handler, limits, &stop))
    };
    let shared = shared.clone();
    let shutdown = crate::spawn(move || {
        shared.stop.wait();
        // Dropping the listener (the accept loop owns it) refuses new
        // clients.
        acceptor.kill();
        if let Ok(Some(e)) = acceptor.join() {
            shared.fail(e);
        }
        // Handlers and replies share the stop timeout.
        let deadline = Instant::now() + shared.stop_timeout();
        for p in [&pool, &rejects] {
            if p.join_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_err()
            {
                p.kill();
            }
        }
    });
    // It cannot panic: a kill of the caller unwinds from here.
    let _ = shutdown.join();
}

/// Accepts until a fatal error (returned, after asking for the stop) or
/// until killed by the stop.
fn accept_loop<H>(
    listener: &TcpListener,
    pool: &Pool,
    rejects: &Pool,
    handler: &Rc<H>,
    limits: Limits,
    stop: &Event,
) -> Option<io::Error>
where
    H: Fn(TcpStream, SocketAddr) + 'static,
{
    let mut backoff = BACKOFF_MIN;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = BACKOFF_MIN;
                if limits.max_connections.is_some() && pool.free_count() == 0 {
                    match limits.overflow {
                        Overflow::Wait => {}         // `pool.spawn` waits for a slot
                        Overflow::Close => continue, // drops (closes) `stream`
                        Overflow::Reply(reply) => {
                            rejects.spawn(move || reject(stream, reply));
                            continue;
                        }
                    }
                }
                let handler = handler.clone();
                match limits.connection_timeout {
                    Some(limit) => pool.spawn(move || {
                        // An expired limit unwinds the handler, whose
                        // stream closes as it goes.
                        let _ = crate::with_timeout(limit, || handler(stream, peer));
                    }),
                    None => pool.spawn(move || handler(stream, peer)),
                };
            }
            Err(e) => match classify(&e) {
                AcceptError::Skip => crate::yield_now(),
                AcceptError::OutOfResources => {
                    crate::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                AcceptError::Fatal => {
                    stop.set();
                    return Some(e);
                }
            },
        }
    }
}

enum AcceptError {
    /// The failure concerns one connection, which is gone: accept the next.
    Skip,
    /// Out of fds or memory: the connection is still queued; wait first.
    OutOfResources,
    /// The listener itself is broken.
    Fatal,
}

fn classify(e: &io::Error) -> AcceptError {
    use crate::sys::errno::*;
    match e.raw_os_error() {
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM) => AcceptError::OutOfResources,
        // accept(2): "Linux accept() passes already-pending network errors
        // on the new socket as an error code from accept()"; with the
        // aborted and refused-by-firewall cases, all about one connection.
        Some(
            ECONNABORTED | EPROTO | EPERM | EINTR | EAGAIN | ENETDOWN | ENOPROTOOPT | EHOSTDOWN
            | ENONET | EHOSTUNREACH | EOPNOTSUPP | ENETUNREACH | ETIMEDOUT | ECONNRESET,
        ) => AcceptError::Skip,
        _ => AcceptError::Fatal,
    }
}
