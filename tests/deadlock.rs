//! Deadlocks among Mutex holders and join targets panic at the wait that
//! closes them, naming the cycle; locking a Mutex twice panics at once.

mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenlet::sync::Mutex;
use util::{payload_message, within};

#[test]
fn a_greenlet_locking_a_mutex_it_holds_panics_at_once() {
    within(Duration::from_secs(1), || {
        let m = Rc::new(Mutex::new(0));
        let m2 = m.clone();
        let g = greenlet::Builder::new()
            .name("relocker")
            .spawn(move || {
                let _a = m2.lock();
                let _b = m2.lock();
            })
            .unwrap();
        let err = g.join().unwrap_err();
        let msg = err.panic_message().unwrap().to_string();
        assert!(
            msg.starts_with("deadlock: 'relocker' already holds this Mutex"),
            "{msg}"
        );
        // The guard was released by the unwind.
        assert!(!m.is_locked());
    });
}

#[test]
fn the_root_locking_a_mutex_it_holds_panics_at_once() {
    // `within` runs this on a fresh thread: the first lock is taken before
    // the thread has a hub.
    within(Duration::from_secs(1), || {
        let m = Mutex::new(());
        let _held = m.lock();
        let r = catch_unwind(AssertUnwindSafe(|| drop(m.lock())));
        let msg = payload_message(&*r.unwrap_err());
        assert!(msg.contains("the root already holds this Mutex"), "{msg}");
    });
}

#[test]
fn two_greenlets_locking_each_others_mutex_panic_naming_the_cycle() {
    within(Duration::from_secs(1), || {
        let m1 = Arc::new(Mutex::new(()));
        let m2 = Arc::new(Mutex::new(()));
        let (a1, a2) = (m1.clone(), m2.clone());
        let a = greenlet::Builder::new()
            .name("a")
            .spawn(move || {
                let _g = a1.lock();
                greenlet::sleep(Duration::from_millis(10));
                let _h = a2.lock();
            })
            .unwrap();
        let (b1, b2) = (m1.clone(), m2.clone());
        let b = greenlet::Builder::new()
            .name("b")
            .spawn(move || {
                let _g = b2.lock();
                greenlet::sleep(Duration::from_millis(20));
                let _h = b1.lock();
            })
            .unwrap();
        // 'a' parks on m2 (held by 'b') first; 'b' closes the cycle and
        // panics; its unwind releases m2, so 'a' then goes on.
        a.join().unwrap();
        let err = b.join().unwrap_err();
        let msg = err.panic_message().unwrap().to_string();
        assert!(msg.starts_with("deadlock: 'b' waits for Mutex #"), "{msg}");
        assert!(msg.contains("held by 'a', 'a' waits for Mutex #"), "{msg}");
        assert!(msg.contains("held by 'b'"), "{msg}");
        assert!(!m1.is_locked() && !m2.is_locked());
    });
}

#[test]
fn a_join_and_a_mutex_forming_a_cycle_panic_at_the_join() {
    within(Duration::from_secs(1), || {
        let m = Rc::new(Mutex::new(()));
        let m2 = m.clone();
        let held = m.lock(); // the root holds it
        let worker = greenlet::Builder::new()
            .name("worker")
            .spawn(move || drop(m2.lock()))
            .unwrap();
        greenlet::yield_now(); // the worker parks on the mutex
        let r = catch_unwind(AssertUnwindSafe(|| worker.join()));
        let msg = payload_message(&*r.unwrap_err());
        assert!(
            msg.starts_with("deadlock: the root joins 'worker'"),
            "{msg}"
        );
        assert!(msg.contains("'worker' waits for Mutex #"), "{msg}");
        assert!(msg.contains("held by the root"), "{msg}");
        drop(held);
        assert!(
            !m.is_locked() || {
                greenlet::yield_now();
                true
            }
        );
    });
}

#[test]
fn a_mutex_held_on_another_thread_is_not_a_cycle() {
    within(Duration::from_secs(5), || {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let mut g = m2.lock();
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            *g += 1;
        });
        rx.recv().unwrap();
        // The root waits for a lock another thread holds: no panic, it
        // just waits.
        assert_eq!(*m.lock(), 1);
        t.join().unwrap();
    });
}

#[test]
fn a_timed_relock_times_out_instead_of_panicking() {
    within(Duration::from_secs(2), || {
        let m = Mutex::new(());
        let _held = m.lock();
        assert!(m.lock_timeout(Duration::from_millis(5)).is_err());
        assert!(greenlet::with_timeout(Duration::from_millis(5), || drop(m.lock())).is_err());
    });
}
