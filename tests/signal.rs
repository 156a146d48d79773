//! `greenlet::signal`: signals read through a signalfd in the hub.
//!
//! Every signal here is raised to the test's own thread (`raise`), after
//! that thread blocked it: a process-directed signal could be delivered to
//! another test thread, which does not block it, and end the process. The
//! process-directed case (SIGTERM from outside) is tested through the
//! `http_server` example in `examples_servers.rs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenlet::signal::{self, SIGUSR1, SIGUSR2, Signals};

/// Runs `f` on its own thread (with its own hub and signal mask) and fails
/// the test if it has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

fn raise(sig: i32) {
    // SAFETY: raise sends `sig` to this thread, which has blocked it.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn a_greenlet_waiting_for_sigusr1_wakes_when_it_is_raised() {
    deadline(10, || {
        let signals = Signals::new(&[SIGUSR1, SIGUSR2]).unwrap();
        let woke = Rc::new(Cell::new(false));
        let w = woke.clone();
        let waiter = greenlet::spawn(move || {
            let s = signals.wait();
            w.set(true);
            s
        });
        greenlet::sleep(Duration::from_millis(20));
        assert!(!woke.get(), "woke before the signal");
        raise(SIGUSR1);
        assert_eq!(waiter.join().unwrap().unwrap(), SIGUSR1);
    });
}

#[test]
fn a_signal_raised_before_the_wait_stays_pending_until_read() {
    deadline(10, || {
        let signals = Signals::new(&[SIGUSR2]).unwrap();
        assert_eq!(signals.try_wait().unwrap(), None);
        raise(SIGUSR2);
        assert_eq!(
            signals.wait_timeout(Duration::from_secs(5)).unwrap(),
            Some(SIGUSR2)
        );
        assert_eq!(
            signals.wait_timeout(Duration::from_millis(20)).unwrap(),
            None
        );
    });
}

#[test]
fn killing_a_waiter_leaves_the_signal_pending_for_the_next_wait() {
    deadline(10, || {
        let signals = Rc::new(Signals::new(&[SIGUSR1]).unwrap());
        let s = signals.clone();
        let waiter = greenlet::spawn(move || s.wait());
        greenlet::sleep(Duration::from_millis(10));
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        raise(SIGUSR1);
        assert_eq!(signals.try_wait().unwrap(), Some(SIGUSR1));
        let r = greenlet::with_timeout(Duration::from_millis(20), || signals.wait());
        assert!(r.is_err(), "with_timeout must end the wait");
    });
}

#[test]
fn handler_runs_each_arrival_in_a_greenlet_of_its_own() {
    deadline(10, || {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let handler = signal::handler(SIGUSR2, move || {
            let me = greenlet::current().expect("a handler runs in a greenlet");
            // A handler may block like any greenlet.
            greenlet::sleep(Duration::from_millis(1));
            s.borrow_mut().push(me.id());
        })
        .unwrap();
        assert_eq!(handler.signal(), SIGUSR2);
        greenlet::yield_now();
        for _ in 0..3 {
            raise(SIGUSR2);
            // Separate arrivals: pending standard signals coalesce.
            greenlet::sleep(Duration::from_millis(10));
        }
        let ids = seen.borrow().clone();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
        handler.cancel();
        // Cancelled: the next arrival stays pending, nobody runs.
        raise(SIGUSR2);
        greenlet::sleep(Duration::from_millis(10));
        assert_eq!(seen.borrow().len(), 3);
        let pending = Signals::new(&[SIGUSR2]).unwrap();
        assert_eq!(pending.try_wait().unwrap(), Some(SIGUSR2));
    });
}

#[test]
fn wait_and_block_reject_numbers_that_are_not_signals() {
    assert!(signal::block(&[1000]).is_err());
    assert!(Signals::new(&[-1]).is_err());
    assert!(signal::wait(&[0, 1000]).is_err());
}

/// A `Handler` the hub loop drops (the value of a detached greenlet) stops
/// without blocking: dropping it there must not make the loop's caller
/// panic with "a blocking call was made from inside the hub loop".
#[test]
fn a_handler_dropped_by_the_hub_loop_stops_without_blocking() {
    deadline(10, || {
        let handler = signal::handler(SIGUSR1, || panic!("the handler still runs")).unwrap();
        greenlet::yield_now(); // its listener parks
        drop(greenlet::spawn(move || handler)); // detached: the loop drops it
        let r = std::panic::catch_unwind(|| greenlet::sleep(Duration::from_millis(10)));
        assert!(r.is_ok(), "the loop's caller was unwound");
        // Stopped: an arrival stays pending, nobody runs.
        raise(SIGUSR1);
        greenlet::sleep(Duration::from_millis(10));
        let pending = Signals::new(&[SIGUSR1]).unwrap();
        assert_eq!(pending.try_wait().unwrap(), Some(SIGUSR1));
    });
}

/// A `Handler` dropped while its owner unwinds stops too (without waiting).
#[test]
fn a_handler_dropped_while_unwinding_stops() {
    deadline(10, || {
        let handler = signal::handler(SIGUSR1, || panic!("the handler still runs")).unwrap();
        greenlet::yield_now(); // its listener parks
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _handler = handler;
            panic!("the owner fails");
        }));
        assert!(r.is_err());
        raise(SIGUSR1);
        greenlet::sleep(Duration::from_millis(10));
        let pending = Signals::new(&[SIGUSR1]).unwrap();
        assert_eq!(pending.try_wait().unwrap(), Some(SIGUSR1));
    });
}
