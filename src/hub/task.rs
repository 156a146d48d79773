//! The per-greenlet record the hub schedules.
//!
//! A `Task<S>` is one allocation: the untyped [`Header`] the hub works with,
//! followed by the typed result slot `S` that only the `Greenlet<T>` handle
//! reads. The hub holds tasks as `Rc<Task<dyn Slot>>` ([`TaskRef`]), so the
//! scheduler is not generic while `join` stays typed and allocation-free.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::rc::Rc;

use corosensei::{Coroutine, Yielder};

use crate::fiber::stack::PooledStack;
use crate::hub::timers::TimerKey;
use crate::greenlet::JoinError;

/// The coroutine type every greenlet runs in: resumed with `()`, suspends
/// with `()`, returns `()`. Why it was resumed lives in [`Header::wake`].
pub(crate) type Fiber = Coroutine<(), (), (), PooledStack>;

/// Marker for a task's typed result slot (object-safe, no methods).
pub(crate) trait Slot {}
impl<T> Slot for T {}

/// A shared handle to a task, as the hub stores it.
pub(crate) type TaskRef = Rc<Task<dyn Slot>>;

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
}

/// Completion order for `iwait`.
pub(crate) struct Collector {
    pub(crate) done: RefCell<std::collections::VecDeque<usize>>,
    pub(crate) waiter: RefCell<Option<TaskRef>>,
}

/// The untyped part of a task.
pub(crate) struct Header {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// Lowest address of the stack slot (its guard page); 0 for the root.
    pub(crate) stack_lo: usize,
    /// Stack size in bytes including the guard page; 0 for the root.
    pub(crate) stack_size: usize,
    pub(crate) state: Cell<State>,
    pub(crate) wake: Cell<Wake>,
    /// `kill` was requested and not yet delivered.
    pub(crate) kill: Cell<bool>,
    /// The task was killed (delivered or before it started).
    pub(crate) killed: Cell<bool>,
    /// A `with_timeout` expired: (nesting depth, timeout id). The outermost
    /// expired scope wins.
    pub(crate) timeout: Cell<Option<(u32, u64)>>,
    /// How many `with_timeout` scopes are open in this task.
    pub(crate) timeout_depth: Cell<u32>,
    /// The timer that will start a `spawn_later` task.
    pub(crate) start_timer: Cell<Option<TimerKey>>,
    /// Who waits for this task to finish. Empty for most tasks.
    pub(crate) watchers: RefCell<Vec<Watcher>>,
    /// The fiber; `None` for the root, and once finished.
    pub(crate) fiber: UnsafeCell<Option<Fiber>>,
    /// The fiber's yielder while it runs (points into its own stack).
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    /// The task holds itself alive from its first run until it finishes, so
    /// a parked greenlet nobody else refers to is never dropped mid-stack.
    pub(crate) keepalive: UnsafeCell<Option<TaskRef>>,
}

/// A task: header plus typed result slot.
pub(crate) struct Task<S: ?Sized> {
    pub(crate) hdr: Header,
    pub(crate) slot: S,
}

/// The typed result slot of a `Greenlet<T>`.
pub(crate) type ResultSlot<T> = UnsafeCell<Option<Result<T, JoinError>>>;

impl Header {
    pub(crate) fn new(id: u64, name: Option<Box<str>>, stack_lo: usize, stack_size: usize) -> Self {
        Header {
            id,
            name,
            stack_lo,
            stack_size,
            state: Cell::new(State::Ready),
            wake: Cell::new(Wake::Ready),
            kill: Cell::new(false),
            killed: Cell::new(false),
            timeout: Cell::new(None),
            timeout_depth: Cell::new(0),
            start_timer: Cell::new(None),
            watchers: RefCell::new(Vec::new()),
            fiber: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            keepalive: UnsafeCell::new(None),
        }
    }

    /// Whether this is a thread's root pseudo-task.
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.stack_size == 0
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.get() == State::Finished
    }

    /// Records an expired `with_timeout` scope unless an outer one already
    /// expired.
    pub(crate) fn set_timeout(&self, depth: u32, id: u64) {
        match self.timeout.get() {
            Some((d, _)) if d <= depth => {}
            _ => self.timeout.set(Some((depth, id))),
        }
    }

    /// Wakes everyone waiting for this task to finish.
    pub(crate) fn notify_watchers(&self, hub: &crate::hub::Hub) {
        let watchers = std::mem::take(&mut *self.watchers.borrow_mut());
        for w in watchers {
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
            }
        }
    }
}
