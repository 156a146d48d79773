//! `RLock`, `BoundedSemaphore`, `RwLock`, `Condvar` and `Barrier`: re-entry
//! and ownership, bounds, fairness, notification order, and use across
//! hubs and threads.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenlet::sync::{
    Barrier, BoundedSemaphore, Condvar, Mutex, RLock, ReleaseError, RwLock, TimedOut,
};
use util::{Log, within};

const LIMIT: Duration = Duration::from_secs(20);

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn locks_are_send_and_sync() {
    assert_send_sync::<RLock<RefCell<u8>>>();
    assert_send_sync::<RwLock<String>>();
    assert_send_sync::<Condvar>();
    assert_send_sync::<Barrier>();
    assert_send_sync::<BoundedSemaphore>();
}

/// A greenlet re-enters its own RLock at any depth without waiting, and
/// another greenlet waits until the outermost guard is gone.
#[test]
fn rlock_reentry_in_a_greenlet_and_exclusion_of_others() {
    within(LIMIT, || {
        let lock = Arc::new(RLock::new(RefCell::new(Vec::new())));
        fn nest(lock: &RLock<RefCell<Vec<String>>>, tag: &str, depth: u32) {
            let g = lock.lock();
            g.borrow_mut().push(format!("{tag}{depth}"));
            if depth > 0 {
                greenlet::sleep(Duration::from_millis(1)); // holding it
                nest(lock, tag, depth - 1);
            }
        }
        let gs: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|tag| {
                let lock = lock.clone();
                greenlet::spawn(move || nest(&lock, tag, 3))
            })
            .collect();
        for r in greenlet::joinall(gs) {
            r.unwrap();
        }
        assert_eq!(
            *lock.lock().borrow(),
            ["a3", "a2", "a1", "a0", "b3", "b2", "b1", "b0"]
        );
        assert!(!lock.is_locked());
    });
}

/// The root context is an owner too: it re-enters, and a greenlet is kept
/// out until the root lets go.
#[test]
fn rlock_reentry_in_root_context() {
    within(LIMIT, || {
        let lock = Arc::new(RLock::new(()));
        let outer = lock.lock();
        let inner = lock.try_lock().expect("the root re-enters");
        let other = greenlet::spawn({
            let lock = lock.clone();
            move || lock.lock_timeout(Duration::from_millis(10)).is_err()
        });
        assert!(other.join().unwrap(), "another greenlet must wait");
        drop(inner);
        assert!(lock.is_locked(), "still held by the outer guard");
        drop(outer);
        let other = greenlet::spawn({
            let lock = lock.clone();
            move || lock.try_lock().is_some()
        });
        assert!(other.join().unwrap());
    });
}

/// Roots of two threads are different owners.
#[test]
fn rlock_excludes_another_threads_root() {
    within(LIMIT, || {
        let lock = Arc::new(RLock::new(()));
        let g = lock.lock();
        let t = std::thread::spawn({
            let lock = lock.clone();
            move || {
                assert!(lock.try_lock().is_none());
                let _g = lock.lock(); // parks until the main thread lets go
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!t.is_finished());
        drop(g);
        t.join().unwrap();
    });
}

/// A greenlet killed while waiting for an RLock leaves no trace; one
/// killed while holding it releases it.
#[test]
fn rlock_killed_holder_and_waiter_release_cleanly() {
    within(LIMIT, || {
        let lock = Arc::new(RLock::new(()));
        let holder = greenlet::spawn({
            let lock = lock.clone();
            move || {
                let _a = lock.lock();
                let _b = lock.lock();
                greenlet::sleep(Duration::from_secs(60));
            }
        });
        let waiter = greenlet::spawn({
            let lock = lock.clone();
            move || drop(lock.lock())
        });
        greenlet::yield_now();
        waiter.kill();
        holder.kill();
        assert!(!lock.is_locked());
        assert!(lock.try_lock().is_some());
    });
}

#[test]
fn bounded_semaphore_refuses_release_past_its_initial_count() {
    let s = BoundedSemaphore::new(2);
    assert_eq!(s.release(), Err(ReleaseError));
    s.acquire().forget();
    s.acquire().forget();
    assert_eq!(s.available_permits(), 0);
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.release(), Err(ReleaseError));
    assert_eq!(s.available_permits(), 2);
    // RAII permits come back without exceeding the bound.
    let p = s.acquire();
    assert_eq!(s.available_permits(), 1);
    drop(p);
    assert_eq!(s.available_permits(), 2);
    assert_eq!(
        s.acquire_timeout(Duration::from_millis(1))
            .map(|p| p.forget()),
        Ok(())
    );
}

/// A released permit of a bounded semaphore goes to the first waiter.
#[test]
fn bounded_semaphore_release_wakes_a_waiter() {
    within(LIMIT, || {
        let s = Arc::new(BoundedSemaphore::new(1));
        s.acquire().forget();
        let waiter = greenlet::spawn({
            let s = s.clone();
            move || drop(s.acquire())
        });
        greenlet::yield_now();
        assert!(!waiter.is_finished());
        s.release().unwrap();
        waiter.join().unwrap();
        assert_eq!(s.available_permits(), 1);
    });
}

/// Readers share; a writer excludes everyone; a reader arriving while a
/// writer waits queues behind it (no writer starvation).
#[test]
fn rwlock_readers_share_and_writers_are_not_starved() {
    within(LIMIT, || {
        let lock = Arc::new(RwLock::new(0));
        let log = Log::new();
        let inside = Rc::new(Cell::new(0));
        let peak = Rc::new(Cell::new(0));
        let reader = |name: &'static str, hold: u64| {
            let (lock, log, inside, peak) =
                (lock.clone(), log.clone(), inside.clone(), peak.clone());
            greenlet::spawn(move || {
                let g = lock.read();
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                log.push(format!("{name} sees {}", *g));
                greenlet::sleep(Duration::from_millis(hold));
                inside.set(inside.get() - 1);
            })
        };
        let r1 = reader("r1", 20);
        let r2 = reader("r2", 20);
        greenlet::yield_now(); // both readers in
        let w = greenlet::spawn({
            let (lock, log) = (lock.clone(), log.clone());
            move || {
                let mut g = lock.write();
                log.push("w writes".to_string());
                *g = 1;
            }
        });
        greenlet::yield_now(); // the writer waits for the readers
        let r3 = reader("r3", 0); // comes after the writer
        for g in [r1, r2, w, r3] {
            g.join().unwrap();
        }
        assert_eq!(peak.get(), 2, "readers shared the lock");
        assert_eq!(
            log.snapshot(),
            ["r1 sees 0", "r2 sees 0", "w writes", "r3 sees 1"]
        );
        assert!(lock.try_write().is_some());
    });
}

