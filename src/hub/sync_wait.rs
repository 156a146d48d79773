//! The hub's list of cross-thread waits: tasks of this hub parked in a sync
//! primitive's waiter list (`crate::sync`), which other threads may notify.
//!
//! Such a wait lives in a node on the waiter's stack, linked into a primitive
//! that outlives the hub. When the thread exits with the task still parked,
//! the task is never resumed (see `Hub::drop`), so its node would stay linked
//! for good: a later `put` would hand its item to the dead node, and a
//! released `Mutex` would be handed to a dead owner. The hub therefore keeps
//! every such wait in an intrusive list and, at teardown, cancels each one:
//! a wait still queued is unlinked; a hand-off already made to it (an item, a
//! permit, the lock) is passed on to the next waiter or given back, exactly
//! as when a waiter dies by unwinding.

use std::cell::Cell;
use std::ptr;

/// One cross-thread wait, linked into its hub's [`SyncWaits`].
///
/// # Invariant
/// While linked, the link does not move and stays valid: it is the first
/// field of a `#[repr(C)]` registration in the waiting task's frame, and
/// that frame unlinks it before it is left (or the hub cancels it and the
/// frame is never resumed). `cancel` may be called with the link's address
/// once, after it was unlinked.
pub(crate) struct SyncWaitLink {
    prev: Cell<*const SyncWaitLink>,
    next: Cell<*const SyncWaitLink>,
    cancel: unsafe fn(*const SyncWaitLink),
}

impl SyncWaitLink {
    /// An unlinked link whose wait is cancelled by `cancel`.
    pub(crate) const fn new(cancel: unsafe fn(*const SyncWaitLink)) -> SyncWaitLink {
        SyncWaitLink {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            cancel,
        }
    }
}

/// The waits of one hub (see the module docs).
pub(crate) struct SyncWaits {
    head: Cell<*const SyncWaitLink>,
    count: Cell<usize>,
}

impl SyncWaits {
    pub(crate) const fn new() -> SyncWaits {
        SyncWaits {
            head: Cell::new(ptr::null()),
            count: Cell::new(0),
        }
    }

    /// How many waits are linked.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.count.get()
    }

    /// Links `link`.
    ///
    /// # Safety
    /// `link` is unlinked, and keeps the invariant of [`SyncWaitLink`]
    /// until [`SyncWaits::unlink`] is called with it.
    #[inline]
    pub(crate) unsafe fn link(&self, link: &SyncWaitLink) {
        let head = self.head.get();
        link.prev.set(ptr::null());
        link.next.set(head);
        if !head.is_null() {
            // SAFETY: linked links are valid (the invariant).
            unsafe { (*head).prev.set(link) };
        }
        self.head.set(link);
        self.count.set(self.count.get() + 1);
    }

    /// Unlinks `link`, which [`SyncWaits::link`] linked.
    #[inline]
    pub(crate) fn unlink(&self, link: &SyncWaitLink) {
        let (prev, next) = (link.prev.get(), link.next.get());
        if prev.is_null() {
            self.head.set(next);
        } else {
            // SAFETY: `link`'s neighbours are linked, so valid.
            unsafe { (*prev).next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        link.prev.set(ptr::null());
        link.next.set(ptr::null());
        self.count.set(self.count.get() - 1);
    }

    /// Hub teardown: unlinks and cancels every wait. The caller guarantees
    /// that none of the waiting tasks runs again.
    pub(crate) fn cancel_all(&self) {
        loop {
            let head = self.head.get();
            if head.is_null() {
                return;
            }
            // SAFETY: a linked link is valid (the invariant).
            let link = unsafe { &*head };
            self.unlink(link);
            // SAFETY: unlinked just now, cancelled once: its task never
            // runs again, so nothing else touches the registration.
            unsafe { (link.cancel)(head) };
        }
    }
}
