//! A waiter's registration: [`Registration`], which leaves the list
//! cleanly however a wait ends (and cancels it at hub teardown), and
//! [`Armed`], a registration made without parking, for `select`.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{Ordering, fence};

use super::{NOTIFIED, Node, PENDING, Sole, WAITING, WaitList};
use crate::hub::sync_wait::SyncWaitLink;
use crate::hub::{Hub, WaitReason};
use crate::sync::lock::{Lock, LockGuard};

#[cfg(doc)]
use super::{WaitSite, wait};

/// Unlinks a waiter's node if its park unwinds.
///
/// `#[repr(C)]` with the hub link first: the hub cancels a wait it finds
/// linked at thread exit through that link's address (see
/// [`crate::hub::sync_wait`]).
#[repr(C)]
pub(super) struct Registration<'a, S, P> {
    pub(super) link: SyncWaitLink,
    pub(super) hub: &'static Hub,
    pub(super) lock: &'a Lock<S>,
    pub(super) list: fn(&mut S) -> &mut WaitList<P>,
    pub(super) node: *mut Node<P>,
    pub(super) abandon: fn(&mut S, P) -> Option<P>,
    /// `finish` or `cancel` ended the wait: `Drop` has nothing to do.
    pub(super) done: Cell<bool>,
    /// See [`WaitSite::sole`].
    pub(super) sole: &'a Option<&'a dyn Sole>,
    pub(super) reason: WaitReason,
}

/// The first fields of every [`Registration`], whatever its `S` and `P`:
/// what [`lock_gone`] reads through a hub's list of waits.
#[repr(C)]
struct RegistrationHead {
    link: SyncWaitLink,
    hub: &'static Hub,
    lock: *const (),
}

