//! greenlet: the crate under test. Everything runs on the calling thread's hub.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::util::{SleepOutcome, process_cpu, vm_hwm_kib, vm_rss_kib};

/// Two greenlets ping-pong with `yield_now`, `n` yields in all.
pub fn switch(n: u64) -> Duration {
    let half = n / 2;
    let t = Instant::now();
    let a = greenlet::spawn(move || {
        for i in 0..half {
            black_box(i);
            greenlet::yield_now();
        }
    });
    let b = greenlet::spawn(move || {
        for i in 0..half {
            black_box(i);
            greenlet::yield_now();
        }
    });
    for r in greenlet::joinall([a, b]) {
        r.unwrap();
    }
    t.elapsed()
}

/// Untimed check that the two greenlets of `switch` really alternate:
/// returns the order in which they ran, `n` entries.
pub fn switch_order(n: u64) -> Vec<u8> {
    use std::cell::RefCell;
    use std::rc::Rc;
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = [0u8, 1]
        .into_iter()
        .map(|id| {
            let log = log.clone();
            greenlet::spawn(move || {
                for _ in 0..n / 2 {
                    log.borrow_mut().push(id);
                    greenlet::yield_now();
                }
            })
        })
        .collect();
    greenlet::joinall(gs);
    log.take()
}

/// Pattern (a): spawn an empty greenlet and join it, `n` times, from root
/// context (the gevent idiom: no `run(main)` wrapper).
pub fn spawn_one(n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        greenlet::spawn(|| ()).join().unwrap();
    }
    t.elapsed()
}

/// Pattern (b): spawn `n` empty greenlets, then `joinall`, from root context.
pub fn spawn_all(n: u64) -> Duration {
    let t = Instant::now();
    let gs: Vec<_> = (0..n).map(|_| greenlet::spawn(|| ())).collect();
    for r in greenlet::joinall(gs) {
        r.unwrap();
    }
    t.elapsed()
}

/// Pattern (a) run from inside a greenlet (join parks instead of driving the
/// hub loop from root context). Reported as the `greenlet-nested` row.
pub fn spawn_one_nested(n: u64) -> Duration {
    greenlet::spawn(move || spawn_one(n)).join().unwrap()
}

/// Pattern (b) run from inside a greenlet.
pub fn spawn_all_nested(n: u64) -> Duration {
    greenlet::spawn(move || spawn_all(n)).join().unwrap()
}

/// `n` greenlets each sleeping `d`, spawned then joined (fresh process).
pub fn sleep_many(n: u64, d: Duration) -> SleepOutcome {
    // Warm up: create the hub (epoll, timers) before the baseline.
    greenlet::spawn(greenlet::yield_now).join().unwrap();
    let rss_before_kib = vm_rss_kib();
    let c = process_cpu();
    let t = Instant::now();
    let gs: Vec<_> = (0..n)
        .map(|_| greenlet::spawn(move || greenlet::sleep(d)))
        .collect();
    let spawn = t.elapsed();
    for r in greenlet::joinall(gs) {
        r.unwrap();
    }
    let wall = t.elapsed();
    SleepOutcome {
        wall,
        cpu: process_cpu() - c,
        spawn,
        rss_before_kib,
        hwm_after_kib: vm_hwm_kib(),
    }
}
