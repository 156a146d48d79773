//! Handing work to another thread's hub: [`HubHandle`], [`JoinHandle`] and
//! [`run_until_stopped`].
//!
//! A handle wraps the hub's remote queue. [`HubHandle::spawn`] pushes a
//! closure that the hub runs in its loop; the closure spawns a greenlet,
//! and the greenlet's result travels back through a one-value channel whose
//! receiver parks like any other wait.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::{self, ThreadId};

use crate::greenlet::Builder;
use crate::hub::JoinError;
use crate::hub::oneshot::{self, CancelOnDrop};
use crate::hub::remote::{Remote, RemoteMsg, RemoteWaker};
use crate::hub::{self, Hub};

/// A `Send + Sync` handle to one thread's hub, to run work on that thread
/// from any other (gevent's `hub.loop.run_callback_threadsafe`).
///
/// Get one with [`hub_handle`] on the thread whose hub you want. Work sent
/// with [`spawn`](HubHandle::spawn) runs whenever that hub's loop runs: while
/// the thread blocks in any greenlet call from root context, or, for a
/// thread dedicated to serving its hub, inside [`run_until_stopped`].
///
/// While a handle exists, the hub does not report "this operation would
/// block forever": the handle's holder may still send it work.
///
/// # Examples
///
/// A worker thread that serves its hub until told to stop:
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// let worker = std::thread::spawn(move || {
///     tx.send(greenlet::hub_handle()).unwrap();
///     greenlet::run_until_stopped();
/// });
/// let hub = rx.recv().unwrap();
///
/// let answer = hub.spawn(|| 6 * 7);
/// assert_eq!(answer.join().unwrap(), 42);
///
/// hub.stop();
/// worker.join().unwrap();
/// ```
#[derive(Clone)]
pub struct HubHandle {
    remote: Arc<Remote>,
    thread: ThreadId,
}

/// A handle to this thread's hub (created on first use), to give to other
/// threads.
///
/// # Examples
///
/// ```
/// let hub = greenlet::hub_handle();
/// let from_thread = std::thread::spawn(move || hub.spawn(|| "ran on the main thread"));
/// let job = from_thread.join().unwrap();
/// assert_eq!(job.join().unwrap(), "ran on the main thread");
/// ```
pub fn hub_handle() -> HubHandle {
    HubHandle {
        remote: Hub::current().remote().clone(),
        thread: thread::current().id(),
    }
}

impl HubHandle {
    /// Runs `f` as a greenlet on this handle's hub and returns a handle to
    /// its result, joinable from any thread or greenlet.
    ///
    /// The greenlet starts when the target hub next runs its loop; it gets
    /// the default stack size. Calling this from the target thread itself
    /// works too (the greenlet starts at its next loop pass).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let worker = std::thread::spawn(move || {
    ///     tx.send(greenlet::hub_handle()).unwrap();
    ///     greenlet::run_until_stopped();
    /// });
    /// let hub = rx.recv().unwrap();
    /// // A greenlet here waits for a greenlet there; this hub keeps running.
    /// let g = greenlet::spawn(move || {
    ///     let remote = hub.spawn(|| std::thread::current().id());
    ///     let id = remote.join().unwrap();
    ///     hub.stop();
    ///     id
    /// });
    /// assert_ne!(g.join().unwrap(), std::thread::current().id());
    /// worker.join().unwrap();
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.remote.send(RemoteMsg::Run(Box::new(move || {
            // The greenlet takes the sender when it runs; if it cannot be
            // spawned the sender is still here to report why.
            let slot = Rc::new(Cell::new(Some(tx)));
            let in_greenlet = slot.clone();
            let spawned = Builder::new().spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::from_payload);
                if let Some(tx) = in_greenlet.take() {
                    tx.send(result);
                }
            });
            if let Err(e) = spawned
                && let Some(tx) = slot.take()
            {
                let msg = format!("greenlet: HubHandle::spawn cannot spawn a greenlet: {e}");
                tx.send(Err(JoinError::from_payload(Box::new(msg))));
            }
        })));
        JoinHandle { rx }
    }

    /// Makes one [`run_until_stopped`] call on the target thread return: the
    /// one running now, or else the next one.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let worker = std::thread::spawn(move || {
    ///     tx.send(greenlet::hub_handle()).unwrap();
    ///     greenlet::run_until_stopped();
    ///     "stopped"
    /// });
    /// rx.recv().unwrap().stop();
    /// assert_eq!(worker.join().unwrap(), "stopped");
    /// ```
    pub fn stop(&self) {
        self.remote.send(RemoteMsg::Run(Box::new(|| {
            STOPS.set(STOPS.get() + 1);
            for w in SERVING.take() {
                w.wake();
            }
        })));
    }

    /// Whether this is the hub of the calling thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let hub = greenlet::hub_handle();
    /// assert!(hub.is_current());
    /// assert!(!std::thread::spawn(move || hub.is_current()).join().unwrap());
    /// ```
    pub fn is_current(&self) -> bool {
        self.thread == thread::current().id()
    }
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// `stop` requests not yet consumed by a `run_until_stopped`.
    static STOPS: Cell<usize> = const { Cell::new(0) };
    /// The wakers of the `run_until_stopped` calls waiting on this thread.
    static SERVING: RefCell<Vec<RemoteWaker>> = const { RefCell::new(Vec::new()) };
}