// The prefix is the same for every `S` and `P` (`#[repr(C)]`, thin
// references); checked for one of them.
const _: () = assert!(
    std::mem::offset_of!(Registration<'static, (), ()>, lock)
        == std::mem::offset_of!(RegistrationHead, lock)
);

/// The lock at `lock` is being dropped: this thread's hub forgets (unlinks
/// without cancelling) its waits registered on it, whose tasks can never
/// legitimately run again (see `LockGone` in `crate::sync::lock`). Waits
/// of other threads' hubs cannot be reached from here.
#[inline]
pub(crate) fn lock_gone(lock: *const ()) {
    if let Some(hub) = Hub::try_current() {
        hub.forget_sync_waits(|link| {
            // SAFETY: every link in a hub's list is the first field of a
            // live `#[repr(C)]` `Registration` (the only kind linked, see
            // `wait` and `arm`), whose prefix is `RegistrationHead`.
            let reg = unsafe { &*link.cast::<RegistrationHead>() };
            ptr::eq(reg.lock, lock)
        });
    }
}

impl<S, P> Registration<'_, S, P> {
    /// The node's mark.
    #[inline]
    pub(super) fn mark(&self) -> u8 {
        // SAFETY: the node lives in the frame this guard guards, and the
        // mark is atomic.
        unsafe { (*self.node).waiter.mark.load(Ordering::Acquire) }
    }

    /// Takes the payload of a node that is no longer linked.
    ///
    /// # Safety
    /// The node is unlinked and not pending: nobody else touches it.
    #[inline]
    unsafe fn take_payload(&self) -> Option<P> {
        // SAFETY: per the contract, nobody else touches the payload.
        unsafe { (*(*self.node).payload.get()).take() }
    }

    /// Ends the wait of a node that is no longer linked nor pending and
    /// returns its payload.
    #[inline]
    pub(super) fn finish(&self) -> Option<P> {
        self.done.set(true);
        self.hub.end_sync_wait(&self.link);
        // SAFETY: our callers saw the node notified, or unlinked it.
        unsafe { self.take_payload() }
    }

    /// Whether nothing but the waiter's own handle can ever notify it, and
    /// no notification is on its way (see [`WaitSite::sole`]).
    ///
    /// # Safety
    /// `link` is the `link` field of a live, linked `Registration<S, P>`
    /// whose task is parked, asked on its hub's thread.
    pub(super) unsafe fn closed(link: *const SyncWaitLink) -> bool {
        // SAFETY: per the contract, as in `cancel`.
        let this = unsafe { &*link.cast::<Registration<'_, S, P>>() };
        let Some(sole) = *this.sole else {
            return false;
        };
        if !sole.sole() {
            return false;
        }
        // A notifier on another thread marks the node before it drops its
        // handle: having seen the handle gone, see its mark too.
        fence(Ordering::Acquire);
        this.mark() == WAITING
    }

    /// Hub teardown (the thread exits while this wait is parked; the task
    /// never runs again): unlinks the node if it still waits, and passes on
    /// a hand-off already made to it, so no item, permit or lock is lost
    /// to a dead waiter. A waiter still queued on a list made by
    /// [`WaitList::passing_on_withdrawn`] passes its own payload on too, so
    /// the waiters it kept out are let in. A `PENDING` hand-off counts as made: its wake-up
    /// message went (or will go) to the closed remote queue, which drops it
    /// unrun. The waiter's own leftover payload (a putter's item) stays
    /// with its leaked stack: no user destructor runs at thread teardown.
    ///
    /// # Safety
    /// `link` is the `link` field of a live `Registration<S, P>`, unlinked
    /// from its hub, whose task never runs again.
    pub(super) unsafe fn cancel(link: *const SyncWaitLink) {
        // SAFETY: `link` is the first field of a `#[repr(C)]`
        // `Registration<S, P>` (the caller's contract), which stays in place
        // because its frame is never resumed.
        let this = unsafe { &*link.cast::<Registration<'_, S, P>>() };
        let mut guard = this.lock.lock();
        let mark = this.mark();
        let mut withdrawn = false;
        if mark == WAITING {
            let list = (this.list)(&mut guard);
            // SAFETY: waiting means linked, and we hold the lock.
            unsafe { list.unlink(this.node) };
            withdrawn = list.passes_on_withdrawn();
        }
        // SAFETY: unlinked; a pending wake-up will never run (see above),
        // and the lock keeps notifiers out.
        let payload = unsafe { this.take_payload() };
        let leftover = match payload {
            Some(p) if mark != WAITING || withdrawn => (this.abandon)(&mut guard, p),
            other => other,
        };
        drop(guard);
        std::mem::forget(leftover);
        this.done.set(true);
    }
}

impl<S, P> Drop for Registration<'_, S, P> {
    fn drop(&mut self) {
        if self.done.get() {
            return;
        }
        let mut guard = self.lock.lock();
        // Under the lock a `WAITING` mark is final: only lock holders
        // change it.
        let mut mark = self.mark();
        if mark == WAITING {
            // SAFETY: waiting means linked, and we hold the lock.
            unsafe { (self.list)(&mut guard).unlink(self.node) };
        }
        if mark == PENDING {
            // The wake-up message still has to find this node: wait for it.
            // `park_raw` delivers no interrupts, so this cannot unwind.
            drop(guard);
            while mark == PENDING {
                self.hub.park_raw(self.reason);
                mark = self.mark();
            }
            guard = self.lock.lock();
        }
        // SAFETY: the node is unlinked now, and not pending.
        let payload = unsafe { self.take_payload() };
        let leftover = match payload {
            Some(p) if mark == NOTIFIED => (self.abandon)(&mut guard, p),
            other => other,
        };
        drop(guard);
        self.hub.end_sync_wait(&self.link);
        drop(leftover);
    }
}

/// An `abandon` hook for lists whose payloads need no passing on: drops
/// them (after the lock is released).
pub(crate) fn drop_payload<S, P>(_: &mut S, p: P) -> Option<P> {
    Some(p)
}

/// A waiter registered on a list without parking: one of several waits of
/// a task at once (`crate::select`). The task links one `Armed` per list,
/// parks once, and after every wake-up [`poll`](Armed::poll)s each: the
/// first notified one is taken, and dropping the others leaves their lists
/// exactly as a dying waiter does (a payload already handed to one goes
/// to its primitive's `abandon` hook, so nothing is lost).
///
/// The node and the registration live on the heap (the frame that armed
/// them moves the `Armed` around), so their addresses stay put while
/// linked.
pub(crate) struct Armed<'a, S, P> {
    /// Invariant: `reg.node` came from `Box::into_raw`, is freed only by
    /// `Drop`, after `reg` (which unlinks it and waits out a pending
    /// wake-up) is dropped.
    reg: std::mem::ManuallyDrop<Box<Registration<'a, S, P>>>,
    /// The arm's proof, which `reg.sole` refers to. Invariant: from
    /// `Box::into_raw`, freed only by `Drop`, after `reg`.
    sole: *mut Option<&'a dyn Sole>,
}

