//! `greenlet::pool::{Pool, Group}`: bounded concurrency, map order,
//! imap_unordered, join, kill.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::pool::{Group, Pool};

#[test]
fn pool_of_ten_never_runs_more_than_ten() {
    let pool = Pool::new(10);
    let (busy, peak, done) = (
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
    );
    for i in 0..1000u32 {
        let (busy, peak, done) = (busy.clone(), peak.clone(), done.clone());
        pool.spawn(move || {
            busy.set(busy.get() + 1);
            peak.set(peak.get().max(busy.get()));
            if i % 3 == 0 {
                greenlet::yield_now();
            } else {
                greenlet::sleep(Duration::from_micros(100));
            }
            busy.set(busy.get() - 1);
            done.set(done.get() + 1);
        });
        assert!(pool.len() <= 10);
    }
    pool.join();
    assert_eq!(done.get(), 1000);
    assert_eq!(peak.get(), 10);
    assert_eq!(pool.free_count(), 10);
    assert!(pool.is_empty());
}

#[test]
fn map_keeps_input_order() {
    let pool = Pool::new(4);
    let t = Instant::now();
    let out = pool.map((0..20u64).rev(), |i| {
        greenlet::sleep(Duration::from_millis(i));
        i * 10
    });
    assert_eq!(out, (0..20u64).rev().map(|i| i * 10).collect::<Vec<_>>());
    // 20 jobs of at most 19 ms, 4 at a time: well under the 190 ms serial time.
    assert!(
        t.elapsed() < Duration::from_millis(180),
        "{:?}",
        t.elapsed()
    );
}

#[test]
#[should_panic(expected = "job 3 failed")]
fn map_reraises_a_job_panic() {
    let pool = Pool::new(2);
    pool.map(0..5, |i| {
        if i == 3 {
            panic!("job {i} failed");
        }
        i
    });
}

#[test]
fn imap_unordered_yields_in_completion_order_and_bounds_concurrency() {
    let pool = Pool::new(3);
    let (busy, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let got: Vec<u64> = pool
        .imap_unordered([50u64, 10, 30, 5, 1], {
            let (busy, peak) = (busy.clone(), peak.clone());
            move |ms| {
                busy.set(busy.get() + 1);
                peak.set(peak.get().max(busy.get()));
                greenlet::sleep(Duration::from_millis(ms));
                busy.set(busy.get() - 1);
                ms
            }
        })
        .collect();
    // Slots: 50,10,30 start; 10 ends -> 5 starts; 5 ends -> 1 starts; ...
    assert_eq!(got, [10, 5, 1, 30, 50]);
    assert_eq!(peak.get(), 3);
}

#[test]
fn imap_unordered_is_lazy() {
    let pool = Pool::new(2);
    let started = Rc::new(Cell::new(0));
    let mut it = pool.imap_unordered(0..1_000_000u32, {
        let started = started.clone();
        move |i| {
            started.set(started.get() + 1);
            i
        }
    });
    let first = it.next().unwrap();
    assert!(first < 2);
    drop(it);
    pool.join();
    assert!(started.get() <= 3, "started {} jobs", started.get());
}

#[test]
fn join_waits_for_members_spawned_while_joining() {
    let pool = Pool::new(2);
    let done = Rc::new(Cell::new(0));
    pool.spawn({
        let (pool, done) = (pool.clone(), done.clone());
        move || {
            greenlet::sleep(Duration::from_millis(5));
            let done2 = done.clone();
            pool.spawn(move || {
                greenlet::sleep(Duration::from_millis(5));
                done2.set(done2.get() + 1);
            });
            done.set(done.get() + 1);
        }
    });
    pool.join();
    assert_eq!(done.get(), 2);
}

#[test]
fn join_timeout_paths() {
    let pool = Pool::new(2);
    pool.spawn(|| greenlet::sleep(Duration::from_millis(200)));
    let t = Instant::now();
    assert!(pool.join_timeout(Duration::from_millis(20)).is_err());
    assert!(t.elapsed() < Duration::from_millis(150));
    assert_eq!(pool.len(), 1, "the timeout does not touch the members");
    pool.kill();
    assert_eq!(pool.join_timeout(Duration::from_millis(1)), Ok(()));
}

#[test]
fn kill_kills_running_and_unstarted_members_and_frees_their_slots() {
    let pool = Pool::new(3);
    let running: Vec<_> = (0..3)
        .map(|_| pool.spawn(|| greenlet::sleep(Duration::from_secs(60))))
        .collect();
    greenlet::yield_now();
    assert_eq!(pool.free_count(), 0);
    pool.kill();
    for g in running {
        assert!(g.join().unwrap_err().is_killed());
    }
    assert_eq!(pool.free_count(), 3);
    // Unstarted members (spawned, never run) are dropped.
    let unstarted: Vec<_> = (0..3).map(|i| pool.spawn(move || i)).collect();
    pool.kill();
    for g in unstarted {
        assert!(g.join().unwrap_err().is_killed());
    }
    assert_eq!(pool.free_count(), 3);
    assert!(pool.is_empty());
}

#[test]
fn spawn_from_a_greenlet_parks_when_full() {
    let pool = Pool::new(1);
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    let spawner = greenlet::spawn({
        let (pool, order) = (pool.clone(), order.clone());
        move || {
            for i in 0..3 {
                let job_order = order.clone();
                pool.spawn(move || {
                    greenlet::sleep(Duration::from_millis(2));
                    job_order.borrow_mut().push(format!("job {i} done"));
                });
                order.borrow_mut().push(format!("spawned {i}"));
            }
        }
    });
    spawner.join().unwrap();
    pool.join();
    assert_eq!(
        *order.borrow(),
        [
            "spawned 0",
            "job 0 done",
            "spawned 1",
            "job 1 done",
            "spawned 2",
            "job 2 done"
        ]
    );
}

#[test]
fn group_is_unbounded() {
    let group = Group::new();
    let t = Instant::now();
    for _ in 0..100 {
        group.spawn(|| greenlet::sleep(Duration::from_millis(20)));
    }
    assert_eq!(group.len(), 100);
    assert_eq!(group.free_count(), usize::MAX);
    group.join();
    assert!(t.elapsed() < Duration::from_millis(500));
    let squares = group.map(1..=5, |x| x * x);
    assert_eq!(squares, [1, 4, 9, 16, 25]);
}

#[test]
#[should_panic(expected = "at least one slot")]
fn zero_sized_pool_panics() {
    Pool::new(0);
}
