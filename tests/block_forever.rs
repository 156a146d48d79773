//! Root waits that nothing can ever end panic with "would block forever"
//! (gevent's `LoopExit`) instead of hanging, and the hub survives them.
//!
//! Joins alone cannot deadlock the root: every greenlet has exactly one
//! handle and `join` consumes it, so the greenlet the root joins cannot also
//! be joined by the greenlets it waits for. Kills cannot either: a kill is
//! level-triggered and unwinds its target at every park. The deadlocks below
//! use the one thing a kill does not interrupt: a greenlet that is already
//! unwinding, whose destructor waits.
//!
//! Sync primitives whose only handle is their waiter's own (a `Queue` whose
//! producers are gone) cannot be set by anyone either: those root waits are
//! reported too, while a handle elsewhere (another thread) or a live
//! `HubHandle` keeps the wait going.

mod util;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::Greenlet;
use util::{Log, drop_flag, payload_message};

/// Waits for its greenlet when dropped.
struct WaitOnDrop(Option<Greenlet<()>>);

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            let _ = greenlet::iwait(vec![g]).next();
        }
    }
}

/// A pair of greenlets that can never finish:
///
/// - `stubborn` unwinds, and a destructor of its waits (in `iwait`) for
///   `killer`; a greenlet that is unwinding is not interrupted by kills;
/// - `killer` kills `stubborn`, and so waits until `stubborn` is dead.
///
/// Returns a shared handle to `stubborn`. Nothing is armed: no timer, no IO.
fn stubborn_pair() -> Rc<Greenlet<()>> {
    let killer_slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let stubborn_slot: Rc<RefCell<Option<Rc<Greenlet<()>>>>> = Rc::new(RefCell::new(None));
    let ks = killer_slot.clone();
    let stubborn = Rc::new(greenlet::spawn(move || {
        let _wait = WaitOnDrop(ks.borrow_mut().take());
        panic!("stubborn unwinds (expected)");
    }));
    let ss = stubborn_slot.clone();
    let killer = greenlet::spawn(move || {
        let target = ss.borrow_mut().take().expect("stubborn stored");
        target.kill();
    });
    *killer_slot.borrow_mut() = Some(killer);
    *stubborn_slot.borrow_mut() = Some(stubborn.clone());
    stubborn
}

/// Runs `f` (a root wait) and returns the message of the panic it must
/// raise.
#[track_caller]
fn expect_block_forever_panic<R>(f: impl FnOnce() -> R) -> String {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(f));
    let msg = match r {
        Ok(_) => panic!("the root wait returned instead of panicking"),
        Err(p) => payload_message(&*p),
    };
    assert!(
        msg.contains("would block forever"),
        "unexpected panic message: {msg}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the deadlock was detected only after {:?}",
        t.elapsed()
    );
    msg
}

/// The hub must work normally after a detected deadlock.
#[track_caller]
fn assert_hub_still_works() {
    assert!(greenlet::current().is_none());
    assert_eq!(greenlet::spawn(|| 6 * 7).join().unwrap(), 42);
    let g = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(5));
        "slept"
    });
    assert_eq!(g.join().unwrap(), "slept");
    let t = Instant::now();
    greenlet::sleep(Duration::from_millis(5));
    assert!(t.elapsed() >= Duration::from_millis(5));
    let r = greenlet::with_timeout(Duration::from_millis(5), || {
        greenlet::sleep(Duration::from_secs(3600))
    });
    assert!(r.is_err());
}

#[test]
fn root_join_on_a_greenlet_that_can_never_finish_panics() {
    let stubborn = stubborn_pair();
    // The root joins a greenlet that waits for `stubborn` to die.
    let waiter = greenlet::spawn(move || stubborn.kill());
    let msg = expect_block_forever_panic(move || waiter.join());
    assert!(msg.contains("greenlet"), "{msg}");
    assert_hub_still_works();
}

#[test]
fn root_iwait_on_a_greenlet_that_can_never_finish_panics() {
    let stubborn = stubborn_pair();
    let waiter = greenlet::spawn(move || stubborn.kill());
    expect_block_forever_panic(move || greenlet::iwait(vec![waiter]).next().map(|_| ()));
    assert_hub_still_works();
}

#[test]
fn root_kill_of_a_greenlet_that_refuses_to_die_panics() {
    let stubborn = stubborn_pair();
    greenlet::yield_now();
    expect_block_forever_panic(|| stubborn.kill());
    assert!(!stubborn.is_finished());
    assert_hub_still_works();
}

