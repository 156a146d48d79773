//! The waiter list: [`WaitList`], linked through the nodes its waiters
//! own, and the notifying half of the protocol (unlink, mark, wake on this
//! hub or through the waiter's own; see [the module docs](super)).

use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{NOTIFIED, Node, PENDING, Waiter};
use crate::hub::Hub;
use crate::hub::remote::{Remote, RemoteMsg};
use crate::hub::task::{TaskRef, Wake};

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
    /// See [`WaitList::passing_on_withdrawn`].
    pass_on_withdrawn: bool,
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
            pass_on_withdrawn: false,
        }
    }

    /// An empty list whose waiters, when their hub cancels a wait still
    /// queued (the thread exits with it parked), give their own payload to
    /// the primitive's `abandon` hook too, as a notified one does: for a
    /// primitive where a queued waiter can keep those behind it out (an
    /// `RwLock` writer), so that leaving lets them in. Elsewhere a queued
    /// waiter's payload is its own (a putter's item) and stays with it.
    pub(crate) const fn passing_on_withdrawn() -> WaitList<P> {
        WaitList {
            pass_on_withdrawn: true,
            ..WaitList::new()
        }
    }

    /// Whether this list was made by
    /// [`passing_on_withdrawn`](WaitList::passing_on_withdrawn).
    pub(super) fn passes_on_withdrawn(&self) -> bool {
        self.pass_on_withdrawn
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
    #[inline]
    pub(super) unsafe fn link(&mut self, node: *mut Node<P>) {
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
    #[inline]
    pub(super) unsafe fn unlink(&mut self, node: *mut Node<P>) {
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

    /// Unlinks a linked waiter, marks it and wakes it (see the module docs).
    #[inline]
    pub(crate) fn notify(&mut self, key: WaitKey<P>) {
        self.notify_as(key, false);
    }

    /// [`notify`](WaitList::notify); with `hand_off`, a waiter on this
    /// thread runs next (see `Hub::unpark_next`).
    #[inline]
    fn notify_as(&mut self, key: WaitKey<P>, hand_off: bool) {
        let node = key.0.as_ptr();
        // SAFETY: `key` names a linked node and `&mut self` means the caller
        // holds the lock: by `Node`'s invariant it is ours until its mark is
        // stored.
        unsafe {
            self.unlink(node);
            let remote = (*node).remote;
            match Hub::try_current() {
                Some(hub) if ptr::eq(Arc::as_ptr(hub.remote()), remote) => {
                    // The waiter is parked on this thread: it cannot run
                    // before we return to the loop, so its task is alive.
                    (*node).waiter.mark.store(NOTIFIED, Ordering::Release);
                    let task = TaskRef::from_header((*node).waiter.task);
                    if hand_off {
                        hub.unpark_next(&task, Wake::Ready);
                    } else {
                        hub.unpark(&task, Wake::Ready);
                    }
                }
                _ => {
                    // Own the queue first: the node names it only while it
                    // is linked. The waiter cannot leave while pending.
                    Arc::increment_strong_count(remote);
                    let remote = Arc::from_raw(remote);
                    (*node).waiter.mark.store(PENDING, Ordering::Release);
                    wake_remote(&remote, &(*node).waiter);
                }
            }
        }
    }

    /// Hands `payload` to the first waiter and wakes it; gives the payload
    /// back when nobody waits.
    #[inline]
    pub(crate) fn notify_first_with(&mut self, payload: P) -> Result<(), P> {
        self.give_first(payload, false)
    }

    /// [`notify_first_with`](WaitList::notify_first_with) for the running
    /// task's own hand-off (a put or send that finds a parked getter): a
    /// waiter on this thread runs next, while the item is in cache (see
    /// `Hub::unpark_next`). Not for loops that wake many: each would
    /// displace the last from the run-next slot and reverse their order.
    #[inline]
    pub(crate) fn hand_off_first(&mut self, payload: P) -> Result<(), P> {
        self.give_first(payload, true)
    }

    #[inline]
    fn give_first(&mut self, payload: P, hand_off: bool) -> Result<(), P> {
        match self.first() {
            Some(k) => {
                *self.payload_mut(k) = Some(payload);
                self.notify_as(k, hand_off);
                Ok(())
            }
            None => Err(payload),
        }
    }

    /// Whether `f` holds for the payload of every linked waiter that has
    /// one (walks the list: for cold checks only).
    pub(crate) fn all(&mut self, f: impl Fn(&P) -> bool) -> bool {
        let mut p = self.head;
        while !p.is_null() {
            // SAFETY: `p` is a linked node and `&mut self` means the caller
            // holds the lock: by `Node`'s invariant its fields are ours to
            // read until the lock is released.
            let (payload, next) = unsafe { (&*(*p).payload.get(), (*p).next) };
            if let Some(v) = payload
                && !f(v)
            {
                return false;
            }
            p = next;
        }
        true
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

/// Sends the message that completes a cross-thread notification of
/// `waiter`, whose mark is `PENDING`, on its own hub.
#[cold]
fn wake_remote(remote: &Remote, waiter: *const Waiter) {
    let addr = waiter as usize;
    remote.send(RemoteMsg::Run(Box::new(move || {
        let waiter = addr as *const Waiter;
        // SAFETY: this runs in the loop of the waiter's hub, on its thread.
        // A pending waiter does not leave its wait (its frame, which holds
        // the node, stays put) until the mark turns `NOTIFIED`, and while
        // the loop runs this closure it cannot run at all.
        unsafe {
            let task = TaskRef::from_header((*waiter).task);
            (*waiter).mark.store(NOTIFIED, Ordering::Release);
            Hub::current().unpark(&task, Wake::Ready);
        }
    })));
}
