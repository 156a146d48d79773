//! Regression tests for soundness defects reachable from safe code: each one
//! is the program that broke (issue 9), bounded in time. Those about
//! threads that exit with greenlets parked are in `tests/thread_exit.rs`.
//! Scenarios that used to crash the process run in a child process
//! (`util::run_child_within`), so a regression fails one test instead of
//! the whole binary.

mod util;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use greenlet::pool::Group;
use greenlet::sync::{Event, Queue};
use greenlet::{sleep, spawn, with_timeout, yield_now};
use util::{assert_child_passed, assert_killed, child_mode, run_child_within, within};

const LIMIT: Duration = Duration::from_secs(20);

// ---- 1. closures of any size ----

#[test]
fn closure_of_2_kib_runs_and_returns() {
    if child_mode().as_deref() == Some("big_closure") {
        let big = [7u8; 2048];
        let sum = spawn(move || big.iter().map(|&b| b as u32).sum::<u32>())
            .join()
            .unwrap();
        assert_eq!(sum, 7 * 2048);
        // Far over the 1 KiB corosensei moves across a switch, and a large
        // result too (the stack still has to hold a few copies in debug
        // builds).
        let moved = [3u8; 16 << 10];
        let r = spawn(move || {
            let mut out = [0u8; 4096];
            out[0] = moved[1];
            (moved.len(), out)
        })
        .join()
        .unwrap();
        assert_eq!((r.0, r.1[0]), (16 << 10, 3));
        assert!(greenlet::current().is_none());
        return;
    }
    let out = run_child_within(
        "closure_of_2_kib_runs_and_returns",
        "big_closure",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

// ---- 2. the loop's drops while the root unwinds ----

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("planned: a detached greenlet's result panics in its drop");
    }
}

/// Joins its greenlet when dropped (a scope guard).
struct JoinsWhenDropped(Option<greenlet::Greenlet<()>>);

impl Drop for JoinsWhenDropped {
    fn drop(&mut self) {
        let _ = self.0.take().unwrap().join();
    }
}

#[test]
fn a_result_drop_that_panics_while_the_root_unwinds_does_not_abort() {
    // The root panics; a guard on its stack joins a greenlet as it unwinds,
    // which runs the loop, which finishes a detached greenlet whose result
    // panics as the loop drops it. That second panic must not reach the
    // unwinding root (a panic out of a destructor during unwinding aborts
    // the process): the root's own panic is the one that comes out.
    if child_mode().as_deref() == Some("result_drop_unwinding") {
        let r = catch_unwind(AssertUnwindSafe(|| {
            drop(spawn(|| PanicsOnDrop)); // detached: the loop drops its result
            let _guard = JoinsWhenDropped(Some(spawn(|| sleep(Duration::from_millis(5)))));
            panic!("planned: the root's own panic");
        }));
        let payload = r.expect_err("the root's panic comes out");
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("planned: the root's own panic")
        );
        // The hub still works.
        assert_eq!(spawn(|| 3).join().unwrap(), 3);
        // Outside an unwinding, that panic comes out of the call that ran
        // the loop, as documented.
        drop(spawn(|| PanicsOnDrop));
        let r = catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_millis(1))));
        let payload = r.expect_err("the result's panic comes out of the sleep");
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("planned: a detached greenlet's result panics in its drop")
        );
        assert_eq!(spawn(|| 4).join().unwrap(), 4);
        return;
    }
    let out = run_child_within(
        "a_result_drop_that_panics_while_the_root_unwinds_does_not_abort",
        "result_drop_unwinding",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

// ---- 3. unwinding is tracked per greenlet ----

/// Kills its helper greenlet when dropped.
struct KillOnDrop(greenlet::Greenlet<()>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

#[test]
fn guard_that_kills_a_helper_from_drop_works_when_its_owner_panics() {
    within(LIMIT, || {
        let owner = spawn(|| {
            let helper = spawn(|| sleep(Duration::from_secs(3600)));
            let _guard = KillOnDrop(helper);
            yield_now();
            panic!("owner fails");
        });
        let err = owner.join().unwrap_err();
        assert_eq!(err.panic_message(), Some("owner fails"));
    });
}

#[test]
fn guard_that_kills_a_helper_from_drop_works_when_its_owner_is_killed() {
    within(LIMIT, || {
        let helper_done = Rc::new(Cell::new(false));
        let hd = helper_done.clone();
        let owner = spawn(move || {
            let helper = spawn(move || {
                let _flag = util::drop_flag();
                struct Set(Rc<Cell<bool>>);
                impl Drop for Set {
                    fn drop(&mut self) {
                        self.0.set(true);
                    }
                }
                let _s = Set(hd);
                sleep(Duration::from_secs(3600));
            });
            let _guard = KillOnDrop(helper);
            sleep(Duration::from_secs(3600));
        });
        yield_now();
        yield_now();
        owner.kill();
        assert!(helper_done.get(), "the helper was not killed");
        assert_killed(owner.join());
    });
}

/// Parks in its destructor for `ms`.
struct SlowDrop(u64);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        sleep(Duration::from_millis(self.0));
    }
}