/// Links the running task on `list` (the caller holds the primitive's lock
/// in `guard` and found that it must wait) and releases the lock, without
/// parking. See [`Armed`]. `sole` is the arm's proof for "would block
/// forever", as for [`wait`]: the hub counts a task as stuck only when
/// every one of its waits is, so one provable arm of several proves
/// nothing by itself.
pub(crate) fn arm<'a, S, P>(
    lock: &'a Lock<S>,
    mut guard: LockGuard<'_, S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    payload: Option<P>,
    abandon: fn(&mut S, P) -> Option<P>,
    sole: Option<&'a dyn Sole>,
) -> Armed<'a, S, P> {
    let hub = Hub::current();
    let node = Box::into_raw(Box::new(Node::for_current(hub, payload)));
    // SAFETY: a fresh node on the heap; we hold the lock.
    unsafe { list(&mut guard).link(node) };
    // On the heap too: the registration refers to it, and `Armed` moves.
    let sole: *mut Option<&'a dyn Sole> = Box::into_raw(Box::new(sole));
    let reg = Box::new(Registration {
        link: SyncWaitLink::new(Registration::<S, P>::cancel, Registration::<S, P>::closed),
        hub,
        lock,
        list,
        node,
        abandon,
        done: Cell::new(false),
        // SAFETY: freed only by `Armed`'s drop, after the registration.
        sole: unsafe { &*sole },
        reason: WaitReason::Select,
    });
    // SAFETY: the registration is on the heap and never moves; `Armed`'s
    // drop (through the registration's `finish` or `Drop`) unlinks it.
    unsafe { hub.begin_sync_wait(&reg.link) };
    drop(guard);
    Armed {
        reg: std::mem::ManuallyDrop::new(reg),
        sole,
    }
}

impl<S, P> Armed<'_, S, P> {
    /// `Some(payload)` once a notifier picked this waiter (it is then out
    /// of the list, and the payload is the caller's); `None` while it
    /// waits, or while a cross-thread wake-up is on its way. Returns
    /// `Some` at most once.
    pub(crate) fn poll(&mut self) -> Option<Option<P>> {
        if self.reg.done.get() || self.reg.mark() != NOTIFIED {
            return None;
        }
        Some(self.reg.finish())
    }
}

impl<S, P> Drop for Armed<'_, S, P> {
    fn drop(&mut self) {
        let node = self.reg.node;
        // SAFETY: dropped once, here; the registration's drop unlinks the
        // node (or finds it done) and waits out a pending wake-up, so
        // nothing refers to the node afterwards, and it came from
        // `Box::into_raw` in `arm` (the invariant).
        unsafe {
            std::mem::ManuallyDrop::drop(&mut self.reg);
            drop(Box::from_raw(node));
            // SAFETY: from `Box::into_raw` in `arm`; the registration that
            // referred to it is gone (the invariant).
            drop(Box::from_raw(self.sole));
        }
    }
}
