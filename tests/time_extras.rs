//! `sleep_until`, the reusable `Timeout` object and the `interval` ticker.

mod util;

use std::time::{Duration, Instant};

use greenlet::Timeout;
use util::within;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn sleep_until_parks_until_the_deadline_and_others_run() {
    within(ms(5000), || {
        let deadline = Instant::now() + ms(30);
        let other = greenlet::spawn(Instant::now);
        greenlet::sleep_until(deadline);
        assert!(Instant::now() >= deadline);
        assert!(other.join().unwrap() < deadline);
        let t = Instant::now();
        greenlet::sleep_until(t - ms(1)); // passed: returns at once
        assert!(t.elapsed() < ms(500));
    });
}

#[test]
fn timeout_object_is_reusable_cancellable_and_nests() {
    within(ms(5000), || {
        let t = Timeout::new(ms(10));
        for _ in 0..3 {
            assert!(t.run(|| greenlet::sleep(Duration::from_secs(60))).is_err());
            assert!(!t.is_pending());
        }
        assert_eq!(t.run(|| 1), Ok(1));
        let r = t.run(|| {
            assert!(t.is_pending());
            t.cancel();
            assert!(!t.is_pending());
            greenlet::sleep(ms(30));
            2
        });
        assert_eq!(r, Ok(2));
        // An outer timeout object expiring first is not caught by an inner
        // one.
        let outer = Timeout::new(ms(10));
        let inner = Timeout::new(Duration::from_secs(30));
        let r = outer.run(|| inner.run(|| greenlet::sleep(Duration::from_secs(60))));
        assert!(r.is_err());
    });
}

#[test]
fn timeout_object_in_a_greenlet_with_a_kill() {
    within(ms(5000), || {
        let g = greenlet::spawn(|| {
            let t = Timeout::new(Duration::from_secs(30));
            t.run(|| greenlet::sleep(Duration::from_secs(60)))
        });
        greenlet::yield_now();
        g.kill();
        assert!(g.join().unwrap_err().is_killed());
    });
}

#[test]
fn running_a_timeout_twice_at_once_is_refused() {
    let t = Timeout::new(ms(100));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run(|| t.run(|| ()))));
    assert!(r.is_err());
    assert_eq!(t.run(|| 3), Ok(3));
}

#[test]
fn interval_ticks_at_its_period_and_skips_missed_ticks() {
    within(ms(5000), || {
        let start = Instant::now();
        let mut every = greenlet::interval(ms(10));
        let first = every.tick();
        assert!(first.duration_since(start) < ms(5));
        let ticks: Vec<Instant> = (0..5).map(|_| every.tick()).collect();
        assert!(start.elapsed() >= ms(50));
        for w in ticks.windows(2) {
            assert_eq!(w[1] - w[0], ms(10));
        }
        // Fall behind by several periods: the next ticks are not a burst.
        let blocked = Instant::now();
        std::thread::sleep(ms(45));
        let late = every.tick(); // the overdue tick, at once
        let next = every.tick();
        assert!(next > blocked + ms(45), "missed ticks were not skipped");
        assert!(next - late >= ms(10));
    });
}

#[test]
fn interval_is_an_iterator_and_other_greenlets_run_meanwhile() {
    within(ms(5000), || {
        let counter = greenlet::spawn(|| {
            let mut n = 0;
            for _ in greenlet::interval(ms(2)).take(10) {
                n += 1;
            }
            n
        });
        let ticks: Vec<_> = greenlet::interval(ms(5)).take(3).collect();
        assert_eq!(ticks.len(), 3);
        assert_eq!(counter.join().unwrap(), 10);
    });
}
