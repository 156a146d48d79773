//! Root waits that nothing can ever end panic with "would block forever"
//! (gevent's `LoopExit`) instead of hanging, and the hub survives them.
//!
//! Joins alone cannot deadlock the root: every greenlet has exactly one
//! handle and `join` consumes it, so the greenlet the root joins cannot also
//! be joined by the greenlets it waits for. Kills cannot either: a kill is
//! level-triggered and unwinds its target at every park. The deadlocks below
//! use the one thing a kill does not interrupt: a greenlet that is already
//! unwinding, whose destructor waits.

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
fn greenlets_deadlocked_among_themselves_do_not_stop_the_root() {
    // g joins w, and w joins g (g hands its own handle to w): neither can
    // finish, but the root waits on neither, so nothing is reported.
    let after = Rc::new(Cell::new(0u32));
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let a = after.clone();
    let g = greenlet::spawn(move || {
        let me = s.borrow_mut().take().expect("own handle stored");
        let a2 = a.clone();
        let w = greenlet::spawn(move || {
            let _ = me.join();
            a2.set(a2.get() + 1);
        });
        let _ = w.join();
        a.set(a.get() + 1);
    });
    *slot.borrow_mut() = Some(g);
    greenlet::sleep(Duration::from_millis(10));
    assert_eq!(after.get(), 0, "a deadlocked greenlet went on");
    assert_hub_still_works();
}
