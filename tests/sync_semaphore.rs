//! `greenlet::sync::Semaphore`: bounds, FIFO hand-off, timeouts, kills and
//! cross-thread use.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::sync::{Semaphore, TimedOut};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn semaphore_is_send_and_sync() {
    assert_send_sync::<Semaphore>();
}

#[test]
fn bounds_concurrency() {
    let sem = Rc::new(Semaphore::new(3));
    let (busy, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let gs: Vec<_> = (0..30)
        .map(|_| {
            let (sem, busy, peak) = (sem.clone(), busy.clone(), peak.clone());
            greenlet::spawn(move || {
                let _p = sem.acquire();
                busy.set(busy.get() + 1);
                peak.set(peak.get().max(busy.get()));
                greenlet::sleep(Duration::from_millis(1));
                busy.set(busy.get() - 1);
            })
        })
        .collect();
    greenlet::joinall(gs);
    assert_eq!(peak.get(), 3);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn permits_are_handed_out_fifo_without_barging() {
    let sem = Rc::new(Semaphore::new(1));
    let order = Rc::new(RefCell::new(Vec::new()));
    let held = sem.acquire();
    let waiters: Vec<_> = (0..10)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            greenlet::spawn(move || {
                let _p = sem.acquire();
                order.borrow_mut().push(i);
                greenlet::yield_now();
            })
        })
        .collect();
    greenlet::yield_now(); // all ten queue up
    drop(held); // handed straight to waiter 0
    // A newcomer cannot take the permit ahead of the queue.
    assert!(sem.try_acquire().is_none());
    greenlet::joinall(waiters);
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
    assert!(sem.try_acquire().is_some());
}

#[test]
fn acquire_timeout_paths() {
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.acquire();
    let t = Instant::now();
    assert!(matches!(
        sem.acquire_timeout(Duration::from_millis(30)),
        Err(TimedOut)
    ));
    assert!(t.elapsed() >= Duration::from_millis(30));
    held.forget();
    let releaser = greenlet::spawn({
        let sem = sem.clone();
        move || {
            greenlet::sleep(Duration::from_millis(5));
            sem.add_permits(1);
        }
    });
    assert!(sem.acquire_timeout(Duration::from_secs(5)).is_ok());
    releaser.join().unwrap();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn timed_out_waiter_does_not_take_a_later_permit() {
    let sem = Rc::new(Semaphore::new(0));
    let g = greenlet::spawn({
        let sem = sem.clone();
        move || sem.acquire_timeout(Duration::from_millis(5)).is_ok()
    });
    assert!(!g.join().unwrap());
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn killed_waiter_passes_its_permit_on() {
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.acquire();
    let doomed = greenlet::spawn({
        let sem = sem.clone();
        move || sem.acquire().forget()
    });
    let survivor = greenlet::spawn({
        let sem = sem.clone();
        move || drop(sem.acquire())
    });
    greenlet::yield_now();
    drop(held); // handed to `doomed`, which has not run yet
    doomed.kill();
    assert!(doomed.join().unwrap_err().is_killed());
    survivor.join().unwrap(); // got the permit `doomed` never used
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn killed_waiter_permit_returns_to_the_count() {
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.acquire();
    let doomed = greenlet::spawn({
        let sem = sem.clone();
        move || sem.acquire().forget()
    });
    greenlet::yield_now();
    drop(held);
    doomed.kill();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn with_timeout_around_acquire() {
    let sem = Semaphore::new(0);
    assert!(greenlet::with_timeout(Duration::from_millis(5), || sem.acquire().forget()).is_err());
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn shared_between_threads() {
    static SEM: Semaphore = Semaphore::new(2);
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let inside = inside.clone();
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..5)
                    .map(|_| {
                        let inside = inside.clone();
                        greenlet::spawn(move || {
                            let _p = SEM.acquire();
                            let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            assert!(n < 2, "more than two holders");
                            greenlet::sleep(Duration::from_millis(1));
                            inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        })
                    })
                    .collect();
                for r in greenlet::joinall(gs) {
                    r.unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(SEM.available_permits(), 2);
}
