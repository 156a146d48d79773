//! The hub: one per OS thread, created lazily. It owns the ready queue, the
//! timers, the reactor (`mio::Poll`), the remote queue, and the stack pool,
//! and it runs the loop:
//!
//! 1. run the greenlets that are ready, in FIFO order, each until it parks
//!    or finishes; a getter that a put (or a receiver that a send) handed
//!    its item to runs next, ahead of the queue, for at most
//!    [`NEXT_STREAK`] runs in a row (Go's `runnext`, see
//!    [`Hub::unpark_next`]);
//! 2. after each pass (the greenlets ready when it began; while no timer is
//!    armed, extended with greenlets made ready meanwhile up to
//!    [`TICK_BUDGET`] runs): fire due timers and drain the remote queue;
//!    every [`TICK_BUDGET`] runs, and whenever nothing is ready, also poll
//!    epoll (without blocking while anything is ready; until the next timer
//!    or forever otherwise);
//! 3. report a root wait that nothing can ever end as a clear panic.
//!
//! The loop runs on the root's own stack, inside whichever blocking call the
//! root made (`join`, `sleep`, ...), and returns as soon as the root is
//! unparked. Greenlets never run the loop: they park by suspending back
//! into it.

pub(crate) mod deadlock;
pub mod dump;
mod dump_signal;
mod exit;
mod interrupt;
mod join_error;
mod local_map;
pub(crate) mod oneshot;
mod park;
pub(crate) mod probe;
pub(crate) mod process_deadlock;
pub(crate) mod reactor;
mod ready;
pub(crate) mod remote;
mod run;
mod spawn;
pub(crate) mod sync_wait;
pub(crate) mod task;
mod task_slab;
mod task_table;
pub(crate) mod timers;
pub mod wait_reason;

pub use join_error::JoinError;
pub(crate) use local_map::LocalMap;
pub(crate) use park::{park, park_until, park_until_with, yield_now};
#[cfg(test)]
pub(crate) use spawn::Payload;

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fiber::stack::StackPool;
pub(crate) use deadlock::{in_timeout_scope, join_reason};
use reactor::Reactor;
use ready::ReadyQueue;
use remote::{Remote, RemoteWaker};
use sync_wait::{SyncWaitLink, SyncWaits};
use task::{Header, State, TaskRef, Wake};
use task_table::TaskTable;
pub(crate) use wait_reason::{IoDirection, SyncKind, WaitReason};

#[cfg(any(feature = "monkey", test))]
pub(crate) use interrupt::mark_timeout_seen_in_hook;
#[cfg(feature = "monkey")]
pub(crate) use interrupt::pending_interrupt;
pub(crate) use interrupt::{
    KillSignal, TimeoutSignal, deliver_interrupts, interrupt_pending, resume_unwind_marked,
    unwind_with, unwinding_now,
};
use timers::Timers;

/// The `delay` that makes [`Hub::spawn`] create a task without scheduling
/// it (`Greenlet::new`); [`Hub::start_unscheduled`] schedules it later.
pub(crate) const UNSCHEDULED: Duration = Duration::MAX;

/// Greenlet runs between two non-blocking epoll polls while greenlets keep
/// being ready: bounds how long IO can be starved by busy greenlets without
/// paying a syscall per pass (tokio uses the same figure). Timers and the
/// remote queue are checked after every pass, and a pass runs at most this
/// many greenlets unless more were ready when it began.
const TICK_BUDGET: u32 = 61;

/// The wait-slot table is freed once it is empty and the hub goes idle, if
/// it has grown past this many entries.
const SMALL_TABLE: usize = 1024;

/// The ready queue's room; more, grown during a peak, is freed once the
/// queue is empty and the hub goes idle.
const READY_RESERVE: usize = 64;

/// Runs in a row that the run-next slot may take ahead of the ready queue
/// (see [`Hub::unpark_next`]); then the queue's first task runs.
const NEXT_STREAK: u32 = 16;

thread_local! {
    /// This thread's hub; null before first use, `DEAD` after teardown.
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    /// The header of the greenlet running on this thread; null in root
    /// context. Plain `const` TLS: also read by the stack-overflow reporter
    /// inside its signal handler.
    static CURRENT: Cell<*const Header> = const { Cell::new(ptr::null()) };
    /// Owns the hub; its destructor tears the hub down at thread exit.
    static OWNER: HubOwner = const { HubOwner };
}

