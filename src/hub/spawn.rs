//! Creating tasks: spawning, delayed and unscheduled starts, and the
//! typed first run of a task's closure on its new stack.

use std::cell::UnsafeCell;
use std::io;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::time::Duration;

use corosensei::Yielder;

use super::task::{self, Fiber, Header, ResultSlot, State, TaskRef};
use super::timers::TimerAction;
use super::{Hub, JoinError, UNSCHEDULED, deadline_after, resume_unwind_marked};

impl Hub {
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
        // The closure's destructor is user code, run here on the caller's
        // stack: it may panic, or park and have a kill or timeout of the
        // caller delivered. The task is finished either way, and whoever
        // waits for it is told so before that unwind goes on (a joiner
        // would otherwise wait forever, and a `scope` owner would be unwound
        // past its wait).
        let dropped = match hdr.take_launch() {
            // SAFETY: `launch` was set by `spawn` for this task's payload
            // type; `None` asks it to discard.
            Some(launch) => catch_unwind(AssertUnwindSafe(|| unsafe { launch(task, None) })),
            None => Ok(false),
        };
        hdr.notify_watchers(self);
        if let Err(payload) = dropped {
            resume_unwind_marked(payload);
        }
    }

    /// Whether a task has begun running.
    pub(crate) fn has_started(&self, hdr: &Header) -> bool {
        hdr.launched()
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
        let f = unsafe { (*payload.f.get()).take() };
        if let Some(h) = Hub::try_current() {
            h.stacks.unreserve(task.stack_size());
        }
        // Last: the closure's destructor may unwind.
        drop(f);
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
            // Killed, and the kill was caught (`catch_unwind`) or met only
            // calls that cannot unwind (the monkey hooks fail instead): it
            // still dies as killed.
            let killed = result.is_ok() && (*hdr).kill.get();
            // The greenlet is done: interrupts aimed at its body no
            // longer apply to the destructors below.
            (*hdr).kill.set(false);
            (*hdr).take_expired_timeout();
            (*hdr).unwinding.set(false);
            if killed {
                // Its value is dropped here, on its stack, like its locals
                // below: the destructor may park, and nothing it does (a
                // panic reported by the hook) leaves this closure.
                let value = std::mem::replace(&mut result, Err(JoinError::killed()));
                let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
            }
            // Greenlet-local values die with the greenlet, on its own
            // stack (their destructors may still park). A panicking
            // destructor was reported by the panic hook; it does not
            // change the result, and it ends only its own round of
            // `clear`: values made meanwhile are dropped here too, not
            // later wherever the task's last reference goes.
            if let Some(cold) = (*hdr).cold_if_any() {
                while catch_unwind(AssertUnwindSafe(|| cold.locals.clear())).is_err() {}
            }
            *(*slot).get() = Some(result);
        }
    });
    // SAFETY: the caller guarantees the slot is empty and unborrowed.
    unsafe { *task.fiber.get() = Some(fiber) };
    true
}
