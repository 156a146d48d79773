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
//!
//! One primitive may not outlive the hub: a thread-local one that a
//! greenlet waits on from inside `LocalKey::with`, destroyed at thread exit
//! before the hub. Its drop has the hub forget the waits on it
//! ([`SyncWaits::forget_where`]) so that the teardown does not reach into
//! freed memory.
//!
//! Since the hub freezes at thread exit before any thread-local that a
//! parked greenlet may borrow is destroyed (see `super::exit`), its waits
//! are normally cancelled while every primitive is alive; `forget_where`
//! covers the targets without that freeze.

use std::cell::Cell;
use std::ptr;

/// One cross-thread wait, linked into its hub's [`SyncWaits`].
///
/// # Invariant
/// While linked, the link does not move and stays valid: it is the first
/// field of a `#[repr(C)]` registration in the waiting task's frame, and
/// that frame unlinks it before it is left (or the hub cancels or forgets
/// it and the frame is never resumed). `cancel` may be called with the link's address
/// once, after it was unlinked.
pub(crate) struct SyncWaitLink {
    prev: Cell<*const SyncWaitLink>,
    next: Cell<*const SyncWaitLink>,
    cancel: unsafe fn(*const SyncWaitLink),
    /// Whether the wait provably cannot be ended by anyone but tasks of
    /// this hub (see `crate::sync::wait_queue::WaitSite::sole`).
    closed: unsafe fn(*const SyncWaitLink) -> bool,
}

impl SyncWaitLink {
    /// An unlinked link whose wait is cancelled by `cancel`.
    pub(crate) const fn new(
        cancel: unsafe fn(*const SyncWaitLink),
        closed: unsafe fn(*const SyncWaitLink) -> bool,
    ) -> SyncWaitLink {
        SyncWaitLink {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            cancel,
            closed,
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

    /// Whether some wait may still be ended from another thread (it is not
    /// provably closed). Asked on the hub's thread while its tasks are
    /// parked.
    pub(crate) fn any_open(&self) -> bool {
        if self.count.get() == 0 {
            return false;
        }
        let mut p = self.head.get();
        while !p.is_null() {
            // SAFETY: a linked link is valid (the invariant), and its task
            // is parked (the hub is between runs).
            let link = unsafe { &*p };
            // SAFETY: as above; the registration's contract for `closed`.
            if !unsafe { (link.closed)(p) } {
                return true;
            }
            p = link.next.get();
        }
        false
    }

    /// Unlinks, without cancelling them, the waits for which `on` holds:
    /// their primitive is being dropped, which only happens to a wait whose
    /// task is never resumed (it borrows the primitive), so nothing is left
    /// to cancel and the teardown must not reach into the freed primitive.
    #[inline]
    pub(crate) fn forget_where(&self, on: impl Fn(*const SyncWaitLink) -> bool) {
        if self.count.get() == 0 {
            return;
        }
        self.forget_where_slow(&on);
    }

    #[cold]
    fn forget_where_slow(&self, on: &dyn Fn(*const SyncWaitLink) -> bool) {
        let mut p = self.head.get();
        while !p.is_null() {
            // SAFETY: a linked link is valid (the invariant).
            let link = unsafe { &*p };
            let next = link.next.get();
            if on(p) {
                self.unlink(link);
            }
            p = next;
        }
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
