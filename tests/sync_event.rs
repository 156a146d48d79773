//! `greenlet::sync::Event` and `AsyncResult`: wake-ups, timeouts, kills,
//! and cross-thread use.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::sync::{AsyncResult, Event, TimedOut};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn event_and_async_result_are_send_and_sync() {
    assert_send_sync::<Event>();
    assert_send_sync::<AsyncResult<String>>();
}

#[test]
fn set_wakes_every_waiter_in_order() {
    let e = Event::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..10)
        .map(|i| {
            let (e, order) = (e.clone(), order.clone());
            greenlet::spawn(move || {
                e.wait();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    greenlet::yield_now();
    assert!(!e.is_set());
    e.set();
    greenlet::joinall(waiters);
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
}

#[test]
fn set_then_clear_still_releases_notified_waiters() {
    let e = Event::new();
    let waiter = greenlet::spawn({
        let e = e.clone();
        move || e.wait()
    });
    greenlet::yield_now();
    e.set();
    e.clear(); // before the waiter got to run
    waiter.join().unwrap();
    assert!(!e.is_set());
    assert_eq!(e.wait_timeout(Duration::from_millis(1)), Err(TimedOut));
}

#[test]
fn wait_timeout_paths() {
    let e = Event::new();
    let t = Instant::now();
    assert_eq!(e.wait_timeout(Duration::from_millis(30)), Err(TimedOut));
    assert!(t.elapsed() >= Duration::from_millis(30));
    let setter = greenlet::spawn({
        let e = e.clone();
        move || {
            greenlet::sleep(Duration::from_millis(5));
            e.set();
        }
    });
    assert_eq!(e.wait_timeout(Duration::from_secs(5)), Ok(()));
    setter.join().unwrap();
    // Already set: returns at once, even with a zero timeout.
    assert_eq!(e.wait_timeout(Duration::ZERO), Ok(()));
}

#[test]
fn killed_waiter_does_not_disturb_the_others() {
    let e = Event::new();
    let doomed = greenlet::spawn({
        let e = e.clone();
        move || e.wait()
    });
    let survivor = greenlet::spawn({
        let e = e.clone();
        move || e.wait()
    });
    greenlet::yield_now();
    doomed.kill();
    assert!(doomed.join().unwrap_err().is_killed());
    e.set();
    survivor.join().unwrap();
}

#[test]
fn with_timeout_around_wait() {
    let e = Event::new();
    let r = greenlet::with_timeout(Duration::from_millis(10), || e.wait());
    assert!(r.is_err());
    e.set();
    e.wait();
}

#[test]
fn event_set_from_another_thread_wakes_the_root() {
    let e = Event::new();
    let t = std::thread::spawn({
        let e = e.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            e.set();
        }
    });
    let start = Instant::now();
    e.wait(); // the root runs its hub loop, woken through the remote queue
    assert!(start.elapsed() >= Duration::from_millis(15));
    t.join().unwrap();
}

#[test]
fn event_set_from_root_wakes_greenlets_on_other_threads() {
    let e = Event::new();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..10)
                    .map(|_| {
                        let e = e.clone();
                        greenlet::spawn(move || e.wait_timeout(Duration::from_secs(10)))
                    })
                    .collect();
                greenlet::joinall(gs)
                    .into_iter()
                    .filter(|r| matches!(r, Ok(Ok(()))))
                    .count()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    e.set();
    for t in threads {
        assert_eq!(t.join().unwrap(), 10);
    }
}

#[test]
fn async_result_get_and_set_once() {
    let r: AsyncResult<Result<u32, String>> = AsyncResult::new();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let r = r.clone();
            greenlet::spawn(move || r.get())
        })
        .collect();
    greenlet::yield_now();
    assert!(!r.is_ready());
    assert_eq!(r.try_get(), None);
    r.set(Err(String::from("boom"))).unwrap();
    assert_eq!(r.set(Ok(1)), Err(Ok(1)), "one-shot");
    for w in greenlet::joinall(waiters) {
        assert_eq!(w.unwrap(), Err(String::from("boom")));
    }
    assert!(r.is_ready());
    assert_eq!(r.wait(), &Err(String::from("boom")));
}

