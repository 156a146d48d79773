//! `join`, `joinall`, `iwait`, `spawn_later`, panics and `JoinError`.

mod util;

use std::cell::Cell;
use std::error::Error;
use std::rc::Rc;
use std::time::{Duration, Instant};

use util::{Log, assert_between, assert_killed, assert_panicked_with, drop_flag};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Spawns greenlets that sleep `delays` ms each and return their delay.
fn sleepers(delays: &[u64]) -> Vec<greenlet::Greenlet<u64>> {
    delays
        .iter()
        .map(|&d| {
            greenlet::spawn(move || {
                greenlet::sleep(ms(d));
                d
            })
        })
        .collect()
}

#[test]
fn join_returns_the_value() {
    let g = greenlet::spawn(|| vec![1, 2, 3]);
    assert_eq!(g.join().unwrap(), [1, 2, 3]);
}

#[test]
fn join_from_a_greenlet() {
    let outer = greenlet::spawn(|| {
        let inner = greenlet::spawn(|| {
            greenlet::sleep(ms(5));
            "inner"
        });
        format!("outer saw {}", inner.join().unwrap())
    });
    assert_eq!(outer.join().unwrap(), "outer saw inner");
}

#[test]
fn joinall_returns_results_in_input_order() {
    let t = Instant::now();
    let results: Vec<u64> = greenlet::joinall(sleepers(&[40, 10, 30, 20, 0]))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [40, 10, 30, 20, 0]);
    assert_between("joinall of 40 ms sleepers", t.elapsed(), ms(40), ms(500));
}

#[test]
fn joinall_reports_each_failure_in_its_place() {
    let gs: Vec<greenlet::Greenlet<u32>> = vec![
        greenlet::spawn(|| 1),
        greenlet::spawn(|| panic!("second fails")),
        greenlet::spawn(|| {
            greenlet::sleep(ms(5));
            3
        }),
    ];
    let mut results = greenlet::joinall(gs).into_iter();
    assert_eq!(results.next().unwrap().unwrap(), 1);
    assert_panicked_with(results.next().unwrap(), "second fails");
    assert_eq!(results.next().unwrap().unwrap(), 3);
}

#[test]
fn joinall_of_nothing_is_empty() {
    let none: Vec<greenlet::Greenlet<()>> = Vec::new();
    assert!(greenlet::joinall(none).is_empty());
}

#[test]
fn iwait_yields_in_completion_order() {
    let order: Vec<u64> = greenlet::iwait(sleepers(&[40, 10, 30, 20]))
        .map(|g| {
            assert!(g.is_finished(), "iwait yields finished greenlets");
            g.join().unwrap()
        })
        .collect();
    assert_eq!(order, [10, 20, 30, 40]);
}

#[test]
fn iwait_yields_already_finished_greenlets_first() {
    let slow = greenlet::spawn(|| {
        greenlet::sleep(ms(20));
        "slow"
    });
    let fast = greenlet::spawn(|| "fast");
    greenlet::yield_now();
    assert!(fast.is_finished());
    let mut it = greenlet::iwait(vec![slow, fast]);
    assert_eq!(it.size_hint(), (2, Some(2)));
    assert_eq!(it.next().unwrap().join().unwrap(), "fast");
    assert_eq!(it.size_hint(), (1, Some(1)));
    assert_eq!(it.next().unwrap().join().unwrap(), "slow");
    assert!(it.next().is_none());
}

#[test]
fn iwait_can_stop_early_and_the_rest_keep_running() {
    let mut it = greenlet::iwait(sleepers(&[30, 5, 20]));
    assert_eq!(it.next().unwrap().join().unwrap(), 5);
    drop(it);
    // The others were detached, not killed: the root can still sleep past
    // their deadlines without trouble.
    greenlet::sleep(ms(40));
}

