//! `greenlet::pool::Pool` beyond spawn/map: ordered `imap`, `apply`,
//! `apply_async`, `add`, `wait_available`, `is_full`.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenlet::pool::{Group, Pool};
use util::{Log, within};

const LIMIT: Duration = Duration::from_secs(20);

/// The first item is the slowest, yet it is yielded first; the others ran
/// meanwhile (the whole run takes about as long as the slow one).
#[test]
fn imap_yields_in_input_order_even_when_the_first_item_is_slow() {
    within(LIMIT, || {
        let pool = Pool::new(4);
        let finished = Log::new();
        let t = std::time::Instant::now();
        let out: Vec<u64> = pool
            .imap([60u64, 1, 2, 3, 4, 5], {
                let finished = finished.clone();
                move |ms| {
                    greenlet::sleep(Duration::from_millis(ms));
                    finished.push(ms);
                    ms
                }
            })
            .collect();
        assert_eq!(out, [60, 1, 2, 3, 4, 5]);
        assert_ne!(finished.snapshot()[0], 60, "the fast ones finished first");
        assert!(t.elapsed() < Duration::from_millis(1000));
    });
}

#[test]
fn imap_is_lazy_and_bounded_by_the_pool() {
    within(LIMIT, || {
        let pool = Pool::new(2);
        let started = Rc::new(Cell::new(0));
        let mut it = pool.imap(0..1_000_000u32, {
            let started = started.clone();
            move |i| {
                started.set(started.get() + 1);
                i
            }
        });
        assert_eq!(it.next(), Some(0));
        assert_eq!(it.next(), Some(1));
        drop(it);
        pool.join();
        assert!(started.get() <= 4, "started {} jobs", started.get());
    });
}

#[test]
fn imap_reraises_a_job_panic_at_its_position() {
    within(LIMIT, || {
        let pool = Pool::new(2);
        let mut it = pool.imap(0..3, |i| {
            if i == 1 {
                panic!("job 1 failed");
            }
            i
        });
        assert_eq!(it.next(), Some(0));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| it.next()));
        assert!(r.is_err());
    });
}

/// `apply` from outside runs the job in the pool and returns its result;
/// from a member of a full pool it runs inline instead of deadlocking.
#[test]
fn apply_from_a_member_of_a_full_pool_runs_inline() {
    within(LIMIT, || {
        let pool = Pool::new(1);
        assert_eq!(pool.apply(|| 2 + 2), 4);
        let outer = pool.spawn({
            let pool = pool.clone();
            move || {
                assert!(pool.is_full());
                let me = greenlet::current().unwrap().id();
                let inner_id = pool.apply(|| greenlet::current().unwrap().id());
                (me, inner_id)
            }
        });
        let (me, inner) = outer.join().unwrap();
        assert_eq!(me, inner, "ran inline in the member");
        assert!(pool.is_empty());
    });
}

#[test]
fn apply_reraises_the_job_panic() {
    within(LIMIT, || {
        let pool = Pool::new(1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.apply(|| -> u8 { panic!("boom") })
        }));
        assert!(r.is_err());
        assert_eq!(pool.free_count(), 1);
    });
}

/// `apply_async` returns at once even when the pool is full; the job waits
/// for a slot, in line, and the pool's bound still holds.
#[test]
fn apply_async_does_not_wait_and_respects_the_bound() {
    within(LIMIT, || {
        let pool = Pool::new(2);
        let busy = Rc::new(Cell::new(0));
        let peak = Rc::new(Cell::new(0));
        let order = Log::new();
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (busy, peak, order) = (busy.clone(), peak.clone(), order.clone());
                pool.apply_async(move || {
                    busy.set(busy.get() + 1);
                    peak.set(peak.get().max(busy.get()));
                    order.push(i);
                    greenlet::sleep(Duration::from_millis(2));
                    busy.set(busy.get() - 1);
                    i * 10
                })
            })
            .collect();
        // All six handed out without the caller parking.
        assert_eq!(pool.len(), 6);
        assert!(pool.is_full());
        let got: Vec<i32> = greenlet::joinall(handles)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [0, 10, 20, 30, 40, 50]);
        assert_eq!(peak.get(), 2);
        assert_eq!(order.snapshot(), [0, 1, 2, 3, 4, 5], "slots served FIFO");
        assert_eq!(pool.free_count(), 2);
    });
}

/// A queued `apply_async` job killed while waiting for its slot leaves the
/// pool's slot count intact.
#[test]
fn apply_async_job_killed_while_waiting_for_a_slot() {
    within(LIMIT, || {
        let pool = Pool::new(1);
        let running = pool.apply_async(|| greenlet::sleep(Duration::from_millis(20)));
        let queued = pool.apply_async(|| "never");
        greenlet::yield_now();
        queued.kill();
        assert!(queued.join().unwrap_err().is_killed());
        running.join().unwrap();
        assert_eq!(pool.free_count(), 1);
        assert!(pool.is_empty());
        pool.kill(); // nothing left: returns at once
    });
}

/// `Pool::kill` also kills jobs still waiting for a slot.
#[test]
fn kill_reaches_queued_apply_async_jobs() {
    within(LIMIT, || {
        let pool = Pool::new(1);
        let hs: Vec<_> = (0..3)
            .map(|_| pool.apply_async(|| greenlet::sleep(Duration::from_secs(60))))
            .collect();
        greenlet::yield_now();
        pool.kill();
        for h in hs {
            assert!(h.join().unwrap_err().is_killed());
        }
        assert_eq!(pool.free_count(), 1);
    });
}

/// An added greenlet holds a slot until it finishes; `join` waits for it.
#[test]
fn add_adopts_an_existing_greenlet() {
    within(LIMIT, || {
        let pool = Pool::new(2);
        let g = greenlet::spawn(|| {
            greenlet::sleep(Duration::from_millis(10));
            7
        });
        pool.add(&g);
        pool.add(&g); // already a member: no second slot
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.free_count(), 1);
        pool.join();
        assert!(g.is_finished());
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 2);
        assert_eq!(g.join().unwrap(), 7);

        let done = greenlet::spawn(|| ());
        greenlet::yield_now();
        pool.add(&done); // finished: left alone
        assert!(pool.is_empty());
    });
}

/// `add` into a full pool waits for a slot; `kill` kills added greenlets.
#[test]
fn add_waits_for_a_slot_and_kill_reaches_added_greenlets() {
    within(LIMIT, || {
        let pool = Pool::new(1);
        let first = pool.spawn(|| greenlet::sleep(Duration::from_millis(10)));
        let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
        pool.add(&g); // parks until `first` is done
        assert!(first.is_finished());
        assert_eq!(pool.len(), 1);
        pool.kill();
        assert!(g.join().unwrap_err().is_killed());
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 1);
    });
}

#[test]
fn wait_available_and_is_full() {
    within(LIMIT, || {
        let pool = Pool::new(2);
        pool.wait_available(); // free: returns at once
        let a = pool.spawn(|| greenlet::sleep(Duration::from_millis(10)));
        assert!(!pool.is_full());
        let b = pool.spawn(|| greenlet::sleep(Duration::from_secs(60)));
        assert!(pool.is_full());
        assert!(
            pool.wait_available_timeout(Duration::from_millis(1))
                .is_err()
        );
        pool.wait_available(); // until `a` is done
        assert!(a.is_finished());
        assert_eq!(pool.free_count(), 1, "waiting took no slot");
        b.kill();
        let group = Group::new();
        group.wait_available();
        assert!(!group.is_full());
    });
}
