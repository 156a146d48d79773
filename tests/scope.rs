//! `greenlet::scope`: borrowing members, and soundness when the owner is
//! killed, times out or panics mid-scope, and under `mem::forget`.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use util::{Log, assert_killed, within};

const FOREVER: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Logs its name when dropped, after parking a while (a slow close).
struct SlowDrop {
    log: Log<String>,
    name: String,
    park: Duration,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        if !self.park.is_zero() {
            greenlet::sleep(self.park);
        }
        self.log.push(format!("{} dropped", self.name));
    }
}

fn slow(log: &Log<String>, name: &str, park: u64) -> SlowDrop {
    SlowDrop {
        log: log.clone(),
        name: name.to_string(),
        park: ms(park),
    }
}

#[test]
fn members_borrow_and_the_scope_waits_for_all_of_them() {
    within(ms(5000), || {
        let counter = Cell::new(0);
        let mut names = vec![String::from("a")];
        let total = greenlet::scope(|s| {
            for i in 0..10 {
                let counter = &counter;
                s.spawn(move || {
                    greenlet::sleep(ms(10 - i));
                    counter.set(counter.get() + 1);
                });
            }
            let first = s.spawn(|| names[0].clone());
            first.join().unwrap()
        });
        assert_eq!(counter.get(), 10);
        assert_eq!(total, "a");
        names.push("b".into()); // the borrow ended
    });
}

#[test]
fn members_may_spawn_more_members() {
    within(ms(5000), || {
        let hits = Cell::new(0);
        greenlet::scope(|s| {
            s.spawn(|| {
                for _ in 0..3 {
                    s.spawn(|| {
                        greenlet::sleep(ms(5));
                        hits.set(hits.get() + 1);
                    });
                }
            });
        });
        assert_eq!(hits.get(), 3);
    });
}

#[test]
fn forgetting_a_handle_does_not_end_the_wait() {
    within(ms(5000), || {
        let done = Cell::new(false);
        greenlet::scope(|s| {
            let g = s.spawn(|| {
                greenlet::sleep(ms(20));
                done.set(true);
            });
            std::mem::forget(g);
        });
        assert!(done.get());
    });
}

#[test]
fn owner_killed_mid_body_kills_and_joins_members_before_leaving() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let l = log.clone();
        let owner = greenlet::spawn(move || {
            let borrowed = RefCell::new(Vec::new());
            let _after = slow(&l, "owner frame", 0);
            greenlet::scope(|s| {
                for i in 0..3 {
                    let (l, borrowed) = (l.clone(), &borrowed);
                    s.spawn(move || {
                        let _d = slow(&l, &format!("member {i}"), 10);
                        borrowed.borrow_mut().push(i);
                        greenlet::sleep(FOREVER);
                    });
                }
                greenlet::sleep(FOREVER);
            });
            l.push("scope returned".into());
        });
        greenlet::sleep(ms(5));
        owner.kill();
        assert_killed(owner.join());
        let got = log.snapshot();
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[3], "owner frame dropped", "{got:?}");
        assert!(!got.contains(&"scope returned".to_string()));
    });
}

#[test]
fn owner_killed_while_waiting_for_members_still_joins_them() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let l = log.clone();
        let owner = greenlet::spawn(move || {
            let _after = slow(&l, "owner frame", 0);
            greenlet::scope(|s| {
                for i in 0..3 {
                    let l = l.clone();
                    s.spawn(move || {
                        let _d = slow(&l, &format!("member {i}"), 20);
                        greenlet::sleep(FOREVER);
                    });
                }
                // The body returns; the scope waits for the members.
            });
            l.push("scope returned".into());
            greenlet::sleep(FOREVER); // the kill takes effect here
        });
        greenlet::sleep(ms(5));
        // A second kill while the owner waits on members that unwind
        // slowly must not make it leave early either.
        owner.kill_nowait();
        greenlet::sleep(ms(2));
        owner.kill_nowait();
        assert!(owner.join_timeout(Duration::from_secs(4)).is_ok());
        assert_killed(owner.join());
        let got = log.snapshot();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[..3].iter().all(|e| e.starts_with("member")), "{got:?}");
        assert_eq!(got[3], "scope returned");
        assert_eq!(got[4], "owner frame dropped");
    });
}

