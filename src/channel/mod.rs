//! Channels shaped like `std::sync::mpsc`, for greenlets and threads.
//!
//! [`channel`] makes an unbounded channel ([`Sender`] never waits);
//! [`sync_channel`]`(n)` a bounded one ([`SyncSender::send`] parks while
//! `n` messages are buffered; `n = 0` is a rendezvous, where each send
//! waits until a receiver takes its message). The names, signatures and
//! error types are std's own (the errors are re-exported from
//! `std::sync::mpsc`), so code written against std ports by changing one
//! `use`. The difference is how they wait: a greenlet blocked in
//! [`Receiver::recv`] or [`SyncSender::send`] parks, and the other
//! greenlets of its hub keep running, where std's would block the whole OS
//! thread (and with it the greenlet that was about to send).
//!
//! Disconnection is std's: once every sender is dropped, `recv` drains
//! what is buffered and then fails with [`RecvError`]; once the receiver is
//! dropped, sends fail with [`SendError`] holding the message, and senders
//! parked in a full channel wake with their message back.
//!
//! Both ends work from greenlets of any hub and from plain OS threads
//! (`Sender`, `SyncSender` and `Receiver` are `Send` when `T` is). For many
//! consumers sharing one stream of items use [`sync::Queue`](crate::sync::Queue),
//! which is multi-consumer and closes explicitly.
//!
//! # Waiting protocol
//!
//! The same as [`crate::sync`]'s: under the channel's internal lock a
//! send hands its message straight to the first parked receiver (or
//! buffers it), a receive takes the oldest message and moves the first
//! parked sender's message into the freed slot; otherwise the caller
//! registers at the back of the receivers' (or senders') waiter list and
//! parks, FIFO. A receiver that dies after a message was handed to it
//! passes the message on, so nothing is lost.
//!
//! # Examples
//!
//! ```
//! use greenlet::channel;
//!
//! let (tx, rx) = channel::channel();
//! for id in 0..3 {
//!     let tx = tx.clone();
//!     greenlet::spawn(move || tx.send(id * 10).unwrap());
//! }
//! drop(tx); // the iteration below ends once every clone is gone
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 10, 20]);
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

mod iter;

pub use iter::{IntoIter, Iter, TryIter};

use crate::hub::SyncKind;
use crate::sync::lock::Lock;
use crate::sync::wait_queue::{WaitList, WaitSite, Waited, drop_payload, wait};

/// Creates an unbounded channel: [`Sender::send`] never waits (std's
/// `mpsc::channel`).
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// let g = greenlet::spawn(move || {
///     for i in 0..3 {
///         tx.send(i).unwrap();
///     }
/// });
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
/// g.join().unwrap();
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(usize::MAX);
    (
        Sender { chan: chan.clone() },
        Receiver {
            chan,
            _not_sync: PhantomData,
        },
    )
}

/// Creates a bounded channel holding at most `bound` messages:
/// [`SyncSender::send`] parks while it is full (std's
/// `mpsc::sync_channel`). With `bound = 0` each send waits until a receiver
/// takes its message (a rendezvous).
///
/// # Examples
///
/// ```
/// use greenlet::channel::{TrySendError, sync_channel};
///
/// let (tx, rx) = sync_channel(1);
/// tx.send('a').unwrap();
/// assert_eq!(tx.try_send('b'), Err(TrySendError::Full('b')));
/// assert_eq!(rx.recv(), Ok('a'));
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(bound);
    (
        SyncSender { chan: chan.clone() },
        Receiver {
            chan,
            _not_sync: PhantomData,
        },
    )
}

struct Chan<T> {
    state: Lock<State<T>>,
}

struct State<T> {
    items: VecDeque<T>,
    /// `usize::MAX` when unbounded.
    cap: usize,
    /// Live `Sender`s and `SyncSender`s.
    senders: usize,
    /// Whether the `Receiver` is alive.
    receiver: bool,
    /// Parked in a receive; only while `items` is empty. Notified with a
    /// message, or with nothing once every sender is gone.
    receivers: WaitList<T>,
    /// Parked in `SyncSender::send` with their message, while the channel
    /// is full. Notified with nothing once the message was taken, or with
    /// the message back once the receiver is gone.
    blocked: WaitList<T>,
}

fn receivers<T>(s: &mut State<T>) -> &mut WaitList<T> {
    &mut s.receivers
}

fn blocked<T>(s: &mut State<T>) -> &mut WaitList<T> {
    &mut s.blocked
}

