//! A handle's life beyond spawn/join: `Greenlet::new` + `start`,
//! `join_timeout` keeping the handle, `result`/`try_join`, `kill_nowait`,
//! `kill_timeout`, `killall*` and `try_joinall`.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::Greenlet;
use util::{Log, assert_killed, drop_flag, within};

const FOREVER: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn join_timeout_keeps_the_handle_killable() {
    within(ms(5000), || {
        let (guard, dropped) = drop_flag();
        let g = greenlet::spawn(move || {
            let _guard = guard;
            greenlet::sleep(FOREVER);
        });
        for _ in 0..3 {
            assert!(g.join_timeout(ms(2)).is_err());
        }
        assert!(!g.is_finished());
        g.kill();
        assert!(dropped.get());
        assert!(g.join_timeout(ms(1)).is_ok());
        assert_killed(g.join());
    });
}

#[test]
fn join_timeout_from_a_greenlet_returns_when_the_target_finishes() {
    within(ms(5000), || {
        let target = Rc::new(greenlet::spawn(|| {
            greenlet::sleep(ms(20));
            7
        }));
        let t = target.clone();
        let waiter = greenlet::spawn(move || {
            let start = Instant::now();
            let r = t.join_timeout(Duration::from_secs(10));
            (r, start.elapsed())
        });
        let (r, took) = waiter.join().unwrap();
        assert!(r.is_ok());
        assert!(took < Duration::from_secs(5));
        let target = Rc::try_unwrap(target).unwrap();
        assert_eq!(*target.result().unwrap().unwrap(), 7);
        assert_eq!(target.join().unwrap(), 7);
    });
}

#[test]
fn result_by_reference_then_take() {
    let g = greenlet::spawn(|| vec![1, 2, 3]);
    assert!(g.result().is_none());
    let g = g.try_join().unwrap_err();
    g.join_timeout(ms(1000)).unwrap();
    assert_eq!(g.result().unwrap().unwrap().len(), 3);
    assert_eq!(g.result().unwrap().unwrap()[0], 1);
    assert_eq!(g.try_join().unwrap().unwrap(), [1, 2, 3]);

    let p = greenlet::spawn(|| -> u8 { panic!("bad") });
    p.join_timeout(ms(1000)).unwrap();
    assert_eq!(
        p.result().unwrap().unwrap_err().panic_message(),
        Some("bad")
    );
    assert!(p.join().unwrap_err().is_panic());
}

#[test]
fn a_greenlet_killed_before_it_started_reports_killed_by_reference() {
    let g = greenlet::spawn(|| 1);
    g.kill_nowait();
    assert!(g.is_finished());
    assert!(g.result().unwrap().unwrap_err().is_killed());
    assert_killed(g.join());
}

#[test]
fn new_does_not_run_until_started() {
    within(ms(5000), || {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let g = Greenlet::new(move || r.set(true));
        greenlet::sleep(ms(5));
        assert!(!ran.get());
        assert!(!g.is_started());
        assert!(!g.is_finished());
        g.start();
        assert!(g.is_started());
        g.join().unwrap();
        assert!(ran.get());
    });
}

#[test]
fn start_later_waits_for_its_delay() {
    within(ms(5000), || {
        let t = Instant::now();
        let g = Greenlet::new(Instant::now);
        g.start_later(ms(30));
        g.start(); // already started: no effect
        let ran_at = g.join().unwrap();
        assert!(ran_at.duration_since(t) >= ms(30));
    });
}

#[test]
fn dropping_an_unstarted_greenlet_drops_its_closure() {
    let (guard, dropped) = drop_flag();
    let g = Greenlet::new(move || drop(guard));
    assert!(!dropped.get());
    drop(g);
    assert!(dropped.get());

    let (guard, dropped) = drop_flag();
    let g = greenlet::Builder::new()
        .name("unstarted")
        .build(move || drop(guard))
        .unwrap();
    g.kill();
    assert!(dropped.get());
    assert!(g.is_finished());
    assert_killed(g.join());
}

#[test]
fn joining_a_greenlet_nobody_starts_is_reported_from_root() {
    let g = Greenlet::new(|| 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.join()));
    let msg = util::payload_message(&*r.unwrap_err());
    assert!(msg.contains("would block forever"), "{msg}");
}

