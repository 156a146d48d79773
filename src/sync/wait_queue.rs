//! The one waiter list every primitive of [`crate::sync`] (and the pool)
//! parks on, and the waiting protocol that goes with it.
//!
//! A [`WaitList`] lives inside a primitive's state, behind the primitive's
//! `std::sync::Mutex` (held for a few instructions, never across a park).
//! It is a FIFO doubly linked list threaded through a slab of nodes, so
//! registering, waking the first waiter and removing any waiter are O(1)
//! and, once the slab has grown to the peak number of waiters, allocate
//! nothing.
//!
//! # Protocol
//!
//! A waiter, holding the primitive's lock, checks its condition; when it
//! must wait it takes a [`RemoteWaker`] from its hub, links a node holding
//! that waker (and, for a bounded queue's putter, its item), releases the
//! lock and parks ([`wait`]). A notifier, holding the same lock, unlinks the
//! first node, marks it *notified*, optionally deposits a payload in it (an
//! item, a permit) and wakes its waker: directly when the waiter belongs to
//! the notifier's own hub, through the waiter's hub remote queue otherwise.
//! Because the notification is recorded in the node under the lock, the
//! waiter never loses it: whatever wakes it (its wake-up, a spurious
//! unpark, its timer), it re-takes the lock and looks at its node.
//!
//! The node belongs to its waiter from `push` until the waiter removes it,
//! however its wait ends: returned normally, timed out, killed or unwound by
//! an expired `with_timeout` (a drop guard). A waiter that dies holding a
//! payload meant for it gives it to the primitive's `abandon` hook, which
//! passes it on (to the next waiter, or back into the primitive), so no
//! permit or item is ever lost with a dying waiter.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::hub::remote::RemoteWaker;
use crate::hub::task::Wake;
use crate::hub::{self, Hub};

/// Locks a primitive's state. The state is valid after any panic (every
/// update is completed before user code can run), so poisoning is ignored.
#[inline]
pub(crate) fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const NIL: u32 = u32::MAX;

/// Names one waiter's node; valid until that waiter removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitKey(u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
    /// On the free list.
    Vacant,
    /// Linked, waiting.
    Waiting,
    /// Unlinked by a notifier; its waiter has not collected it yet.
    Notified,
}

struct Node<P> {
    prev: u32,
    /// Next waiter when linked; next free node when vacant.
    next: u32,
    state: NodeState,
    waker: Option<RemoteWaker>,
    payload: Option<P>,
}

/// A FIFO list of parked waiters, each with an optional payload `P`.
pub(crate) struct WaitList<P> {
    nodes: Vec<Node<P>>,
    free: u32,
    head: u32,
    tail: u32,
    len: usize,
}

/// A waiter's node, taken off the list.
pub(crate) struct Removed<P> {
    pub(crate) waker: RemoteWaker,
    pub(crate) notified: bool,
    pub(crate) payload: Option<P>,
}

