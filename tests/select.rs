//! `greenlet::select`: `Select` runs exactly one arm and never loses a
//! value (under contention from greenlets and OS threads, and when the
//! selecting greenlet is killed); `wait`/`iwait` over mixed waitables with
//! count and timeout.

mod util;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenlet::channel::channel;
use greenlet::select::{Select, Waitable, iwait, map, wait};
use greenlet::sync::{Event, Queue, Semaphore};
use util::within;

const FOREVER: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn exactly_one_arm_runs_and_the_others_take_nothing() {
    within(ms(5000), || {
        let (a, b) = (Queue::new(), Queue::new());
        a.put(1).unwrap();
        b.put(2).unwrap();
        let mut ran = Vec::new();
        let got = Select::new()
            .on(&a, |r| {
                ran.push("a");
                r.unwrap()
            })
            .on(&b, |r: Result<i32, _>| r.unwrap())
            .wait();
        assert_eq!(got, 1); // the first ready arm wins
        assert_eq!(ran, ["a"]);
        assert_eq!(b.len(), 1);
        assert_eq!(a.len(), 0);
    });
}

#[test]
fn select_parks_until_an_arm_completes() {
    within(ms(5000), || {
        let (a, b) = (Queue::<i32>::new(), Queue::new());
        let e = Event::new();
        let g = greenlet::spawn({
            let b = b.clone();
            move || {
                greenlet::sleep(ms(10));
                b.put("late").unwrap();
            }
        });
        let t = Instant::now();
        let got = Select::new()
            .on(&a, |_| "a")
            .on(&e, |()| "event")
            .on(&b, |r| r.unwrap())
            .wait();
        assert_eq!(got, "late");
        assert!(t.elapsed() >= ms(5));
        g.join().unwrap();
    });
}

#[test]
fn timeout_takes_nothing_and_later_items_stay() {
    within(ms(5000), || {
        let (a, b) = (Queue::<i32>::new(), Queue::<i32>::new());
        let r = Select::new()
            .on(&a, |_| ())
            .on(&b, |_| ())
            .wait_timeout(ms(10));
        assert!(r.is_err());
        a.put(5).unwrap();
        assert_eq!(a.try_get(), Ok(5));
        assert!(Select::new().on(&b, |_| ()).try_wait().is_none());
    });
}

#[test]
fn closed_queue_and_disconnected_channel_complete_their_arms() {
    within(ms(5000), || {
        let q = Queue::<i32>::new();
        let (tx, rx) = channel::<i32>();
        let closer = greenlet::spawn({
            let q = q.clone();
            move || {
                greenlet::sleep(ms(5));
                q.close();
            }
        });
        let r = Select::new()
            .on(&q, |r| r.is_err())
            .on(&rx, |_| false)
            .wait();
        assert!(r);
        closer.join().unwrap();
        drop(tx);
        assert!(Select::new().on(&rx, |r| r.is_err()).wait());
    });
}

