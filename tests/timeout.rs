//! `with_timeout`: expiry, destructors, nesting, root and greenlet
//! contexts, and panics passing through.

mod util;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{Elapsed, with_timeout};
use util::{Log, assert_between, drop_flag, payload_message};

const FOREVER: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `f` in root context and in a greenlet; both must pass.
fn in_root_and_greenlet(f: fn()) {
    f();
    greenlet::spawn(f).join().unwrap();
}

#[test]
fn elapsed_around_a_long_sleep_runs_destructors() {
    in_root_and_greenlet(|| {
        let (guard, dropped) = drop_flag();
        let after = Rc::new(Cell::new(false));
        let a = after.clone();
        let t = Instant::now();
        let r = with_timeout(ms(20), move || {
            let _guard = guard;
            greenlet::sleep(FOREVER);
            a.set(true);
        });
        let _: Elapsed = r.unwrap_err();
        assert!(
            dropped.get(),
            "destructors in the abandoned closure did not run"
        );
        assert!(!after.get(), "code after the park point ran");
        assert_between("with_timeout(20 ms)", t.elapsed(), ms(20), ms(1000));
    });
}

#[test]
fn ok_when_the_closure_is_fast() {
    in_root_and_greenlet(|| {
        assert_eq!(with_timeout(Duration::from_secs(5), || 7), Ok(7));
        let r = with_timeout(ms(500), || {
            greenlet::sleep(ms(5));
            "slept"
        });
        assert_eq!(r, Ok("slept"));
    });
}

#[test]
fn a_finished_timeout_does_not_fire_later() {
    in_root_and_greenlet(|| {
        assert_eq!(with_timeout(ms(50), || 1), Ok(1));
        assert_eq!(
            with_timeout(ms(50), || {
                greenlet::sleep(ms(1));
                2
            }),
            Ok(2)
        );
        // Sleep well past both deadlines: a leftover timer would unwind
        // this sleep (or a later park) with a stray timeout.
        let t = Instant::now();
        greenlet::sleep(ms(70));
        assert!(t.elapsed() >= ms(70));
        greenlet::yield_now();
    });
}

#[test]
fn elapsed_is_an_error_type() {
    let e = with_timeout(ms(1), || greenlet::sleep(FOREVER)).unwrap_err();
    assert!(e.to_string().contains("elapsed"), "{e}");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    assert!(boxed.source().is_none());
    assert!(format!("{e:?}").contains("Elapsed"));
}

#[test]
fn nested_inner_shorter_fires_and_outer_continues() {
    in_root_and_greenlet(|| {
        let log = Log::new();
        let l = log.clone();
        let outer = with_timeout(ms(500), move || {
            let inner = with_timeout(ms(10), || greenlet::sleep(FOREVER));
            l.push("after inner");
            assert!(inner.is_err(), "the inner timeout should have fired");
            greenlet::sleep(ms(5));
            l.push("outer body done");
            "outer ok"
        });
        assert_eq!(outer, Ok("outer ok"));
        assert_eq!(log.snapshot(), ["after inner", "outer body done"]);
    });
}

#[test]
fn nested_outer_shorter_is_not_caught_by_the_inner_scope() {
    in_root_and_greenlet(|| {
        let (guard, dropped) = drop_flag();
        let after_inner = Rc::new(Cell::new(false));
        let a = after_inner.clone();
        let t = Instant::now();
        let outer = with_timeout(ms(15), move || {
            let _guard = guard;
            let inner = with_timeout(FOREVER, || greenlet::sleep(FOREVER));
            // Not reached: the outer expiry unwinds through the inner scope.
            a.set(true);
            inner.is_ok()
        });
        assert!(outer.is_err(), "the outer scope should report Elapsed");
        assert!(
            !after_inner.get(),
            "the inner scope caught the outer expiry"
        );
        assert!(dropped.get());
        assert_between("outer with_timeout(15 ms)", t.elapsed(), ms(15), ms(1000));
    });
}

#[test]
fn nested_outer_shorter_with_a_pending_inner_of_moderate_length() {
    in_root_and_greenlet(|| {
        let outer = with_timeout(ms(10), || {
            with_timeout(ms(200), || {
                greenlet::sleep(FOREVER);
            })
        });
        assert!(outer.is_err());
        // The inner scope's timer was cancelled with it: nothing fires
        // during this sleep past its deadline.
        greenlet::sleep(ms(220));
    });
}

