//! The per-greenlet record the hub schedules.
//!
//! A task is one allocation (from the thread's task slab, see
//! [`task_slab`](super::task_slab)), a `#[repr(C)]`
//! [`TaskCell<S>`](task_ref::TaskCell): the untyped [`Header`] the hub
//! works with, followed by the typed result slot `S` that only the
//! `Greenlet<T>` handle reads (plus, for the few greenlets that need one, a
//! [`Cold`] part allocated at its first use). The hub holds tasks through
//! [`TaskRef`] (in `task_ref.rs`), a thin, non-atomic, intrusively counted
//! pointer to the header (like `Rc`, but one word wide and without the
//! vtable look-ups an `Rc<dyn ..>` needs for every field access): the
//! scheduler is not generic, `join` stays typed and allocation-free, and
//! the ready queue holds single words.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::Location;
use std::rc::Rc;

use corosensei::{Coroutine, Yielder};

use crate::fiber::stack::PooledStack;
use crate::hub::JoinError;
use crate::hub::deadlock::WaitsFor;
use crate::hub::timers::TimerKey;
use crate::hub::wait_reason::{PackedReason, WaitReason};

mod task_ref;

#[cfg(test)]
use task_ref::TaskCell;
pub(crate) use task_ref::{TaskRef, TaskVtable, free_cell};

/// The coroutine type every greenlet runs in: resumed with `()`, suspends
/// with `()`, returns `()`. Why it was resumed lives in [`Header::wake`].
pub(crate) type Fiber = Coroutine<(), (), (), PooledStack>;

/// Where the task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Waiting in the ready queue (or, for the root, about to return from
    /// its park).
    Ready,
    /// Executing on its stack right now.
    Running,
    /// Suspended until something unparks it.
    Parked,
    /// Scheduled by `spawn_later`; not yet in the ready queue.
    Delayed,
    /// Done; the result is in the slot.
    Finished,
}

/// Why a parked task was made ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// What it waited for happened (or it was yielded).
    Ready,
    /// Its wait's own timer fired.
    TimedOut,
    /// It was killed, or a `with_timeout` around it expired: the park
    /// returns by unwinding.
    Interrupted,
}

/// Someone to tell when a task finishes.
pub(crate) enum Watcher {
    /// Unpark this task.
    Task(TaskRef),
    /// Record `index` as finished in an `iwait` collector and unpark its
    /// owner.
    Collect(Rc<Collector>, usize),
    /// Run a link callback (`Greenlet::link`); it catches its own panics.
    Call(Box<dyn FnOnce()>),
}

/// Completion order for `iwait`.
pub(crate) struct Collector {
    pub(crate) done: RefCell<std::collections::VecDeque<usize>>,
    pub(crate) waiter: RefCell<Option<TaskRef>>,
}

/// See [`Header::take_launch`].
///
/// Writes the fiber into [`Header::fiber`] itself and returns whether it
/// did: returning the 48-byte `Option<Fiber>` through memory and moving it
/// into the header cost a store-forwarding stall at every spawn.
pub(crate) type Launch = unsafe fn(&TaskRef, Option<&crate::hub::Hub>) -> bool;

/// The unit [`Header`] keeps the stack size in (sizes are whole pages, and
/// pages are multiples of 4 KiB): 16 TiB at most.
pub(crate) const STACK_UNIT: usize = 4096;

