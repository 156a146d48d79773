//! The loop: runs ready tasks in passes, and between passes fires
//! timers, drains the remote queue and polls epoll (see the module docs
//! of [`hub`](super)).

use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use super::park::RootResume;
use super::ready::ReadyQueue;
use super::remote::{Remote, RemoteMsg};
use super::task::{Fiber, Header, State, TaskRef, Wake};
use super::timers::TimerAction;
use super::{
    CURRENT, Hub, NEXT_STREAK, READY_RESERVE, SMALL_TABLE, TICK_BUDGET, interrupt,
    process_deadlock, task_slab,
};

#[cfg(test)]
mod tests;

impl Hub {
    #[inline]
    pub(super) fn push_ready(&self, task: TaskRef) {
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

    /// Runs one ready task until it parks, yields or finishes.
    #[inline]
    fn run_task(&self, task: TaskRef) {
        let hdr: &Header = &task;
        if hdr.state.get() != State::Ready {
            return; // killed before it ran, or a stale entry
        }
        // Keeps the loop consistent if anything below panics (it should
        // not: the fiber catches every panic of user code, but a failed
        // launch drops the user's closure here).
        let guard = RunGuard { task: &task };
        // SAFETY: only `run_task` resumes fibers, and the loop never runs
        // inside a greenlet, so this is the only live borrow of the fiber.
        let fiber = match unsafe { (*hdr.fiber.get()).as_mut() } {
            Some(f) => f,
            // Still in root context, and the task still `Ready`: a launch
            // that finds no stack drops the closure, and code in its drop
            // must not take itself for a greenlet that has no fiber to
            // suspend, nor the task for the running one (a kill of it would
            // be a self-kill, unwinding the loop's caller).
            None => match self.launch(&task) {
                Some(f) => f,
                None => {
                    // No stack: the task finished without running.
                    std::mem::forget(guard);
                    return self.finish(task);
                }
            },
        };
        hdr.state.set(State::Running);
        CURRENT.with(|c| c.set(hdr));
        self.monitor.switched(hdr);
        let result = fiber.resume(());
        std::mem::forget(guard);
        CURRENT.with(|c| c.set(ptr::null()));
        // The monitor hears that the greenlet left at the end of the pass
        // (`run_pass`), not here: one load and branch less per switch. In
        // between the loop only queues tasks, or finishes this one.
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
        // Asked once: nothing below starts or ends an unwinding of the
        // root (a panic out of a drop leaves this function).
        let catch = std::thread::panicking() && self.root.unwinding.get();
        let entry = self.tasks.borrow_mut().remove(hdr);
        drop_task_ref(entry, catch);
        hdr.notify_watchers(self);
        self.monitor.finished(hdr);
        if kept {
            // SAFETY: the reference the prologue leaked, taken over once:
            // a task finishes once.
            drop_task_ref(unsafe { TaskRef::adopt(hdr) }, catch);
        }
        drop_task_ref(task, catch);
    }

    /// Runs the loop until the root is unparked. The caller holds the
    /// [`LoopGuard`].
    pub(super) fn run_until_root_ready(&self) {
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
        let limit = snapshot.max(min_runs);
        let mut runs = 0;
        let root_ready = loop {
            if runs == limit {
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
        self.monitor.left();
        root_ready || root.state.get() == State::Ready
    }

    /// Whether a timer is armed, read between two task runs.
    #[inline(always)]
    fn timers_armed(&self) -> bool {
        // Debug builds (every test run) check the claim below at each call.
        debug_assert!(
            self.timers.try_borrow().is_ok(),
            "a timers borrow is live across a task switch"
        );
        // SAFETY: called by the loop between two task runs, when no
        // mutable borrow of `timers` is live (every borrow in the hub and
        // in the time module ends within its statement or function, and
        // the loop is not inside any of them); reading `len` through the
        // cell's pointer then races with nothing. It skips the borrow
        // flag's check and write-back on every switch.
        unsafe { !(*self.timers.as_ptr()).is_empty() }
    }

    /// Root `yield_now`: one pass, then one non-blocking maintenance pass
    /// that also polls epoll.
    pub(super) fn run_round(&self) {
        let _guard = LoopGuard::enter(self);
        let root: &Header = &self.root;
        interrupt::note_suspend(root);
        let _resume = RootResume(root);
        self.run_pass(0);
        self.ticks.set(TICK_BUDGET);
        self.maintain(false);
        self.monitor.root_running();
        self.guard_exit();
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
    /// (see [`StackPool::trim`](crate::fiber::stack::StackPool::trim)), the
    /// reactor's slots past the last one in use, the timer map's last node
    /// once no timer is left, the wait-slot table once no remote wait is
    /// pending, and the ready queue's room beyond a small reserve. After a
    /// peak of connections the runtime's own memory returns close to where
    /// it was.
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

/// Drops a reference to a finished task. The last one drops its result
/// (nobody joined it), running the user's `Drop`, whose panic goes on out
/// of the loop into the root's current call; but while the root is
/// unwinding (`catch`: the loop runs from a destructor, a guard that
/// joins), a second panic there would abort the process, so it is caught
/// instead (the panic hook has reported it).
#[inline]
fn drop_task_ref<T>(task: T, catch: bool) {
    if catch {
        super::drop_caught(task);
    } else {
        drop(task);
    }
}

/// Armed while `run_task` runs a task; forgotten on the normal path. If
/// anything unwinds out of resuming a fiber (nothing should: the fiber
/// catches every panic of user code), the loop is left consistent: no
/// greenlet is current, and the task is finished (its `join` reports it
/// killed) rather than left `Running` with a broken fiber.
///
/// It holds the task only: the hub is found again in the (cold) drop.
/// With the hub in it too, every run wrote two more words to the stack,
/// and a yield ping-pong measured about 5% slower (benches/compare's
/// README, "Issue 14, eighth pass").
struct RunGuard<'a> {
    task: &'a TaskRef,
}

impl Drop for RunGuard<'_> {
    #[cold]
    fn drop(&mut self) {
        // The loop runs only on its own hub's thread, while that hub is
        // alive (never after the thread's teardown began).
        let hub = Hub::current();
        CURRENT.with(|c| c.set(ptr::null()));
        hub.monitor.left();
        hub.finish(self.task.clone());
    }
}

/// Marks the loop as running; refuses re-entry.
pub(super) struct LoopGuard<'a>(&'a Hub);

impl<'a> LoopGuard<'a> {
    pub(super) fn enter(hub: &'a Hub) -> LoopGuard<'a> {
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
