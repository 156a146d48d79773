//! The opt-in process-wide "would block forever" rule
//! (`GREENLET_DEADLOCK=process`, `greenlet::dump::process_wide`).
//!
//! Every scenario runs in a child process whose only threads are its own:
//! this test has no libtest harness (`harness = false` in Cargo.toml), so
//! the child's main thread is the scenario's hub thread and no thread the
//! runtime does not know is alive (a harness's main thread would be one,
//! and would rightly keep the rule from firing).

mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::channel::{channel, sync_channel};
use greenlet::select::Select;
use greenlet::sync::{Barrier, BoundedSemaphore, Condvar, Event, Mutex, Queue, Semaphore};

const ENV_ON: &[(&str, &str)] = &[("GREENLET_DEADLOCK", "process")];

/// Scenarios whose root wait must panic with "would block forever" within
/// 1 s: (name, environment).
const MUST_PANIC: &[(&str, &[(&str, &str)])] = &[
    ("semaphore_api", &[]),
    ("semaphore", ENV_ON),
    ("bounded_semaphore", ENV_ON),
    ("condvar", ENV_ON),
    ("barrier", ENV_ON),
    ("channel_recv", ENV_ON),
    ("sync_channel_send", ENV_ON),
    ("select", ENV_ON),
    ("queue_clone_kept_in_a_greenlet", ENV_ON),
    ("plain_thread_exits_without_releasing", ENV_ON),
    ("after_many_spawns", ENV_ON),
];

/// Scenarios where a plain OS thread releases the wait after 200 ms: they
/// must complete normally.
const MUST_COMPLETE: &[&str] = &[
    "semaphore_thread",
    "bounded_semaphore_thread",
    "condvar_thread",
    "barrier_thread",
    "channel_recv_thread",
    "sync_channel_send_thread",
    "select_thread",
    "two_hubs_and_a_plain_thread",
];

fn main() {
    if let Some(mode) = util::child_mode() {
        child(&mode);
        return;
    }
    let start = Instant::now();
    for &(name, env) in MUST_PANIC {
        let out = run(name, env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", util::describe(&out));
        assert!(
            stdout.contains("PANIC: greenlet: this operation would block forever"),
            "{name}: {}",
            util::describe(&out)
        );
        assert!(
            stdout.contains("greenlet dump of thread"),
            "{name}: no dump\n{}",
            util::describe(&out)
        );
        println!("{name}: panicked as expected");
    }
    // Two hubs, each waiting on a queue the other's greenlet keeps a clone
    // of: both panic.
    let out = run("two_hubs", ENV_ON);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "two_hubs: {}", util::describe(&out));
    for who in ["main", "other"] {
        assert!(
            stdout.contains(&format!(
                "{who} PANIC: greenlet: this operation would block forever"
            )),
            "two_hubs, {who}: {}",
            util::describe(&out)
        );
    }
    assert!(stdout.contains("root [Queue #"), "{}", util::describe(&out));
    println!("two_hubs: both hubs panicked as expected");
    for &name in MUST_COMPLETE {
        let out = run(name, ENV_ON);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("COMPLETED"),
            "{name}: {}",
            util::describe(&out)
        );
        assert!(
            !stdout.contains("PANIC"),
            "{name}: {}",
            util::describe(&out)
        );
        println!("{name}: completed as expected");
    }
    // Off by default: the same endless wait is not reported (it hangs, and
    // the deadline ends it).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // the deadline's panic is expected
    let r = catch_unwind(|| {
        util::run_child_within(
            "deadlock_process",
            "semaphore",
            &[("GREENLET_DEADLOCK", "hub")],
            Duration::from_millis(500),
        )
    });
    std::panic::set_hook(hook);
    let msg = util::payload_message(&*r.expect_err("the hang was reported with the rule off"));
    assert!(msg.contains("(a hang)"), "{msg}");
    println!("off: not reported, as expected");
    println!(
        "deadlock_process: all scenarios passed in {:?}",
        start.elapsed()
    );
}

