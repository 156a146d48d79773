//! Cross-thread wake-ups: results delivered to parked greenlets from pool
//! threads (plain OS threads with no hub), from other hubs, and work handed
//! to a hub from plain threads, with nothing lost or doubled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use greenlet::{HubHandle, hub_handle, run_until_stopped};

/// A thread serving its hub until stopped.
fn worker() -> (HubHandle, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        tx.send(hub_handle()).unwrap();
        run_until_stopped();
    });
    (rx.recv().unwrap(), t)
}

#[test]
fn hundred_thousand_results_from_plain_pool_threads_to_a_parked_greenlet() {
    const N: u64 = 100_000;
    let g = greenlet::spawn(|| {
        let mut sum = 0u64;
        for i in 0..N {
            sum += greenlet::threadpool::spawn_blocking(move || i);
        }
        sum
    });
    // Another greenlet keeps the hub busy meanwhile, so wake-ups arrive both
    // while the hub runs and while it sleeps in epoll.
    let ticker = greenlet::spawn(|| {
        let mut n = 0u64;
        for _ in 0..200 {
            greenlet::sleep(Duration::from_micros(100));
            n += 1;
        }
        n
    });
    assert_eq!(g.join().unwrap(), N * (N - 1) / 2);
    assert_eq!(ticker.join().unwrap(), 200);
}

#[test]
fn hundred_thousand_results_from_another_hub_to_a_parked_greenlet() {
    const N: u64 = 100_000;
    let (hub, t) = worker();
    let h2 = hub.clone();
    let g = greenlet::spawn(move || {
        let mut sum = 0u64;
        for i in 0..N {
            sum += h2.spawn(move || i).join().unwrap();
        }
        sum
    });
    assert_eq!(g.join().unwrap(), N * (N - 1) / 2);
    hub.stop();
    t.join().unwrap();
}

#[test]
fn hundred_thousand_jobs_from_a_plain_thread_each_run_exactly_once() {
    const N: usize = 100_000;
    let ran = Arc::new(AtomicUsize::new(0));
    let (hub, worker_thread) = worker();
    let r2 = ran.clone();
    // A plain thread hands work to the worker's hub and waits for each
    // result (its root parks on its own, lazily created hub).
    let sender = thread::spawn(move || {
        let mut sum = 0;
        for i in 0..N {
            let r = r2.clone();
            sum += hub
                .spawn(move || {
                    r.fetch_add(1, Ordering::Relaxed);
                    i
                })
                .join()
                .unwrap();
        }
        hub.stop();
        sum
    });
    assert_eq!(sender.join().unwrap(), N * (N - 1) / 2);
    assert_eq!(ran.load(Ordering::Relaxed), N);
    worker_thread.join().unwrap();
}

#[test]
fn many_threads_hand_work_to_one_hub_concurrently() {
    let (hub, t) = worker();
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let hub = hub.clone();
            thread::spawn(move || {
                let jobs: Vec<_> = (0..2000)
                    .map(|i| hub.spawn(move || k * 10_000 + i))
                    .collect();
                jobs.into_iter().map(|j| j.join().unwrap()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    let expected: usize = (0..4).map(|k| k * 10_000 * 2000 + 1999 * 2000 / 2).sum();
    assert_eq!(total, expected);
    hub.stop();
    t.join().unwrap();
}

#[test]
fn spawned_greenlets_run_on_the_target_thread_and_report_panics() {
    let (hub, t) = worker();
    let target = hub.spawn(|| thread::current().id()).join().unwrap();
    assert_ne!(target, thread::current().id());
    let err = hub
        .spawn(|| -> u8 { panic!("remote boom") })
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("remote boom"));
    // The remote greenlet can block cooperatively on its own hub.
    let slept = hub
        .spawn(|| {
            let t = Instant::now();
            greenlet::sleep(Duration::from_millis(20));
            t.elapsed()
        })
        .join()
        .unwrap();
    assert!(slept >= Duration::from_millis(20));
    hub.stop();
    t.join().unwrap();
}

#[test]
fn stop_before_serving_is_remembered_and_each_stop_ends_one_serve() {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let hub = hub_handle();
        hub.stop();
        hub.stop();
        run_until_stopped(); // returns: first stop
        tx.send(()).unwrap();
        run_until_stopped(); // returns: second stop
        "done"
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(t.join().unwrap(), "done");
}

#[test]
fn join_reports_killed_when_the_target_thread_ends_without_running_the_job() {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        tx.send(hub_handle()).unwrap();
        // Ends without ever running its hub loop again.
    });
    let hub = rx.recv().unwrap();
    t.join().unwrap();
    let job = hub.spawn(|| 1);
    let err = job.join().unwrap_err();
    assert!(err.is_killed());
    assert!(!hub.is_current());
}

#[test]
fn idle_serving_hub_sleeps_without_spinning() {
    let (hub, t) = worker();
    let before = hub.spawn(thread_cpu_time).join().unwrap();
    thread::sleep(Duration::from_millis(200));
    let after = hub.spawn(thread_cpu_time).join().unwrap();
    // The worker thread used next to no CPU while it idled 200 ms.
    assert!(
        after - before < Duration::from_millis(20),
        "{:?}",
        after - before
    );
    hub.stop();
    t.join().unwrap();
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