#[test]
fn greenlet_and_semaphore_arms() {
    within(ms(5000), || {
        let sem = Semaphore::new(0);
        let g = greenlet::spawn(|| greenlet::sleep(ms(5)));
        let r = Select::new()
            .on(&sem, |_p| "permit")
            .on(&g, |()| "joined")
            .wait();
        assert_eq!(r, "joined");
        assert!(g.is_finished());
        g.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// Many selecting consumers on two queues, fed by greenlets and by OS
/// threads, some consumers killed mid-wait, and timed selects that give
/// up: every item sent is received exactly once.
#[test]
fn no_value_is_lost_under_contention_from_greenlets_and_threads() {
    within(Duration::from_secs(30), || {
        const PER_PRODUCER: usize = 300;
        let (a, b) = (Queue::new(), Queue::new());
        let received = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut consumers = Vec::new();
        for c in 0..8 {
            let (a, b, received) = (a.clone(), b.clone(), received.clone());
            consumers.push(greenlet::spawn(move || {
                loop {
                    let got = Select::new()
                        .on(&a, |r| r.ok())
                        .on(&b, |r| r.ok())
                        .wait_timeout(ms(1 + c % 3));
                    match got {
                        Ok(Some(v)) => received.borrow_mut().push(v),
                        Ok(None) => return, // closed and drained
                        Err(_) => greenlet::yield_now(),
                    }
                }
            }));
        }
        // Consumers that get killed while selecting.
        let victims: Vec<_> = (0..4)
            .map(|_| {
                let (a, b, received) = (a.clone(), b.clone(), received.clone());
                greenlet::spawn(move || {
                    loop {
                        match Select::new().on(&a, |r| r.ok()).on(&b, |r| r.ok()).wait() {
                            Some(v) => received.borrow_mut().push(v),
                            None => return,
                        }
                    }
                })
            })
            .collect();
        let mut threads = Vec::new();
        for t in 0..2usize {
            let (a, b) = (a.clone(), b.clone());
            threads.push(std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    let v = (t + 10) * 100_000 + i;
                    if i % 2 == 0 { &a } else { &b }.put(v).unwrap();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }));
        }
        let producers: Vec<_> = (0..2usize)
            .map(|p| {
                let (a, b) = (a.clone(), b.clone());
                greenlet::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        let v = p * 100_000 + i;
                        if i % 3 == 0 { &a } else { &b }.put(v).unwrap();
                        if i % 7 == 0 {
                            greenlet::yield_now();
                        }
                    }
                })
            })
            .collect();
        greenlet::sleep(ms(2));
        for v in &victims {
            v.kill();
        }
        greenlet::joinall(producers);
        while threads.iter().any(|t| !t.is_finished()) {
            greenlet::sleep(ms(1));
        }
        for t in threads {
            t.join().unwrap();
        }
        a.close();
        b.close();
        for c in greenlet::joinall(consumers) {
            c.unwrap();
        }
        // A consumer stops at the first closed and drained queue; what the
        // other one still holds is drained here.
        for q in [&a, &b] {
            while let Ok(v) = q.try_get() {
                received.borrow_mut().push(v);
            }
        }
        let got = received.borrow();
        let unique: BTreeSet<usize> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "an item was received twice");
        assert_eq!(got.len(), 4 * PER_PRODUCER, "an item was lost");
    });
}

/// Permits handed to losing acquire arms go back: after many contended
/// selects, every permit is free again.
#[test]
fn no_permit_is_lost_under_contention() {
    within(Duration::from_secs(20), || {
        let sems = Arc::new((Semaphore::new(2), Semaphore::new(1)));
        let wins = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn({
            let (sems, wins) = (sems.clone(), wins.clone());
            move || {
                let gs: Vec<_> = (0..4)
                    .map(|_| {
                        let (sems, wins) = (sems.clone(), wins.clone());
                        greenlet::spawn(move || {
                            for _ in 0..200 {
                                let _p = Select::new().on(&sems.0, |p| p).on(&sems.1, |p| p).wait();
                                wins.fetch_add(1, Ordering::Relaxed);
                                greenlet::yield_now();
                            }
                        })
                    })
                    .collect();
                greenlet::joinall(gs);
            }
        });
        let gs: Vec<_> = (0..6)
            .map(|i| {
                let (sems, wins) = (sems.clone(), wins.clone());
                greenlet::spawn(move || {
                    for _ in 0..200 {
                        let r = Select::new()
                            .on(&sems.0, |p| p)
                            .on(&sems.1, |p| p)
                            .wait_timeout(ms(1 + i % 2));
                        if let Ok(_p) = r {
                            wins.fetch_add(1, Ordering::Relaxed);
                            greenlet::yield_now();
                        }
                    }
                })
            })
            .collect();
        greenlet::joinall(gs);
        while !thread.is_finished() {
            greenlet::sleep(ms(1));
        }
        thread.join().unwrap();
        assert_eq!(sems.0.available_permits(), 2);
        assert_eq!(sems.1.available_permits(), 1);
        assert!(wins.load(Ordering::Relaxed) >= 800);
    });
}

#[test]
fn a_killed_select_gives_back_what_it_was_handed() {
    within(ms(5000), || {
        let (a, b) = (Queue::new(), Queue::<i32>::new());
        let g = greenlet::spawn({
            let (a, b) = (a.clone(), b.clone());
            move || {
                Select::new()
                    .on(&a, |r| r.unwrap())
                    .on(&b, |r| r.unwrap())
                    .wait()
            }
        });
        greenlet::yield_now(); // it registers and parks
        a.put(1).unwrap(); // handed to the select's node
        g.kill(); // dies before it runs: the item goes back
        assert!(g.join().unwrap_err().is_killed());
        assert_eq!(a.try_get(), Ok(1));
    });
}