#[test]
fn the_same_deadlock_twice() {
    for _ in 0..2 {
        let stubborn = stubborn_pair();
        let waiter = greenlet::spawn(move || stubborn.kill());
        expect_block_forever_panic(move || waiter.join());
    }
    assert_hub_still_works();
}

#[test]
fn a_deadlock_is_not_reported_while_a_timer_is_pending() {
    // Same deadlock, but a sleeper is still pending: the root waits for it,
    // then reports the deadlock once nothing else can happen.
    let stubborn = stubborn_pair();
    let waiter = greenlet::spawn(move || stubborn.kill());
    let woke = Rc::new(Cell::new(false));
    let w = woke.clone();
    let _sleeper = greenlet::spawn(move || {
        greenlet::sleep(Duration::from_millis(30));
        w.set(true);
    });
    let t = Instant::now();
    expect_block_forever_panic(move || waiter.join());
    assert!(
        woke.get(),
        "the deadlock was reported while a timer was pending"
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_hub_still_works();
}

#[test]
fn a_greenlet_joining_itself_panics() {
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let seen = Log::new();
    let l = seen.clone();
    let g = greenlet::spawn(move || {
        let me = s.borrow_mut().take().expect("own handle stored");
        let r = catch_unwind(AssertUnwindSafe(move || me.join()));
        l.push(payload_message(&*r.expect_err("joining itself must panic")));
    });
    *slot.borrow_mut() = Some(g);
    let t = Instant::now();
    while seen.len() == 0 && t.elapsed() < Duration::from_secs(2) {
        greenlet::sleep(Duration::from_millis(1));
    }
    let msgs = seen.snapshot();
    assert_eq!(msgs.len(), 1, "the self-join never returned");
    assert!(
        msgs[0].contains("itself"),
        "unexpected message: {}",
        msgs[0]
    );
    assert_hub_still_works();
}

#[test]
fn a_greenlet_iwaiting_on_itself_panics_like_join() {
    // The same misuse as joining itself, through iwait: it must be a named
    // error too, not a greenlet silently parked forever.
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let seen = Log::new();
    let l = seen.clone();
    let g = greenlet::spawn(move || {
        let me = s.borrow_mut().take().expect("own handle stored");
        let r = catch_unwind(AssertUnwindSafe(move || {
            greenlet::iwait(vec![me]).next().is_some()
        }));
        l.push(match r {
            Ok(_) => "returned".to_string(),
            Err(p) => payload_message(&*p),
        });
    });
    *slot.borrow_mut() = Some(g);
    let t = Instant::now();
    while seen.len() == 0 && t.elapsed() < Duration::from_millis(300) {
        greenlet::sleep(Duration::from_millis(1));
    }
    let msgs = seen.snapshot();
    assert_eq!(
        msgs.len(),
        1,
        "a greenlet iwaiting on itself is parked forever (join on itself panics)"
    );
    assert!(
        msgs[0].contains("itself"),
        "unexpected outcome: {}",
        msgs[0]
    );
    assert_hub_still_works();
}

#[test]
fn an_uncaught_self_join_ends_only_that_greenlet() {
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let (guard, dropped) = drop_flag();
    let g = greenlet::spawn(move || {
        let _guard = guard;
        let me = s.borrow_mut().take().expect("own handle stored");
        let _ = me.join();
        unreachable!("join on itself returned");
    });
    *slot.borrow_mut() = Some(g);
    // A sibling that outlives it, to prove the hub kept going.
    let sibling = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(5));
        "sibling done"
    });
    assert_eq!(sibling.join().unwrap(), "sibling done");
    assert!(dropped.get(), "the self-joining greenlet did not unwind");
    assert!(slot.borrow().is_none());
    assert_hub_still_works();
}

