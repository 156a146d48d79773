//! Wait-for cycles: a task that is about to wait for a lock holder or for
//! another task to finish follows the chain of who waits for whom among
//! the tasks of its own hub; if the chain comes back to it, the wait can
//! never end (only a holder releases a lock, only a task ends itself), and
//! the wait panics, naming the cycle.
//!
//! Only edges between tasks of one hub are followed: they all run on this
//! thread, so while the walk runs none of them moves, and an edge it sees
//! (a parked task's wait, the owner of a lock such a task holds) cannot
//! change under it. A chain that leaves the hub (a lock held on another
//! thread) proves nothing and ends the walk.

use std::fmt::Write as _;

use super::Hub;
use super::task::{Header, TaskRef};
use super::wait_reason::WaitReason;

/// Names a task of some thread without holding it: its thread, its slot in the
/// hub's task table and its id (checked on lookup, so a stale key finds
/// nothing). The root's slot is `u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    hub: usize,
    slot: u32,
    id: u64,
}

/// Reads the current owner of a lock-like object, without blocking (`None`
/// when it is free, or its state is busy right now).
///
/// # Safety
/// The pointer is the one stored with it in [`WaitsFor::Object`], valid
/// while the task that stored it is parked in that wait.
pub(crate) type OwnerOf = unsafe fn(*const ()) -> Option<TaskKey>;

/// Whom a parked task waits for (see [`Header::waits_for`]).
#[derive(Clone, Copy)]
pub(crate) enum WaitsFor {
    /// Nothing that can take part in a cycle.
    Nothing,
    /// A task to finish (join, kill), alive while the waiter waits.
    Task(*const Header),
    /// A lock held by a task (a `Mutex`).
    Object(*const (), OwnerOf),
}

impl TaskKey {
    /// The key of the running task, without creating a hub.
    #[inline]
    pub(crate) fn current() -> TaskKey {
        match Hub::try_current() {
            Some(hub) => hub.current_key(),
            None => TaskKey {
                hub: thread_tag(),
                slot: u32::MAX,
                id: 0,
            },
        }
    }
}

/// Names this thread in keys: the address of a thread-local, the same
/// before and after the thread's hub exists.
#[inline]
pub(crate) fn thread_tag() -> usize {
    thread_local! {
        static TAG: u8 = const { 0 };
    }
    TAG.with(|t| t as *const u8 as usize)
}

impl Hub {
    /// The key of the running task.
    pub(crate) fn current_key(&self) -> TaskKey {
        let cur = super::current_header();
        let hdr: &Header = if cur.is_null() {
            &self.root
        } else {
            // SAFETY: CURRENT points at the running task's header.
            unsafe { &*cur }
        };
        TaskKey {
            hub: thread_tag(),
            slot: if hdr.is_root() {
                u32::MAX
            } else {
                hdr.slot_index.get()
            },
            id: hdr.id,
        }
    }

    /// The task of this hub named by `key`, if it is still alive.
    pub(crate) fn task_ptr(&self, key: TaskKey) -> Option<*const Header> {
        // The hub is this thread's (`Hub` is not `Send`).
        if key.hub != thread_tag() {
            return None;
        }
        if key.slot == u32::MAX {
            return (key.id == 0).then(|| self.root.as_ptr());
        }
        self.tasks
            .borrow()
            .get(key.slot, key.id)
            .map(|t| t.as_ptr())
    }

    /// How reports name the task `key` (a task of this hub, or `fallback`).
    pub(crate) fn name_of(&self, key: TaskKey) -> String {
        match self.task_ptr(key) {
            // SAFETY: `task_of` found it alive in this hub.
            Some(p) => unsafe { (*p).display_name() },
            None => "a greenlet of another thread".to_string(),
        }
    }

    /// Whether `key` names a live task of this hub.
    pub(crate) fn owns(&self, key: TaskKey) -> bool {
        self.task_ptr(key).is_some()
    }