/// Runs this thread's hub, serving its greenlets, IO and work sent by
/// [`HubHandle::spawn`], until [`HubHandle::stop`] is called for it. Idle,
/// it sleeps in epoll and uses no CPU.
///
/// This is how a thread dedicated to greenlets (a worker of a multi-core
/// server) spends its life. Called from a greenlet, it parks that greenlet
/// until the stop; the hub runs as usual meanwhile.
///
/// # Examples
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// let worker = std::thread::spawn(move || {
///     tx.send(greenlet::hub_handle()).unwrap();
///     greenlet::run_until_stopped();
/// });
/// let hub = rx.recv().unwrap();
/// let jobs: Vec<_> = (0..10).map(|i| hub.spawn(move || i * i)).collect();
/// let sum: i32 = jobs.into_iter().map(|j| j.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// hub.stop();
/// worker.join().unwrap();
/// ```
pub fn run_until_stopped() {
    let hub = Hub::current();
    loop {
        let stops = STOPS.get();
        if stops > 0 {
            STOPS.set(stops - 1);
            return;
        }
        let waker = hub.remote_waker();
        let _registered = CancelOnDrop(waker.clone());
        SERVING.with_borrow_mut(|s| s.push(waker.clone()));
        let _unlisted = Unlist(&waker);
        hub::park(hub::WaitReason::Serving);
    }
}

/// Takes a `run_until_stopped` waker off the serving list however its wait
/// ends.
struct Unlist<'a>(&'a RemoteWaker);

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        let _ = SERVING.try_with(|s| s.borrow_mut().retain(|w| !w.same_as(self.0)));
    }
}

/// The result of a greenlet started with [`HubHandle::spawn`]: `Send`, and
/// joinable from any thread or greenlet.
///
/// Dropping it detaches the greenlet, which keeps running.
///
/// # Examples
///
/// ```
/// let job = greenlet::hub_handle().spawn(|| "done");
/// assert_eq!(job.join().unwrap(), "done");
/// ```
pub struct JoinHandle<T> {
    rx: oneshot::Receiver<Result<T, JoinError>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the greenlet to finish and returns its value. A greenlet
    /// caller parks; a root caller runs its own hub meanwhile.
    ///
    /// If the target thread ends while the greenlet is still parked there,
    /// the greenlet is leaked with its hub (parked greenlets are never
    /// unwound at thread exit) and this waits forever: stop a worker only
    /// once the work it was given is done.
    ///
    /// # Errors
    /// [`JoinError`] if the greenlet panicked (with the payload) or was
    /// killed, including when its hub's thread ended before running it.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = greenlet::hub_handle().spawn(|| -> u32 { panic!("oops") });
    /// assert_eq!(job.join().unwrap_err().panic_message(), Some("oops"));
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        self.rx
            .recv(hub::WaitReason::Remote)
            .unwrap_or_else(|_| Err(JoinError::killed()))
    }

    /// Whether the greenlet has finished, so [`join`](JoinHandle::join)
    /// returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = greenlet::hub_handle().spawn(|| 1);
    /// assert!(!job.is_finished()); // it runs when this thread's hub does
    /// greenlet::yield_now();
    /// greenlet::yield_now();
    /// assert!(job.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.rx.is_ready()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
