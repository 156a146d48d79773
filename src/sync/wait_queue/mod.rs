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
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Instant;

use super::lock::{Lock, LockGuard};
use crate::hub::deadlock::{WaitsFor, WaitsForGuard};
use crate::hub::remote::Remote;
use crate::hub::sync_wait::SyncWaitLink;
use crate::hub::task::{Header, Wake};
use crate::hub::{self, Hub, SyncKind, WaitReason};

mod list;
mod registration;

pub(crate) use list::WaitList;
use registration::Registration;
pub(crate) use registration::{Armed, arm, drop_payload, lock_gone};

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

impl<P> Node<P> {
    /// A node for the running task (the root in root context) of `hub`,
    /// waiting, in no list, holding `payload`.
    #[inline(always)]
    fn for_current(hub: &Hub, payload: Option<P>) -> Node<P> {
        Node {
            waiter: Waiter {
                mark: AtomicU8::new(WAITING),
                task: current_task_ptr(hub),
            },
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            payload: UnsafeCell::new(payload),
            remote: Arc::as_ptr(hub.remote()),
        }
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
    let mut node = Node::for_current(hub, payload);
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