#[test]
fn iwait_inside_a_greenlet() {
    let g = greenlet::spawn(|| {
        greenlet::iwait(sleepers(&[20, 0, 10]))
            .map(|g| g.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(g.join().unwrap(), [0, 10, 20]);
}

#[test]
fn iwait_yields_panicked_greenlets_in_their_turn() {
    let slow = greenlet::spawn(|| {
        greenlet::sleep(ms(20));
        "slow"
    });
    let panicky = greenlet::spawn(|| -> &'static str {
        greenlet::sleep(ms(5));
        panic!("panicky")
    });
    let middle = greenlet::spawn(|| {
        greenlet::sleep(ms(10));
        "middle"
    });
    let (slow_id, panicky_id, middle_id) = (slow.id(), panicky.id(), middle.id());
    let mut it = greenlet::iwait(vec![slow, panicky, middle]);
    let first = it.next().unwrap();
    assert_eq!(first.id(), panicky_id);
    assert_panicked_with(first.join(), "panicky");
    let second = it.next().unwrap();
    assert_eq!(second.id(), middle_id);
    assert_eq!(second.join().unwrap(), "middle");
    let third = it.next().unwrap();
    assert_eq!(third.id(), slow_id);
    assert!(it.next().is_none());
}

#[test]
fn iwait_yields_a_greenlet_killed_before_it_started_at_once() {
    let never = greenlet::spawn(|| "never");
    never.kill();
    let later = greenlet::spawn(|| {
        greenlet::sleep(ms(5));
        "later"
    });
    let mut it = greenlet::iwait(vec![later, never]);
    assert_killed(it.next().unwrap().join());
    assert_eq!(it.next().unwrap().join().unwrap(), "later");
}

#[test]
fn spawn_later_starts_after_its_delay() {
    let t = Instant::now();
    let g = greenlet::spawn_later(ms(50), move || t.elapsed());
    let started_after = g.join().unwrap();
    assert_between("spawn_later(50 ms) start", started_after, ms(50), ms(1000));
}

#[test]
fn spawn_later_does_not_start_before_its_delay() {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let g = greenlet::spawn_later(ms(60), move || s.set(true));
    greenlet::sleep(ms(10));
    assert!(!started.get(), "started before its delay");
    assert!(!g.is_finished());
    g.join().unwrap();
    assert!(started.get());
}

#[test]
fn spawn_later_runs_in_delay_order() {
    let log = Log::new();
    let gs: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|d| {
            let log = log.clone();
            greenlet::spawn_later(ms(d), move || log.push(d))
        })
        .collect();
    greenlet::joinall(gs);
    assert_eq!(log.snapshot(), [10, 20, 30]);
}

#[test]
fn spawn_later_can_be_killed_before_it_starts() {
    let (guard, dropped) = drop_flag();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = greenlet::spawn_later(ms(50), move || {
        let _guard = guard;
        r.set(true);
    });
    greenlet::sleep(ms(5));
    g.kill();
    assert!(g.is_finished());
    assert!(dropped.get(), "the closure's captures were not dropped");
    let t = Instant::now();
    // Past the original start time: it must not run anyway.
    greenlet::sleep(ms(70));
    assert!(!ran.get(), "a killed spawn_later greenlet ran");
    assert!(t.elapsed() >= ms(70));
    assert_killed(g.join());
}

#[test]
fn builder_spawn_later_names_the_greenlet() {
    let g = greenlet::Builder::new()
        .name("late")
        .spawn_later(ms(5), || {
            greenlet::current().unwrap().name().map(str::to_owned)
        })
        .unwrap();
    assert_eq!(g.name(), Some("late"));
    assert_eq!(g.join().unwrap().as_deref(), Some("late"));
}

#[test]
fn join_on_a_panicking_greenlet_returns_the_panic() {
    let g = greenlet::spawn(|| -> u32 { panic!("boom") });
    let e = assert_panicked_with(g.join(), "boom");
    assert_eq!(e.panic_message(), Some("boom"));
    let payload = e.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[test]
fn join_on_a_greenlet_that_panics_after_parking() {
    let g = greenlet::spawn(|| {
        greenlet::sleep(ms(5));
        let n = 7;
        if n == 7 {
            panic!("formatted {n}");
        }
        n
    });
    let e = assert_panicked_with(g.join(), "formatted 7");
    // A formatted message is a String payload.
    assert!(e.into_panic().downcast_ref::<String>().is_some());
}

#[test]
fn a_panic_with_a_non_string_payload() {
    let g = greenlet::spawn(|| std::panic::panic_any(42u8));
    let e = g.join().unwrap_err();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), None);
    assert!(e.to_string().contains("panicked"), "{e}");
    assert!(format!("{e:?}").contains("Panic"), "{e:?}");
    let payload = e.try_into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&42));
}

