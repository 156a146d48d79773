//! `greenlet::threadpool::spawn_blocking`.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::threadpool::spawn_blocking;

#[test]
fn returns_the_value_and_runs_on_another_thread() {
    let me = std::thread::current().id();
    let (v, there) = spawn_blocking(|| (21 * 2, std::thread::current().id()));
    assert_eq!(v, 42);
    assert_ne!(there, me);
}

#[test]
fn a_panic_in_the_job_is_a_panic_in_the_caller() {
    let g = greenlet::spawn(|| spawn_blocking(|| -> u8 { panic!("pool job failed") }));
    let err = g.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("pool job failed"));
    // From root context too.
    let r = std::panic::catch_unwind(|| spawn_blocking(|| -> u8 { panic!("in root") }));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"in root"));
}

#[test]
fn blocking_jobs_overlap_with_io_on_the_hub() {
    let addr = util::echo_server();
    let start = Instant::now();
    let io = greenlet::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut rounds = 0;
        while start.elapsed() < Duration::from_millis(200) {
            s.write_all(b"ping").unwrap();
            let mut b = [0; 4];
            s.read_exact(&mut b).unwrap();
            rounds += 1;
        }
        rounds
    });
    let jobs: Vec<_> = (0..4)
        .map(|i| {
            greenlet::spawn(move || {
                spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(150));
                    i
                })
            })
        })
        .collect();
    let sum: i32 = greenlet::joinall(jobs)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, 6);
    // Four 150 ms jobs ran in parallel (well under 600 ms)...
    assert!(
        start.elapsed() < Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    // ...while the echo loop kept going.
    let rounds = io.join().unwrap();
    assert!(rounds > 20, "only {rounds} echo rounds during the jobs");
}

#[test]
fn jobs_run_in_parallel_up_to_the_pool_size() {
    // Four jobs that each wait for the others: they only finish if four
    // pool threads run at once.
    let barrier = Arc::new(Barrier::new(4));
    let gs: Vec<_> = (0..4)
        .map(|_| {
            let b = barrier.clone();
            greenlet::spawn(move || spawn_blocking(move || b.wait().is_leader()))
        })
        .collect();
    let leaders = greenlet::joinall(gs)
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(leaders, 1);
    assert!(greenlet::threadpool::max_threads() >= 4);
}

#[test]
fn a_killed_waiter_unwinds_at_once_and_the_job_still_completes() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f2 = finished.clone();
    let g = greenlet::spawn(move || {
        spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(50));
            f2.fetch_add(1, Ordering::SeqCst);
        })
    });
    greenlet::sleep(Duration::from_millis(5));
    let t = Instant::now();
    g.kill();
    assert!(t.elapsed() < Duration::from_millis(40));
    assert!(g.join().unwrap_err().is_killed());
    let deadline = Instant::now() + Duration::from_secs(2);
    while finished.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        greenlet::sleep(Duration::from_millis(5));
    }
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[test]
fn with_timeout_interrupts_a_long_job_wait() {
    let r = greenlet::with_timeout(Duration::from_millis(20), || {
        spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)))
    });
    assert!(r.is_err());
}

/// A job value whose destructor panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop dropped");
    }
}

#[test]
fn a_panicking_drop_of_an_abandoned_result_does_not_lose_a_pool_thread() {
    // The waiter is killed, so the job's value is dropped on its pool
    // thread; that drop panics. The pool must still run later jobs (it
    // counted the dead thread as alive, so with one thread allowed no job
    // ever ran again). In a child: the pool's size is process-wide.
    if util::child_mode().as_deref() == Some("drop_panics") {
        greenlet::threadpool::set_max_threads(1);
        for _ in 0..3 {
            let g = greenlet::spawn(|| {
                spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(30));
                    PanicOnDrop
                })
            });
            greenlet::sleep(Duration::from_millis(5));
            g.kill();
            // Let the job finish and drop its value.
            greenlet::sleep(Duration::from_millis(60));
        }
        assert_eq!(spawn_blocking(|| 7), 7);
        return;
    }
    let out = util::run_child_within(
        "a_panicking_drop_of_an_abandoned_result_does_not_lose_a_pool_thread",
        "drop_panics",
        &[],
        Duration::from_secs(20),
    );
    util::assert_child_passed(&out);
}

#[test]
fn raising_the_limit_starts_threads_for_queued_jobs() {
    // One thread allowed: job A holds it until job B has run, and B is
    // queued behind it. Raising the limit must start a thread for B at
    // once; before, B waited for A (which gave up after 5 s) or for the
    // next `spawn_blocking`. In a child: the pool's size is process-wide.
    if util::child_mode().as_deref() == Some("raise_limit") {
        greenlet::threadpool::set_max_threads(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let a = greenlet::spawn(move || {
            spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)).is_ok())
        });
        // A is running on the only thread before B is queued.
        greenlet::sleep(Duration::from_millis(50));
        let b = greenlet::spawn(move || spawn_blocking(move || tx.send(()).is_ok()));
        greenlet::sleep(Duration::from_millis(50));
        let start = Instant::now();
        greenlet::threadpool::set_max_threads(2);
        // B's send fails if A gave up (and dropped its receiver) first.
        assert!(
            b.join().unwrap(),
            "B ran only after A gave up waiting for it"
        );
        assert!(a.join().unwrap());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        return;
    }
    let out = util::run_child_within(
        "raising_the_limit_starts_threads_for_queued_jobs",
        "raise_limit",
        &[],
        Duration::from_secs(30),
    );
    util::assert_child_passed(&out);
}
