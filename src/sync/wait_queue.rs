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
//! must wait it links a node naming its task and its hub (and, for a bounded
//! queue's putter, holding its item), releases the lock and parks
//! ([`wait`]). A notifier, holding the same lock, unlinks the first node,
//! optionally deposits a payload in it (an item, a permit) and marks it:
//!
//! - on the waiter's own hub, the mark is *notified* and the notifier makes
//!   the waiter's task ready directly: no reference counts, no remote
//!   queue, and (the waiter being parked on this very thread) no race;
//! - from any other thread, the mark is *pending* and the notifier sends the
//!   waiter's hub a message that, run by that hub's loop, turns the mark to
//!   *notified* and makes the task ready. A waiter never leaves its wait
//!   while its node is pending (not even when unwinding), so the message
//!   always finds the node alive.
//!
//! Marks are stored with release ordering, after the payload. Woken for
//! whatever reason (its wake-up, a spurious unpark, its timer), the waiter
//! reads its mark with an acquire load: notified means done, with no second
//! trip through the lock; pending means "parked until the message comes";
//! a clear mark means a spurious wake-up, and only a timeout then makes it
//! take the lock to unlink itself (re-reading the mark under the lock, so a
//! notification that raced the timeout is taken, not lost).
//!
//! However a wait ends (returned, timed out, killed, unwound by an expired
//! `with_timeout`), a drop guard leaves the list cleanly. A waiter that dies
//! holding a payload meant for it gives it to the primitive's `abandon`
//! hook, which passes it on (to the next waiter, or back into the
//! primitive), so no permit or item is ever lost with a dying waiter.
//!
//! # Memory
//!
//! A node lives in its waiter's [`wait`] frame: a parked greenlet's stack
//! does not move, so the list's raw links stay valid, and a wait allocates
//! nothing (only a cross-thread wake-up allocates its message). The frame
//! cannot be left while the node is linked or pending. The node names its
//! waiter's hub by a raw pointer to that hub's remote queue; a cross-thread
//! notifier turns it into an owned `Arc` under the lock, while the node is
//! still linked. Both stay valid while a node is linked: its waiter counts
//! as a sync wait of its hub, so the hub is alive, or was torn down with the
//! waiter leaked in it, and then kept its stacks mapped and its remote queue
//! alive for good (see `Hub`'s `Drop`).

use std::cell::{Cell, UnsafeCell};
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering, fence};
use std::time::Instant;

use super::lock::{Lock, LockGuard};
use crate::hub::deadlock::{WaitsFor, WaitsForGuard};
use crate::hub::remote::{Remote, RemoteMsg};
use crate::hub::sync_wait::SyncWaitLink;
use crate::hub::task::{Header, TaskRef, Wake};
use crate::hub::{self, Hub, SyncKind, WaitReason};

/// The proof behind "would block forever" for one wait: asked by the hub,
/// on the waiter's thread, while the waiter is parked and the hub has
/// nothing else to do; `true` only if nothing but the waiter's own handle
/// (or tasks of its own hub) could ever notify it. Closures implement it,
/// and so do primitives whose select arms carry the proof.
pub(crate) trait Sole {
    fn sole(&self) -> bool;
}

impl<F: Fn() -> bool> Sole for F {
    fn sole(&self) -> bool {
        self()
    }
}

/// What a [`wait`] is for: the primitive's kind (for dumps), whether only
/// the waiter's own handle can ever notify it (for "would block forever"),
/// and whom it waits for (for deadlock cycles).
pub(crate) struct WaitSite<'a> {
    pub(crate) kind: SyncKind,
    /// Asked by the hub, on the waiter's thread, while the waiter is
    /// parked and the hub has nothing else to do: `true` only if nothing
    /// but this waiter's own handle could ever notify it (the primitive's
    /// handle count is one; a lock's holder is a task of this hub). `None`:
    /// no such proof exists for this primitive.
    pub(crate) sole: Option<&'a dyn Sole>,
    /// Whom the waiter waits for, if a wait-for cycle can go through it.
    pub(crate) waits_for: WaitsFor,
}

impl WaitSite<'_> {
    /// A wait with no proof of anything but its kind.
    pub(crate) const fn of(kind: SyncKind) -> WaitSite<'static> {
        WaitSite {
            kind,
            sole: None,
            waits_for: WaitsFor::Nothing,
        }
    }
}