/// The untyped part of a task.
///
/// `#[repr(C)]`, in the order the hot paths touch it: a switch reads and
/// writes the first cache line only (state bytes, yielder, fiber); spawn,
/// park and finish stay within the first four. What only some greenlets
/// use (a name, greenlet-locals, a delayed start, more than one watcher,
/// link callbacks, watchers other than a first joiner, an expired
/// timeout's details) lives in a [`Cold`] part behind one pointer,
/// allocated at its first use; what depends on the task's types is one
/// [`TaskVtable`] pointer; counts and the stack size are 32-bit. The
/// header every spawn writes is 168 bytes (it was 376 with everything
/// inline; `header_layout` test).
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: Cell<State>,
    pub(crate) wake: Cell<Wake>,
    /// `kill` was requested. Sticky: once set it stays set, and every park
    /// of the greenlet unwinds again (unless the greenlet is unwinding
    /// already), so catching the kill with `catch_unwind` cannot keep the
    /// greenlet alive.
    pub(crate) kill: Cell<bool>,
    /// A `with_timeout` scope of the task expired and its unwind is
    /// pending: [`Cold::timeout`] says which. The flag is here so that
    /// the check after every park and yield reads this line only (with
    /// `kill`); it changes only with that field (see
    /// [`Header::expired_timeout`]).
    timeout_pending: Cell<bool>,
    /// This suspension is counted in the hub's `parked_unwinding`.
    pub(crate) counted_unwinding: Cell<bool>,
    /// Whether this task was unwinding (a panic, kill or timeout was
    /// propagating through its frames) when it last suspended. Kills and
    /// timeouts are not delivered to an unwinding task: a second unwind out
    /// of a destructor aborts the process. See `hub::unwind`.
    pub(crate) unwinding: Cell<bool>,
    /// The task has begun running (its launch was taken), or is a root.
    launched: Cell<bool>,
    /// The task is in a timed park (its wait ends by itself): deadlock
    /// cycles do not go through it. Its deadline is in the hub's timers.
    pub(crate) timed: Cell<bool>,
    /// The fiber's yielder (points into its own stack). Set by the fiber's
    /// first run and never cleared: from then until the task finishes, the
    /// task holds one reference to itself (taken with `TaskRef::leak`,
    /// given back by `finish`), so a parked greenlet nobody else refers to
    /// is never dropped mid-stack.
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    /// The fiber; `None` for the root, before the first run, and once
    /// finished.
    pub(crate) fiber: UnsafeCell<Option<Fiber>>,
    /// About the stack pointer when the task last suspended (0: never):
    /// the loop prefetches the stack lines there, and this line of the
    /// header, before it resumes the task (see `Hub::prefetch_next`).
    pub(crate) park_sp: Cell<usize>,
    /// When the task last parked, by the hub's loop clock (coarse
    /// nanoseconds, see `sys::coarse_now_ns`; 0: never). One word, in the
    /// first line, which every park writes anyway (the state).
    pub(crate) since: Cell<u64>,
    // `reason` is a 16-byte (two-word) store at every park: at a 16-byte
    // offset (cells are 16-byte aligned) it never straddles a cache line
    // (`header_layout` test).
    /// What the task waits for while parked: written at every park, read
    /// only by dumps and deadlock reports.
    reason: Cell<PackedReason>,
    /// How many `with_timeout` scopes are open in this task.
    pub(crate) timeout_depth: Cell<u32>,
    /// The task's index in its hub's task table (`u32::MAX`: none).
    pub(crate) slot_index: Cell<u32>,
    /// Live `TaskRef`s.
    refs: Cell<u32>,
    /// Stack size in units of [`STACK_UNIT`] bytes, including the guard
    /// page; 0 for the root.
    stack_units: u32,
    /// How to free the cell and launch the task (see [`TaskVtable`]).
    vtable: &'static TaskVtable,
    pub(crate) id: u64,
    /// Where the greenlet was spawned (`None` for the root).
    pub(crate) site: Option<&'static Location<'static>>,
    /// The first task waiting for this one to finish (a `join` is almost
    /// always alone, and needs no allocation), if it registered while
    /// [`Cold::watchers`] was empty (so it comes first in order); every
    /// other watcher is in [`Cold::watchers`].
    watcher: Cell<Option<TaskRef>>,
    /// Whom the task waits for, for wait-for cycle detection: set by the
    /// waits that can take part in a cycle (Mutex, join, kill) and cleared
    /// when they end.
    pub(crate) waits_for: Cell<WaitsFor>,
    /// Lowest address of the stack slot (its guard page); 0 for the root
    /// and until the first run.
    pub(crate) stack_lo: Cell<usize>,
    /// Set once, at the first use of a cold field; never replaced or
    /// dropped before the header (so `&Cold` borrows stay valid).
    cold: UnsafeCell<Option<Box<Cold>>>,
}