/// The `abandon` hook of receivers: a message handed to a receiver that
/// died goes to the next one, or back to the front of the buffer.
fn pass_on<T>(s: &mut State<T>, item: T) -> Option<T> {
    if let Err(item) = s.receivers.notify_first_with(item) {
        s.items.push_front(item);
    }
    None
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: Lock::new(State {
                items: VecDeque::new(),
                cap,
                senders: 1,
                receiver: true,
                receivers: WaitList::new(),
                blocked: WaitList::new(),
            }),
        })
    }

    /// Sends without waiting.
    fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut s = self.state.lock();
        if !s.receiver {
            return Err(TrySendError::Disconnected(item));
        }
        s.try_send(item).map_err(TrySendError::Full)
    }

    /// Sends, parking while the channel is full.
    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn send(&self, item: T) -> Result<(), SendError<T>> {
        let mut s = self.state.lock();
        if !s.receiver {
            return Err(SendError(item));
        }
        let item = match s.try_send(item) {
            Ok(()) => return Ok(()),
            Err(item) => item,
        };
        match wait(
            &self.state,
            s,
            blocked,
            Some(item),
            None,
            drop_payload,
            WaitSite::of(SyncKind::ChannelSend),
        ) {
            Waited::Notified(None) => Ok(()),
            Waited::Notified(Some(item)) | Waited::TimedOut(Some(item)) => Err(SendError(item)),
            Waited::TimedOut(None) => unreachable!("an untimed send does not time out"),
        }
    }

    // Inlined whole (with `wait`): see `wait_queue::wait` on why a park
    // site's call chain should be shallow.
    #[inline(always)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut s = self.state.lock();
        if let Some(item) = s.take() {
            return Ok(item);
        }
        if s.senders == 0 {
            return Err(RecvTimeoutError::Disconnected);
        }
        match wait(
            &self.state,
            s,
            receivers,
            None,
            deadline,
            pass_on,
            WaitSite::of(SyncKind::ChannelRecv),
        ) {
            Waited::Notified(Some(item)) => Ok(item),
            // Disconnected. A message handed to a receiver that then died
            // may have come back into the buffer since: take it.
            Waited::Notified(None) => self
                .state
                .lock()
                .take()
                .ok_or(RecvTimeoutError::Disconnected),
            Waited::TimedOut(_) => Err(RecvTimeoutError::Timeout),
        }
    }

    fn add_sender(&self) {
        self.state.lock().senders += 1;
    }

    fn drop_sender(&self) {
        let mut s = self.state.lock();
        s.senders -= 1;
        if s.senders == 0 {
            // Parked receivers exist only while nothing is buffered.
            s.receivers.notify_all();
        }
    }
}

impl<T> State<T> {
    /// Hands `item` to a parked receiver or buffers it if there is room;
    /// gives it back otherwise.
    #[inline]
    fn try_send(&mut self, item: T) -> Result<(), T> {
        let item = match self.receivers.hand_off_first(item) {
            Ok(()) => return Ok(()),
            Err(item) => item,
        };
        if self.items.len() < self.cap {
            self.items.push_back(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Takes the oldest message, moving the first parked sender's message
    /// into the freed slot.
    #[inline]
    fn take(&mut self) -> Option<T> {
        match self.items.pop_front() {
            Some(item) => {
                if !self.blocked.is_empty() && self.items.len() < self.cap {
                    let more = self.take_from_sender();
                    self.items.push_back(more);
                }
                Some(item)
            }
            // Only a rendezvous channel has senders parked while empty.
            None if !self.blocked.is_empty() => Some(self.take_from_sender()),
            None => None,
        }
    }

    fn take_from_sender(&mut self) -> T {
        let k = self.blocked.first().expect("checked by the caller");
        let item = self
            .blocked
            .payload_mut(k)
            .take()
            .expect("a parked sender holds its message");
        self.blocked.notify(k);
        item
    }
}

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
    chan: Arc<Chan<T>>,
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
    chan: Arc<Chan<T>>,
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
    chan: Arc<Chan<T>>,
    _not_sync: PhantomData<Cell<()>>,
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
        let chan: &Chan<T> = &self.chan;
        let mut s = chan.state.lock();
        if let Some(item) = s.take() {
            return Attempt::Ready(Ok(item));
        }
        if s.senders == 0 {
            return Attempt::Ready(Err(RecvError));
        }
        let armed = crate::sync::wait_queue::arm(&chan.state, s, receivers, None, pass_on, None);
        Attempt::Pending(Pending::new(RecvOp { armed, chan }))
    }
}

/// A registered select `recv`.
struct RecvOp<'r, T> {
    armed: crate::sync::wait_queue::Armed<'r, State<T>, T>,
    chan: &'r Chan<T>,
}

impl<T> crate::sync::waitable::PendingOp<Result<T, RecvError>> for RecvOp<'_, T> {
    fn poll(&mut self) -> Option<Result<T, RecvError>> {
        Some(match self.armed.poll()? {
            Some(item) => Ok(item),
            None => self.chan.state.lock().take().ok_or(RecvError),
        })
    }
}
