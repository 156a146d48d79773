//! The one waiter list every primitive of [`crate::sync`] (and the pool)
//! parks on, and the waiting protocol that goes with it.
//!
//! A [`WaitList`] lives inside a primitive's state, behind the primitive's
//! [`Lock`] (held for a few instructions, never across a park). It is an
//! intrusive FIFO doubly linked list of nodes that their waiters own, so
//! registering, waking the first waiter and removing any waiter are O(1).
//!
//! # Protocol
//!
//! A waiter, holding the primitive's lock, checks its condition; when it
//! must wait it registers in a wait slot of its hub, links a node naming
//! that slot (and, for a bounded queue's putter, holding its item), releases
//! the lock and parks ([`wait`]). A notifier, holding the same lock, unlinks
//! the first node, optionally deposits a payload in it (an item, a permit),
//! marks it *notified* with a release store and wakes the waiter: directly
//! when the waiter belongs to the notifier's own hub, through the waiter's
//! hub remote queue otherwise. From that store on the node is the waiter's
//! alone. Woken for whatever reason (its wake-up, a spurious unpark, its
//! timer), the waiter reads the mark with an acquire load: notified means
//! done, with no second trip through the lock; otherwise it parks again,
//! and only a timeout makes it take the lock to unlink itself (re-checking
//! the mark under the lock, so a notification that raced the timeout is
//! taken, not lost).
//!
//! The node belongs to its waiter from registration until the waiter frees
//! it, however its wait ends: returned normally, timed out, killed or
//! unwound by an expired `with_timeout` (a drop guard). A waiter that dies
//! holding a payload meant for it gives it to the primitive's `abandon`
//! hook, which passes it on (to the next waiter, or back into the
//! primitive), so no permit or item is ever lost with a dying waiter.
//!
//! # Memory
//!
//! A node lives in its waiter's [`wait`] frame: a parked greenlet's stack
//! does not move, so the list's raw links stay valid, and a wait allocates
//! nothing. The frame cannot be left while the node is linked (the drop
//! guard unlinks it first, also when unwinding). The node names its
//! waiter's hub by a raw pointer to that hub's remote queue. Both stay
//! valid while the node is linked: its waiter is then registered in a wait
//! slot, so its hub is alive, or the hub was torn down with the waiter
//! leaked in it, and then the hub kept its stacks mapped and its remote
//! queue alive for good (see `Hub`'s `Drop`). A cross-thread notifier turns the pointer
//! into an owned `Arc` before it marks the node, so the queue outlives its
//! send; the same-hub path takes no reference count at all.

use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::lock::{Lock, LockGuard};
use crate::hub::remote::{Remote, RemoteMsg};
use crate::hub::task::{Header, TaskRef, Wake};
use crate::hub::{self, Hub};

/// One waiter.
///
/// # Invariant
/// While linked (`notified` false), every field but `notified` is read and
/// written only under the lock of the list that links it. Once `notified`
/// is stored true (under that lock, by the notifier that unlinked it), only
/// the waiter touches the node, and frees it.
struct Node<P> {
    prev: *mut Node<P>,
    next: *mut Node<P>,
    notified: AtomicBool,
    payload: UnsafeCell<Option<P>>,
    /// The waiter's hub remote queue (see the module's `# Memory`).
    remote: *const Remote,
    /// The waiting task, for a notifier on its own hub. Alive while the
    /// node is linked: a parked task keeps itself alive.
    task: *const Header,
    key: usize,
    generation: u64,
}

/// Names a linked waiter; valid while the caller holds the list's lock and
/// the waiter stays linked.
pub(crate) struct WaitKey<P>(NonNull<Node<P>>);

impl<P> Clone for WaitKey<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for WaitKey<P> {}

/// A FIFO list of parked waiters, each with an optional payload `P`.
pub(crate) struct WaitList<P> {
    head: *mut Node<P>,
    tail: *mut Node<P>,
    len: usize,
}

// SAFETY: the list only holds pointers to nodes that are reached under the
// lock that guards the list (see `Node`'s invariant); moving the list to
// another thread moves payloads `P` with it.
unsafe impl<P: Send> Send for WaitList<P> {}