#[test]
fn kill_nowait_returns_before_the_target_dies() {
    within(ms(5000), || {
        let log = Log::new();
        let l = log.clone();
        let g = greenlet::spawn(move || {
            struct Bye(Log<&'static str>);
            impl Drop for Bye {
                fn drop(&mut self) {
                    self.0.push("unwound");
                }
            }
            let _b = Bye(l);
            greenlet::sleep(FOREVER);
        });
        greenlet::yield_now();
        g.kill_nowait();
        log.push("kill_nowait returned");
        assert_killed(g.join());
        assert_eq!(log.snapshot(), ["kill_nowait returned", "unwound"]);
    });
}

#[test]
fn kill_timeout_gives_up_on_a_slow_unwind_and_keeps_the_handle() {
    within(ms(5000), || {
        struct SlowClose;
        impl Drop for SlowClose {
            fn drop(&mut self) {
                greenlet::sleep(ms(100));
            }
        }
        let g = greenlet::spawn(|| {
            let _c = SlowClose;
            greenlet::sleep(FOREVER);
        });
        greenlet::yield_now();
        assert!(g.kill_timeout(ms(5)).is_err());
        assert!(!g.is_finished());
        assert!(g.kill_timeout(Duration::from_secs(4)).is_ok());
        assert_killed(g.join());
    });
}

#[test]
fn killall_kills_every_one_concurrently() {
    within(ms(5000), || {
        struct SlowClose;
        impl Drop for SlowClose {
            fn drop(&mut self) {
                greenlet::sleep(ms(50));
            }
        }
        let gs: Vec<_> = (0..20)
            .map(|_| {
                greenlet::spawn(|| {
                    let _c = SlowClose;
                    greenlet::sleep(FOREVER);
                })
            })
            .collect();
        greenlet::yield_now();
        let t = Instant::now();
        greenlet::killall(&gs);
        // Concurrent unwinds: about 50 ms, not 20 x 50 ms.
        assert!(t.elapsed() < ms(800), "{:?}", t.elapsed());
        assert!(gs.iter().all(Greenlet::is_finished));
        for g in gs {
            assert_killed(g.join());
        }
    });
}

#[test]
fn killall_nowait_and_timeout() {
    within(ms(5000), || {
        let gs: Vec<_> = (0..5)
            .map(|_| greenlet::spawn(|| greenlet::sleep(FOREVER)))
            .collect();
        greenlet::yield_now();
        greenlet::killall_nowait(&gs);
        assert!(gs.iter().all(|g| !g.is_finished()));
        assert!(greenlet::killall_timeout(&gs, Duration::from_secs(4)).is_ok());
        assert!(gs.iter().all(Greenlet::is_finished));
    });
}

#[test]
fn killall_including_the_caller_kills_it_last() {
    within(ms(5000), || {
        let all: Rc<std::cell::RefCell<Vec<Greenlet<()>>>> = Rc::default();
        let log = Log::new();
        for i in 0..3 {
            let (all2, log2) = (all.clone(), log.clone());
            let g = greenlet::spawn(move || {
                if i == 0 {
                    greenlet::yield_now();
                    let gs = all2.borrow();
                    greenlet::killall(gs.iter());
                    log2.push("caller survived killall");
                } else {
                    greenlet::sleep(FOREVER);
                }
            });
            all.borrow_mut().push(g);
        }
        // Wait for the caller (index 0) through a handle the greenlets do
        // not borrow.
        while !all.borrow()[0].is_finished() {
            greenlet::sleep(ms(1));
        }
        let gs = std::mem::take(&mut *all.borrow_mut());
        assert!(gs.iter().all(Greenlet::is_finished));
        for g in gs {
            assert_killed(g.join());
        }
        assert!(log.snapshot().is_empty());
    });
}

#[test]
fn try_joinall_stops_at_the_first_error_in_completion_order() {
    within(ms(5000), || {
        let values = greenlet::try_joinall((0..5).map(|i| {
            greenlet::spawn(move || {
                greenlet::sleep(ms(10 * (5 - i)));
                i
            })
        }));
        assert_eq!(values.unwrap(), [0, 1, 2, 3, 4]);

        let t = Instant::now();
        let slow = greenlet::spawn(|| {
            greenlet::sleep(Duration::from_secs(60));
            0
        });
        let fails_late = greenlet::spawn(|| -> i32 {
            greenlet::sleep(ms(30));
            panic!("late")
        });
        let fails_early = greenlet::spawn(|| -> i32 {
            greenlet::sleep(ms(5));
            panic!("early")
        });
        let err = greenlet::try_joinall([slow, fails_late, fails_early]).unwrap_err();
        assert_eq!(err.panic_message(), Some("early"));
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

/// A greenlet whose handle is dropped while it is parked runs to its end
/// and is freed then: its result, which nobody takes, is dropped. The
/// last assertion is what checks the greenlet's reference to itself is
/// given back when it finishes (it fails if `finish` keeps it); while it
/// sleeps its timer holds a reference too, so the first part would pass
/// even without the self-reference.
#[test]
fn a_parked_greenlet_without_a_handle_lives_until_it_finishes_and_no_longer() {
    within(Duration::from_secs(30), || {
        let (result, result_dropped) = drop_flag();
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        drop(greenlet::spawn(move || {
            let on_stack = std::hint::black_box([7u8; 256]);
            greenlet::sleep(ms(20));
            // Its stack is intact after the park.
            assert!(std::hint::black_box(on_stack).iter().all(|&b| b == 7));
            d.set(true);
            result
        }));
        greenlet::sleep(ms(5));
        assert!(!done.get() && !result_dropped.get(), "parked, not freed");
        greenlet::sleep(ms(100));
        assert!(done.get(), "it ran to the end");
        assert!(result_dropped.get(), "its cell was freed with the result");
    });
}

/// Panics when dropped.
struct PanicsInDrop;

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("closure's capture panicked in drop");
    }
}

/// Killing an unstarted greenlet drops its closure in the killer; a panic
/// out of that drop reaches the killer, but the greenlet is finished all
/// the same: its link callbacks run and its waiters wake.
#[test]
fn a_panic_in_an_unstarted_closures_drop_still_wakes_its_waiters() {
    within(ms(5000), || {
        let bomb = PanicsInDrop;
        let g = Rc::new(Greenlet::new(move || drop(bomb)));
        let linked = Rc::new(Cell::new(false));
        let l = linked.clone();
        g.link(move |r| l.set(r.is_err_and(|e| e.is_killed())));
        let g2 = g.clone();
        let waiter = greenlet::spawn(move || g2.join_timeout(FOREVER).is_ok());
        greenlet::yield_now(); // the waiter parks
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.kill()));
        let msg = util::payload_message(&*r.unwrap_err());
        assert_eq!(msg, "closure's capture panicked in drop");
        assert!(g.is_finished());
        assert!(linked.get(), "the link callback did not run");
        assert!(waiter.join().unwrap(), "the waiter was not woken");
    });
}