/// The parts of a task few greenlets use (see [`Header`]).
#[derive(Default)]
pub(crate) struct Cold {
    /// Given at spawn (`Builder::name`), never changed.
    pub(crate) name: Option<Box<str>>,
    /// Greenlet-local values (`greenlet::Local`); the root's are the
    /// thread's fallback values.
    pub(crate) locals: crate::hub::LocalMap,
    /// The timer that will start a `spawn_later` task.
    pub(crate) start_timer: Cell<Option<TimerKey>>,
    /// Link callbacks running now that hold a reference into the result
    /// slot: `join` refuses to take the result meanwhile.
    pub(crate) links_running: Cell<u32>,
    /// Watchers after the first.
    watchers: RefCell<Vec<Watcher>>,
    /// The expired `with_timeout` scope, (nesting depth, timeout id), while
    /// the header's `timeout_pending` is set (stale otherwise): read and
    /// written only through the header (see [`Header::expired_timeout`]).
    /// The outermost expired scope wins.
    timeout: Cell<(u32, u64)>,
    /// A monkey-patching hook failed a call because of the pending expired
    /// timeout (it cannot unwind): the scope reports `Elapsed` at exit.
    pub(crate) timeout_seen_in_hook: Cell<bool>,
}

impl Cold {
    #[cold]
    #[inline(never)]
    fn named(name: Box<str>) -> Box<Cold> {
        Box::new(Cold {
            name: Some(name),
            ..Cold::default()
        })
    }
}

/// The typed result slot of a `Greenlet<T>`.
pub(crate) type ResultSlot<T> = UnsafeCell<Option<Result<T, JoinError>>>;

impl Header {
    /// Writes a new header (one reference, freed by `free`) field by field
    /// into `p`. Built as a value and moved in, the header was partly made
    /// on the stack and copied with loads wider than the stores that wrote
    /// it (store-forwarding stalls, and a 256-byte `memcpy` when not
    /// inlined); written in place every field is one direct store.
    ///
    /// # Safety
    /// `p` is valid for writes of a `Header` and holds no live value.
    #[inline(always)]
    pub(crate) unsafe fn init(
        p: *mut Header,
        id: u64,
        name: Option<Box<str>>,
        stack_size: usize,
        site: Option<&'static Location<'static>>,
        vtable: &'static TaskVtable,
    ) {
        // SAFETY: per the contract; each `write` initializes one field.
        unsafe {
            (&raw mut (*p).state).write(Cell::new(State::Ready));
            (&raw mut (*p).wake).write(Cell::new(Wake::Ready));
            (&raw mut (*p).kill).write(Cell::new(false));
            (&raw mut (*p).launched).write(Cell::new(vtable.launch.is_none()));
            (&raw mut (*p).unwinding).write(Cell::new(false));
            (&raw mut (*p).counted_unwinding).write(Cell::new(false));
            (&raw mut (*p).timeout_pending).write(Cell::new(false));
            (&raw mut (*p).timed).write(Cell::new(false));
            (&raw mut (*p).yielder).write(Cell::new(std::ptr::null()));
            (&raw mut (*p).fiber).write(UnsafeCell::new(None));
            (&raw mut (*p).reason).write(Cell::new(PackedReason::UNKNOWN));
            (&raw mut (*p).since).write(Cell::new(0));
            (&raw mut (*p).timeout_depth).write(Cell::new(0));
            (&raw mut (*p).slot_index).write(Cell::new(u32::MAX));
            (&raw mut (*p).refs).write(Cell::new(1));
            (&raw mut (*p).stack_units).write((stack_size / STACK_UNIT) as u32);
            (&raw mut (*p).vtable).write(vtable);
            (&raw mut (*p).id).write(id);
            (&raw mut (*p).site).write(site);
            (&raw mut (*p).watcher).write(Cell::new(None));
            (&raw mut (*p).waits_for).write(Cell::new(WaitsFor::Nothing));
            (&raw mut (*p).stack_lo).write(Cell::new(0));
            (&raw mut (*p).park_sp).write(Cell::new(0));
            (&raw mut (*p).cold).write(UnsafeCell::new(name.map(Cold::named)));
        }
    }

