//! Thread exit: the hub stops for good before the thread-locals its
//! greenlets may borrow are destroyed.
//!
//! A greenlet can park inside `LocalKey::with`, holding a borrow of a
//! thread-local. At thread exit glibc destroys thread-locals in reverse
//! order of registration (std registers each at its first use), and the
//! hub's own teardown (`HubOwner`, registered when the hub was made) runs
//! after every thread-local first used later. Before this module, a
//! destructor that ran earlier and ran the hub (a `sleep`, a `join`, green
//! I/O) resumed parked greenlets whose borrowed thread-local could already
//! be gone, and the teardown cancelled sync waits through primitives that
//! such a thread-local (or another thread, dropping the last clone) had
//! freed.
//!
//! So the hub registers a *freeze* destructor of its own after every
//! thread-local registration that a parked greenlet may depend on: each
//! time the loop hands control back to the root ([`Hub::guard_exit`]), if
//! greenlets that have started are alive and the thread registered
//! thread-local destructors since the last freeze registration
//! (`sys::tls_dtor::registrations`), it registers a new one. A greenlet's
//! borrow is taken before it parks, so the thread-local it borrows was
//! registered before the loop returned, hence before the freeze: the freeze
//! runs first at thread exit. It cancels the sync waits (every primitive is
//! still alive then) and ends every started greenlet where it is parked:
//! it is finished, as if killed, without unwinding, its stack leaked and
//! kept mapped (as the teardown did). Joiners see it killed and its links
//! run. Greenlets that never started stay runnable: they borrow nothing.
//!
//! Later destructors may still use the hub (spawn, sleep, join). A
//! greenlet that parks then is covered by a new freeze registered as the
//! loop returns; registered while glibc runs destructors, it runs right
//! after the current one.
//!
//! Where the count is not available (not Linux with glibc, or a static
//! binary), nothing is registered and the hub stops in its own destructor,
//! as before; see the crate docs' known gap.

use std::ffi::c_void;

use super::Hub;
use super::task::{State, TaskRef};
use crate::sys::tls_dtor;

impl Hub {
    /// Called whenever the loop returns to the root: registers a freeze
    /// (see the module docs) if a started greenlet is alive and the thread
    /// registered thread-local destructors since the last one.
    #[inline]
    pub(super) fn guard_exit(&self) {
        if self.live.get() > self.frozen.get() && tls_dtor::registrations() != self.freeze_at.get()
        {
            self.register_freeze();
        }
    }

    #[cold]
    #[inline(never)]
    fn register_freeze(&self) {
        // SAFETY: `freeze` ignores its argument and reaches the hub through
        // `Hub::try_current` (`None` once the hub is gone); it runs in root
        // context and catches its own panics.
        if unsafe { tls_dtor::register(freeze, std::ptr::null_mut()) } {
            self.freeze_at.set(tls_dtor::registrations());
        }
    }

    /// Ends every greenlet that has started, where it is parked (see the
    /// module docs). Runs in root context, from a thread-local destructor.
    fn freeze(&self) {
        // Whatever happens next, a greenlet parked from now on needs a new
        // freeze: none of the registrations counted so far is newer.
        self.freeze_at.set(u64::MAX);
        // Only parked greenlets wait (the root runs this): cancelled while
        // every primitive is still alive.
        self.sync_waits.cancel_all();
        let started: Vec<TaskRef> = self
            .tasks
            .borrow()
            .iter()
            .filter(|t| {
                !t.yielder.get().is_null() && matches!(t.state.get(), State::Parked | State::Ready)
            })
            .cloned()
            .collect();
        // All of them first: a link run below may run the loop, which
        // must find none of them ready.
        for task in &started {
            self.freeze_task(task);
        }
        // Wakes their joiners (finished, no result: killed) and runs their
        // links, which catch their own panics.
        for task in &started {
            task.notify_watchers(self);
        }
    }

    /// Finishes `task` without resuming it: no result (joins report it
    /// killed), its fiber and its reference to itself leaked, so its stack
    /// stays mapped and its header alive. A wake-up that still reaches it
    /// finds it finished and does nothing; an entry left in the ready
    /// queue is skipped.
    fn freeze_task(&self, task: &TaskRef) {
        if task.counted_unwinding.replace(false) {
            self.parked_unwinding.set(self.parked_unwinding.get() - 1);
        }
        task.state.set(State::Finished);
        self.frozen.set(self.frozen.get() + 1);
        let entry = self.tasks.borrow_mut().remove(task);
        drop(entry);
        self.monitor.finished(task);
    }
}

/// The freeze destructor (see the module docs).
unsafe extern "C" fn freeze(_: *mut c_void) {
    // A panic must not leave a thread-local destructor: that aborts.
    super::run_caught(|| {
        // In a greenlet's context only when that greenlet ended the
        // process (`std::process::exit`): the destructors run on its stack,
        // and the hub's own teardown handles that case.
        if !super::current_header().is_null() {
            return;
        }
        if let Some(hub) = Hub::try_current()
            && !hub.in_loop.get()
        {
            hub.freeze();
        }
    });
}