const DEAD: *const Hub = std::ptr::dangling::<Hub>();

struct HubOwner;

impl Drop for HubOwner {
    fn drop(&mut self) {
        // When a greenlet ends the process (`std::process::exit`), the
        // thread's TLS destructors run on that greenlet's stack: from here
        // on this thread is in root context (hooks make real calls), and
        // `Hub::drop` keeps the running greenlet's stack mapped.
        CURRENT.with(|c| c.set(ptr::null()));
        let hub = HUB.with(|h| h.replace(DEAD));
        if !hub.is_null() && hub != DEAD {
            // SAFETY: `hub` came from `Box::into_raw` in `Hub::init` and is
            // freed only here, once; `HUB` no longer hands it out.
            drop(unsafe { Box::from_raw(hub as *mut Hub) });
        }
    }
}

/// The header of the greenlet running on this thread, if any.
#[inline]
pub(crate) fn current_header() -> *const Header {
    CURRENT.with(|c| c.get())
}

/// Wait slots: tasks parked on something another thread may wake.
#[derive(Default)]
struct WaitSlots {
    slots: Vec<Option<(TaskRef, u64)>>,
    free: Vec<usize>,
    used: usize,
    generation: u64,
}

pub(crate) struct Hub {
    ready: UnsafeCell<ReadyQueue>,
    /// The run-next slot (Go's `runnext`): a task a hand-off woke, run
    /// before the ready queue while the streak lasts (see
    /// [`Hub::unpark_next`]).
    next: UnsafeCell<Option<TaskRef>>,
    /// Runs in a row taken from `next` while the queue had tasks waiting.
    next_streak: Cell<u32>,
    root: TaskRef,
    timers: RefCell<Timers>,
    pub(crate) reactor: Reactor,
    remote: Arc<Remote>,
    waits: RefCell<WaitSlots>,
    /// Tasks parked in a sync primitive's waiter list (`crate::sync`): another
    /// thread may wake them through the remote queue.
    sync_waits: SyncWaits,
    /// Greenlets that started and have not finished (parked, ready, or
    /// running), and those frozen at thread exit: at thread exit their
    /// stacks must stay mapped.
    live: Cell<usize>,
    /// Greenlets of `live` that a freeze ended (see `exit`).
    frozen: Cell<usize>,
    /// The thread's thread-local destructor count when the last freeze was
    /// registered (see `exit`); `u64::MAX` after a freeze ran.
    freeze_at: Cell<u64>,
    /// Every greenlet that has not finished (for dumps and deadlock
    /// reports).
    tasks: RefCell<TaskTable>,
    /// The loop's clock, coarse nanoseconds (`sys::coarse_now_ns`) as of
    /// the last epoll poll or maintenance step: parks record it as their
    /// start without a clock read. Coarse, because only dumps read it, and
    /// the maintenance step of a busy hub reads it every [`TICK_BUDGET`]
    /// runs (the precise clock was 4% of a yield ping-pong).
    clock: Cell<u64>,
    /// Suspended tasks whose `unwinding` flag is set (see `interrupt`).
    parked_unwinding: Cell<usize>,
    next_id: Cell<u64>,
    ticks: Cell<u32>,
    in_loop: Cell<bool>,
    pub(crate) monitor: probe::HubProbe,
    altstack: Option<(*mut u8, usize)>,
    /// Declared last: dropped after every greenlet that borrowed a stack.
    pub(crate) stacks: StackPool,
}