fn run(mode: &str, env: &[(&str, &str)]) -> std::process::Output {
    util::run_child_within("deadlock_process", mode, env, Duration::from_secs(10))
}

/// Runs the root wait `f`, which must panic within 1 s; prints its message.
fn expect_panic<R>(f: impl FnOnce() -> R) {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(f));
    let took = t.elapsed();
    let p = match r {
        Ok(_) => panic!("the root wait returned"),
        Err(p) => p,
    };
    println!("PANIC: {}", util::payload_message(&*p));
    assert!(
        took < Duration::from_secs(1),
        "reported only after {took:?}"
    );
}

/// Runs `f` (a root wait a plain thread ends after 200 ms).
fn expect_completes<R>(f: impl FnOnce() -> R) {
    let t = Instant::now();
    f();
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    println!("COMPLETED in {:?}", t.elapsed());
}

/// A plain thread that runs `f` after 200 ms.
fn later(f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        f();
    })
}

fn child(mode: &str) {
    match mode {
        "semaphore_api" => {
            greenlet::dump::process_wide(true);
            let s = Semaphore::new(0);
            expect_panic(|| s.acquire().forget());
        }
        "semaphore" => {
            let s = Semaphore::new(0);
            expect_panic(|| s.acquire().forget());
        }
        "bounded_semaphore" => {
            let s = BoundedSemaphore::new(1);
            let _held = s.acquire();
            expect_panic(|| s.acquire().forget());
        }
        "condvar" => {
            let m = Mutex::new(false);
            let cv = Condvar::new();
            expect_panic(|| drop(cv.wait(m.lock())));
        }
        "barrier" => {
            let b = Barrier::new(2);
            expect_panic(|| b.wait());
        }
        "channel_recv" => {
            let (tx, rx) = channel::<u32>();
            expect_panic(|| rx.recv());
            drop(tx);
        }
        "sync_channel_send" => {
            let (tx, rx) = sync_channel::<u32>(0);
            expect_panic(|| tx.send(1));
            drop(rx);
        }
        "select" => {
            let s = Semaphore::new(0);
            let (tx, rx) = channel::<u32>();
            expect_panic(|| {
                Select::new()
                    .on(&s, |_p| 0)
                    .on(&rx, |r| r.unwrap_or(0))
                    .wait()
            });
            drop(tx);
        }
        "queue_clone_kept_in_a_greenlet" => {
            // The per-hub rule sees a second handle and cannot tell it is
            // stuck in this hub's own greenlet; the process-wide rule can.
            let q: Queue<u32> = Queue::new();
            let q2 = q.clone();
            let _keeper = greenlet::spawn(move || {
                let _q = q2;
                Event::new().wait();
            });
            expect_panic(|| q.get());
        }
        "plain_thread_exits_without_releasing" => {
            // A thread the runtime does not know keeps the rule quiet while
            // it lives; once it is gone, a re-check finds the hub stuck.
            let s = Arc::new(Semaphore::new(0));
            let t = std::thread::spawn({
                let s = s.clone();
                move || {
                    std::thread::sleep(Duration::from_millis(100));
                    drop(s);
                }
            });
            let start = Instant::now();
            expect_panic(|| s.acquire().forget());
            assert!(
                start.elapsed() >= Duration::from_millis(90),
                "reported while the thread lived"
            );
            t.join().unwrap();
        }
        "after_many_spawns" => {
            // Many greenlets waiting to start may start the runtime's stack
            // provisioner thread (two CPUs or more): a runtime thread, so
            // it does not keep the rule quiet.
            let gs: Vec<_> = (0..5000).map(|i| greenlet::spawn(move || i)).collect();
            for r in greenlet::joinall(gs) {
                r.unwrap();
            }
            let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
            println!("threads before the wait: {threads}");
            let s = Semaphore::new(0);
            expect_panic(|| s.acquire().forget());
        }
        "two_hubs" => {
            let q1: Queue<u32> = Queue::new();
            let q2: Queue<u32> = Queue::new();
            let (q1b, q2b) = (q1.clone(), q2.clone());
            let other = std::thread::spawn(move || {
                let _keeper = greenlet::spawn(move || {
                    let _q = q1b; // main's queue: nobody here will put
                    Event::new().wait();
                });
                let t = Instant::now();
                let r = catch_unwind(AssertUnwindSafe(|| q2b.get()));
                let took = t.elapsed();
                match r {
                    Ok(_) => println!("other returned"),
                    Err(p) => println!("other PANIC: {}", util::payload_message(&*p)),
                }
                assert!(took < Duration::from_secs(1), "{took:?}");
            });
            let q2k = q2.clone();
            let _keeper = greenlet::spawn(move || {
                let _q = q2k; // the other thread's queue
                Event::new().wait();
            });
            drop(q2);
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| q1.get()));
            let took = t.elapsed();
            match r {
                Ok(_) => println!("main returned"),
                Err(p) => println!("main PANIC: {}", util::payload_message(&*p)),
            }
            assert!(took < Duration::from_secs(1), "{took:?}");
            other.join().unwrap();
        }
        "semaphore_thread" => {
            let s = Arc::new(Semaphore::new(0));
            let t = later({
                let s = s.clone();
                move || s.add_permits(1)
            });
            expect_completes(|| s.acquire().forget());
            t.join().unwrap();
        }
        "bounded_semaphore_thread" => {
            let s = Arc::new(BoundedSemaphore::new(1));
            s.acquire().forget();
            let t = later({
                let s = s.clone();
                move || s.release().unwrap()
            });
            expect_completes(|| s.acquire().forget());
            t.join().unwrap();
        }
        "condvar_thread" => {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let t = later({
                let pair = pair.clone();
                move || {
                    *pair.0.lock() = true;
                    pair.1.notify_all();
                }
            });
            expect_completes(|| {
                let mut g = pair.0.lock();
                while !*g {
                    g = pair.1.wait(g);
                }
            });
            t.join().unwrap();
        }
        "barrier_thread" => {
            let b = Arc::new(Barrier::new(2));
            let t = later({
                let b = b.clone();
                move || {
                    b.wait();
                }
            });
            expect_completes(|| b.wait());
            t.join().unwrap();
        }
        "channel_recv_thread" => {
            let (tx, rx) = channel::<u32>();
            let t = later(move || tx.send(7).unwrap());
            expect_completes(|| assert_eq!(rx.recv(), Ok(7)));
            t.join().unwrap();
        }
        "sync_channel_send_thread" => {
            let (tx, rx) = sync_channel::<u32>(0);
            let t = later(move || assert_eq!(rx.recv(), Ok(3)));
            expect_completes(|| tx.send(3).unwrap());
            t.join().unwrap();
        }
        "select_thread" => {
            let s = Semaphore::new(0);
            let (tx, rx) = channel::<u32>();
            let t = later(move || tx.send(9).unwrap());
            expect_completes(|| {
                let got = Select::new()
                    .on(&s, |_p| 0)
                    .on(&rx, |r| r.unwrap_or(0))
                    .wait();
                assert_eq!(got, 9);
            });
            t.join().unwrap();
        }
        "two_hubs_and_a_plain_thread" => {
            let q1: Queue<u32> = Queue::new();
            let q2: Queue<u32> = Queue::new();
            let (q1b, q2b) = (q1.clone(), q2.clone());
            let (q1c, q2c) = (q1.clone(), q2.clone());
            let plain = later(move || {
                q1c.put(1).unwrap();
                q2c.put(2).unwrap();
            });
            let other = std::thread::spawn(move || {
                let keeper = greenlet::spawn(move || {
                    let _q = q1b;
                    Event::new().wait_timeout(Duration::from_millis(1)).ok();
                });
                keeper.join().unwrap();
                assert_eq!(q2b.get(), Ok(2));
            });
            expect_completes(|| assert_eq!(q1.get(), Ok(1)));
            other.join().unwrap();
            plain.join().unwrap();
        }
        other => panic!("unknown scenario {other:?}"),
    }
}