#[test]
fn timeout_in_one_greenlet_fires_while_another_is_parked_mid_unwind() {
    within(LIMIT, || {
        let a = spawn(|| {
            let _d = SlowDrop(400);
            yield_now();
            panic!("a unwinds");
        });
        let b = spawn(|| {
            yield_now();
            yield_now(); // A is now parked inside its destructor
            let start = Instant::now();
            let r = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(1)));
            (r, start.elapsed())
        });
        let (r, took) = b.join().unwrap();
        assert!(r.is_err(), "with_timeout returned Ok");
        assert!(took < Duration::from_millis(300), "took {took:?}");
        assert!(a.join().is_err());
    });
}

/// Yields `n` times in its destructor, counting the yields that returned.
struct YieldingDrop(u32, Rc<Cell<u32>>);

impl Drop for YieldingDrop {
    fn drop(&mut self) {
        for _ in 0..self.0 {
            yield_now();
            self.1.set(self.1.get() + 1);
        }
    }
}

#[test]
fn a_kill_while_a_destructor_yields_mid_unwind_waits_for_the_unwind() {
    // A yield made while unwinding ends its suspension's bookkeeping and
    // then checks for an interrupt in one step (`resume_slow`): the kill
    // must not be delivered there (a second unwind out of a destructor
    // aborts the process), and the destructor must run to its end.
    within(LIMIT, || {
        let returned = Rc::new(Cell::new(0));
        let r = returned.clone();
        let a = spawn(move || {
            let _d = YieldingDrop(3, r);
            yield_now();
            panic!("a unwinds");
        });
        yield_now(); // A yields once
        yield_now(); // A panics and yields in its destructor
        assert_eq!(returned.get(), 0, "A is suspended in its first yield");
        a.kill();
        let res = a.join();
        assert_eq!(returned.get(), 3, "every yield of the destructor returned");
        let e = res.expect_err("A panicked");
        assert_eq!(e.panic_message(), Some("a unwinds"));
        // A kill of a greenlet that is not unwinding is delivered at its
        // yield, as before.
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        let b = spawn(move || {
            loop {
                yield_now();
                n2.set(n2.get() + 1);
            }
        });
        yield_now();
        b.kill();
        assert_killed(b.join());
        assert_eq!(n.get(), 0, "the kill was delivered at B's first yield");
    });
}

#[test]
fn kill_of_an_event_waiter_returns_while_another_greenlet_is_parked_mid_unwind() {
    within(LIMIT, || {
        let a = spawn(|| {
            let _d = SlowDrop(300);
            yield_now();
            panic!("a unwinds");
        });
        let ev = Event::new();
        let e2 = ev.clone();
        let waiter = spawn(move || e2.wait());
        yield_now();
        yield_now();
        let start = Instant::now();
        waiter.kill();
        assert!(start.elapsed() < Duration::from_millis(250));
        assert_killed(waiter.join());
        assert!(a.join().is_err());
    });
}

#[test]
fn group_kill_from_a_members_drop_during_unwinding_returns() {
    within(LIMIT, || {
        struct KillGroup(Group);
        impl Drop for KillGroup {
            fn drop(&mut self) {
                self.0.kill();
            }
        }
        let group = Group::new();
        let g2 = group.clone();
        let _sleeper = group.spawn(|| sleep(Duration::from_secs(3600)));
        let member = group.spawn(move || {
            let _k = KillGroup(g2);
            yield_now();
            panic!("member fails");
        });
        assert!(member.join().unwrap_err().is_panic());
        group.join();
        assert_eq!(group.len(), 0);
    });
}

#[test]
fn unrelated_timeouts_fire_while_queue_waits_are_cleaned_up_mid_unwind() {
    // `with_timeout` around `q.get()` expiring just as another thread hands
    // the item over makes the getter park in its cleanup while unwinding;
    // other greenlets' timeouts must still fire on time.
    within(LIMIT * 2, || {
        let q: Queue<u64> = Queue::new();
        let stop = Arc::new(AtomicBool::new(false));
        let putters: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        q.put(i).unwrap();
                        i += 1;
                        std::thread::sleep(Duration::from_micros(50));
                    }
                })
            })
            .collect();
        let getters: Vec<_> = (0..20)
            .map(|_| {
                let q = q.clone();
                spawn(move || {
                    let end = Instant::now() + Duration::from_millis(800);
                    while Instant::now() < end {
                        let _ = with_timeout(Duration::from_micros(200), || q.get());
                    }
                })
            })
            .collect();
        let late = Rc::new(Cell::new(0u32));
        let runs = Rc::new(Cell::new(0u32));
        let sleepers: Vec<_> = (0..10)
            .map(|_| {
                let (late, runs) = (late.clone(), runs.clone());
                spawn(move || {
                    let end = Instant::now() + Duration::from_millis(800);
                    while Instant::now() < end {
                        let t = Instant::now();
                        let r = with_timeout(Duration::from_millis(2), || {
                            sleep(Duration::from_millis(200))
                        });
                        assert!(r.is_err());
                        runs.set(runs.get() + 1);
                        if t.elapsed() >= Duration::from_millis(150) {
                            late.set(late.get() + 1);
                        }
                    }
                })
            })
            .collect();
        for g in getters.into_iter().chain(sleepers) {
            g.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for p in putters {
            p.join().unwrap();
        }
        assert!(runs.get() > 100, "only {} timeouts ran", runs.get());
        assert_eq!(
            late.get(),
            0,
            "{} of {} timeouts ran late",
            late.get(),
            runs.get()
        );
    });
}

