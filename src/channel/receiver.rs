//! The receiving half, [`Receiver`]: receiving, iterating, and a receive
//! as an operation of a select.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Chan, Iter, RecvError, RecvTimeoutError, State, TryIter, TryRecvError, pass_on, receivers,
};

#[cfg(doc)]
use super::{channel, sync_channel};

/// The receiving half of a [`channel`] or [`sync_channel`].
///
/// Like std's, it is `Send` but not `Sync`: one thread receives (several
/// greenlets of that thread may share it by reference, and are then served
/// in the order they began waiting).
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<greenlet::channel::Receiver<u8>>(); // error: `Cell<()>` cannot be shared
/// ```
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// let t = std::thread::spawn(move || tx.send(7).unwrap()); // a plain thread
/// assert_eq!(rx.recv(), Ok(7));
/// t.join().unwrap();
/// ```
pub struct Receiver<T> {
    pub(super) chan: Arc<Chan<T>>,
    pub(super) _not_sync: PhantomData<Cell<()>>,
}

impl<T> Receiver<T> {
    /// Takes the next message, parking until one comes.
    ///
    /// In root context this runs the hub meanwhile. A wait that nothing
    /// will ever end hangs (see [`crate::sync`]).
    ///
    /// # Errors
    /// [`RecvError`] once every sender is dropped and the buffer is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::channel::{RecvError, channel};
    ///
    /// let (tx, rx) = channel();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1)); // buffered messages still arrive
    /// assert_eq!(rx.recv(), Err(RecvError));
    /// ```
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv_until(None).map_err(|_| RecvError)
    }

    /// Takes the next message if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is buffered,
    /// [`TryRecvError::Disconnected`] if also every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::channel::{TryRecvError, channel};
    ///
    /// let (tx, rx) = channel::<u8>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut s = self.chan.state.lock();
        match s.take() {
            Some(item) => Ok(item),
            None if s.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Takes the next message, parking at most `timeout` for one.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came in time,
    /// [`RecvTimeoutError::Disconnected`] once every sender is dropped and
    /// the buffer is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::channel::{RecvTimeoutError, channel};
    ///
    /// let (_tx, rx) = channel::<u8>();
    /// let r = rx.recv_timeout(Duration::from_millis(5));
    /// assert_eq!(r, Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan
            .recv_until(Some(crate::hub::deadline_after(timeout)))
    }

    /// An iterator that [`recv`](Receiver::recv)s until every sender is
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = greenlet::channel::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages buffered right now; it never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = greenlet::channel::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(rx.try_iter().next(), None); // tx is alive, but nothing waits
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.chan.state.lock();
        s.receiver = false;
        // Parked senders wake with their message back.
        s.blocked.notify_all();
        let items = std::mem::take(&mut s.items);
        drop(s);
        // Messages' destructors run outside the lock.
        drop(items);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// A `recv` as one operation of a [`Select`](crate::select::Select) or
/// [`wait`](crate::select::wait): completes with the next message, or with
/// [`RecvError`] once every sender is gone and the channel is drained. A
/// message handed to a receive that loses the select goes back to the
/// front of the channel.
///
/// # Examples
///
/// ```
/// use greenlet::channel::channel;
/// use greenlet::select::Select;
///
/// let (tx1, rx1) = channel::<i32>();
/// let (tx2, rx2) = channel();
/// tx2.send("two").unwrap();
/// let got = Select::new()
///     .on(&rx1, |m| m.map(|n| n.to_string()))
///     .on(&rx2, |m| m.map(String::from))
///     .wait();
/// assert_eq!(got.unwrap(), "two");
/// drop(tx1);
/// ```
impl<T> crate::sync::waitable::Waitable for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn start(&self) -> crate::sync::waitable::Attempt<'_, Result<T, RecvError>> {
        use crate::sync::waitable::{Attempt, Pending};
        let op = RecvOp {
            chan: &self.chan,
            armed: None,
        };
        match op.try_now() {
            Some(r) => Attempt::Ready(r),
            None => Attempt::Pending(Pending::new(op)),
        }
    }
}

/// A select `recv`: tried again when polled, registered only while a
/// select parks (see [`PendingOp`](crate::select::PendingOp)).
struct RecvOp<'r, T> {
    chan: &'r Chan<T>,
    armed: Option<crate::sync::wait_queue::Armed<'r, State<T>, T>>,
}

impl<T> RecvOp<'_, T> {
    /// A `try_recv` whose only error is a disconnection.
    fn try_now(&self) -> Option<Result<T, RecvError>> {
        let mut s = self.chan.state.lock();
        match s.take() {
            Some(item) => Some(Ok(item)),
            None if s.senders == 0 => Some(Err(RecvError)),
            None => None,
        }
    }
}

impl<T> crate::sync::waitable::PendingOp<Result<T, RecvError>> for RecvOp<'_, T> {
    fn poll(&mut self) -> Option<Result<T, RecvError>> {
        let Some(armed) = &mut self.armed else {
            return self.try_now();
        };
        Some(match armed.poll()? {
            Some(item) => Ok(item),
            None => self.chan.state.lock().take().ok_or(RecvError),
        })
    }

    fn arm(&mut self, _: crate::sync::waitable::ArmToken) -> bool {
        if self.armed.is_some() {
            return false;
        }
        let s = self.chan.state.lock();
        if !s.items.is_empty() || !s.blocked.is_empty() || s.senders == 0 {
            return true;
        }
        self.armed = Some(crate::sync::wait_queue::arm(
            &self.chan.state,
            s,
            receivers,
            None,
            pass_on,
            None,
        ));
        false
    }

    fn disarm(&mut self, _: crate::sync::waitable::ArmToken) {
        self.armed = None;
    }
}
