//! Unix signals delivered to greenlets: wait for one of a set of signals
//! ([`Signals`], [`wait`]), or run a handler in a greenlet of its own for
//! each arrival ([`handler`], gevent's `signal_handler`).
//!
//! Signals arrive through a `signalfd` registered in the hub's epoll, so no
//! code runs in signal-handler context and a handler may do anything a
//! greenlet may.
//!
//! # The signal mask
//!
//! A `signalfd` only sees signals that are *blocked*: an unblocked signal
//! is delivered the classic way instead (for `SIGTERM`, `SIGINT`,
//! `SIGUSR1`: its default action, which ends the process). So
//! [`Signals::new`] (and [`wait`], [`handler`]) add the signals to the
//! calling thread's mask, and leave them blocked when dropped (unblocking
//! a pending signal would run its default action). What follows:
//!
//! - A signal sent to the *process* (`kill`, Ctrl-C, a service manager's
//!   `SIGTERM`) goes to any one thread that does not block it. Threads
//!   inherit their creator's mask, so call [`block`] (or create the
//!   [`Signals`]) in `main` **before starting any thread**, including the
//!   blocking pool's ([`threadpool`](crate::threadpool)); a thread started
//!   earlier still takes the signal's default action.
//! - A signal sent to one thread (`raise`, `pthread_kill`) is seen only by
//!   a `signalfd` read on that thread: wait for it on the same thread.
//! - Children started by `std::process::Command` (and
//!   [`crate::process`]) get an empty mask, as std resets it. Children
//!   started other ways (`fork`/`exec` in C code, `system`) inherit the
//!   blocked signals and would ignore them.
//! - Each signal is consumed by one reader: two `Signals` waiting for the
//!   same signal on one thread do not both see it (one wins). Keep one
//!   listener per signal, and share it.
//! - `SIGKILL` and `SIGSTOP` cannot be blocked or caught; `SIGSEGV`,
//!   `SIGBUS`, `SIGFPE` and `SIGILL` raised by a fault cannot be read
//!   through a `signalfd` either.
//!
//! # Examples
//!
//! ```
//! use greenlet::signal::{self, SIGUSR1};
//!
//! let signals = signal::Signals::new(&[SIGUSR1])?;
//! let waiter = greenlet::spawn(move || signals.wait());
//! greenlet::yield_now();
//! // SAFETY: raise sends a signal to this thread; SIGUSR1 is blocked.
//! unsafe { libc::raise(SIGUSR1) };
//! assert_eq!(waiter.join().unwrap()?, SIGUSR1);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::Greenlet;
use crate::hub::deadline_after;
use crate::hub::reactor::Direction;
use crate::io::Watched;
use crate::sys::SigSet;

pub use libc::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};

/// Blocks `signals` in the calling thread (and, by inheritance, in the
/// threads it starts afterwards), so that they wait for a [`Signals`]
/// instead of running their default action. Call it first thing in `main`
/// for signals sent to the process; see the [module docs](self).
///
/// # Errors
///
/// `InvalidInput` (`EINVAL`) for a number that is not a signal.
///
/// # Examples
///
/// ```
/// greenlet::signal::block(&[greenlet::signal::SIGTERM, greenlet::signal::SIGINT])?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn block(signals: &[i32]) -> io::Result<()> {
    crate::sys::block_signals(&SigSet::new(signals)?)
}

/// A set of signals whose arrivals a greenlet can wait for (a `signalfd`
/// in the hub's epoll).
///
/// Creating it blocks the signals in the calling thread (see the
/// [module docs](self) for what that means for other threads). A signal
/// that arrives while nobody waits stays pending and is returned by the
/// next wait; several arrivals of one signal before it is read count once,
/// as with any standard signal.
///
/// Not `Send`: it is registered with the hub of the thread that made it.
///
/// # Examples
///
/// ```
/// use greenlet::signal::{Signals, SIGUSR2};
///
/// let signals = Signals::new(&[SIGUSR2])?;
/// // SAFETY: raise sends a signal to this thread; SIGUSR2 is blocked.
/// unsafe { libc::raise(SIGUSR2) };
/// assert_eq!(signals.wait()?, SIGUSR2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    watch: Watched,
    set: SigSet,
}

