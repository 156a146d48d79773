//! A one-value channel whose receiver parks on its own hub and whose sender
//! may run on any thread: the crate's one way to hand a result to a parked
//! task from elsewhere (blocking-pool results, DNS answers, greenlets
//! spawned on another hub).
//!
//! Waiting protocol: the receiver takes the lock, takes the value if it is
//! there, otherwise leaves a [`RemoteWaker`] in the shared state, unlocks,
//! and parks. The sender stores the value and takes the waker under the
//! same lock, then wakes it. Whichever runs first, the other sees it: no
//! wake-up is lost. The waker's generation makes a wake that arrives after
//! the wait ended (a kill, a timeout) harmless, and the hub unparks a task
//! only if it is parked, so none is doubled.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::hub::remote::RemoteWaker;
use crate::hub::{self, Hub, WaitReason};

struct State<T> {
    value: Option<T>,
    /// The sender sent or was dropped: no value will come after `value`.
    done: bool,
    waiter: Option<RemoteWaker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while the lock is held; recover anyway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half; `Send` when `T` is.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half; `Send` when `T` is.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// The sender was dropped without sending.
#[derive(Debug)]
pub(crate) struct Closed;

pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            done: false,
            waiter: None,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Delivers the value and wakes the receiver if it waits.
    pub(crate) fn send(self, value: T) {
        self.finish(Some(value));
    }

    fn finish(&self, value: Option<T>) {
        let waiter = {
            let mut st = self.shared.lock();
            if st.done {
                return;
            }
            st.done = true;
            st.value = value;
            st.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl<T> Receiver<T> {
    /// Whether `recv` would return at once.
    pub(crate) fn is_ready(&self) -> bool {
        self.shared.lock().done
    }

    /// Parks the running task until the value arrives (from root context:
    /// runs the loop meanwhile).
    ///
    /// # Errors
    /// [`Closed`] if the sender was dropped without sending.
    pub(crate) fn recv(self, reason: WaitReason) -> Result<T, Closed> {
        self.recv_with(true, reason)
    }

    /// [`Receiver::recv`] that neither unwinds nor gives up on a kill or
    /// an expired `with_timeout`: it waits for the value regardless (for
    /// callers that cannot unwind and whose sender borrows their memory,
    /// like the monkey-patching `getaddrinfo` hook).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn recv_uninterruptible(self, reason: WaitReason) -> Result<T, Closed> {
        self.recv_with(false, reason)
    }

    fn recv_with(self, deliver: bool, reason: WaitReason) -> Result<T, Closed> {
        let hub = Hub::current();
        let mut registered: Option<CancelOnDrop> = None;
        loop {
            {
                let mut st = self.shared.lock();
                if st.done {
                    return st.value.take().ok_or(Closed);
                }
                if registered.is_none() {
                    let w = hub.remote_waker();
                    st.waiter = Some(w.clone());
                    registered = Some(CancelOnDrop(w));
                }
            }
            if deliver {
                hub::park(reason);
            } else {
                hub.park_raw(reason);
            }
        }
    }
}

/// Releases a wait slot however the wait ends (also when it unwinds).
pub(crate) struct CancelOnDrop(pub(crate) RemoteWaker);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(hub) = Hub::try_current() {
            hub.cancel_remote(&self.0);
        }
    }
}