#[test]
fn when_both_scopes_expired_the_outermost_wins() {
    in_root_and_greenlet(|| {
        let after_inner = Rc::new(Cell::new(false));
        let a = after_inner.clone();
        let outer = with_timeout(ms(20), move || {
            let inner = with_timeout(ms(10), || {
                // Block the thread past both deadlines without parking,
                // then park: both timers are due at once.
                std::thread::sleep(ms(40));
                greenlet::yield_now();
            });
            a.set(true);
            inner
        });
        assert!(outer.is_err(), "the outer scope must win: {outer:?}");
        assert!(!after_inner.get());
    });
}

#[test]
fn three_levels_middle_fires() {
    in_root_and_greenlet(|| {
        let log = Log::new();
        let l = log.clone();
        let r = with_timeout(ms(1000), move || {
            let middle = with_timeout(ms(15), || {
                let innermost = with_timeout(ms(500), || greenlet::sleep(FOREVER));
                l.push("innermost returned");
                innermost
            });
            l.push("middle returned");
            middle.is_err()
        });
        assert_eq!(r, Ok(true));
        assert_eq!(log.snapshot(), ["middle returned"]);
    });
}

#[test]
fn sequential_timeouts_in_one_context() {
    in_root_and_greenlet(|| {
        for _ in 0..5 {
            assert!(with_timeout(ms(2), || greenlet::sleep(FOREVER)).is_err());
            assert_eq!(with_timeout(ms(200), || 1), Ok(1));
        }
    });
}

#[test]
fn code_that_never_parks_cannot_be_interrupted() {
    in_root_and_greenlet(|| {
        let r = with_timeout(ms(5), || {
            std::thread::sleep(ms(20));
            "finished late"
        });
        assert_eq!(r, Ok("finished late"));
        // And the expired-but-unused timeout does not leak into later parks.
        greenlet::sleep(ms(5));
        greenlet::yield_now();
    });
}

#[test]
fn panics_inside_propagate_unchanged() {
    in_root_and_greenlet(|| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            with_timeout(ms(500), || -> u32 { panic!("inner boom") })
        }));
        assert_eq!(payload_message(&*r.unwrap_err()), "inner boom");

        let r = catch_unwind(AssertUnwindSafe(|| {
            with_timeout(ms(500), || {
                greenlet::sleep(ms(2));
                std::panic::panic_any(17i32)
            })
        }));
        assert_eq!(r.unwrap_err().downcast_ref::<i32>(), Some(&17));

        // The context is still usable, timeouts included.
        assert!(with_timeout(ms(2), || greenlet::sleep(FOREVER)).is_err());
    });
}

#[test]
fn a_panic_in_a_timed_greenlet_reaches_join() {
    let g = greenlet::spawn(|| with_timeout::<()>(ms(500), || panic!("joined boom")));
    util::assert_panicked_with(g.join(), "joined boom");
}

#[test]
fn with_timeout_around_a_root_join() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let g = greenlet::spawn(move || {
        greenlet::sleep(ms(60));
        d.set(true);
    });
    let r = with_timeout(ms(10), move || g.join());
    assert!(r.is_err());
    assert!(!done.get(), "the timeout waited for the greenlet");
    // The greenlet was only detached: it still finishes.
    greenlet::sleep(ms(100));
    assert!(done.get());
}

#[test]
fn timeouts_in_many_greenlets_are_independent() {
    let gs: Vec<_> = (0..50u64)
        .map(|i| {
            greenlet::spawn(move || {
                // Even greenlets time out, odd ones finish in time.
                let limit = if i % 2 == 0 { ms(5) } else { ms(500) };
                with_timeout(limit, || {
                    greenlet::sleep(ms(20));
                    i
                })
            })
        })
        .collect();
    for (i, r) in greenlet::joinall(gs).into_iter().enumerate() {
        let r = r.unwrap();
        if i % 2 == 0 {
            assert!(r.is_err(), "greenlet {i}: {r:?}");
        } else {
            assert_eq!(r, Ok(i as u64));
        }
    }
}