impl Signals {
    /// Blocks `signals` in the calling thread and opens a `signalfd` for
    /// them.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a number that is not a signal; the error of
    /// `signalfd` or `epoll_ctl` (for instance `EMFILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = greenlet::signal::Signals::new(&[greenlet::signal::SIGHUP])?;
    /// assert!(signals.contains(greenlet::signal::SIGHUP));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let set = SigSet::new(signals)?;
        crate::sys::block_signals(&set)?;
        let fd = crate::sys::signalfd(&set)?;
        Ok(Signals {
            watch: Watched::own(fd)?,
            set,
        })
    }

    /// Whether `signum` is one of this set's signals.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::signal::{Signals, SIGUSR1, SIGUSR2};
    ///
    /// let signals = Signals::new(&[SIGUSR1])?;
    /// assert!(signals.contains(SIGUSR1) && !signals.contains(SIGUSR2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn contains(&self, signum: i32) -> bool {
        self.set.contains(signum)
    }

    /// Parks the calling greenlet until one of the signals arrives, and
    /// returns its number.
    ///
    /// # Errors
    ///
    /// The error of reading the `signalfd` (none expected). Kills and
    /// [`with_timeout`](crate::with_timeout) unwind out of the wait; the
    /// signal then stays pending for the next wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::signal::{Signals, SIGUSR1};
    ///
    /// let signals = Signals::new(&[SIGUSR1])?;
    /// greenlet::spawn(|| unsafe {
    ///     // SAFETY: raise sends a signal to this thread; it is blocked.
    ///     libc::raise(SIGUSR1);
    /// });
    /// assert_eq!(signals.wait()?, SIGUSR1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) -> io::Result<i32> {
        self.read(None)
    }

    /// [`wait`](Signals::wait) for at most `timeout`: `Ok(None)` if no
    /// signal arrived in time.
    ///
    /// # Errors
    ///
    /// As [`wait`](Signals::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::signal::{Signals, SIGUSR2};
    ///
    /// let signals = Signals::new(&[SIGUSR2])?;
    /// assert_eq!(signals.wait_timeout(Duration::from_millis(10))?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<i32>> {
        match self.read(Some(deadline_after(timeout))) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A signal that is pending now, without waiting.
    ///
    /// # Errors
    ///
    /// The error of reading the `signalfd` (none expected).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::signal::{Signals, SIGUSR1};
    ///
    /// let signals = Signals::new(&[SIGUSR1])?;
    /// assert_eq!(signals.try_wait()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&self) -> io::Result<Option<i32>> {
        match crate::sys::read_signalfd(self.watch.fd()) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read(&self, deadline: Option<std::time::Instant>) -> io::Result<i32> {
        let fd = self.watch.fd();
        self.watch
            .registration()
            .do_io(Direction::Read, deadline, || crate::sys::read_signalfd(fd))
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<i32> = (1..=64).filter(|&s| self.contains(s)).collect();
        f.debug_struct("Signals")
            .field("signals", &members)
            .finish()
    }
}

/// Parks the calling greenlet until one of `signals` arrives, and returns
/// its number: [`Signals::new`] then [`Signals::wait`]. The signals stay
/// blocked afterwards.
///
/// # Errors
///
/// As [`Signals::new`] and [`Signals::wait`].
///
/// # Examples
///
/// ```
/// use greenlet::signal::{self, SIGUSR1, SIGUSR2};
///
/// signal::block(&[SIGUSR1, SIGUSR2])?;
/// let waiter = greenlet::spawn(|| signal::wait(&[SIGUSR1, SIGUSR2]));
/// greenlet::yield_now();
/// // SAFETY: raise sends a signal to this thread; it is blocked.
/// unsafe { libc::raise(SIGUSR2) };
/// assert_eq!(waiter.join().unwrap()?, SIGUSR2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait(signals: &[i32]) -> io::Result<i32> {
    Signals::new(signals)?.wait()
}

/// Runs `f` in a new greenlet each time `signum` arrives (gevent's
/// `signal_handler`), until the returned [`Handler`] is cancelled or
/// dropped.
///
/// The listening greenlet parks on a [`Signals`] of its own; `f` runs on
/// this thread's hub, so it may block, sleep, or stop a server.
///
/// # Errors
///
/// As [`Signals::new`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use greenlet::signal::{self, SIGUSR2};
///
/// let hits = Rc::new(Cell::new(0));
/// let counter = hits.clone();
/// let handler = signal::handler(SIGUSR2, move || counter.set(counter.get() + 1))?;
/// greenlet::yield_now();
/// // SAFETY: raise sends a signal to this thread; it is blocked.
/// unsafe { libc::raise(SIGUSR2) };
/// while hits.get() == 0 {
///     greenlet::sleep(std::time::Duration::from_millis(1));
/// }
/// handler.cancel();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn handler(signum: i32, f: impl Fn() + 'static) -> io::Result<Handler> {
    let signals = Signals::new(&[signum])?;
    let f: Rc<dyn Fn()> = Rc::new(f);
    let listener = crate::Builder::new()
        .name(format!("signal {signum} handler"))
        .spawn(move || {
            while signals.wait().is_ok() {
                let f = f.clone();
                drop(crate::spawn(move || f()));
            }
        })?;
    Ok(Handler {
        listener: Some(listener),
        signum,
    })
}

/// A signal handler installed by [`handler`]. Dropping it, or
/// [`cancel`](Handler::cancel), stops it (handler greenlets already
/// started run to completion); the signal stays blocked, so later
/// arrivals stay pending.
///
/// # Examples
///
/// ```
/// let handler = greenlet::signal::handler(greenlet::signal::SIGUSR1, || {})?;
/// assert_eq!(handler.signal(), greenlet::signal::SIGUSR1);
/// handler.cancel();
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the Handler stops it"]
pub struct Handler {
    listener: Option<Greenlet<()>>,
    signum: i32,
}

impl Handler {
    /// The signal this handler runs for.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = greenlet::signal::handler(greenlet::signal::SIGHUP, || {})?;
    /// assert_eq!(h.signal(), greenlet::signal::SIGHUP);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signal(&self) -> i32 {
        self.signum
    }

    /// Stops listening (kills the listening greenlet and waits for it).
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::signal::handler(greenlet::signal::SIGUSR2, || {})?.cancel();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(mut self) {
        if let Some(g) = self.listener.take() {
            g.kill();
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        if let Some(g) = self.listener.take()
            && let Some(hub) = crate::hub::Hub::try_current()
        {
            // Waiting for the listener to die is a blocking call: not from
            // code the hub loop runs (the value of a detached greenlet,
            // say), nor while unwinding. There it dies at its next run.
            if hub.may_block() && !std::thread::panicking() {
                g.kill();
            } else {
                g.kill_nowait();
            }
        }
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("signal", &self.signum)
            .finish()
    }
}