#[test]
fn wait_with_count_and_timeout_over_mixed_waitables() {
    within(ms(5000), || {
        let q = Queue::new();
        let e = Event::new();
        let g = greenlet::spawn(|| greenlet::sleep(ms(5)));
        let sleeper = greenlet::spawn(|| greenlet::sleep(FOREVER));
        let setter = greenlet::spawn({
            let (q, e) = (q.clone(), e.clone());
            move || {
                greenlet::sleep(ms(10));
                e.set();
                q.put(9).unwrap();
            }
        });
        let joined = map(&g, |()| 0);
        let set = map(&e, |()| 1);
        let item = map(&q, |r: Result<i32, _>| r.unwrap());
        let never = map(&sleeper, |()| -1);
        let objects: [&dyn Waitable<Output = i32>; 4] = [&never, &item, &set, &joined];
        let first = wait(&objects, Some(1), None);
        assert_eq!(first, [(3, 0)]);
        let t = Instant::now();
        let rest = wait(&objects, None, Some(ms(100)));
        assert!(t.elapsed() >= ms(90));
        let got: BTreeSet<(usize, i32)> = rest.into_iter().collect();
        // Greenlet 0 is finished (ready again), the event and the item
        // came; the sleeper never finished.
        assert_eq!(got, BTreeSet::from([(1, 9), (2, 1), (3, 0)]));
        assert!(q.is_empty());
        sleeper.kill();
        setter.join().unwrap();
    });
}

#[test]
fn iwait_yields_in_completion_order_and_withdraws_on_drop() {
    within(ms(5000), || {
        let (a, b, c) = (Queue::new(), Queue::new(), Queue::new());
        let g = greenlet::spawn({
            let (a, b) = (a.clone(), b.clone());
            move || {
                b.put(2).unwrap();
                greenlet::sleep(ms(5));
                a.put(1).unwrap();
            }
        });
        let objects: [&dyn Waitable<Output = Result<i32, _>>; 3] = [&a, &b, &c];
        let mut it = iwait(&objects);
        assert_eq!(it.next().map(|(i, r)| (i, r.unwrap())), Some((1, 2)));
        assert_eq!(it.next().map(|(i, r)| (i, r.unwrap())), Some((0, 1)));
        drop(it); // c's get is withdrawn
        c.put(3).unwrap();
        assert_eq!(c.try_get(), Ok(3));
        g.join().unwrap();
    });
}

#[test]
fn select_in_root_context_and_with_an_os_thread_sender() {
    within(ms(5000), || {
        let (tx, rx) = channel();
        let q = Queue::<()>::new();
        let t = std::thread::spawn(move || {
            std::thread::sleep(ms(10));
            tx.send(42).unwrap();
        });
        let got = Select::new()
            .on(&q, |_| 0)
            .on(&rx, |r| r.unwrap())
            .wait_timeout(Duration::from_secs(4));
        assert_eq!(got, Ok(42));
        t.join().unwrap();
    });
}

#[test]
fn mutex_and_async_result_arms_lose_no_lock() {
    within(Duration::from_secs(10), || {
        use greenlet::sync::{AsyncResult, Mutex};
        let locks = std::rc::Rc::new((Mutex::new(0u32), Mutex::new(0u32)));
        let gs: Vec<_> = (0..8)
            .map(|i| {
                let locks = locks.clone();
                greenlet::spawn(move || {
                    for _ in 0..100 {
                        let r = Select::new()
                            .on(&locks.0, |mut g| {
                                *g += 1;
                                g
                            })
                            .on(&locks.1, |mut g| {
                                *g += 1;
                                g
                            })
                            .wait_timeout(ms(1 + i % 2));
                        if let Ok(_g) = r {
                            greenlet::yield_now(); // hold it across a switch
                        }
                    }
                })
            })
            .collect();
        greenlet::joinall(gs);
        assert!(!locks.0.is_locked() && !locks.1.is_locked());
        assert!(*locks.0.lock() + *locks.1.lock() > 0);

        let r = AsyncResult::new();
        let setter = greenlet::spawn({
            let r = r.clone();
            move || {
                greenlet::sleep(ms(5));
                r.set("set").unwrap();
            }
        });
        let objects: [&dyn Waitable<Output = ()>; 1] = [&r];
        assert_eq!(
            wait(&objects, None, Some(Duration::from_secs(4))),
            [(0, ())]
        );
        assert_eq!(*r.wait(), "set");
        setter.join().unwrap();
    });
}

