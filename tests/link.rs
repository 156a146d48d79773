//! Link callbacks: `link`, `link_value`, `link_exception` run in the order
//! registered, on the hub, once; they must not block; a panicking callback
//! does not stop the others.

mod util;

use std::time::Duration;

use util::{Log, assert_killed, within};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn callbacks_run_in_registration_order_before_joiners_resume() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let g = std::rc::Rc::new(greenlet::spawn(|| {
            greenlet::sleep(ms(5));
            "v"
        }));
        let joiner = greenlet::spawn({
            let (g, log) = (g.clone(), log.clone());
            move || {
                g.join_timeout(ms(4000)).unwrap();
                log.push("joiner resumed".into());
            }
        });
        greenlet::yield_now(); // the joiner waits first
        for i in 0..3 {
            let log = log.clone();
            g.link(move |r| log.push(format!("link {i}: {}", r.unwrap())));
        }
        let l = log.clone();
        g.link_value(move |v| l.push(format!("value {v}")));
        let l = log.clone();
        g.link_exception(move |_| l.push("exception".into()));
        joiner.join().unwrap();
        assert_eq!(
            log.snapshot(),
            [
                "link 0: v",
                "link 1: v",
                "link 2: v",
                "value v",
                "joiner resumed"
            ]
        );
        let g = std::rc::Rc::try_unwrap(g).unwrap();
        assert_eq!(g.join().unwrap(), "v"); // the result is still there
    });
}

#[test]
fn exception_links_see_panics_and_kills() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let p = greenlet::spawn(|| -> u8 { panic!("boom") });
        let k = greenlet::spawn(|| -> u8 {
            greenlet::sleep(Duration::from_secs(60));
            0
        });
        for g in [&p, &k] {
            let l = log.clone();
            g.link_exception(move |e| {
                l.push(if e.is_killed() {
                    "killed".into()
                } else {
                    e.to_string()
                })
            });
            let l = log.clone();
            g.link_value(move |_| l.push("value?!".into()));
        }
        greenlet::yield_now();
        k.kill();
        assert!(p.join().is_err());
        assert_killed(k.join());
        let mut got = log.snapshot();
        got.sort();
        assert_eq!(got, ["greenlet panicked: boom", "killed"]);
    });
}

#[test]
fn linking_a_finished_or_unstarted_greenlet_runs_at_once() {
    let log: Log<&'static str> = Log::new();
    let g = greenlet::spawn(|| 1);
    g.join_timeout(ms(1000)).unwrap();
    let l = log.clone();
    g.link(move |_| l.push("late link"));
    assert_eq!(log.snapshot(), ["late link"]);

    let u = greenlet::Greenlet::new(|| 2);
    let l = log.clone();
    u.link_exception(move |e| {
        assert!(e.is_killed());
        l.push("never started");
    });
    drop(u);
    assert_eq!(log.snapshot(), ["late link", "never started"]);
}

#[test]
fn a_panicking_or_blocking_callback_does_not_stop_the_others() {
    within(ms(5000), || {
        let log: Log<&'static str> = Log::new();
        let g = greenlet::spawn(|| ());
        g.link(|_| panic!("callback failed"));
        g.link(|_| greenlet::sleep(ms(1))); // blocking on the hub: refused
        let l = log.clone();
        g.link(move |_| l.push("third ran"));
        g.join().unwrap();
        assert_eq!(log.snapshot(), ["third ran"]);
        // The hub is fine.
        assert_eq!(greenlet::spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn joining_from_its_own_callback_is_refused() {
    within(ms(5000), || {
        let refused = std::rc::Rc::new(std::cell::Cell::new(false));
        let g = greenlet::spawn(|| String::from("x"));
        // The callback owns the only handle (moved in before it finishes)
        // and tries to take the result it holds a reference to.
        let holder = std::rc::Rc::new(std::cell::RefCell::new(None::<greenlet::Greenlet<String>>));
        let (h, r) = (holder.clone(), refused.clone());
        g.link(move |v| {
            if let Some(own) = h.borrow_mut().take() {
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| own.join()));
                r.set(res.is_err());
            }
            assert_eq!(v.unwrap(), "x"); // still valid
        });
        *holder.borrow_mut() = Some(g);
        while !refused.get() {
            greenlet::sleep(ms(1));
        }
    });
}