#[test]
fn greenlets_joining_each_other_panic_at_the_join_that_closes_the_cycle() {
    // g joins w, and w joins g (g hands its own handle to w): the join that
    // closes the cycle (w's) panics naming it; g's join then reports w's
    // panic, and g goes on. (Before wait-for cycles were detected, both
    // stayed parked forever.)
    let seen = Log::new();
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let l = seen.clone();
    let g = greenlet::Builder::new()
        .name("g")
        .spawn(move || {
            let me = s.borrow_mut().take().expect("own handle stored");
            let w = greenlet::Builder::new()
                .name("w")
                .spawn(move || {
                    let _ = me.join();
                })
                .unwrap();
            let err = w.join().unwrap_err();
            l.push(err.panic_message().unwrap().to_string());
        })
        .unwrap();
    *slot.borrow_mut() = Some(g);
    let t = Instant::now();
    while seen.len() == 0 && t.elapsed() < Duration::from_secs(2) {
        greenlet::sleep(Duration::from_millis(1));
    }
    let msgs = seen.snapshot();
    assert_eq!(
        msgs.len(),
        1,
        "g never went on:\n{}",
        greenlet::dump::dump()
    );
    assert!(
        msgs[0].starts_with("deadlock: 'w' joins 'g', 'g' joins 'w'"),
        "{}",
        msgs[0]
    );
    assert_hub_still_works();
}

// ---- sync primitives whose only handle is the waiter's ----

/// Runs `f` on a fresh thread (its own hub) and returns the message of the
/// "would block forever" panic it must raise within 1 s.
#[track_caller]
fn expect_block_forever_on_own_thread<R: 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> String {
    util::within(Duration::from_secs(1), move || {
        let msg = expect_block_forever_panic(f);
        assert_hub_still_works();
        msg
    })
}

#[test]
fn root_get_on_a_queue_nobody_else_holds_panics_with_the_dump() {
    let msg = expect_block_forever_on_own_thread(|| {
        let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
        q.get()
    });
    assert!(msg.contains("greenlet dump of thread"), "{msg}");
    assert!(msg.contains("root [Queue #"), "{msg}");
}

#[test]
fn root_wait_on_an_event_nobody_else_holds_panics() {
    expect_block_forever_on_own_thread(|| greenlet::sync::Event::new().wait());
}

#[test]
fn root_get_on_an_async_result_nobody_else_holds_panics() {
    expect_block_forever_on_own_thread(|| {
        let r: greenlet::sync::AsyncResult<u32> = greenlet::sync::AsyncResult::new();
        r.get()
    });
}

#[test]
fn a_consumer_whose_producers_all_dropped_their_handles_panics() {
    let msg = expect_block_forever_on_own_thread(|| {
        let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
        let producers: Vec<_> = (0..3)
            .map(|i| {
                let q = q.clone();
                greenlet::spawn(move || q.put(i).unwrap())
            })
            .collect();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(q.get().unwrap());
        }
        greenlet::joinall(producers);
        assert_eq!(got.len(), 3);
        q.get() // every producer is gone
    });
    assert!(msg.contains("would block forever"), "{msg}");
}

#[test]
fn root_joining_a_greenlet_that_waits_on_a_queue_nobody_else_holds_panics() {
    let msg = expect_block_forever_on_own_thread(|| {
        let g = greenlet::Builder::new()
            .name("lonely consumer")
            .spawn(|| {
                let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
                q.get()
            })
            .unwrap();
        g.join()
    });
    assert!(msg.contains("'lonely consumer' [Queue #"), "{msg}");
    assert!(msg.contains("root [join greenlet #"), "{msg}");
}

#[test]
fn root_get_on_a_queue_a_plain_thread_feeds_later_completes() {
    util::within(Duration::from_secs(5), || {
        let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            q2.put(5).unwrap();
        });
        assert_eq!(q.get(), Ok(5));
        t.join().unwrap();
    });
}

#[test]
fn root_get_with_a_plain_thread_that_drops_its_handle_after_putting_completes() {
    // The producer's wake-up races its handle's drop: never a false report.
    util::within(Duration::from_secs(10), || {
        for _ in 0..200 {
            let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
            let q2 = q.clone();
            let t = std::thread::spawn(move || q2.put(1).unwrap());
            assert_eq!(q.get(), Ok(1));
            t.join().unwrap();
        }
    });
}

#[test]
fn a_queue_wait_is_not_reported_while_a_hub_handle_is_alive() {
    util::within(Duration::from_secs(5), || {
        let handle = greenlet::hub_handle();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(handle);
        });
        // A greenlet waits with a timeout so the root's join ends: while
        // the handle lives nothing is reported, and the timed wait ends it.
        let g = greenlet::spawn(|| {
            let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
            q.get_timeout(Duration::from_millis(300)).is_err()
        });
        assert!(g.join().unwrap());
        t.join().unwrap();
    });
}
