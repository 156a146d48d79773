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
pub(crate) mod handle;
mod interrupt;
mod join_error;
mod local_map;
pub(crate) mod oneshot;
pub(crate) mod process_deadlock;
pub(crate) mod reactor;
mod ready;
pub(crate) mod remote;
pub(crate) mod sync_wait;
pub(crate) mod task;
mod task_slab;
mod task_table;
pub(crate) mod timers;
pub mod wait_reason;

pub use join_error::JoinError;
pub(crate) use local_map::LocalMap;

use std::cell::{Cell, RefCell, UnsafeCell};
use std::io;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::{CoroutineResult, Yielder};

use crate::fiber::stack::StackPool;
pub(crate) use deadlock::{in_timeout_scope, join_reason};
use reactor::Reactor;
use ready::ReadyQueue;
use remote::{Remote, RemoteMsg, RemoteWaker};
use sync_wait::{SyncWaitLink, SyncWaits};
use task::{Fiber, Header, ResultSlot, State, TaskRef, Wake};
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
use timers::{TimerAction, TimerKey, Timers};

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
    /// running): at thread exit their stacks must stay mapped.
    live: Cell<usize>,
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
    pub(crate) monitor: crate::monitor::HubProbe,
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
        let (reactor, waker) = Reactor::new().unwrap_or_else(|e| {
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
            tasks: RefCell::new(TaskTable::default()),
            clock: Cell::new(crate::sys::coarse_now_ns()),
            parked_unwinding: Cell::new(0),
            next_id: Cell::new(1),
            ticks: Cell::new(0),
            in_loop: Cell::new(false),
            monitor: crate::monitor::HubProbe::new(),
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

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn timers(&self) -> std::cell::RefMut<'_, Timers> {
        self.timers.borrow_mut()
    }

    #[inline]
    fn push_ready(&self, task: TaskRef) {
        // SAFETY: no reference into `ready` outlives a single push/pop.
        unsafe { (*self.ready.get()).push_back(task) }
    }

    /// The next task to run: the run-next slot's while its streak lasts
    /// (or nothing else is ready), else the ready queue's first.
    #[inline]
    fn pop_ready(&self) -> Option<TaskRef> {
        // SAFETY: as in `push_ready`; `next` likewise.
        unsafe {
            let next = &mut *self.next.get();
            let ready = &mut *self.ready.get();
            // Checked before taking: emptying an empty slot would still be
            // a store on every switch.
            if next.is_some()
                && let Some(t) = next.take()
            {
                let streak = self.next_streak.get();
                if streak < NEXT_STREAK || ready.is_empty() {
                    self.next_streak.set(streak.saturating_add(1));
                    return Some(t);
                }
                // The streak is over: the hand-off chain waits its turn
                // behind everyone who was ready before it.
                ready.push_back(t);
            }
            self.next_streak.set(0);
            ready.pop_front()
        }
    }

    /// Starts loading what resuming the next ready tasks will touch, so
    /// the misses overlap with the task about to run: the stack lines
    /// where the next one parked (its header was prefetched a turn ago),
    /// and the header of the one after it. With a thousand connections
    /// each greenlet's stack and header are out of cache by its next turn,
    /// and the resume stalled on them: this cut the download job's user
    /// CPU by about a fifth (see CHANGELOG).
    #[inline(always)]
    fn prefetch_next(&self) {
        // SAFETY: as in `push_ready`.
        let ready = unsafe { &*self.ready.get() };
        // With few tasks ready, all of them are in cache anyway.
        if ready.len() < PREFETCH_FROM {
            return;
        }
        if let Some(b) = ready.front() {
            let sp = b.park_sp.get();
            if sp != 0 {
                prefetch_lines(sp.wrapping_sub(64), 4);
            }
            if let Some(c) = ready.get(1) {
                prefetch_lines(&**c as *const Header as usize, 2);
            }
        }
    }

    /// Tasks ready to run (the queue and the run-next slot).
    #[inline]
    fn ready_len(&self) -> usize {
        // SAFETY: as in `push_ready`.
        unsafe { (*self.ready.get()).len() + usize::from((*self.next.get()).is_some()) }
    }

    /// Makes a parked task ready, exactly once: returns false (and does
    /// nothing) when it is not parked.
    #[inline]
    pub(crate) fn unpark(&self, task: &TaskRef, wake: Wake) -> bool {
        self.unpark_as(task, wake, false)
    }

    /// [`unpark`](Hub::unpark) for a hand-off (a queue item or a channel
    /// message given straight to a parked getter): the woken task goes to
    /// the run-next slot, so it runs as soon as the running task parks or
    /// yields, while what it was handed is still in cache (Go's
    /// `runnext`). The slot is emptied by every pick of the next task, so
    /// it holds the first hand-off of the current run; later ones in the
    /// same run go to the back of the ready queue, so that a task handing
    /// items to many getters wakes them in order (unlike Go, where the
    /// last one jumps the queue). Fairness: the slot is taken ahead of the
    /// queue at most [`NEXT_STREAK`] runs in a row; then the queue's first
    /// task runs and the chain goes to the back. Everyone else keeps FIFO
    /// order.
    #[inline]
    pub(crate) fn unpark_next(&self, task: &TaskRef, wake: Wake) -> bool {
        self.unpark_as(task, wake, true)
    }

    #[inline(always)]
    fn unpark_as(&self, task: &TaskRef, wake: Wake, run_next: bool) -> bool {
        let hdr: &Header = task;
        if hdr.state.get() != State::Parked {
            return false;
        }
        hdr.wake.set(wake);
        hdr.state.set(State::Ready);
        if !hdr.is_root() {
            // SAFETY: as in `push_ready`.
            let next = unsafe { &mut *self.next.get() };
            if run_next && next.is_none() {
                *next = Some(task.clone());
            } else {
                self.push_ready(task.clone());
            }
        }
        true
    }

    /// Parks the running task until it is unparked and returns why, without
    /// delivering kills or timeouts (see [`park`]).
    ///
    /// Inlined, as are [`park`] and [`park_until`]: after a switch every
    /// return up the call chain to the parking code mispredicts (the CPU's
    /// return-stack buffer holds the other stack's addresses), so a shallow
    /// chain makes the greenlet side of a switch cheaper.
    ///
    /// `reason` is recorded for dumps and deadlock reports (one two-word
    /// store, see `PackedReason`).
    #[inline(always)]
    pub(crate) fn park_raw(&self, reason: WaitReason) -> Wake {
        let cur = current_header();
        if cur.is_null() {
            self.park_root(reason)
        } else {
            // SAFETY: CURRENT points at the header of the task that is
            // running this code; `run_task` keeps it alive.
            let hdr = unsafe { &*cur };
            hdr.set_reason(reason);
            hdr.since.set(self.clock.get());
            hdr.state.set(State::Parked);
            switch_out(hdr);
            hdr.wake.get()
        }
    }

    /// The root's park: runs the loop on the root's stack until the root is
    /// unparked. Out of line, so the greenlet path of `park_raw` stays small
    /// enough to inline.
    #[inline(never)]
    fn park_root(&self, reason: WaitReason) -> Wake {
        // Refuse re-entry before touching the root's state: a blocking call
        // made from inside the loop (a destructor the loop ran) must leave
        // the outer wait parked, even if its panic is caught.
        let _loop = LoopGuard::enter(self);
        self.monitor.left();
        let root: &Header = &self.root;
        root.set_reason(reason);
        root.since.set(self.clock.get());
        root.state.set(State::Parked);
        interrupt::note_suspend(root);
        let guard = RootUnpark(root);
        self.run_until_root_ready();
        drop(guard);
        self.monitor.root_running();
        root.wake.get()
    }

    /// Spawns a task running `f` on a stack of `stack_size` bytes; it becomes
    /// ready now, or after `delay`, or (`Some(UNSCHEDULED)`) once
    /// [`Hub::start_unscheduled`] is called.
    pub(crate) fn spawn<F, T>(
        &self,
        f: F,
        name: Option<Box<str>>,
        stack_size: usize,
        delay: Option<Duration>,
        site: &'static Location<'static>,
    ) -> io::Result<(TaskRef, *const ResultSlot<T>)>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if stack_size / task::STACK_UNIT > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("greenlet stack size of {stack_size} bytes is over the limit of 16 TiB"),
            ));
        }
        self.stacks.reserve(stack_size)?;
        // SAFETY: the vtable is the one for `Payload<F, T>`, the slot given.
        let task = unsafe {
            TaskRef::new(
                self.next_id(),
                name,
                stack_size,
                Some(site),
                const {
                    &task::TaskVtable {
                        free: task::free_cell::<Payload<F, T>>,
                        launch: Some(launch::<F, T>),
                    }
                },
                Payload {
                    slot: ResultSlot::<T>::new(None),
                    f: UnsafeCell::new(Some(f)),
                },
            )
        };
        self.tasks.borrow_mut().insert(&task);
        self.monitor.spawned(task.id, task.name());
        // SAFETY: created just above with this payload type.
        let slot: *const ResultSlot<T> = unsafe { &task.slot::<Payload<F, T>>().slot };
        match delay {
            None => self.push_ready(task.clone()),
            Some(UNSCHEDULED) => task.state.set(State::Delayed),
            Some(d) => {
                task.state.set(State::Delayed);
                let key = self
                    .timers
                    .borrow_mut()
                    .insert(deadline_after(d), TimerAction::Start(task.clone()));
                task.cold().start_timer.set(Some(key));
            }
        }
        Ok((task, slot))
    }

    /// Schedules a task created unscheduled (`State::Delayed` with no start
    /// timer, see `Greenlet::new`): ready now, or after `delay`. Returns
    /// false, doing nothing, if it was scheduled (or finished) already.
    pub(crate) fn start_unscheduled(&self, task: &TaskRef, delay: Option<Duration>) -> bool {
        if task.state.get() != State::Delayed || task.start_timer().is_some() {
            return false;
        }
        match delay {
            None => {
                task.state.set(State::Ready);
                self.push_ready(task.clone());
            }
            Some(d) => {
                let key = self
                    .timers
                    .borrow_mut()
                    .insert(deadline_after(d), TimerAction::Start(task.clone()));
                task.cold().start_timer.set(Some(key));
            }
        }
        true
    }

    /// Finishes a task that never started (killed before its first run):
    /// drops its closure and gives back its stack reservation.
    pub(crate) fn finish_unstarted(&self, task: &TaskRef) {
        let hdr: &Header = task;
        if let Some(key) = hdr.take_start_timer() {
            self.timers.borrow_mut().remove(key);
        }
        hdr.state.set(State::Finished);
        let entry = self.tasks.borrow_mut().remove(hdr);
        drop(entry);
        if let Some(launch) = hdr.take_launch() {
            // SAFETY: `launch` was set by `spawn` for this task's payload
            // type; `None` asks it to discard.
            unsafe { launch(task, None) };
        }
        hdr.notify_watchers(self);
    }

    /// Whether a task has begun running.
    pub(crate) fn has_started(&self, hdr: &Header) -> bool {
        hdr.launched()
    }

    /// Runs one ready task until it parks, yields or finishes.
    #[inline]
    fn run_task(&self, task: TaskRef) {
        let hdr: &Header = &task;
        if hdr.state.get() != State::Ready {
            return; // killed before it ran, or a stale entry
        }
        hdr.state.set(State::Running);
        CURRENT.with(|c| c.set(hdr));
        self.monitor.switched(hdr);
        // Keeps the loop consistent if anything below panics (it should
        // not: the fiber catches every panic of user code).
        let guard = RunGuard {
            hub: self,
            task: &task,
        };
        // SAFETY: only `run_task` resumes fibers, and the loop never runs
        // inside a greenlet, so this is the only live borrow of the fiber.
        let fiber = match unsafe { (*hdr.fiber.get()).as_mut() } {
            Some(f) => f,
            None => match self.launch(&task) {
                Some(f) => f,
                None => {
                    // No stack: the task finished without running.
                    std::mem::forget(guard);
                    CURRENT.with(|c| c.set(ptr::null()));
                    self.monitor.left();
                    return self.finish(task);
                }
            },
        };
        let result = fiber.resume(());
        std::mem::forget(guard);
        CURRENT.with(|c| c.set(ptr::null()));
        self.monitor.left();
        match result {
            CoroutineResult::Yield(()) => {
                if hdr.state.get() == State::Ready {
                    self.push_ready(task); // yield_now
                }
            }
            CoroutineResult::Return(()) => self.finish(task),
        }
    }

    /// Creates a task's fiber at its first run; `None` if no stack could
    /// be had (the task's result then says why).
    // Never inlined: inlined into `run_task`, it made the loop around every
    // switch bigger and slower (yield ping-pong +1 ns).
    #[cold]
    #[inline(never)]
    #[allow(clippy::mut_from_ref)]
    fn launch(&self, task: &TaskRef) -> Option<&mut Fiber> {
        let launch = task.take_launch().expect("ready task without a fiber");
        // SAFETY: `launch` was set by `spawn` for this task's payload type;
        // the fiber slot is empty and only `run_task` touches it.
        if !unsafe { launch(task, Some(self)) } {
            return None;
        }
        self.live.set(self.live.get() + 1);
        // SAFETY: `launch` filled the slot; the returned borrow ends before
        // the task can run again.
        unsafe { (*task.fiber.get()).as_mut() }
    }

    #[cold]
    fn finish(&self, task: TaskRef) {
        let hdr: &Header = &task;
        hdr.state.set(State::Finished);
        // SAFETY: the fiber returned, nothing borrows it any more; dropping
        // a finished fiber returns its stack to the pool (and touches
        // nothing else of the header). Dropped where it lies: moved out
        // first, it was copied with loads wider than the stores that last
        // wrote it (a store-forwarding stall at every finish).
        let fiber = unsafe { &mut *hdr.fiber.get() };
        if fiber.is_some() {
            self.live.set(self.live.get() - 1);
            *fiber = None;
        }
        // The fiber's first run took a reference for the task itself (see
        // `Header::yielder`); it is given back last.
        let kept = !hdr.yielder.get().is_null();
        let entry = self.tasks.borrow_mut().remove(hdr);
        drop(entry);
        hdr.notify_watchers(self);
        self.monitor.finished(hdr);
        if kept {
            // SAFETY: the reference the prologue leaked, taken over once:
            // a task finishes once.
            drop(unsafe { TaskRef::adopt(hdr) });
        }
    }

    /// Runs the loop until the root is unparked. The caller holds the
    /// [`LoopGuard`].
    fn run_until_root_ready(&self) {
        let root: &Header = &self.root;
        loop {
            if self.run_pass(TICK_BUDGET as usize) {
                return;
            }
            self.maintain(self.ready_len() == 0);
            if root.state.get() == State::Ready {
                return;
            }
        }
    }

    /// Runs the greenlets that are ready now once each, in FIFO order; if
    /// that is fewer than `min_runs` and no timer is armed, goes on with
    /// greenlets made ready meanwhile (still FIFO) up to `min_runs` runs, so
    /// two greenlets handing work back and forth do not pay a maintenance
    /// step per hand-off. With a timer armed every pass ends after the
    /// snapshot, so a `yield_now` lets due timers fire (gevent's
    /// `sleep(0)`). The remote queue is drained at least every
    /// `max(ready, min_runs)` runs. Returns early (true) as soon as the root
    /// is unparked.
    #[inline]
    fn run_pass(&self, min_runs: usize) -> bool {
        let root: &Header = &self.root;
        let snapshot = self.ready_len();
        let mut runs = 0;
        let root_ready = loop {
            if runs == snapshot.max(min_runs) {
                break false;
            }
            if runs >= snapshot && self.timers_armed() {
                break false;
            }
            let Some(task) = self.pop_ready() else {
                break false;
            };
            self.prefetch_next();
            self.run_task(task);
            runs += 1;
            if root.state.get() == State::Ready {
                break true;
            }
        };
        // Counted once per pass rather than per run: one memory
        // read-modify-write less around every switch.
        self.ticks.set(self.ticks.get().wrapping_add(runs as u32));
        root_ready || root.state.get() == State::Ready
    }

    /// Whether a timer is armed, read between two task runs.
    #[inline(always)]
    fn timers_armed(&self) -> bool {
        // SAFETY: called by the loop between two task runs, when no
        // borrow of `timers` is live (every borrow in the hub and in the
        // time module ends within its statement or function, and the
        // loop is not inside any of them); reading `len` through the
        // cell's pointer then races with nothing. It skips the borrow
        // flag's check and write-back on every switch.
        unsafe { !(*self.timers.as_ptr()).is_empty() }
    }

    /// Root `yield_now`: one pass, then one non-blocking maintenance pass
    /// that also polls epoll.
    fn run_round(&self) {
        let _guard = LoopGuard::enter(self);
        let root: &Header = &self.root;
        interrupt::note_suspend(root);
        let _resume = RootResume(root);
        self.run_pass(0);
        self.ticks.set(TICK_BUDGET);
        self.maintain(false);
        self.monitor.root_running();
    }

    /// Between passes: fire due timers, drain the remote queue, and poll
    /// epoll. Without `may_block` epoll is polled (with timeout 0) only
    /// every [`TICK_BUDGET`] greenlet runs, so tight yield loops stay cheap;
    /// with it, the hub sleeps until the next timer, an fd event or a
    /// remote wake-up.
    fn maintain(&self, may_block: bool) {
        self.fire_timers();
        self.drain_remote();
        if !may_block || self.ready_len() > 0 || self.root.state.get() == State::Ready {
            if self.ticks.get() >= TICK_BUDGET {
                self.ticks.set(0);
                self.clock.set(crate::sys::coarse_now_ns());
                if self.reactor.has_waiters() {
                    self.reactor.poll(self, Some(Duration::ZERO));
                    self.drain_remote();
                }
            }
            return;
        }
        self.ticks.set(0);
        self.release_idle_memory();
        let timeout = self
            .timers
            .borrow()
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if timeout.is_none() && !self.can_be_woken() {
            // A cross-thread wake-up may have been sent after the last
            // drain, by a notifier that then dropped its handle.
            self.drain_remote();
            if self.ready_len() > 0 || self.root.state.get() == State::Ready {
                return;
            }
            self.would_block_forever();
        }
        // Asleep with nothing but sync waits that could end it: the
        // monitor reports it if it lasts (another thread may still set
        // them; nothing here can prove either way).
        let sync_only = timeout.is_none()
            && !self.reactor.has_waiters()
            && self.waits.borrow().used == 0
            && Arc::strong_count(&self.remote) == 1;
        // The opt-in process-wide rule (see `process_deadlock`).
        let stuck = timeout.is_none()
            && !self.reactor.has_waiters()
            && self.waits.borrow().used == 0
            && process_deadlock::enabled();
        let timeout = if stuck {
            Some(self.stuck_enter())
        } else {
            timeout
        };
        // Stacks left to trim: poll without sleeping, and trim more next time.
        let timeout = if self.remote.prepare_sleep() && !self.stacks.needs_trim() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if sync_only {
            self.monitor.idle_on_sync(true);
        }
        self.reactor.poll(self, timeout);
        if stuck {
            self.stuck_leave();
        }
        if sync_only {
            self.monitor.idle_on_sync(false);
        }
        self.clock.set(crate::sys::coarse_now_ns());
        self.remote.end_sleep();
        self.drain_remote();
        self.fire_timers();
    }

    /// Whether anything outside the ready queue and the timers could still
    /// wake a task: an fd wait, a cross-thread wait, or another thread that
    /// holds this hub's remote handle.
    fn can_be_woken(&self) -> bool {
        self.reactor.has_waiters()
            || self.waits.borrow().used > 0
            || self.sync_waits.any_open()
            || Arc::strong_count(&self.remote) > 1
    }

    #[cold]
    fn would_block_forever(&self) -> ! {
        panic!(
            "greenlet: this operation would block forever: the root is waiting, but no greenlet \
             is ready, no timer is pending, no I/O or cross-thread wake-up is registered, and \
             no other thread can reach a sync primitive waited on (no handle left but its \
             waiter's, or a lock held on this thread) (a deadlock: greenlets waiting on each \
             other or on something nobody will set)\n{}",
            self.dump()
        );
    }

    #[inline]
    fn fire_timers(&self) {
        if !self.timers.borrow().is_empty() {
            self.fire_timers_slow();
        }
    }

    fn fire_timers_slow(&self) {
        let now = Instant::now();
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                None => break,
                Some(TimerAction::Wake(t)) => {
                    self.unpark(&t, Wake::TimedOut);
                }
                Some(TimerAction::Timeout { task, depth, id }) => {
                    task.set_timeout(depth, id);
                    self.unpark(&task, Wake::Interrupted);
                }
                Some(TimerAction::Start(t)) => {
                    t.take_start_timer();
                    if t.state.get() == State::Delayed {
                        t.state.set(State::Ready);
                        self.push_ready(t);
                    }
                }
            }
        }
    }

    #[inline]
    fn drain_remote(&self) {
        if self.remote.take_pending() {
            self.drain_remote_slow();
        }
    }

    #[cold]
    fn drain_remote_slow(&self) {
        // A message that panics must not strand the ones behind it: the
        // pending flag was cleared, so set it again if we unwind.
        struct Repend<'a>(&'a Remote);
        impl Drop for Repend<'_> {
            fn drop(&mut self) {
                self.0.repend();
            }
        }
        let repend = Repend(&self.remote);
        while let Some(msg) = self.remote.pop() {
            match msg {
                RemoteMsg::Run(f) => f(),
                RemoteMsg::Wake { key, generation } => self.wake_slot(key, generation),
            }
        }
        std::mem::forget(repend);
    }

    /// Gives memory back as the hub goes idle: one batch of released stacks
    /// (see [`StackPool::trim`]), the reactor's slots past the last one in
    /// use, the timer map's last node once no timer is left, the wait-slot
    /// table once no remote wait is pending, and the ready queue's room
    /// beyond a small reserve. After a peak of
    /// connections the runtime's own memory returns close to where it was.
    fn release_idle_memory(&self) {
        if self.stacks.needs_trim() {
            self.stacks.trim();
        }
        self.reactor.shrink();
        task_slab::trim();
        self.timers.borrow_mut().release_if_empty();
        {
            let mut w = self.waits.borrow_mut();
            if w.used == 0 && w.slots.capacity() > SMALL_TABLE {
                // Keys are checked with a generation that never repeats,
                // so a late wake for a dropped slot finds nothing.
                w.slots = Vec::new();
                w.free = Vec::new();
            }
        }
        // SAFETY: as in `push_ready`: this reference ends here.
        let ready = unsafe { &mut *self.ready.get() };
        if ready.is_empty() && ready.capacity() > READY_RESERVE {
            *ready = ReadyQueue::with_capacity(READY_RESERVE);
        }
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
        self.remote.close();
        // Waits linked into sync primitives that other threads use are
        // cancelled: hand-offs already made to them go on to the next waiter.
        self.sync_waits.cancel_all();
        let ready = std::mem::take(self.ready.get_mut());
        drop(ready);
        drop(self.next.get_mut().take());
        let timers = self.timers.get_mut().clear();
        drop(timers);
        let tasks = self.tasks.get_mut().take_all();
        drop(tasks);
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

/// A task's typed payload: its result slot, and its closure until the first
/// run moves it onto the stack.
pub(crate) struct Payload<F, T> {
    pub(crate) slot: ResultSlot<T>,
    f: UnsafeCell<Option<F>>,
}

/// [`task::Launch`] for closures of type `F` returning `T`.
///
/// # Safety
/// `task` must have been created by `Hub::spawn::<F, T>`; with `Some(hub)`
/// it must be that hub's task, about to run for the first time, with its
/// fiber slot empty and not borrowed.
unsafe fn launch<F, T>(task: &TaskRef, hub: Option<&Hub>) -> bool
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    // SAFETY: guaranteed by the caller.
    let payload = unsafe { task.slot::<Payload<F, T>>() };
    let Some(hub) = hub else {
        // SAFETY: only `launch` and the fiber prologue touch the closure
        // cell, and the task never ran.
        drop(unsafe { (*payload.f.get()).take() });
        if let Some(h) = Hub::try_current() {
            h.stacks.unreserve(task.stack_size());
        }
        return false;
    };
    // SAFETY: as above; the fiber prologue has not run.
    if unsafe { (*payload.f.get()).is_none() } {
        return false;
    }
    let stack = match hub.stacks.take(task.stack_size()) {
        Ok(stack) => stack,
        Err(e) => {
            // The kernel refused the stack's guard page (out of memory for
            // page tables): the greenlet ends before it starts, its `join`
            // reporting why, like a panic at its first line.
            // SAFETY: as above.
            drop(unsafe { (*payload.f.get()).take() });
            let msg = format!("greenlet could not get a stack: {e}");
            // SAFETY: the task never ran; nobody else touches the slot.
            unsafe { *payload.slot.get() = Some(Err(JoinError::from_payload(Box::new(msg)))) };
            return false;
        }
    };
    task.stack_lo.set(stack.top() - task.stack_size());
    // The fiber's closure captures three pointers and nothing else: the
    // user's closure stays in the task's heap cell until the prologue moves
    // it onto the new stack. corosensei moves the initial closure across the
    // stack switch and refuses anything over 1 KiB, so capturing `f` here
    // would fail for large closures.
    let hdr: *const Header = task.as_ptr();
    let slot: *const ResultSlot<T> = &payload.slot;
    let fcell: *const UnsafeCell<Option<F>> = &payload.f;
    let fiber = Fiber::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
        // SAFETY: the task owns this fiber, so it outlives the closure; only
        // this closure writes the slot, and nobody reads it before the task
        // is finished; the closure cell is ours alone from the first run
        // on (checked non-empty by `launch`).
        unsafe {
            (*hdr).yielder.set(yielder);
            // The task's own reference until `finish` (see `yielder`).
            Hub::current().current_task().leak();
            let f = (*(*fcell).get()).take().expect("launched twice");
            let mut result = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::from_payload);
            if result.is_ok() && (*hdr).kill.get() {
                // Killed, and the kill was caught (`catch_unwind`) or met
                // only calls that cannot unwind (the monkey hooks fail
                // instead): it still dies as killed.
                result = Err(JoinError::killed());
            }
            // The greenlet is done: interrupts aimed at its body no
            // longer apply to the destructors below.
            (*hdr).kill.set(false);
            (*hdr).take_expired_timeout();
            (*hdr).unwinding.set(false);
            // Greenlet-local values die with the greenlet, on its own
            // stack (their destructors may still park). A panicking
            // destructor was reported by the panic hook; it does not
            // change the result.
            if let Some(cold) = (*hdr).cold_if_any() {
                let _ = catch_unwind(AssertUnwindSafe(|| cold.locals.clear()));
            }
            *(*slot).get() = Some(result);
        }
    });
    // SAFETY: the caller guarantees the slot is empty and unborrowed.
    unsafe { *task.fiber.get() = Some(fiber) };
    true
}