#[test]
fn kills_return_under_a_stress_of_timed_waits_and_cross_thread_hand_offs() {
    within(LIMIT * 2, || {
        let q: Queue<u64> = Queue::new();
        let sem = Arc::new(greenlet::sync::Semaphore::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let feeders: Vec<_> = (0..2)
            .map(|_| {
                let (q, sem, stop) = (q.clone(), sem.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = q.put(1);
                        sem.add_permits(1);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let worker = |q: Queue<u64>, sem: Arc<greenlet::sync::Semaphore>| {
            spawn(move || {
                loop {
                    if let Ok(p) = sem.acquire_timeout(Duration::from_micros(100)) {
                        p.forget();
                    }
                    let _ = q.get_timeout(Duration::from_micros(100));
                    let _ = with_timeout(Duration::from_micros(100), || q.get());
                    // Items and permits may always be there: let the others
                    // (and the root) run.
                    yield_now();
                }
            })
        };
        let mut workers: Vec<_> = (0..200).map(|_| worker(q.clone(), sem.clone())).collect();
        let end = Instant::now() + Duration::from_millis(1500);
        let mut kills = 0;
        let mut i = 0;
        while Instant::now() < end {
            sleep(Duration::from_millis(2));
            let w = std::mem::replace(&mut workers[i % 200], worker(q.clone(), sem.clone()));
            w.kill();
            assert_killed(w.join());
            kills += 1;
            i += 7;
        }
        for w in &workers {
            w.kill();
        }
        stop.store(true, Ordering::Relaxed);
        for f in feeders {
            f.join().unwrap();
        }
        assert!(kills > 50, "only {kills} kills");
    });
}

// ---- 4. a caught kill is not consumed ----

#[test]
fn kill_caught_with_catch_unwind_still_kills_at_the_next_park() {
    within(LIMIT, || {
        let caught = Rc::new(Cell::new(0));
        let c = caught.clone();
        let g = spawn(move || {
            for _ in 0..3 {
                if catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(3600)))).is_err() {
                    c.set(c.get() + 1);
                }
            }
            "survived"
        });
        yield_now();
        g.kill(); // must return
        assert_killed(g.join());
        // Each catch ended at the next park; the loop's parks kept killing.
        assert_eq!(caught.get(), 3);
    });
}

#[test]
fn kill_caught_and_then_returning_reports_killed() {
    within(LIMIT, || {
        let g = spawn(|| {
            let r = catch_unwind(|| sleep(Duration::from_secs(3600)));
            assert!(r.is_err());
            5
        });
        yield_now();
        g.kill();
        assert_killed(g.join());
    });
}

// ---- 5. smaller correctness bugs ----

/// A value whose destructor blocks; the hub loop drops it (the last
/// reference to a detached greenlet's result goes away inside the loop).
struct BlocksInDrop(Arc<StdMutex<Option<String>>>);

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let r = catch_unwind(|| sleep(Duration::from_millis(1)));
        if let Err(p) = r {
            *self.0.lock().unwrap() = Some(util::payload_message(&*p));
        }
    }
}

#[test]
fn caught_blocking_call_inside_the_loop_leaves_the_outer_join_parked() {
    within(LIMIT, || {
        let seen = Arc::new(StdMutex::new(None));
        let s2 = seen.clone();
        drop(spawn(move || BlocksInDrop(s2))); // detached
        let outer = spawn(|| {
            sleep(Duration::from_millis(30));
            "outer done"
        });
        assert_eq!(outer.join().unwrap(), "outer done");
        let msg = seen.lock().unwrap().clone().unwrap_or_default();
        assert!(msg.contains("inside the hub loop"), "{msg}");
    });
}

// ---- the panic hook the runtime installs chains to the one it replaced ----

#[test]
fn a_panic_hook_set_before_the_first_hub_still_runs() {
    if child_mode().as_deref() == Some("hook_chain") {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        std::panic::set_hook(Box::new(|_| {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }));
        // The first hub of the process installs its marker hook here.
        let r = spawn(|| panic!("in a greenlet")).join();
        assert!(r.unwrap_err().is_panic());
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        let r = catch_unwind(|| panic!("in root context"));
        assert!(r.is_err());
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        return;
    }
    let out = run_child_within(
        "a_panic_hook_set_before_the_first_hub_still_runs",
        "hook_chain",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}