#[test]
fn rwlock_timeouts_and_killed_waiters_leave_it_usable() {
    within(LIMIT, || {
        let lock = Arc::new(RwLock::new(()));
        let r = lock.read();
        assert_eq!(
            lock.write_timeout(Duration::from_millis(5)).err(),
            Some(TimedOut)
        );
        let w = greenlet::spawn({
            let lock = lock.clone();
            move || drop(lock.write())
        });
        greenlet::yield_now();
        // A reader queued behind the (killed) writer gets in once it's gone.
        let later = greenlet::spawn({
            let lock = lock.clone();
            move || drop(lock.read())
        });
        greenlet::yield_now();
        w.kill();
        later.join().unwrap();
        drop(r);
        assert!(lock.try_write().is_some());
    });
}

/// A writer whose thread exits while it waits (its hub cancels the wait)
/// lets the readers queued behind it in, as a killed one does: the lock
/// is only read-held. Before, they waited for the next release.
#[test]
fn rwlock_writer_cancelled_at_thread_exit_lets_the_readers_behind_it_in() {
    within(LIMIT, || {
        let lock = Arc::new(RwLock::new(()));
        let r = lock.read();
        let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn({
            let lock = lock.clone();
            move || {
                let _g = greenlet::spawn(move || drop(lock.write()));
                greenlet::yield_now(); // parked in write
                // The thread exits with it parked once the reader queued.
                exit_rx.recv().unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let reader = std::thread::spawn({
            let lock = lock.clone();
            move || {
                let got = lock.read_timeout(Duration::from_secs(5)).is_ok();
                (got, std::time::Instant::now())
            }
        });
        // Queued behind the writer by now (or it got in at once: then the
        // test proves nothing, but does not fail).
        std::thread::sleep(Duration::from_millis(200));
        exit_tx.send(()).unwrap();
        writer.join().unwrap();
        let exited = std::time::Instant::now();
        let (got, at) = reader.join().unwrap();
        assert!(
            got,
            "the reader stayed queued behind a writer whose thread exited"
        );
        assert!(at.saturating_duration_since(exited) < Duration::from_secs(3));
        drop(r);
        assert!(lock.try_write().is_some());
    });
}

/// `notify_one` wakes exactly one waiter, the longest-waiting one; each
/// further `notify_one` wakes the next.
#[test]
fn condvar_notify_one_wakes_one_waiter_in_order() {
    within(LIMIT, || {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let woke = Log::new();
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (pair, woke) = (pair.clone(), woke.clone());
                greenlet::spawn(move || {
                    let (m, cv) = &*pair;
                    let g = cv.wait(m.lock());
                    woke.push(i);
                    drop(g);
                })
            })
            .collect();
        greenlet::yield_now(); // all three wait
        for n in 1..=3 {
            pair.1.notify_one();
            greenlet::sleep(Duration::from_millis(2));
            assert_eq!(woke.len(), n, "one waiter per notify_one");
        }
        greenlet::joinall(waiters);
        assert_eq!(woke.snapshot(), [0, 1, 2]);
    });
}

/// `notify_all` wakes every waiter; each re-locks the mutex in turn.
#[test]
fn condvar_notify_all_wakes_every_waiter() {
    within(LIMIT, || {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let waiters: Vec<_> = (0..10)
            .map(|i| {
                let pair = pair.clone();
                greenlet::spawn(move || {
                    let (m, cv) = &*pair;
                    let g = cv.wait_while(m.lock(), |go| !*go);
                    assert!(*g);
                    i
                })
            })
            .collect();
        greenlet::yield_now();
        *pair.0.lock() = true;
        pair.1.notify_all();
        let got: Vec<i32> = greenlet::joinall(waiters)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

/// A plain OS thread notifies greenlets waiting on a condvar.
#[test]
fn condvar_notified_from_another_thread() {
    within(LIMIT, || {
        let pair = Arc::new((Mutex::new(0), Condvar::new()));
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let pair = pair.clone();
                greenlet::spawn(move || {
                    let (m, cv) = &*pair;
                    *cv.wait_while(m.lock(), |n| *n == 0)
                })
            })
            .collect();
        greenlet::yield_now();
        let t = std::thread::spawn({
            let pair = pair.clone();
            move || {
                *pair.0.lock() = 7;
                pair.1.notify_all();
            }
        });
        for r in greenlet::joinall(waiters) {
            assert_eq!(r.unwrap(), 7);
        }
        t.join().unwrap();
    });
}

/// A waiter killed after `notify_one` picked it passes the notification
/// to the next waiter.
#[test]
fn condvar_notification_of_a_killed_waiter_is_passed_on() {
    within(LIMIT, || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let spawn_waiter = || {
            let pair = pair.clone();
            greenlet::spawn(move || drop(pair.1.wait(pair.0.lock())))
        };
        let first = spawn_waiter();
        let second = spawn_waiter();
        greenlet::yield_now();
        pair.1.notify_one(); // picks `first`, which has not run yet
        first.kill();
        assert!(second.join().is_ok(), "second got the notification");
    });
}

#[test]
fn condvar_wait_timeout_reports_the_timeout() {
    within(LIMIT, || {
        let (m, cv) = (Mutex::new(1), Condvar::new());
        let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(10));
        assert!(r.timed_out());
        assert_eq!(*g, 1, "the mutex is locked again");
        drop(g);
        let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(10), |n| *n == 1);
        assert!(r.timed_out());
        drop(g);
        assert!(!m.is_locked());
    });
}