/// Suspends the running greenlet back into the loop, keeping its unwinding
/// state (see [`interrupt`]).
#[inline(always)]
fn switch_out(hdr: &Header) {
    interrupt::note_suspend(hdr);
    suspend(hdr);
    interrupt::note_resume(hdr);
}

/// Ready tasks from which the loop prefetches a task ahead.
const PREFETCH_FROM: usize = 8;

/// Hints the CPU to load `n` cache lines from `at`. A prefetch never
/// faults and changes nothing but the caches.
#[inline(always)]
fn prefetch_lines(at: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..n {
        // SAFETY: a prefetch is only a hint; it reads nothing and cannot
        // fault, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                at.wrapping_add(line * 64) as *const i8,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, n);
}

/// Suspends the running greenlet back into the loop.
#[inline]
fn suspend(hdr: &Header) {
    let here = 0u8;
    hdr.park_sp.set(&raw const here as usize);
    let y = hdr.yielder.get();
    // SAFETY: `yielder` was set by the fiber prologue and points into this
    // fiber's own stack, which is live: we are running on it.
    unsafe { (*y).suspend(()) };
}

/// Resets the root to `Running` when its park ends, even by unwinding.
struct RootUnpark<'a>(&'a Header);

impl Drop for RootUnpark<'_> {
    fn drop(&mut self) {
        self.0.state.set(State::Running);
        interrupt::note_resume(self.0);
    }
}