    /// Lists every field without `..`: adding a field to `Header` fails to
    /// compile here until `init` (above) writes it too.
    #[allow(dead_code)]
    fn every_field_is_initialized(h: &Header) {
        let Header {
            state: _,
            wake: _,
            kill: _,
            launched: _,
            unwinding: _,
            counted_unwinding: _,
            timeout_pending: _,
            timed: _,
            yielder: _,
            fiber: _,
            reason: _,
            since: _,
            timeout_depth: _,
            slot_index: _,
            refs: _,
            stack_units: _,
            vtable: _,
            id: _,
            site: _,
            watcher: _,
            waits_for: _,
            stack_lo: _,
            park_sp: _,
            cold: _,
        } = h;
    }

    /// The cold part, created at first use.
    #[inline]
    pub(crate) fn cold(&self) -> &Cold {
        match self.cold_if_any() {
            Some(c) => c,
            None => self.make_cold(),
        }
    }

    #[cold]
    fn make_cold(&self) -> &Cold {
        // SAFETY: the cell is `None` (checked by `cold`), so no `&Cold`
        // exists; the header is not `Sync` and `Cold::default` does not
        // call back into this header.
        unsafe { (*self.cold.get()).insert(Box::default()) }
    }

    /// The cold part, if anything created it.
    #[inline]
    pub(crate) fn cold_if_any(&self) -> Option<&Cold> {
        // SAFETY: once `Some`, the box is never replaced or dropped before
        // the header (see the field), so the borrow stays valid.
        unsafe { (*self.cold.get()).as_deref() }
    }

    /// The greenlet's name, if it was given one.
    #[inline]
    pub(crate) fn name(&self) -> Option<&str> {
        self.cold_if_any().and_then(|c| c.name.as_deref())
    }

    /// The `spawn_later` start timer, if armed.
    pub(crate) fn start_timer(&self) -> Option<TimerKey> {
        self.cold_if_any().and_then(|c| c.start_timer.get())
    }

    /// Disarms and returns the start timer.
    pub(crate) fn take_start_timer(&self) -> Option<TimerKey> {
        self.cold_if_any().and_then(|c| c.start_timer.take())
    }

    /// Link callbacks running now (see [`Cold::links_running`]).
    pub(crate) fn links_running(&self) -> u32 {
        self.cold_if_any().map_or(0, |c| c.links_running.get())
    }

    /// Registers `task` to be unparked when this task finishes (a `join`).
    /// The common case, written in place: moving a built `Watcher` into
    /// the slot stalled store forwarding on every join.
    #[inline]
    pub(crate) fn watch_task(&self, task: TaskRef) {
        let first = self.watcher.take();
        let rest_empty = self
            .cold_if_any()
            .is_none_or(|c| c.watchers.borrow().is_empty());
        if first.is_none() && rest_empty {
            self.watcher.set(Some(task));
        } else {
            self.watcher.set(first);
            self.cold().watchers.borrow_mut().push(Watcher::Task(task));
        }
    }

    /// Registers someone to tell when this task finishes.
    #[inline]
    pub(crate) fn watch(&self, w: Watcher) {
        match w {
            Watcher::Task(t) => self.watch_task(t),
            w => self.cold().watchers.borrow_mut().push(w),
        }
    }

    /// Removes one `Watcher::Task` entry for `task` (a waiter that stopped
    /// waiting: timed out, killed, or woken), so repeated timed waits do
    /// not grow the list.
    pub(crate) fn unwatch_task(&self, task: *const Header) {
        let is_it = |w: &Watcher| matches!(w, Watcher::Task(t) if t.as_ptr() == task);
        let first = self.watcher.take();
        let rest = self.cold_if_any().map(|c| &c.watchers);
        if first.as_ref().is_some_and(|t| t.as_ptr() == task) {
            drop(first);
            return;
        }
        self.watcher.set(first);
        if let Some(rest) = rest {
            let mut rest = rest.borrow_mut();
            if let Some(i) = rest.iter().position(is_it) {
                rest.remove(i);
            }
        }
    }

    /// How many watchers are registered (for tests).
    #[cfg(test)]
    pub(crate) fn watcher_count(&self) -> usize {
        let first = self.watcher.take();
        let n = usize::from(first.is_some());
        self.watcher.set(first);
        n + self.cold_if_any().map_or(0, |c| c.watchers.borrow().len())
    }