#[test]
fn async_result_timeouts() {
    let r = AsyncResult::<u8>::new();
    let t = Instant::now();
    assert_eq!(r.get_timeout(Duration::from_millis(20)), Err(TimedOut));
    assert_eq!(r.wait_timeout(Duration::from_millis(1)), Err(TimedOut));
    assert!(t.elapsed() >= Duration::from_millis(20));
    let setter = greenlet::spawn({
        let r = r.clone();
        move || {
            greenlet::sleep(Duration::from_millis(5));
            r.set(3).unwrap();
        }
    });
    assert_eq!(r.get_timeout(Duration::from_secs(5)), Ok(3));
    setter.join().unwrap();
}

#[test]
fn async_result_killed_waiter_and_cross_thread_set() {
    let r = AsyncResult::new();
    let doomed = greenlet::spawn({
        let r = r.clone();
        move || r.get()
    });
    greenlet::yield_now();
    doomed.kill();
    let t = std::thread::spawn({
        let r = r.clone();
        move || r.set(String::from("from a thread")).unwrap()
    });
    assert_eq!(r.get(), "from a thread");
    t.join().unwrap();
}

/// gevent's ordering: `set` wakes the waiters in the order they began
/// waiting, and the setter calling `wait` right after (while those waiters
/// have been woken but not run) returns after them. Modelled on gevent's
/// `test__event.py` `test_wait_while_notifying` (gevent is MIT-licensed).
#[test]
fn wait_while_waiters_are_being_woken_runs_after_them() {
    let e = Event::new();
    let results = Rc::new(RefCell::new(Vec::new()));
    let wait_then_append = |e: Event, results: Rc<RefCell<Vec<i32>>>, arg| {
        move || {
            e.wait();
            results.borrow_mut().push(arg);
        }
    };
    let w1 = greenlet::spawn(wait_then_append(e.clone(), results.clone(), 1));
    let w2 = greenlet::spawn(wait_then_append(e.clone(), results.clone(), 2));
    greenlet::yield_now();
    assert!(results.borrow().is_empty());
    e.set();
    wait_then_append(e.clone(), results.clone(), 3)(); // the root, right away
    assert_eq!(*results.borrow(), [1, 2, 3]);
    w1.join().unwrap();
    w2.join().unwrap();
    // Once they have all run, a wait on the set event returns at once.
    wait_then_append(e.clone(), results.clone(), 4)();
    assert_eq!(*results.borrow(), [1, 2, 3, 4]);
}

/// The same from a greenlet: one that calls `wait` on the set event before
/// the woken waiters ran returns after them.
#[test]
fn greenlet_waiting_on_a_set_event_yields_to_woken_waiters() {
    let e = Event::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (e, order) = (e.clone(), order.clone());
            greenlet::spawn(move || {
                e.wait();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    greenlet::yield_now();
    let setter = greenlet::spawn({
        let (e, order) = (e.clone(), order.clone());
        move || {
            e.set();
            e.wait();
            order.borrow_mut().push(99);
        }
    });
    setter.join().unwrap();
    greenlet::joinall(waiters);
    assert_eq!(*order.borrow(), [0, 1, 2, 99]);
}

/// A woken waiter killed before it ran holds nobody up.
#[test]
fn killed_woken_waiter_does_not_hold_up_later_waits() {
    let e = Event::new();
    let w = greenlet::spawn({
        let e = e.clone();
        move || e.wait()
    });
    greenlet::yield_now();
    e.set();
    w.kill();
    let t = Instant::now();
    for _ in 0..3 {
        e.wait();
    }
    assert_eq!(e.wait_timeout(Duration::from_millis(1)), Ok(()));
    assert!(t.elapsed() < Duration::from_secs(1));
}