impl<P> WaitList<P> {
    /// An empty list (allocates nothing).
    pub(crate) const fn new() -> WaitList<P> {
        WaitList {
            nodes: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// Whether no waiter is linked (notified ones no longer count).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Linked waiters.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Links a new waiter at the back.
    pub(crate) fn push(&mut self, waker: RemoteWaker, payload: Option<P>) -> WaitKey {
        let node = Node {
            prev: self.tail,
            next: NIL,
            state: NodeState::Waiting,
            waker: Some(waker),
            payload,
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        } else {
            let i = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("greenlet::sync: more than 4 billion waiters on one primitive");
            self.nodes.push(node);
            i
        };
        if self.tail == NIL {
            self.head = i;
        } else {
            self.nodes[self.tail as usize].next = i;
        }
        self.tail = i;
        self.len += 1;
        WaitKey(i)
    }

    /// The first linked waiter.
    #[inline]
    pub(crate) fn first(&self) -> Option<WaitKey> {
        (self.head != NIL).then_some(WaitKey(self.head))
    }

    /// The payload slot of a waiter's node.
    #[inline]
    pub(crate) fn payload_mut(&mut self, key: WaitKey) -> &mut Option<P> {
        &mut self.nodes[key.0 as usize].payload
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.len -= 1;
    }

    /// Unlinks a linked waiter, marks it notified and wakes it.
    pub(crate) fn notify(&mut self, key: WaitKey) {
        debug_assert_eq!(self.nodes[key.0 as usize].state, NodeState::Waiting);
        self.unlink(key.0);
        let node = &mut self.nodes[key.0 as usize];
        node.state = NodeState::Notified;
        if let Some(w) = &node.waker {
            w.wake();
        }
    }

    /// Hands `payload` to the first waiter and wakes it; gives the payload
    /// back when nobody waits.
    #[inline]
    pub(crate) fn notify_first_with(&mut self, payload: P) -> Result<(), P> {
        match self.first() {
            Some(k) => {
                *self.payload_mut(k) = Some(payload);
                self.notify(k);
                Ok(())
            }
            None => Err(payload),
        }
    }

    /// Notifies every linked waiter, first to last, leaving their payloads
    /// as they are.
    pub(crate) fn notify_all(&mut self) {
        while let Some(k) = self.first() {
            self.notify(k);
        }
    }

    /// Whether a notifier has picked this waiter.
    #[inline]
    pub(crate) fn is_notified(&self, key: WaitKey) -> bool {
        self.nodes[key.0 as usize].state == NodeState::Notified
    }

    /// Takes a waiter's node off the list (linked or notified) and frees it.
    pub(crate) fn remove(&mut self, key: WaitKey) -> Removed<P> {
        let state = self.nodes[key.0 as usize].state;
        assert_ne!(state, NodeState::Vacant, "greenlet::sync: waiter removed twice");
        if state == NodeState::Waiting {
            self.unlink(key.0);
        }
        let node = &mut self.nodes[key.0 as usize];
        node.state = NodeState::Vacant;
        node.next = self.free;
        self.free = key.0;
        Removed {
            waker: node.waker.take().expect("an occupied node has a waker"),
            notified: state == NodeState::Notified,
            payload: node.payload.take(),
        }
    }
}

impl<P> Default for WaitList<P> {
    fn default() -> Self {
        WaitList::new()
    }
}

/// How a [`wait`] ended.
pub(crate) enum Waited<P> {
    /// A notifier picked this waiter; here is what it left in the node.
    Notified(Option<P>),
    /// The deadline passed first; here is the waiter's own payload back.
    TimedOut(Option<P>),
}

/// The waiting half of the protocol, shared by every primitive.
///
/// The caller holds the primitive's lock (`guard`), has found that it must
/// wait, and passes the list to wait on (`list` picks it out of the state),
/// the payload its node starts with, and an optional deadline. Registers
/// the running task, releases the lock, and parks until notified or timed
/// out, re-checking its node after every wake-up. A deadline that has
/// already passed returns at once, without registering.
///
/// If the park unwinds (kill, expired `with_timeout`), a drop guard removes
/// the node; if it had already been notified with a payload, `abandon`
/// receives that payload under the lock to pass it on, and whatever it
/// returns is dropped after the lock is released.
pub(crate) fn wait<S, P>(
    mutex: &Mutex<S>,
    mut guard: MutexGuard<'_, S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    payload: Option<P>,
    deadline: Option<Instant>,
    abandon: fn(&mut S, P) -> Option<P>,
) -> Waited<P> {
    if let Some(d) = deadline
        && Instant::now() >= d
    {
        drop(guard);
        return Waited::TimedOut(payload);
    }
    let hub = Hub::current();
    let key = list(&mut guard).push(hub.remote_waker(), payload);
    drop(guard);
    let reg = Registration {
        hub,
        mutex,
        list,
        key,
        abandon,
    };
    loop {
        let wake = hub::park_until(deadline);
        let mut guard = lock(mutex);
        let l = list(&mut guard);
        let notified = l.is_notified(key);
        if notified || wake == Wake::TimedOut {
            let removed = l.remove(key);
            drop(guard);
            std::mem::forget(reg);
            hub.cancel_remote(&removed.waker);
            return if notified {
                Waited::Notified(removed.payload)
            } else {
                Waited::TimedOut(removed.payload)
            };
        }
    }
}

/// Removes a waiter's node when its park unwinds.
struct Registration<'a, S, P> {
    hub: &'static Hub,
    mutex: &'a Mutex<S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    key: WaitKey,
    abandon: fn(&mut S, P) -> Option<P>,
}

impl<S, P> Drop for Registration<'_, S, P> {
    fn drop(&mut self) {
        let mut guard = lock(self.mutex);
        let removed = (self.list)(&mut guard).remove(self.key);
        let leftover = match removed.payload {
            Some(p) if removed.notified => (self.abandon)(&mut guard, p),
            other => other,
        };
        drop(guard);
        self.hub.cancel_remote(&removed.waker);
        drop(leftover);
    }
}

/// An `abandon` hook for lists whose payloads need no passing on: drops
/// them (after the lock is released).
pub(crate) fn drop_payload<S, P>(_: &mut S, p: P) -> Option<P> {
    Some(p)
}