    /// Records what the task waits for (see `PackedReason`).
    #[inline(always)]
    pub(crate) fn set_reason(&self, r: WaitReason) {
        self.reason.set(PackedReason::pack(r));
    }

    /// What the task last recorded it waits for.
    pub(crate) fn reason(&self) -> WaitReason {
        self.reason.get().unpack()
    }

    /// Whether this is a thread's root pseudo-task.
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.stack_units == 0
    }

    /// Stack size in bytes including the guard page; 0 for the root.
    #[inline]
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_units as usize * STACK_UNIT
    }

    /// Whether the task has begun running (or is a root).
    #[inline]
    pub(crate) fn launched(&self) -> bool {
        self.launched.get()
    }

    /// The launch function, the first time only: creates the fiber at the
    /// first run (`Some(hub)`: takes the reserved stack and moves the
    /// closure onto it), or drops the closure and the stack reservation of
    /// a task killed before it started (`None`). Monomorphized per closure
    /// type.
    #[inline]
    pub(crate) fn take_launch(&self) -> Option<Launch> {
        if self.launched.replace(true) {
            None
        } else {
            self.vtable.launch
        }
    }

    /// How reports name the task: `'name'`, `greenlet #id`, or `the root`.
    pub(crate) fn display_name(&self) -> String {
        match self.name() {
            Some(n) => format!("'{n}'"),
            None if self.is_root() => "the root".to_string(),
            None => format!("greenlet #{}", self.id),
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.get() == State::Finished
    }

    /// Records an expired `with_timeout` scope unless an outer one already
    /// expired.
    pub(crate) fn set_timeout(&self, depth: u32, id: u64) {
        match self.expired_timeout() {
            Some((d, _)) if d <= depth => {}
            _ => {
                self.cold().timeout.set((depth, id));
                self.timeout_pending.set(true);
            }
        }
    }

    /// The expired `with_timeout` scope whose unwind is pending, as
    /// `(nesting depth, timeout id)`.
    #[inline]
    pub(crate) fn expired_timeout(&self) -> Option<(u32, u64)> {
        if !self.timeout_pending.get() {
            return None;
        }
        // Set only by `set_timeout`, which made the cold part.
        self.cold_if_any().map(|c| c.timeout.get())
    }

    /// Takes the pending expired timeout (it is being delivered or has
    /// been dealt with).
    #[inline]
    pub(crate) fn take_expired_timeout(&self) -> Option<(u32, u64)> {
        if !self.timeout_pending.replace(false) {
            return None;
        }
        self.cold_if_any().map(|c| c.timeout.get())
    }

    /// Whether a kill or an expired timeout is pending: one cache line,
    /// read after every park and yield. The flags are or-ed, not
    /// short-circuited: one branch instead of two on the hot path.
    #[inline(always)]
    pub(crate) fn interrupt_pending(&self) -> bool {
        self.kill.get() | self.timeout_pending.get()
    }

    /// Whether a resumed yield has anything to do before it returns: a
    /// counted unwinding suspension to end, or an interrupt to deliver
    /// (see `hub::yield_now`). One branch for the three flags.
    #[inline(always)]
    pub(crate) fn resume_needs_attention(&self) -> bool {
        self.counted_unwinding.get() | self.kill.get() | self.timeout_pending.get()
    }

    /// Wakes everyone waiting for this task to finish.
    pub(crate) fn notify_watchers(&self, hub: &crate::hub::Hub) {
        // The first joiner on its own: chained with the rest into one
        // iterator, it was built on the stack and read back with a wider
        // load (a store-forwarding stall at every finish).
        if let Some(t) = self.watcher.take() {
            hub.unpark(&t, Wake::Ready);
        }
        let Some(cold) = self.cold_if_any() else {
            return;
        };
        let rest = std::mem::take(&mut *cold.watchers.borrow_mut());
        for w in rest {
            match w {
                Watcher::Task(t) => {
                    hub.unpark(&t, Wake::Ready);
                }
                Watcher::Collect(c, index) => {
                    c.done.borrow_mut().push_back(index);
                    if let Some(t) = c.waiter.borrow().as_ref() {
                        hub.unpark(t, Wake::Ready);
                    }
                }
                Watcher::Call(f) => f(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
