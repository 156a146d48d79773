//! `Greenlet::kill`: unwinding from park points, destructors, and the
//! never-started, finished, self and greenlet-to-greenlet cases.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::Greenlet;
use util::{Log, assert_between, assert_killed, drop_flag};

const FOREVER: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn kill_during_sleep_runs_destructors() {
    let (guard, dropped) = drop_flag();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::sleep(FOREVER);
        a.set(true);
    });
    greenlet::sleep(ms(5));
    assert!(!g.is_finished());
    let t = Instant::now();
    g.kill();
    assert!(t.elapsed() < ms(500), "kill waited for the sleep");
    assert!(g.is_finished(), "kill returns once the greenlet is dead");
    assert!(dropped.get(), "destructors did not run");
    assert!(!after.get(), "code after the park point ran");
    assert_killed(g.join());
}

#[test]
fn kill_unwinds_every_frame_in_order() {
    struct Named(&'static str, Log<&'static str>);
    impl Drop for Named {
        fn drop(&mut self) {
            self.1.push(self.0);
        }
    }
    fn deeper(log: Log<&'static str>, depth: u32) {
        let _frame = Named(["outer", "middle", "inner"][depth as usize], log.clone());
        if depth < 2 {
            deeper(log, depth + 1);
        } else {
            greenlet::sleep(FOREVER);
        }
    }
    let log = Log::new();
    let l = log.clone();
    let g = greenlet::spawn(move || deeper(l, 0));
    greenlet::yield_now();
    g.kill();
    assert_eq!(log.snapshot(), ["inner", "middle", "outer"]);
    assert_killed(g.join());
}

#[test]
fn kill_during_a_join_runs_destructors_and_leaves_the_joined_greenlet_alone() {
    let (b_guard, b_dropped) = drop_flag();
    let b_done = Rc::new(Cell::new(false));
    let bd = b_done.clone();
    let b = greenlet::spawn(move || {
        let _guard = b_guard;
        greenlet::sleep(ms(60));
        bd.set(true);
    });
    let (a_guard, a_dropped) = drop_flag();
    let a = greenlet::spawn(move || {
        let _guard = a_guard;
        b.join().unwrap();
    });
    greenlet::sleep(ms(5));
    a.kill();
    assert!(a_dropped.get(), "A's destructors did not run");
    assert!(a.is_finished());
    assert_killed(a.join());
    // B was only detached (its handle died with A), not killed.
    assert!(!b_dropped.get(), "killing A unwound B");
    assert!(!b_done.get());
    let t = Instant::now();
    while !b_done.get() && t.elapsed() < ms(2000) {
        greenlet::sleep(ms(10));
    }
    assert!(b_done.get(), "B did not finish its sleep");
    assert!(b_dropped.get());
}

#[test]
fn kill_during_iwait_runs_destructors() {
    let b_done = Rc::new(Cell::new(false));
    let bd = b_done.clone();
    let b = greenlet::spawn(move || {
        greenlet::sleep(ms(40));
        bd.set(true);
    });
    let (guard, dropped) = drop_flag();
    let a = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::iwait(vec![b]).count()
    });
    greenlet::sleep(ms(5));
    a.kill();
    assert!(dropped.get());
    assert_killed(a.join());
    greenlet::sleep(ms(60));
    assert!(b_done.get(), "the greenlet A waited for was disturbed");
}

#[test]
fn kill_of_a_never_started_greenlet_drops_its_closure() {
    let (guard, dropped) = drop_flag();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        r.set(true);
    });
    assert!(!g.is_finished());
    g.kill();
    assert!(g.is_finished());
    assert!(dropped.get(), "the captured values were not dropped");
    // Let the hub run: the body must never run.
    greenlet::sleep(ms(1));
    assert!(
        !ran.get(),
        "the body of a killed, never-started greenlet ran"
    );
    assert_killed(g.join());
}

#[test]
fn kill_of_a_finished_greenlet_is_a_no_op() {
    let g = greenlet::spawn(|| String::from("result"));
    greenlet::yield_now();
    assert!(g.is_finished());
    g.kill();
    g.kill();
    assert!(g.is_finished());
    assert_eq!(g.join().unwrap(), "result", "kill replaced the result");
}

#[test]
fn kill_of_a_panicked_greenlet_keeps_the_panic() {
    let g = greenlet::spawn(|| panic!("first"));
    greenlet::yield_now();
    assert!(g.is_finished());
    g.kill();
    util::assert_panicked_with(g.join(), "first");
}

#[test]
fn kill_twice_while_parked() {
    let (guard, dropped) = drop_flag();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::sleep(FOREVER);
    });
    greenlet::yield_now();
    g.kill();
    g.kill();
    assert!(dropped.get());
    assert_killed(g.join());
}