    /// Records that `me` (the running task) is about to wait for `target` to
    /// finish, and (if `check`: an untimed wait) panics if that closes a
    /// wait-for cycle. The record is cleared when the returned guard drops.
    pub(crate) fn wait_for_task<'a>(
        &self,
        me: &'a Header,
        target: &TaskRef,
        reason: WaitReason,
        check: bool,
    ) -> WaitsForGuard<'a> {
        me.set_reason(reason);
        me.waits_for.set(WaitsFor::Task(target.as_ptr()));
        let guard = WaitsForGuard(me);
        if check {
            self.check_cycle(target.as_ptr());
        }
        guard
    }

    /// Panics if the running task, about to wait for `first` (a task of
    /// this hub that holds what it wants, or that it joins), would close a
    /// wait-for cycle. The caller has set its own `reason` and `waits_for`.
    pub(crate) fn check_cycle(&self, first: *const Header) {
        // SAFETY: the caller holds `first` alive.
        if unsafe { (*first).state.get() } != super::task::State::Parked {
            return; // the common case: no walk, no allocation
        }
        let me = self.current_task();
        if me.timeout_depth.get() > 0 {
            return; // a `with_timeout` scope ends our wait anyway
        }
        let mut chain: Vec<*const Header> = vec![me.as_ptr()];
        let mut cur = first;
        while chain.len() < 10_000 {
            if cur == me.as_ptr() {
                report_cycle(&chain);
            }
            if chain.contains(&cur) {
                return; // a cycle that does not involve us
            }
            chain.push(cur);
            // SAFETY: every task in the chain is alive: `first` is held by
            // the caller; each next one is the live target of a parked
            // task's join (which holds it) or was found in the table.
            let hdr = unsafe { &*cur };
            if hdr.state.get() != super::task::State::Parked
                || hdr.timed.get()
                || hdr.timeout_depth.get() > 0
            {
                return; // it runs, or its wait ends by itself
            }
            cur = match hdr.waits_for.get() {
                WaitsFor::Nothing => return,
                WaitsFor::Task(t) => t,
                WaitsFor::Object(obj, owner) => {
                    // SAFETY: stored by the parked task with this function;
                    // the object lives while it waits on it.
                    let key = unsafe { owner(obj) };
                    match key.and_then(|k| self.task_ptr(k)) {
                        Some(t) => t,
                        None => return,
                    }
                }
            };
        }
    }
}

/// Whether the running task is inside a `with_timeout` scope (never
/// creates a hub).
pub(crate) fn in_timeout_scope() -> bool {
    Hub::try_current().is_some_and(|h| h.current_task().timeout_depth.get() > 0)
}

/// Clears a task's [`WaitsFor`] when its wait ends (also by unwinding).
pub(crate) struct WaitsForGuard<'a>(pub(crate) &'a Header);

impl Drop for WaitsForGuard<'_> {
    fn drop(&mut self) {
        self.0.waits_for.set(WaitsFor::Nothing);
    }
}

/// The reason a join of `task` records: a kill waits for a task marked
/// killed.
pub(crate) fn join_reason(task: &Header) -> WaitReason {
    if task.kill.get() {
        WaitReason::Kill { target: task.id }
    } else {
        WaitReason::Join { target: task.id }
    }
}

/// Panics with the cycle `chain` (each task waits for the next, the last
/// for the first).
#[cold]
fn report_cycle(chain: &[*const Header]) -> ! {
    let mut msg = String::from("deadlock: ");
    for (i, &t) in chain.iter().enumerate() {
        let next = chain[(i + 1) % chain.len()];
        // SAFETY: alive (see `check_cycle`).
        let (hdr, next) = unsafe { (&*t, &*next) };
        if i > 0 {
            msg.push_str(", ");
        }
        let (name, other) = (hdr.display_name(), next.display_name());
        let _ = match hdr.reason() {
            WaitReason::Sync { kind, id } => {
                write!(
                    msg,
                    "{name} waits for {} #{id} held by {other}",
                    kind.name()
                )
            }
            WaitReason::Kill { .. } => write!(msg, "{name} kills {other} and waits for it to die"),
            _ => write!(msg, "{name} joins {other}"),
        };
    }
    msg.push_str(" (a wait-for cycle: none of them can ever go on)");
    panic!("{msg}");
}