#[test]
fn timeout_around_a_scope_kills_its_members_first() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let data = vec![1, 2, 3];
        let t = Instant::now();
        let r = greenlet::with_timeout(ms(20), || {
            greenlet::scope(|s| {
                for i in 0..3 {
                    let (l, data) = (log.clone(), &data);
                    s.spawn(move || {
                        let _d = slow(&l, &format!("member {i}"), 5);
                        assert_eq!(data.len(), 3);
                        greenlet::sleep(FOREVER);
                    });
                }
                greenlet::sleep(FOREVER);
            })
        });
        assert!(r.is_err());
        assert_eq!(log.len(), 3);
        assert!(t.elapsed() < Duration::from_secs(4));
    });
}

#[test]
fn timeout_expiring_while_the_scope_waits_kills_the_members() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let g = greenlet::spawn({
            let log = log.clone();
            move || {
                greenlet::with_timeout(ms(20), || {
                    greenlet::scope(|s| {
                        let l = log.clone();
                        s.spawn(move || {
                            let _d = slow(&l, "member", 5);
                            greenlet::sleep(FOREVER);
                        });
                    });
                    greenlet::sleep(FOREVER); // the expiry lands here
                })
            }
        });
        assert!(g.join().unwrap().is_err());
        assert_eq!(log.snapshot(), ["member dropped"]);
    });
}

#[test]
fn panicking_body_kills_members_then_propagates() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            greenlet::scope(|s| {
                let l = log.clone();
                s.spawn(move || {
                    let _d = slow(&l, "member", 5);
                    greenlet::sleep(FOREVER);
                });
                greenlet::yield_now();
                panic!("body failed");
            })
        }));
        assert_eq!(util::payload_message(&*r.unwrap_err()), "body failed");
        assert_eq!(log.snapshot(), ["member dropped"]);
    });
}

#[test]
fn an_unjoined_member_panic_makes_the_scope_panic_after_all_finish() {
    within(ms(5000), || {
        let other_done = Rc::new(Cell::new(false));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            greenlet::scope(|s| {
                s.spawn(|| panic!("member failed"));
                s.spawn(|| {
                    greenlet::sleep(ms(20));
                    other_done.set(true);
                });
            })
        }));
        assert!(other_done.get());
        let msg = util::payload_message(&*r.unwrap_err());
        assert!(msg.contains("scoped greenlet panicked"), "{msg}");

        // A joined panic does not count.
        let v = greenlet::scope(|s| s.spawn(|| -> u8 { panic!("seen") }).join());
        assert!(v.unwrap_err().is_panic());
    });
}

#[test]
fn a_deadlocked_root_scope_kills_members_then_reports() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            greenlet::scope(|s| {
                let l = log.clone();
                s.spawn(move || {
                    let _d = slow(&l, "member", 0);
                    // Joins a greenlet nobody will ever start.
                    let _ = greenlet::Greenlet::new(|| ()).join();
                    l.push("member went on".into());
                });
            })
        }));
        let msg = util::payload_message(&*r.unwrap_err());
        assert!(msg.contains("would block forever"), "{msg}");
        assert_eq!(log.snapshot(), ["member dropped"]);
    });
}

#[test]
fn killing_a_member_from_outside_the_scope_body() {
    within(ms(5000), || {
        greenlet::scope(|s| {
            let g = s.spawn(|| greenlet::sleep(FOREVER));
            greenlet::yield_now();
            g.kill();
            assert!(g.is_finished());
            assert_killed(g.join());
        });
    });
}

#[test]
fn owner_panicking_then_killed_still_joins_members() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let l = log.clone();
        let owner = greenlet::spawn(move || {
            greenlet::scope(|s| {
                for i in 0..2 {
                    let l = l.clone();
                    s.spawn(move || {
                        let _d = slow(&l, &format!("member {i}"), 30);
                        greenlet::sleep(FOREVER);
                    });
                }
                greenlet::yield_now();
                panic!("body failed");
            });
        });
        greenlet::sleep(ms(10)); // the owner waits for the slow drops
        owner.kill(); // arrives while it waits: it still waits
        let e = owner.join().unwrap_err();
        assert_eq!(e.panic_message(), Some("body failed"));
        assert_eq!(log.len(), 2);
    });
}

