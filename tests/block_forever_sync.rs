//! "Would block forever" for the lock-like primitives and `select`: a root
//! wait that only this thread could ever end, while everything on it is
//! parked, panics within 1 s; the same wait ended by another OS thread
//! completes. (`Semaphore`, `Condvar`, `Barrier` and channels are shared
//! by reference or `Send` handles the runtime cannot count: they are
//! covered by the opt-in process-wide rule, tests/deadlock_process.rs.)

mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::select::Select;
use greenlet::sync::{Event, Mutex, Queue, RLock, RwLock};
use util::payload_message;

/// Runs `f` (a root wait) on a fresh thread and returns the message of the
/// "would block forever" panic it must raise within 1 s.
#[track_caller]
fn expect_block_forever<R: 'static>(f: impl FnOnce() -> R + Send + 'static) -> String {
    util::within(Duration::from_secs(1), move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        let msg = match r {
            Ok(_) => panic!("the root wait returned instead of panicking"),
            Err(p) => payload_message(&*p),
        };
        assert!(msg.contains("would block forever"), "{msg}");
        // The hub goes on working.
        assert_eq!(greenlet::spawn(|| 6 * 7).join().unwrap(), 42);
        msg
    })
}

/// Runs `f` (a root wait another OS thread ends after 200 ms) and checks
/// that it completes, and did wait.
#[track_caller]
fn expect_completes(f: impl FnOnce() + Send + 'static) {
    util::within(Duration::from_secs(5), move || {
        let t = Instant::now();
        f();
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
    });
}

/// Parks the running greenlet for good on an event nobody else holds.
fn park_forever() {
    Event::new().wait();
}

#[test]
fn root_lock_of_an_rlock_a_parked_greenlet_of_this_thread_owns_panics() {
    let msg = expect_block_forever(|| {
        let l = Rc::new(RLock::new(()));
        let l2 = l.clone();
        let _owner = greenlet::Builder::new()
            .name("owner")
            .spawn(move || {
                let _g = l2.lock();
                park_forever();
            })
            .unwrap();
        greenlet::yield_now(); // it takes the lock and parks
        drop(l.lock());
    });
    assert!(msg.contains("root [RLock #"), "{msg}");
    assert!(msg.contains("'owner' [Event #"), "{msg}");
}

#[test]
fn root_lock_of_an_rlock_a_plain_thread_releases_later_completes() {
    expect_completes(|| {
        let l = Arc::new(RLock::new(()));
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn({
            let l = l.clone();
            move || {
                let g = l.lock();
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                drop(g);
            }
        });
        rx.recv().unwrap();
        drop(l.lock());
        t.join().unwrap();
    });
}

#[test]
fn root_write_on_an_rwlock_it_reads_itself_panics() {
    let msg = expect_block_forever(|| {
        let l = RwLock::new(0);
        let _r = l.read();
        drop(l.write());
    });
    assert!(msg.contains("root [RwLock #"), "{msg}");
}

#[test]
fn root_read_of_an_rwlock_a_parked_greenlet_writes_panics() {
    expect_block_forever(|| {
        let l = Rc::new(RwLock::new(0));
        let l2 = l.clone();
        let _writer = greenlet::spawn(move || {
            let _w = l2.write();
            park_forever();
        });
        greenlet::yield_now();
        drop(l.read());
    });
}

#[test]
fn root_write_on_an_rwlock_a_plain_thread_reads_completes() {
    expect_completes(|| {
        let l = Arc::new(RwLock::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn({
            let l = l.clone();
            move || {
                let g = l.read();
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                drop(g);
            }
        });
        rx.recv().unwrap();
        *l.write() += 1;
        t.join().unwrap();
    });
}

#[test]
fn root_read_of_an_rwlock_behind_a_waiting_writer_of_another_thread_completes() {
    // The root holds a read guard, but a writer of another thread waits
    // ahead of its second read: when it gives up (a timeout), the root is
    // let in. Nothing may be reported meanwhile.
    expect_completes(|| {
        let l = Arc::new(RwLock::new(0));
        let r = l.read();
        let t = std::thread::spawn({
            let l = l.clone();
            move || assert!(l.write_timeout(Duration::from_millis(200)).is_err())
        });
        while l.try_read().is_some() {
            std::thread::sleep(Duration::from_millis(1)); // until it waits
        }
        drop(l.read()); // parks behind the writer, while holding `r`
        drop(r);
        t.join().unwrap();
    });
}

#[test]
fn root_select_on_queues_and_an_event_nobody_else_holds_panics() {
    let msg = expect_block_forever(|| {
        let a: Queue<u32> = Queue::new();
        let b: Queue<u32> = Queue::new();
        let e = Event::new();
        Select::new()
            .on(&a, |r| r.unwrap_or(0))
            .on(&b, |r| r.unwrap_or(0))
            .on(&e, |()| 0)
            .wait()
    });
    assert!(msg.contains("root [select"), "{msg}");
}

#[test]
fn root_select_on_a_mutex_a_parked_greenlet_holds_panics() {
    expect_block_forever(|| {
        let m = Rc::new(Mutex::new(1));
        let m2 = m.clone();
        let _holder = greenlet::spawn(move || {
            let _g = m2.lock();
            park_forever();
        });
        greenlet::yield_now();
        let q: Queue<u32> = Queue::new();
        Select::new()
            .on(&*m, |g| *g)
            .on(&q, |r| r.unwrap_or(0))
            .wait()
    });
}

#[test]
fn root_select_with_one_arm_a_plain_thread_feeds_later_completes() {
    expect_completes(|| {
        let a: Queue<u32> = Queue::new();
        let b: Queue<u32> = Queue::new();
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            b2.put(4).unwrap();
        });
        let got = Select::new()
            .on(&a, |r| r.unwrap_or(0))
            .on(&b, |r| r.unwrap_or(0))
            .wait();
        assert_eq!(got, 4);
        t.join().unwrap();
    });
}