#[test]
fn a_panic_is_isolated_to_its_greenlet() {
    let (guard, dropped) = drop_flag();
    let log = Log::new();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let log = log.clone();
            greenlet::spawn(move || {
                for step in 0..3 {
                    greenlet::sleep(ms(5));
                    log.push((i, step));
                }
                i
            })
        })
        .collect();
    let bad = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::sleep(ms(7));
        panic!("only me");
    });
    assert_panicked_with(bad.join(), "only me");
    assert!(dropped.get(), "the panicking greenlet's destructors ran");
    let results: Vec<u32> = greenlet::joinall(workers)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 1, 2]);
    assert_eq!(log.len(), 9, "every step of every worker ran");
    // The hub is still healthy.
    assert_eq!(greenlet::spawn(|| 5).join().unwrap(), 5);
    greenlet::sleep(ms(1));
}

#[test]
fn many_panics_in_a_row_do_not_hurt_the_hub() {
    let gs: Vec<greenlet::Greenlet<()>> = (0..100)
        .map(|i| greenlet::spawn(move || panic!("panic {i}")))
        .collect();
    for (i, r) in greenlet::joinall(gs).into_iter().enumerate() {
        assert_panicked_with(r, &format!("panic {i}"));
    }
    assert_eq!(greenlet::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn join_error_display_debug_and_error() {
    let panicked = greenlet::spawn(|| panic!("kaboom")).join().unwrap_err();
    let shown = panicked.to_string();
    assert!(
        shown.contains("panicked") && shown.contains("kaboom"),
        "{shown}"
    );
    let debug = format!("{panicked:?}");
    assert!(
        debug.contains("Panic") && debug.contains("kaboom"),
        "{debug}"
    );
    assert!(panicked.source().is_none());

    let killed = {
        let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
        greenlet::yield_now();
        g.kill();
        g.join().unwrap_err()
    };
    assert!(killed.is_killed());
    let shown = killed.to_string();
    assert!(shown.contains("killed"), "{shown}");
    let debug = format!("{killed:?}");
    assert!(debug.contains("Killed"), "{debug}");

    // Usable as a boxed std error, like any other error type.
    let boxed: Box<dyn Error + Send> = Box::new(killed);
    assert!(boxed.to_string().contains("killed"));
    let boxed: Box<dyn Error + Send> = Box::new(panicked);
    assert!(boxed.to_string().contains("kaboom"));
}

#[test]
fn into_panic_of_a_killed_greenlet_gives_the_error_back() {
    let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
    greenlet::yield_now();
    g.kill();
    let e = g.join().unwrap_err();
    let e = e.try_into_panic().unwrap_err();
    assert!(e.is_killed());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.into_panic()));
    assert!(r.is_err(), "into_panic on a killed greenlet must panic");
}

#[test]
fn resume_unwind_re_raises_a_greenlet_panic_in_the_joiner() {
    let g = greenlet::spawn::<_, ()>(|| panic!("relay me"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Err(e) = g.join() {
            std::panic::resume_unwind(e.into_panic());
        }
    }));
    let payload = r.unwrap_err();
    assert_eq!(util::payload_message(&*payload), "relay me");
}
