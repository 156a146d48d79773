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

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

mod iter;
mod receiver;
mod sender;

pub use iter::{IntoIter, Iter, TryIter};
pub use receiver::Receiver;
pub use sender::{Sender, SyncSender};

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
