//! One hub per OS thread: independence, and what happens to greenlets when
//! their thread ends.

mod util;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenlet::Greenlet;
use util::{assert_child_passed, child_mode, run_child};

/// Sets the flag when dropped; `Send`, to be checked from another thread.
struct SendFlag(Arc<AtomicBool>);

impl Drop for SendFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn send_flag() -> (SendFlag, Arc<AtomicBool>) {
    let f = Arc::new(AtomicBool::new(false));
    (SendFlag(f.clone()), f)
}

#[test]
fn hubs_on_several_threads_run_independently() {
    let t = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..1000u64)
                    .map(|i| {
                        greenlet::spawn(move || {
                            greenlet::sleep(Duration::from_millis(50));
                            n * 1000 + i
                        })
                    })
                    .collect();
                greenlet::joinall(gs)
                    .into_iter()
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
        })
        .collect();
    let sums: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (n, s) in sums.into_iter().enumerate() {
        let n = n as u64;
        assert_eq!(s, (0..1000).map(|i| n * 1000 + i).sum::<u64>());
    }
    // A loose bound (the sleeps take 50 ms): it catches a hub that hangs
    // or waits for another, not a slow machine. 2 s was exceeded once
    // (2.7 s) by the ASan debug build on a VM with slow page faults.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn a_thread_may_end_with_parked_greenlets() {
    let (guard, dropped) = send_flag();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    std::thread::spawn(move || {
        let s2 = s.clone();
        let _detached = greenlet::spawn(move || {
            let _guard = guard;
            s2.fetch_add(1, Ordering::SeqCst);
            greenlet::sleep(Duration::from_secs(3600));
        });
        let s3 = s.clone();
        let _another = greenlet::spawn(move || {
            s3.fetch_add(1, Ordering::SeqCst);
            greenlet::yield_now();
            greenlet::sleep(Duration::from_secs(3600));
        });
        greenlet::yield_now();
        // The thread ends with both greenlets parked.
    })
    .join()
    .expect("the thread must end cleanly");
    assert_eq!(started.load(Ordering::SeqCst), 2);
    // Parked greenlets are leaked, not unwound, at thread exit.
    assert!(!dropped.load(Ordering::SeqCst));
}

#[test]
fn a_thread_ending_drops_its_unstarted_greenlets() {
    let (now_guard, now_dropped) = send_flag();
    let (later_guard, later_dropped) = send_flag();
    let ran = Arc::new(AtomicBool::new(false));
    let (r1, r2) = (ran.clone(), ran.clone());
    std::thread::spawn(move || {
        let _a = greenlet::spawn(move || {
            let _g = now_guard;
            r1.store(true, Ordering::SeqCst);
        });
        let _b = greenlet::spawn_later(Duration::from_secs(3600), move || {
            let _g = later_guard;
            r2.store(true, Ordering::SeqCst);
        });
        // Neither gets to run: the thread never blocks.
    })
    .join()
    .expect("the thread must end cleanly");
    assert!(
        !ran.load(Ordering::SeqCst),
        "an unstarted greenlet ran at exit"
    );
    assert!(now_dropped.load(Ordering::SeqCst), "closure leaked");
    assert!(
        later_dropped.load(Ordering::SeqCst),
        "spawn_later closure leaked"
    );
}

thread_local! {
    /// Registered before the hub in the child below, so that its destructor
    /// runs after the hub's.
    static KEEP: RefCell<Vec<Greenlet<()>>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn an_unstarted_greenlet_outliving_its_hub_is_dropped_safely() {
    // Greenlet handles are ordinary values: one may sit in a thread-local
    // whose destructor runs after the hub's. Dropping it then must not touch
    // the hub's freed memory or unmapped stacks. In a child process: if this
    // goes wrong it crashes.
    if child_mode().as_deref() == Some("late_tls") {
        let (guard, dropped) = send_flag();
        std::thread::spawn(move || {
            KEEP.with(|_| {}); // register KEEP's destructor first
            let g = greenlet::spawn(move || {
                let _g = guard;
            });
            KEEP.with(|k| k.borrow_mut().push(g));
        })
        .join()
        .expect("the thread must end cleanly");
        assert!(dropped.load(Ordering::SeqCst), "closure leaked");
        return;
    }
    let out = run_child(
        "an_unstarted_greenlet_outliving_its_hub_is_dropped_safely",
        "late_tls",
        &[],
    );
    assert_child_passed(&out);
}

#[test]
fn a_fresh_thread_creates_its_hub_on_first_use() {
    // No set-up call: the first greenlet call on a thread creates its hub,
    // and the thread's root can block on it at once.
    let v = std::thread::spawn(|| greenlet::spawn(|| 5).join().unwrap())
        .join()
        .unwrap();
    assert_eq!(v, 5);
}

/// Two greenlets handing a value back and forth through queues never leave
/// the ready queue empty, and no timer is armed: the loop still drains the
/// remote queue between their runs, so a put from another OS thread wakes
/// the root.
#[test]
fn a_busy_hand_off_pair_does_not_starve_cross_thread_wake_ups() {
    util::within(Duration::from_secs(20), || {
        use greenlet::sync::Queue;
        let stop = Arc::new(AtomicBool::new(false));
        let (ping, pong) = (Queue::<u64>::new(), Queue::<u64>::new());
        let echo = {
            let (ping, pong, stop) = (ping.clone(), pong.clone(), stop.clone());
            greenlet::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let v = ping.get().unwrap();
                    pong.put(v + 1).unwrap();
                }
            })
        };
        let driver = {
            let stop = stop.clone();
            greenlet::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ping.put(n).unwrap();
                    n = pong.get().unwrap();
                }
                ping.put(0).unwrap(); // lets the echo see `stop`
                n
            })
        };
        let from_thread: Queue<&'static str> = Queue::new();
        let q = from_thread.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            q.put("woken").unwrap();
        });
        let start = Instant::now();
        assert_eq!(from_thread.get().unwrap(), "woken");
        let waited = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let hand_offs = driver.join().unwrap();
        echo.join().unwrap();
        t.join().unwrap();
        assert!(hand_offs > 0, "the pair never ran");
        assert!(waited < Duration::from_secs(5), "woken after {waited:?}");
    });
}
