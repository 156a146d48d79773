//! The introductory examples of gevent's documentation, translated.
//!
//! ```python
//! def f(n):
//!     for i in range(n):
//!         print(gevent.getcurrent(), i)
//!         # gevent.sleep(...)   (second variant)
//!
//! g1 = gevent.spawn(f, 5); g2 = gevent.spawn(f, 5); g3 = gevent.spawn(f, 5)
//! g1.join(); g2.join(); g3.join()
//! ```
//!
//! Without a blocking call the greenlets run one after the other; with one
//! they interleave step by step. Both orders are exact.

mod util;

use std::time::{Duration, Instant};

use greenlet::{Greenlet, GreenletId};
use util::Log;

/// What `f` does between steps.
#[derive(Clone, Copy)]
enum Pause {
    None,
    Sleep(Duration),
    Yield,
}

/// gevent's `f(n)`: records `(current id, i)` for each step.
fn f(n: u32, log: Log<(GreenletId, u32)>, pause: Pause) {
    for i in 0..n {
        let me = greenlet::current().expect("f runs in a greenlet");
        log.push((me.id(), i));
        match pause {
            Pause::None => {}
            Pause::Sleep(d) => greenlet::sleep(d),
            Pause::Yield => greenlet::yield_now(),
        }
    }
}

/// Spawns g1, g2, g3 running `f(5)`, joins them in order, and returns their
/// ids and the log.
fn run_three(pause: Pause) -> (Vec<GreenletId>, Vec<(GreenletId, u32)>) {
    let log = Log::new();
    let gs: Vec<Greenlet<()>> = (0..3)
        .map(|_| {
            let log = log.clone();
            greenlet::spawn(move || f(5, log, pause))
        })
        .collect();
    let ids: Vec<GreenletId> = gs.iter().map(Greenlet::id).collect();
    for g in gs {
        g.join().unwrap();
    }
    (ids, log.snapshot())
}

#[test]
fn without_blocking_calls_each_greenlet_runs_to_completion_in_turn() {
    let (ids, log) = run_three(Pause::None);
    let expected: Vec<(GreenletId, u32)> = ids
        .iter()
        .flat_map(|&id| (0..5).map(move |i| (id, i)))
        .collect();
    assert_eq!(log, expected);
}

#[test]
fn with_sleep_between_steps_the_greenlets_interleave() {
    let t = Instant::now();
    let (ids, log) = run_three(Pause::Sleep(Duration::from_millis(20)));
    let expected: Vec<(GreenletId, u32)> = (0..5)
        .flat_map(|i| ids.iter().map(move |&id| (id, i)))
        .collect();
    assert_eq!(log, expected);
    // The three sleep concurrently: about 5 x 20 ms, not 15 x 20 ms.
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "the sleeps did not overlap: {:?}",
        t.elapsed()
    );
}

#[test]
fn with_sleep_zero_between_steps_the_greenlets_interleave() {
    for pause in [Pause::Yield, Pause::Sleep(Duration::ZERO)] {
        let (ids, log) = run_three(pause);
        let expected: Vec<(GreenletId, u32)> = (0..5)
            .flat_map(|i| ids.iter().map(move |&id| (id, i)))
            .collect();
        assert_eq!(log, expected);
    }
}

#[test]
fn greenlets_have_distinct_ids_and_start_only_when_the_root_blocks() {
    let log = Log::new();
    let gs: Vec<Greenlet<()>> = (0..3)
        .map(|_| {
            let log = log.clone();
            greenlet::spawn(move || f(2, log, Pause::None))
        })
        .collect();
    // Spawning does not run anything: gevent's greenlets start when the hub
    // gets control.
    assert_eq!(log.len(), 0);
    let mut ids: Vec<u64> = gs.iter().map(|g| g.id().as_u64()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are unique");
    assert!(ids.iter().all(|&id| id > 0), "0 is the root's id");
    greenlet::joinall(gs);
    assert_eq!(log.len(), 6);
}