/// 100 greenlets, 50 on each of two hubs (two OS threads), meet at one
/// barrier: nobody passes before all have arrived, exactly one is the
/// leader, and the barrier is reusable for a second round.
#[test]
fn barrier_of_100_greenlets_across_two_hubs() {
    within(LIMIT, || {
        let barrier = Arc::new(Barrier::new(100));
        let arrived = Arc::new(AtomicUsize::new(0));
        let leaders = Arc::new(AtomicUsize::new(0));
        let early = Arc::new(AtomicUsize::new(0));
        let hub = |barrier: Arc<Barrier>,
                   arrived: Arc<AtomicUsize>,
                   leaders: Arc<AtomicUsize>,
                   early: Arc<AtomicUsize>| {
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..50)
                    .map(|i| {
                        let (barrier, arrived, leaders, early) = (
                            barrier.clone(),
                            arrived.clone(),
                            leaders.clone(),
                            early.clone(),
                        );
                        greenlet::spawn(move || {
                            for round in 0..2 {
                                greenlet::sleep(Duration::from_micros(i * 37 % 500));
                                arrived.fetch_add(1, Ordering::SeqCst);
                                if barrier.wait().is_leader() {
                                    leaders.fetch_add(1, Ordering::SeqCst);
                                }
                                if arrived.load(Ordering::SeqCst) < 100 * (round + 1) {
                                    early.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        })
                    })
                    .collect();
                for r in greenlet::joinall(gs) {
                    r.unwrap();
                }
            })
        };
        let a = hub(
            barrier.clone(),
            arrived.clone(),
            leaders.clone(),
            early.clone(),
        );
        let b = hub(
            barrier.clone(),
            arrived.clone(),
            leaders.clone(),
            early.clone(),
        );
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(arrived.load(Ordering::SeqCst), 200);
        assert_eq!(leaders.load(Ordering::SeqCst), 2, "one leader per round");
        assert_eq!(early.load(Ordering::SeqCst), 0, "nobody passed early");
    });
}

/// A waiter killed before its round completes leaves the round.
#[test]
fn barrier_waiter_killed_leaves_the_round() {
    within(LIMIT, || {
        let barrier = Arc::new(Barrier::new(2));
        let doomed = greenlet::spawn({
            let barrier = barrier.clone();
            move || {
                let _ = barrier.wait();
            }
        });
        greenlet::yield_now();
        doomed.kill();
        let partner = greenlet::spawn({
            let barrier = barrier.clone();
            move || barrier.wait().is_leader()
        });
        greenlet::yield_now();
        assert!(!partner.is_finished(), "the dead waiter no longer counts");
        assert!(barrier.wait().is_leader());
        assert!(!partner.join().unwrap());
    });
}