impl<P> WaitList<P> {
    /// An empty list (allocates nothing).
    pub(crate) const fn new() -> WaitList<P> {
        WaitList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
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

    /// The first linked waiter.
    #[inline]
    pub(crate) fn first(&self) -> Option<WaitKey<P>> {
        NonNull::new(self.head).map(WaitKey)
    }

    /// The payload slot of a linked waiter's node.
    #[inline]
    pub(crate) fn payload_mut(&mut self, key: WaitKey<P>) -> &mut Option<P> {
        // SAFETY: `key` names a linked node and the caller holds the lock
        // (it has `&mut self`), so by `Node`'s invariant nobody else
        // touches the payload; the borrow ends before the lock does.
        unsafe { &mut *(*key.0.as_ptr()).payload.get() }
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    /// `node` is a live, unlinked node; the caller holds the lock.
    unsafe fn link(&mut self, node: *mut Node<P>) {
        // SAFETY: per the contract, `node` and the linked nodes are live and
        // ours to touch under the lock.
        unsafe {
            (*node).prev = self.tail;
            (*node).next = ptr::null_mut();
            if self.tail.is_null() {
                self.head = node;
            } else {
                (*self.tail).next = node;
            }
        }
        self.tail = node;
        self.len += 1;
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    /// `node` is linked in this list; the caller holds the lock.
    unsafe fn unlink(&mut self, node: *mut Node<P>) {
        // SAFETY: per the contract; its neighbours are linked too.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev = prev;
            }
        }
        self.len -= 1;
    }

    /// Unlinks a linked waiter, marks it notified and wakes it. From here
    /// on the node is its waiter's.
    pub(crate) fn notify(&mut self, key: WaitKey<P>) {
        let node = key.0.as_ptr();
        // SAFETY: `key` names a linked node and `&mut self` means the caller
        // holds the lock: by `Node`'s invariant it is ours until the store
        // below; after it, only the copies taken before are used.
        unsafe {
            self.unlink(node);
            let (remote, key, generation) = ((*node).remote, (*node).key, (*node).generation);
            match Hub::try_current() {
                Some(hub) if ptr::eq(Arc::as_ptr(hub.remote()), remote) => {
                    // Same hub: the waiter is parked on this thread and
                    // cannot run before we return to the loop, so its task
                    // is alive and no slot look-up is needed.
                    (*node).notified.store(true, Ordering::Release);
                    hub.unpark(&TaskRef::from_header((*node).task), Wake::Ready);
                }
                _ => {
                    // Another thread: own the queue before the waiter may
                    // see the mark, return and tear its hub down.
                    Arc::increment_strong_count(remote);
                    let remote = Arc::from_raw(remote);
                    (*node).notified.store(true, Ordering::Release);
                    remote.send(RemoteMsg::Wake { key, generation });
                }
            }
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
/// If the park unwinds (kill, expired `with_timeout`), a drop guard unlinks
/// the node; if it had already been notified with a payload, `abandon`
/// receives that payload under the lock to pass it on, and whatever it
/// returns is dropped after the lock is released.
pub(crate) fn wait<S, P>(
    lock: &Lock<S>,
    mut guard: LockGuard<'_, S>,
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
    let (key, generation) = hub.register_wait();
    let mut node = Node {
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
        notified: AtomicBool::new(false),
        payload: UnsafeCell::new(payload),
        remote: Arc::as_ptr(hub.remote()),
        task: hub.current_task().as_ptr(),
        key,
        generation,
    };
    // From here on the node is reached only through this pointer (and the
    // list's copies of it), and it does not move: `node` is never named
    // again, and `reg` unlinks it before this frame can be left.
    let node: *mut Node<P> = &mut node;
    // SAFETY: a fresh node; we hold the lock.
    unsafe { list(&mut guard).link(node) };
    drop(guard);
    let reg = Registration {
        hub,
        lock,
        list,
        node,
        abandon,
    };
    loop {
        let wake = hub::park_until(deadline);
        // SAFETY: the node lives in this frame.
        if unsafe { (*node).notified.load(Ordering::Acquire) } {
            return Waited::Notified(reg.finish());
        }
        if wake == Wake::TimedOut {
            let mut guard = lock.lock();
            // SAFETY: as above; under the lock the mark is final.
            if unsafe { (*node).notified.load(Ordering::Acquire) } {
                drop(guard);
                return Waited::Notified(reg.finish());
            }
            // SAFETY: not notified, so still linked; we hold the lock.
            unsafe { list(&mut guard).unlink(node) };
            drop(guard);
            return Waited::TimedOut(reg.finish());
        }
    }
}

/// Unlinks a waiter's node if its park unwinds.
struct Registration<'a, S, P> {
    hub: &'static Hub,
    lock: &'a Lock<S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    node: *mut Node<P>,
    abandon: fn(&mut S, P) -> Option<P>,
}

impl<S, P> Registration<'_, S, P> {
    /// Releases the wait slot of a node that is no longer linked and
    /// returns its payload.
    fn finish(self) -> Option<P> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the node is unlinked (notified, or unlinked by our
        // caller), so it is ours alone.
        let node = unsafe { &*this.node };
        this.hub.cancel_wait(node.key, node.generation);
        // SAFETY: as above.
        unsafe { (*node.payload.get()).take() }
    }
}

impl<S, P> Drop for Registration<'_, S, P> {
    fn drop(&mut self) {
        let mut guard = self.lock.lock();
        // SAFETY: the node is live (it is in the frame this guard guards);
        // under the lock the mark is final, and an unmarked node is still
        // linked.
        let notified = unsafe { (*self.node).notified.load(Ordering::Acquire) };
        if !notified {
            // SAFETY: see above.
            unsafe { (self.list)(&mut guard).unlink(self.node) };
        }
        // SAFETY: the node is unlinked now, so it is ours alone.
        let node = unsafe { &*self.node };
        // SAFETY: as above.
        let leftover = match unsafe { (*node.payload.get()).take() } {
            Some(p) if notified => (self.abandon)(&mut guard, p),
            other => other,
        };
        drop(guard);
        self.hub.cancel_wait(node.key, node.generation);
        drop(leftover);
    }
}

/// An `abandon` hook for lists whose payloads need no passing on: drops
/// them (after the lock is released).
pub(crate) fn drop_payload<S, P>(_: &mut S, p: P) -> Option<P> {
    Some(p)
}