impl Hub {
    /// This thread's hub, created on first use.
    #[inline]
    pub(crate) fn current() -> &'static Hub {
        let p = HUB.with(|h| h.get());
        if p.is_null() || p == DEAD {
            return Hub::init();
        }
        // SAFETY: a non-null, non-DEAD pointer is the live hub of this
        // thread, freed only by the thread's TLS destructor; `Hub` is !Sync
        // and the reference never leaves this thread.
        unsafe { &*p }
    }

    /// This thread's hub if it exists (never creates one).
    #[inline]
    pub(crate) fn try_current() -> Option<&'static Hub> {
        let p = HUB.with(|h| h.get());
        if p.is_null() || p == DEAD {
            None
        } else {
            // SAFETY: as in `current`.
            Some(unsafe { &*p })
        }
    }

    #[cold]
    fn init() -> &'static Hub {
        if HUB.with(|h| h.get()) == DEAD {
            panic!("greenlet: the hub of this thread was used after the thread's teardown began");
        }
        crate::fiber::overflow::install();
        interrupt::install_panic_marker();
        crate::sys::fork::watch();
        let (reactor, waker) = crate::sys::EventFd::new()
            .and_then(|waker| Ok((Reactor::new(waker.as_raw_fd())?, waker)))
            .unwrap_or_else(|e| {
                panic!("greenlet: cannot create this thread's hub (epoll/eventfd): {e}")
            });
        let altstack = crate::sys::ensure_altstack(crate::fiber::overflow::ALTSTACK_SIZE)
            .ok()
            .flatten();
        // SAFETY: the root's vtable frees a `TaskCell<()>` and launches nothing.
        let root = unsafe { TaskRef::new(0, None, 0, None, task::TaskVtable::ROOT, ()) };
        root.state.set(State::Running);
        let hub = Box::new(Hub {
            ready: UnsafeCell::new(ReadyQueue::with_capacity(READY_RESERVE)),
            next: UnsafeCell::new(None),
            next_streak: Cell::new(0),
            root,
            timers: RefCell::new(Timers::default()),
            reactor,
            remote: Arc::new(Remote::new(waker)),
            waits: RefCell::new(WaitSlots::default()),
            sync_waits: SyncWaits::new(),
            live: Cell::new(0),
            frozen: Cell::new(0),
            freeze_at: Cell::new(0),
            tasks: RefCell::new(TaskTable::default()),
            clock: Cell::new(crate::sys::coarse_now_ns()),
            parked_unwinding: Cell::new(0),
            next_id: Cell::new(1),
            ticks: Cell::new(0),
            in_loop: Cell::new(false),
            monitor: probe::HubProbe::new(),
            altstack,
            stacks: StackPool::new(),
        });
        dump_signal::register(&hub.remote);
        let p = Box::into_raw(hub);
        HUB.with(|h| h.set(p));
        // Register the owner so the hub is torn down at thread exit.
        OWNER.with(|_| {});
        // SAFETY: just created; see `current`.
        unsafe { &*p }
    }

    /// The running task: the current greenlet, or the root.
    pub(crate) fn current_task(&self) -> TaskRef {
        let cur = current_header();
        if cur.is_null() {
            self.root.clone()
        } else {
            // SAFETY: CURRENT points at the running task's header, which
            // `run_task` keeps alive.
            unsafe { TaskRef::from_header(cur) }
        }
    }

    /// Whether the caller runs in root context.
    #[inline]
    pub(crate) fn in_root(&self) -> bool {
        current_header().is_null()
    }

    /// Whether the caller may make a blocking call: false for code the hub
    /// loop runs itself (destructors and callbacks it runs in root context),
    /// where a park panics (see `LoopGuard`).
    pub(crate) fn may_block(&self) -> bool {
        !(self.in_root() && self.in_loop.get())
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn timers(&self) -> std::cell::RefMut<'_, Timers> {
        self.timers.borrow_mut()
    }

    /// Registers the running task for a wake-up from any thread. The caller
    /// must call [`Hub::cancel_remote`] with the returned waker once it stops
    /// waiting.
    pub(crate) fn remote_waker(&self) -> RemoteWaker {
        let task = self.current_task();
        let mut w = self.waits.borrow_mut();
        w.generation += 1;
        let generation = w.generation;
        let key = match w.free.pop() {
            Some(k) => {
                w.slots[k] = Some((task, generation));
                k
            }
            None => {
                w.slots.push(Some((task, generation)));
                w.slots.len() - 1
            }
        };
        w.used += 1;
        RemoteWaker {
            remote: self.remote.clone(),
            key,
            generation,
        }
    }

    /// Unparks the task waiting in slot `key` if the slot still belongs to
    /// wait `generation`.
    pub(crate) fn wake_slot(&self, key: usize, generation: u64) {
        let task = {
            let waits = self.waits.borrow();
            match waits.slots.get(key) {
                Some(Some((t, g))) if *g == generation => Some(t.clone()),
                _ => None,
            }
        };
        if let Some(t) = task {
            self.unpark(&t, Wake::Ready);
        }
    }

    /// Releases a wait slot made by [`Hub::remote_waker`].
    pub(crate) fn cancel_remote(&self, waker: &RemoteWaker) {
        let mut w = self.waits.borrow_mut();
        if let Some(slot) = w.slots.get_mut(waker.key)
            && matches!(slot, Some((_, g)) if *g == waker.generation)
        {
            *slot = None;
            w.free.push(waker.key);
            w.used -= 1;
        }
    }

    /// Records a task of this hub entering a sync primitive's waiter list,
    /// where another thread may wake it (with a `RemoteMsg::Run` through
    /// [`Hub::remote`]); pair with [`Hub::end_sync_wait`]. If the thread
    /// exits first, the hub cancels the wait through `link` (see
    /// [`sync_wait`]).
    ///
    /// # Safety
    /// As [`SyncWaits::link`].
    #[inline]
    pub(crate) unsafe fn begin_sync_wait(&self, link: &SyncWaitLink) {
        // SAFETY: guaranteed by the caller.
        unsafe { self.sync_waits.link(link) };
    }

    /// The task's sync wait (see [`Hub::begin_sync_wait`]) ended.
    #[inline]
    pub(crate) fn end_sync_wait(&self, link: &SyncWaitLink) {
        self.sync_waits.unlink(link);
    }

    /// Unlinks, without cancelling them, the sync waits for which `on`
    /// holds (their primitive is being dropped; see `crate::sync::lock`).
    #[inline]
    pub(crate) fn forget_sync_waits(&self, on: impl Fn(*const SyncWaitLink) -> bool) {
        self.sync_waits.forget_where(on);
    }

    /// A `Send` handle to this hub's remote queue.
    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Unstarted greenlets are dropped (their closures with them). Started
        // ones that have not finished (parked, or the one running if a
        // greenlet called `process::exit`) are never resumed and never
        // unwound here: the thread's other TLS may already be gone, and
        // their destructors could park on a hub that no longer exists. They
        // are leaked like `mem::forget`, and so their stacks stay mapped for
        // the life of the process: a value pinned on such a stack (an
        // intrusive waiter of another library, a buffer a blocking-pool
        // thread is still filling) is never invalidated, which is what
        // `Pin`'s drop guarantee asks for.
        //
        // Work other threads queued for this hub is dropped, which tells
        // their waiters it will never run.
        //
        // Every value dropped here that may run user code (a closure that
        // never started, a result nobody took, a callback queued from
        // another thread) is dropped by `drop_caught`: its `Drop` may call
        // into this hub, which is gone (`HUB` is `DEAD`), and that call
        // panics; a panic escaping a thread-local destructor aborts the
        // process, and would leave the values after it undropped.
        self.remote.close_with(drop_caught);
        // Waits linked into sync primitives that other threads use are
        // cancelled: hand-offs already made to them go on to the next waiter.
        self.sync_waits.cancel_all();
        let ready = self.ready.get_mut();
        while let Some(task) = ready.pop_front() {
            drop_caught(task);
        }
        drop_caught(self.next.get_mut().take());
        self.timers
            .get_mut()
            .clear()
            .into_iter()
            .for_each(drop_caught);
        self.tasks
            .get_mut()
            .take_all()
            .into_iter()
            .for_each(drop_caught);
        if self.live.get() > 0 {
            self.stacks.leak();
        }
        self.waits.get_mut().slots.clear();
        if let Some((base, len)) = self.altstack.take() {
            // SAFETY: installed by this hub on this thread in `init`.
            unsafe { crate::sys::free_altstack(base, len) };
        }
        task_slab::hub_gone();
    }
}

/// Runs `f`, catching its panic: for code where a panic would abort the
/// process (a thread-local destructor, a dying waiter's cleanup) or leave
/// a teardown half done. The panic was already reported by the panic hook;
/// its payload is leaked, since dropping it could panic again.
pub(crate) fn run_caught(f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        std::mem::forget(payload);
    }
}

/// Drops `value` under [`run_caught`] (hub teardown: see `Hub::drop`).
fn drop_caught<T>(value: T) {
    run_caught(move || drop(value));
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