impl<'a> WaitSite<'a> {
    /// A wait on a primitive whose only handle may be the waiter's: `sole`
    /// says whether it is.
    pub(crate) fn sole(kind: SyncKind, sole: &'a dyn Sole) -> WaitSite<'a> {
        WaitSite {
            kind,
            sole: Some(sole),
            waits_for: WaitsFor::Nothing,
        }
    }
}

/// Linked, waiting.
const WAITING: u8 = 0;
/// Unlinked by a notifier on another thread; its wake-up message is on the
/// way to the waiter's hub.
const PENDING: u8 = 1;
/// Unlinked and woken: the node is its waiter's alone.
const NOTIFIED: u8 = 2;

/// The part of a node a cross-thread wake-up message touches (not generic,
/// so the message needs no `P: 'static`).
#[repr(C)]
struct Waiter {
    mark: AtomicU8,
    /// The waiting task. Alive while the node is linked or pending: its
    /// task is parked in this wait, and a parked task keeps itself alive.
    task: *const Header,
}

/// One waiter.
///
/// # Invariant
/// While linked, every field but `waiter.mark` is read and written only
/// under the lock of the list that links it. The notifier that unlinks it
/// stores the mark last; from a `NOTIFIED` mark on only the waiter touches
/// the node, and while it is `PENDING` only the wake-up message (on the
/// waiter's thread) and the waiter.
#[repr(C)]
struct Node<P> {
    waiter: Waiter,
    prev: *mut Node<P>,
    next: *mut Node<P>,
    payload: UnsafeCell<Option<P>>,
    /// The waiter's hub remote queue (see the module's `# Memory`).
    remote: *const Remote,
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
    #[inline]
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
    #[inline]
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
/// the payload its node starts with, and an optional deadline. Links the
/// running task, releases the lock, and parks until notified or timed out,
/// re-checking its node after every wake-up. A deadline that has already
/// passed returns at once, without registering.
///
/// If the park unwinds (kill, expired `with_timeout`), a drop guard unlinks
/// the node; if it had already been notified with a payload, `abandon`
/// receives that payload under the lock to pass it on, and whatever it
/// returns is dropped after the lock is released.
///
/// Always inlined, and so are the primitives' `*_until` methods that call
/// it: every function between the user's code and the switch is one more
/// return after the greenlet is resumed, and each of them mispredicts (the
/// CPU's return-stack buffer holds the other stack's addresses). Measured
/// on the `Queue` ping-pong (`benches/compare/queue`, fat profile, CPU
/// time, the three builds alternated alone on the development VM): 62-63
/// ns per message with `get_until` and `wait` out of line, 53 with
/// `get_until` inlined, 34-35 with both.
#[inline(always)]
pub(crate) fn wait<S, P>(
    lock: &Lock<S>,
    mut guard: LockGuard<'_, S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    payload: Option<P>,
    mut deadline: Option<Instant>,
    abandon: fn(&mut S, P) -> Option<P>,
    site: WaitSite<'_>,
) -> Waited<P> {
    if let Some(d) = deadline
        && Instant::now() >= d
    {
        drop(guard);
        return Waited::TimedOut(payload);
    }
    let hub = Hub::current();
    let reason = WaitReason::Sync {
        kind: site.kind,
        id: lock.id(),
    };
    let mut node = Node {
        waiter: Waiter {
            mark: AtomicU8::new(WAITING),
            task: current_task_ptr(hub),
        },
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
        payload: UnsafeCell::new(payload),
        remote: Arc::as_ptr(hub.remote()),
    };
    // From here on the node is reached only through this pointer (and the
    // list's copies of it), and it does not move: `node` is never named
    // again, and `reg` unlinks it before this frame can be left.
    let node: *mut Node<P> = &mut node;
    // SAFETY: a fresh node; we hold the lock.
    unsafe { list(&mut guard).link(node) };
    let reg = Registration {
        link: SyncWaitLink::new(Registration::<S, P>::cancel, Registration::<S, P>::closed),
        hub,
        lock,
        list,
        node,
        abandon,
        done: Cell::new(false),
        // By reference: copying the two-word `Option<&dyn Sole>` out of the
        // caller's frame cost a store-forwarding stall on every wait.
        sole: &site.sole,
        reason,
    };
    // SAFETY: `reg` stays in this frame and is never moved (only borrowed)
    // until it drops, and both `finish` and `Drop` unlink it first.
    unsafe { hub.begin_sync_wait(&reg.link) };
    drop(guard);
    let _waits_for = track_waits_for(hub, site.waits_for);
    loop {
        let wake = match deadline {
            None => hub::park(reason),
            Some(_) => park_timed(deadline, reason),
        };
        match reg.mark() {
            NOTIFIED => return Waited::Notified(reg.finish()),
            // Notified from another thread: the wake-up is on its way, and
            // the deadline no longer matters.
            PENDING => deadline = None,
            _ if wake == Wake::TimedOut => {
                let mut guard = lock.lock();
                // Under the lock a `WAITING` mark is final (only lock
                // holders change it).
                match reg.mark() {
                    WAITING => {
                        // SAFETY: still linked, and we hold the lock.
                        unsafe { list(&mut guard).unlink(node) };
                        drop(guard);
                        return Waited::TimedOut(reg.finish());
                    }
                    NOTIFIED => {
                        drop(guard);
                        return Waited::Notified(reg.finish());
                    }
                    _ => deadline = None,
                }
            }
            _ => {} // spurious
        }
    }
}

/// A timed park, kept out of line so the untimed path stays short.
#[inline(never)]
fn park_timed(deadline: Option<Instant>, reason: WaitReason) -> Wake {
    hub::park_until(deadline, reason)
}

/// Records whom the running task waits for (only for waits that can take
/// part in a cycle: the common case stores nothing).
#[inline]
fn track_waits_for(hub: &Hub, w: WaitsFor) -> Option<WaitsForGuard<'static>> {
    match w {
        WaitsFor::Nothing => None,
        w => {
            let me = current_task_ptr(hub);
            // SAFETY: the running task's header lives while it runs this
            // wait, which the guard does not outlive.
            let me: &'static Header = unsafe { &*me };
            me.waits_for.set(w);
            Some(WaitsForGuard(me))
        }
    }
}

/// The running task's header (the root's in root context).
#[inline]
fn current_task_ptr(hub: &Hub) -> *const Header {
    let cur = hub::current_header();
    if cur.is_null() {
        hub.current_task().as_ptr()
    } else {
        cur
    }
}

/// Unlinks a waiter's node if its park unwinds.
///
/// `#[repr(C)]` with the hub link first: the hub cancels a wait it finds
/// linked at thread exit through that link's address (see
/// [`crate::hub::sync_wait`]).
#[repr(C)]
struct Registration<'a, S, P> {
    link: SyncWaitLink,
    hub: &'static Hub,
    lock: &'a Lock<S>,
    list: fn(&mut S) -> &mut WaitList<P>,
    node: *mut Node<P>,
    abandon: fn(&mut S, P) -> Option<P>,
    /// `finish` or `cancel` ended the wait: `Drop` has nothing to do.
    done: Cell<bool>,
    /// See [`WaitSite::sole`].
    sole: &'a Option<&'a dyn Sole>,
    reason: WaitReason,
}