/// When the members can never finish, even killed, and the root cannot
/// wait (nothing could wake it), the scope aborts rather than return
/// while they borrow from it.
#[test]
fn a_scope_that_can_never_end_aborts_instead_of_returning() {
    if util::child_mode().as_deref() == Some("never-ends") {
        let data = vec![1, 2, 3];
        greenlet::scope(|s| {
            s.spawn(|| {
                struct Stuck<'a>(&'a Vec<i32>);
                impl Drop for Stuck<'_> {
                    fn drop(&mut self) {
                        // Waits, while unwinding, for a greenlet nobody starts.
                        let _ = greenlet::Greenlet::new(|| ()).join();
                        assert_eq!(self.0.len(), 3);
                    }
                }
                let _s = Stuck(&data);
                let _ = greenlet::Greenlet::new(|| ()).join();
            });
        });
        println!("scope returned");
        return;
    }
    let out = util::run_child_within(
        "a_scope_that_can_never_end_aborts_instead_of_returning",
        "never-ends",
        &[],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", util::describe(&out));
    assert!(
        stderr.contains("greenlet::scope"),
        "{}",
        util::describe(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("scope returned"));
}

/// Panics when dropped.
struct PanicsInDrop;

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("closure's capture panicked in drop");
    }
}

/// When the scope kills its members, an unstarted member's closure is
/// dropped on the owner's stack; a panic out of that drop must not end the
/// scope while another member is still alive (it borrows the caller's
/// stack).
#[test]
fn a_panic_in_an_unstarted_members_drop_does_not_end_the_scope_early() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            greenlet::scope(|s| {
                let l = log.clone();
                s.spawn(move || {
                    let _d = slow(&l, "started member", 20);
                    greenlet::sleep(FOREVER);
                });
                greenlet::yield_now(); // it starts and parks
                let bomb = PanicsInDrop;
                s.spawn(move || drop(bomb)); // never starts
                panic!("body failed");
            })
        }));
        log.push("scope returned".into());
        let msg = util::payload_message(&*r.unwrap_err());
        assert_eq!(msg, "body failed");
        assert_eq!(log.snapshot(), ["started member dropped", "scope returned"]);
    });
}

/// The same, for a kill of the owner delivered while an unstarted
/// member's closure parks in its drop: the owner goes on waiting for the
/// members and unwinds only once they are dead.
#[test]
fn a_kill_delivered_in_an_unstarted_members_drop_does_not_end_the_scope_early() {
    within(ms(5000), || {
        let log: Log<String> = Log::new();
        let l = log.clone();
        let owner = greenlet::spawn(move || {
            struct Exit(Log<String>);
            impl Drop for Exit {
                fn drop(&mut self) {
                    self.0.push("scope exited".into());
                }
            }
            let _exit = Exit(l.clone());
            greenlet::scope(|s| {
                let l2 = l.clone();
                s.spawn(move || {
                    let _d = slow(&l2, "started member", 30);
                    greenlet::sleep(FOREVER);
                });
                greenlet::yield_now(); // it starts and parks
                let late = slow(&l, "unstarted closure", 30);
                s.spawn(move || drop(late)); // never starts
                panic!("body failed"); // the scope kills its members
            });
        });
        greenlet::sleep(ms(10)); // the owner parks in the closure's drop
        owner.kill(); // and is killed there
        assert!(owner.join().is_err());
        let log = log.snapshot();
        let member = log.iter().position(|e| e == "started member dropped");
        let exit = log.iter().position(|e| e == "scope exited");
        assert!(member.is_some() && member < exit, "{log:?}");
    });
}

/// `Debug` of a scope does not keep its member list borrowed while the
/// caller's sink runs: a sink that spawns in the scope works.
#[test]
fn debug_output_may_go_to_a_sink_that_spawns_in_the_scope() {
    within(ms(5000), || {
        struct Spawns<'scope, 'env>(&'scope greenlet::Scope<'scope, 'env>, String);
        impl std::fmt::Write for Spawns<'_, '_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                drop(self.0.spawn(|| ()));
                self.1.push_str(s);
                Ok(())
            }
        }
        let out = greenlet::scope(|s| {
            use std::fmt::Write;
            let mut sink = Spawns(s, String::new());
            write!(sink, "{s:?}").unwrap();
            sink.1
        });
        assert!(out.contains("members: 0"), "{out}");
    });
}
