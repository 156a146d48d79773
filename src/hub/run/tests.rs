//! The loop around a task's first run.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use crate::fiber::stack::FAIL_NEXT_TAKE;
use crate::hub::current_header;
use crate::test_util::within;

/// Runs `on_drop` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// When a greenlet cannot get a stack at its first run, its closure is
/// dropped by the loop, in root context: user code in that drop must not
/// see itself as the greenlet that never started (which has no fiber to
/// suspend).
#[test]
fn a_closure_dropped_by_a_failed_launch_drops_in_root_context() {
    within(Duration::from_secs(20), || {
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let guard = OnDrop(move || s.set(Some(current_header().is_null())));
        FAIL_NEXT_TAKE.with(|f| f.set(true));
        let g = crate::spawn(move || drop(guard));
        let err = g.join().unwrap_err();
        assert!(
            err.to_string().contains("could not get a stack"),
            "join error: {err}"
        );
        assert_eq!(
            seen.get(),
            Some(true),
            "the closure was dropped outside root context"
        );
        // The hub goes on: the next greenlet gets a stack and runs.
        assert_eq!(crate::spawn(|| 7).join().unwrap(), 7);
    });
}

/// A blocking call in that drop is refused with the loop's clear panic
/// (a destructor the hub runs may not block), not a switch into a fiber
/// that does not exist; the hub survives it.
#[test]
fn a_blocking_call_in_a_failed_launch_s_drop_is_refused_and_the_hub_survives() {
    within(Duration::from_secs(20), || {
        let guard = OnDrop(crate::yield_now);
        FAIL_NEXT_TAKE.with(|f| f.set(true));
        let g = crate::spawn(move || drop(guard));
        let panic = catch_unwind(AssertUnwindSafe(|| g.join())).unwrap_err();
        let err = crate::hub::JoinError::from_payload(panic);
        let msg = err.panic_message().unwrap_or_default();
        assert!(msg.contains("inside the hub loop"), "panic: {msg}");
        assert!(current_header().is_null());
        assert_eq!(crate::spawn(|| 7).join().unwrap(), 7);
        let other = crate::spawn(|| {
            crate::yield_now();
            8
        });
        assert_eq!(other.join().unwrap(), 8);
    });
}

/// The task is not taken for the running greenlet while its closure is
/// dropped by a failed launch either: a kill of it from that drop (say, a
/// guard that stops its own greenlet) is a kill of a greenlet that is not
/// running, not a self-kill that unwinds the loop's caller.
#[test]
fn a_kill_of_the_task_from_a_failed_launch_s_drop_does_not_unwind_the_loop() {
    within(Duration::from_secs(20), || {
        let handle: Rc<std::cell::RefCell<Option<crate::Greenlet<()>>>> = Rc::default();
        let h = handle.clone();
        let guard = OnDrop(move || {
            if let Some(g) = h.borrow().as_ref() {
                g.kill_nowait();
            }
        });
        FAIL_NEXT_TAKE.with(|f| f.set(true));
        *handle.borrow_mut() = Some(crate::spawn(move || drop(guard)));
        let r = catch_unwind(AssertUnwindSafe(crate::yield_now));
        assert!(r.is_ok(), "the loop's caller was unwound");
        let g = handle.borrow_mut().take().unwrap();
        let err = g.join().unwrap_err();
        assert!(
            err.to_string().contains("could not get a stack"),
            "join error: {err}"
        );
        assert_eq!(crate::spawn(|| 7).join().unwrap(), 7);
    });
}