/// Ends a root "suspension" that did not park it (a root `yield_now`).
struct RootResume<'a>(&'a Header);

impl Drop for RootResume<'_> {
    fn drop(&mut self) {
        interrupt::note_resume(self.0);
    }
}

/// Armed while `run_task` runs a task; forgotten on the normal path. If
/// anything unwinds out of resuming a fiber (nothing should: the fiber
/// catches every panic of user code), the loop is left consistent: no
/// greenlet is current, and the task is finished (its `join` reports it
/// killed) rather than left `Running` with a broken fiber.
struct RunGuard<'a> {
    hub: &'a Hub,
    task: &'a TaskRef,
}

impl Drop for RunGuard<'_> {
    #[cold]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(ptr::null()));
        self.hub.monitor.left();
        self.hub.finish(self.task.clone());
    }
}

/// Marks the loop as running; refuses re-entry.
struct LoopGuard<'a>(&'a Hub);

impl<'a> LoopGuard<'a> {
    fn enter(hub: &'a Hub) -> LoopGuard<'a> {
        if hub.in_loop.replace(true) {
            panic!(
                "greenlet: a blocking call was made from inside the hub loop (for example from a \
                 destructor the hub ran); this is not supported"
            );
        }
        LoopGuard(hub)
    }
}

impl Drop for LoopGuard<'_> {
    fn drop(&mut self) {
        self.0.in_loop.set(false);
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Lets the other ready greenlets run, then continues; delivers a pending
/// kill or timeout. Always inlined: the greenlet side of a switch should
/// return straight into user code (with the unwinding bookkeeping of
/// `switch_out`, plain `#[inline]` no longer inlined it, and a yield
/// ping-pong went from 8 to 30 ns).
#[inline(always)]
pub(crate) fn yield_now() {
    let cur = current_header();
    if cur.is_null() {
        Hub::current().run_round();
        deliver_interrupts();
    } else {
        // SAFETY: CURRENT points at the running greenlet's header, kept
        // alive by `run_task`.
        let hdr = unsafe { &*cur };
        hdr.state.set(State::Ready);
        switch_out(hdr);
        if hdr.interrupt_pending() {
            interrupt::deliver_slow(hdr);
        }
    }
}

/// Parks the running task and delivers a pending kill or expired timeout by
/// unwinding (never while already unwinding).
#[inline(always)]
pub(crate) fn park(reason: WaitReason) -> Wake {
    interrupt::deliver_before_park();
    let hub = Hub::current();
    let wake = hub.park_raw(reason);
    deliver_interrupts();
    wake
}

/// Parks the running task until it is unparked or `deadline` passes
/// (`None`: no deadline). Returns `Wake::TimedOut` if the deadline passed
/// (the timer is cleaned up either way, also when the park unwinds). Like
/// every park, it may return spuriously with `Wake::Ready`: callers re-check
/// their condition in a loop.
#[inline]
pub(crate) fn park_until(deadline: Option<Instant>, reason: WaitReason) -> Wake {
    park_until_with(deadline, true, reason)
}

/// [`park_until`], delivering kills and timeouts by unwinding only if
/// `deliver`; otherwise the caller checks [`interrupt_pending`].
///
/// The untimed park is inlined whole into its callers (the fd waits):
/// every frame between the user's code and the switch is one more
/// return to mispredict and more stack to bring back into cache when the
/// greenlet resumes. The timed one stays out of line.
#[inline(always)]
pub(crate) fn park_until_with(
    deadline: Option<Instant>,
    deliver: bool,
    reason: WaitReason,
) -> Wake {
    match deadline {
        None => park_untimed(deliver, reason),
        Some(deadline) => park_timed(deadline, deliver, reason),
    }
}

/// Parks until unparked, delivering kills and timeouts before and after
/// if `deliver`.
#[inline(always)]
fn park_untimed(deliver: bool, reason: WaitReason) -> Wake {
    if deliver {
        interrupt::deliver_before_park();
    }
    let wake = Hub::current().park_raw(reason);
    if deliver {
        deliver_interrupts();
    }
    wake
}

/// The timed park: [`park_untimed`] with the task marked timed and its
/// deadline in the hub's timers for as long as it lasts (both undone
/// however it ends, a kill delivered before the park included).
#[inline(never)]
fn park_timed(deadline: Instant, deliver: bool, reason: WaitReason) -> Wake {
    let hub = Hub::current();
    let task = hub.current_task();
    task.timed.set(true);
    let _clear = ClearTimed(&task);
    let guard = TimerGuard(Some(
        hub.timers()
            .insert(deadline, TimerAction::Wake(task.clone())),
    ));
    let wake = park_untimed(deliver, reason);
    if wake == Wake::TimedOut || guard.fired(hub) {
        std::mem::forget(guard);
        Wake::TimedOut
    } else {
        wake
    }
}

/// Ends a timed park's mark however the park ends.
struct ClearTimed<'a>(&'a TaskRef);

impl Drop for ClearTimed<'_> {
    fn drop(&mut self) {
        self.0.timed.set(false);
    }
}

/// A timer that is removed when dropped (also when its waiter unwinds).
pub(crate) struct TimerGuard(pub(crate) Option<TimerKey>);

impl TimerGuard {
    /// Whether the timer already fired (it is no longer armed).
    pub(crate) fn fired(&self, hub: &Hub) -> bool {
        match self.0 {
            Some(k) => !hub.timers.borrow().contains(k),
            None => true,
        }
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            Hub::current().timers.borrow_mut().remove(k);
        }
    }
}