#[test]
fn a_greenlet_can_kill_itself() {
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let (guard, dropped) = drop_flag();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::sleep(ms(1));
        s.borrow().as_ref().expect("handle stored").kill();
        a.set(true);
    });
    *slot.borrow_mut() = Some(g);
    for _ in 0..1000 {
        if slot.borrow().as_ref().unwrap().is_finished() {
            break;
        }
        greenlet::sleep(ms(1));
    }
    let g = slot.borrow_mut().take().unwrap();
    assert!(g.is_finished(), "the self-killing greenlet never finished");
    assert!(dropped.get(), "destructors did not run");
    assert!(!after.get(), "code after the self-kill ran");
    assert_killed(g.join());
}

#[test]
fn kill_from_inside_another_greenlet() {
    let (guard, dropped) = drop_flag();
    let target = greenlet::spawn(move || {
        let _guard = guard;
        greenlet::sleep(FOREVER);
    });
    let killer = greenlet::spawn(move || {
        greenlet::sleep(ms(5));
        target.kill();
        // kill waits until the target is dead.
        assert!(target.is_finished());
        target
    });
    let target = killer.join().unwrap();
    assert!(dropped.get());
    assert_killed(target.join());
}

#[test]
fn kill_from_a_greenlet_of_a_greenlet_that_has_not_started() {
    let (guard, dropped) = drop_flag();
    let killer = greenlet::spawn(move || {
        let target = greenlet::spawn(move || {
            let _guard = guard;
            unreachable!("never started");
        });
        target.kill();
        target
    });
    let target = killer.join().unwrap();
    assert!(dropped.get());
    assert_killed(target.join());
}

#[test]
fn kill_of_a_ready_greenlet_takes_effect_at_its_next_park() {
    let log = Log::new();
    let l = log.clone();
    let g = greenlet::spawn(move || {
        l.push("started");
        greenlet::yield_now();
        l.push("resumed");
        greenlet::yield_now();
        l.push("not reached");
    });
    // Run it up to its first yield: it is now ready again, and started.
    greenlet::yield_now();
    assert_eq!(log.snapshot(), ["started"]);
    g.kill();
    // Whether it dies right at the resumed yield or at the next park, it
    // must never get past its second yield.
    assert!(g.is_finished());
    assert!(!log.snapshot().contains(&"not reached"));
    assert_killed(g.join());
}

#[test]
fn destructors_of_a_killed_greenlet_may_block() {
    struct SlowClose(Rc<Cell<bool>>);
    impl Drop for SlowClose {
        fn drop(&mut self) {
            // Like closing a socket gracefully: a blocking call inside a
            // destructor that runs because of kill.
            greenlet::sleep(Duration::from_millis(20));
            self.0.set(true);
        }
    }
    let closed = Rc::new(Cell::new(false));
    let c = closed.clone();
    let g = greenlet::spawn(move || {
        let _conn = SlowClose(c);
        greenlet::sleep(FOREVER);
    });
    greenlet::yield_now();
    let t = Instant::now();
    g.kill();
    assert!(closed.get(), "kill returned before the destructor finished");
    assert_between(
        "kill with a 20 ms destructor",
        t.elapsed(),
        ms(20),
        ms(1000),
    );
    assert_killed(g.join());
}

#[test]
fn kill_is_not_swallowed_by_with_timeout() {
    let (guard, dropped) = drop_flag();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        let r = greenlet::with_timeout(FOREVER, || greenlet::sleep(FOREVER));
        // Not reached: the kill passes through the timeout scope.
        r.is_ok()
    });
    greenlet::yield_now();
    g.kill();
    assert!(dropped.get());
    assert_killed(g.join());
}

#[test]
fn the_hub_keeps_working_after_many_kills() {
    let gs: Vec<_> = (0..200)
        .map(|_| greenlet::spawn(|| greenlet::sleep(FOREVER)))
        .collect();
    greenlet::yield_now();
    for g in &gs {
        g.kill();
    }
    for g in gs {
        assert_killed(g.join());
    }
    let t = Instant::now();
    greenlet::sleep(ms(10));
    assert!(t.elapsed() >= ms(10));
    assert_eq!(greenlet::spawn(|| 3).join().unwrap(), 3);
}

/// Parks, then logs, when dropped (a value with a graceful close).
struct ParksInDrop(Log<&'static str>);

impl std::fmt::Debug for ParksInDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParksInDrop")
    }
}

impl Drop for ParksInDrop {
    fn drop(&mut self) {
        greenlet::sleep(ms(1));
        self.0.push("value dropped");
    }
}

/// A greenlet that catches its kill and returns a value still dies as
/// killed; its value is dropped on its own stack, and that destructor may
/// park like any other (the kill no longer applies to it) instead of
/// unwinding out of the greenlet into whoever runs the hub.
#[test]
fn the_value_of_a_greenlet_that_caught_its_kill_drops_on_its_stack_and_may_park() {
    util::within(ms(5000), || {
        let log = Log::new();
        let l = log.clone();
        let g = greenlet::spawn(move || {
            let r = std::panic::catch_unwind(|| greenlet::sleep(FOREVER));
            assert!(r.is_err());
            ParksInDrop(l)
        });
        greenlet::yield_now(); // it parks
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.kill()));
        assert!(r.is_ok(), "the kill unwound the killer");
        assert_killed(g.join());
        assert_eq!(log.snapshot(), ["value dropped"]);
    });
}