#[test]
fn a_losing_arm_that_was_handed_an_item_gives_it_back_in_order() {
    within(ms(5000), || {
        let (a, b) = (Queue::new(), Queue::new());
        b.put(20).unwrap();
        let _ = b.try_get(); // b is empty again
        let g = greenlet::spawn({
            let (a, b) = (a.clone(), b.clone());
            move || {
                Select::new()
                    .on(&a, |r| r.unwrap())
                    .on(&b, |r| r.unwrap())
                    .wait()
            }
        });
        greenlet::yield_now(); // registered on both, parked
        a.put(1).unwrap(); // handed to the select's `a` node
        b.put(2).unwrap(); // handed to its `b` node too
        b.put(3).unwrap(); // queued behind
        assert_eq!(g.join().unwrap(), 1);
        // The item handed to the losing arm went back to the front.
        assert_eq!(b.try_get(), Ok(2));
        assert_eq!(b.try_get(), Ok(3));

        // The same with a semaphore permit handed to a losing arm.
        let (s1, s2) = (
            std::rc::Rc::new(Semaphore::new(0)),
            std::rc::Rc::new(Semaphore::new(0)),
        );
        let g = greenlet::spawn({
            let (s1, s2) = (s1.clone(), s2.clone());
            move || Select::new().on(&*s1, |_| 1).on(&*s2, |_| 2).wait()
        });
        greenlet::yield_now();
        s2.add_permits(1);
        s1.add_permits(1);
        assert_eq!(g.join().unwrap(), 1);
        assert_eq!(s1.available_permits(), 1); // the winner's permit, dropped
        assert_eq!(s2.available_permits(), 1); // given back
    });
}

/// Leaking what `Waitable::start` or `iwait` returned (`mem::forget` is
/// safe) leaves no waiter behind: before, the leaked registration named a
/// greenlet that then finished and was freed, and the next put handed its
/// item to it and woke freed memory (a crash from safe code). In a child:
/// that crash would take the test binary down.
#[test]
fn a_leaked_pending_operation_leaves_no_waiter_behind() {
    if util::child_mode().as_deref() == Some("leak") {
        let (q, r) = (Queue::<u32>::new(), Queue::<u32>::new());
        // Enough greenlets that the leaking one's memory is in a chunk the
        // hub gives back to the kernel once they are all gone.
        let many: Vec<_> = (0..5000).map(|i| greenlet::spawn(move || i)).collect();
        let leaker = greenlet::spawn({
            let (q, r) = (q.clone(), r.clone());
            move || {
                std::mem::forget(q.start());
                // An iwait left after one result, its other object pending.
                let s = Queue::<u32>::new();
                let putter = greenlet::spawn({
                    let s = s.clone();
                    move || s.put(1).unwrap()
                });
                let objects: [&dyn Waitable<Output = _>; 2] = [&r, &s];
                let mut it = iwait(&objects);
                assert_eq!(it.next().map(|(i, v)| (i, v.unwrap())), Some((1, 1)));
                std::mem::forget(it);
                putter.join().unwrap();
            }
        });
        for g in many {
            g.join().unwrap();
        }
        leaker.join().unwrap();
        greenlet::sleep(Duration::from_millis(20)); // idle: memory trimmed
        q.put(7).unwrap();
        r.put(8).unwrap();
        // Nothing was handed to a leaked operation.
        assert_eq!(q.try_get().ok(), Some(7));
        assert_eq!(r.try_get().ok(), Some(8));
        return;
    }
    let out = util::run_child_within(
        "a_leaked_pending_operation_leaves_no_waiter_behind",
        "leak",
        &[],
        Duration::from_secs(20),
    );
    util::assert_child_passed(&out);
}
