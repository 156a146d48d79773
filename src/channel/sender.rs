//! The sending halves: [`Sender`] of an unbounded channel, [`SyncSender`]
//! of a bounded one.

use std::fmt;
use std::sync::Arc;

use super::{Chan, SendError, TrySendError};

#[cfg(doc)]
use super::{Receiver, channel, sync_channel};

/// The sending half of an unbounded [`channel`]; clone it for more
/// senders. [`send`](Sender::send) never waits.
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// assert_eq!(rx.recv(), Ok(2));
/// ```
pub struct Sender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `t` without waiting.
    ///
    /// # Errors
    /// [`SendError`] holding `t` if the [`Receiver`] has been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = greenlet::channel::channel();
    /// tx.send(5).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(6).unwrap_err().0, 6);
    /// ```
    #[inline]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        // Unbounded: never full, so only a disconnection fails.
        self.chan.try_send(t).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => SendError(t),
        })
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The sending half of a bounded [`sync_channel`]; clone it for more
/// senders. [`send`](SyncSender::send) parks while the channel is full.
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::sync_channel(0); // rendezvous
/// let g = greenlet::spawn(move || tx.send("hi").unwrap()); // waits for recv
/// assert_eq!(rx.recv(), Ok("hi"));
/// g.join().unwrap();
/// ```
pub struct SyncSender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> SyncSender<T> {
    /// Sends `t`, parking while the channel is full (for a rendezvous
    /// channel: until a receiver takes it). Parked senders are served in
    /// the order they came.
    ///
    /// # Errors
    /// [`SendError`] holding `t` if the [`Receiver`] is dropped, before or
    /// while this call waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = greenlet::channel::sync_channel(1);
    /// let g = greenlet::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).unwrap(); // at most one message ahead
    ///     }
    /// });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// g.join().unwrap();
    /// ```
    #[inline]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.chan.send(t)
    }

    /// Sends `t` if that needs no waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the buffer is full (for a rendezvous
    /// channel: no receiver is waiting), [`TrySendError::Disconnected`] if
    /// the receiver is gone; both hold `t`.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::channel::{TrySendError, sync_channel};
    ///
    /// let (tx, rx) = sync_channel(0);
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
    /// ```
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(t)
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        SyncSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}