impl<S, P> Registration<'_, S, P> {
    /// The node's mark.
    #[inline]
    fn mark(&self) -> u8 {
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
    fn finish(&self) -> Option<P> {
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
    unsafe fn closed(link: *const SyncWaitLink) -> bool {
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
    /// to a dead waiter. A `PENDING` hand-off counts as made: its wake-up
    /// message went (or will go) to the closed remote queue, which drops it
    /// unrun. The waiter's own leftover payload (a putter's item) stays
    /// with its leaked stack: no user destructor runs at thread teardown.
    ///
    /// # Safety
    /// `link` is the `link` field of a live `Registration<S, P>`, unlinked
    /// from its hub, whose task never runs again.
    unsafe fn cancel(link: *const SyncWaitLink) {
        // SAFETY: `link` is the first field of a `#[repr(C)]`
        // `Registration<S, P>` (the caller's contract), which stays in place
        // because its frame is never resumed.
        let this = unsafe { &*link.cast::<Registration<'_, S, P>>() };
        let mut guard = this.lock.lock();
        let mark = this.mark();
        if mark == WAITING {
            // SAFETY: waiting means linked, and we hold the lock.
            unsafe { (this.list)(&mut guard).unlink(this.node) };
        }
        // SAFETY: unlinked; a pending wake-up will never run (see above),
        // and the lock keeps notifiers out.
        let payload = unsafe { this.take_payload() };
        let leftover = match payload {
            Some(p) if mark != WAITING => (this.abandon)(&mut guard, p),
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
    let node = Box::into_raw(Box::new(Node {
        waiter: Waiter {
            mark: AtomicU8::new(WAITING),
            task: current_task_ptr(hub),
        },
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
        payload: UnsafeCell::new(payload),
        remote: Arc::as_ptr(hub.remote()),
    }));
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
