//! `greenlet::sync::Queue`: producer/consumer, bounds, FIFO order,
//! timeouts, close, kills, JoinableQueue, and cross-thread use.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use greenlet::sync::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, Queue, TryGetError, TryPutError,
};

mod util;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn queue_is_send_and_sync() {
    assert_send_sync::<Queue<u32>>();
    assert_send_sync::<Queue<String>>();
}

/// gevent's producer/consumer example (`examples/producer_consumer.py`
/// style): a bounded queue of 2, one producer, two consumers; the producer
/// never runs more than the bound ahead.
#[test]
fn bounded_producer_consumer() {
    let q = Queue::bounded(2);
    let log = Rc::new(RefCell::new(Vec::new()));
    let producer = greenlet::spawn({
        let (q, log) = (q.clone(), log.clone());
        move || {
            for i in 0..10 {
                q.put(i).unwrap();
                assert!(q.len() <= 2, "bounded queue holds at most 2");
                log.borrow_mut().push(format!("put {i}"));
            }
            q.close();
        }
    });
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let (q, log) = (q.clone(), log.clone());
            greenlet::spawn(move || {
                let mut got = Vec::new();
                for item in &q {
                    log.borrow_mut().push(format!("c{c} got {item}"));
                    got.push(item);
                    greenlet::sleep(Duration::from_millis(1));
                }
                got
            })
        })
        .collect();
    producer.join().unwrap();
    let mut all: Vec<i32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    // The producer was throttled: item 9 was put after item 5 was taken.
    let log = log.borrow();
    let pos = |s: &str| log.iter().position(|l| l.ends_with(s)).unwrap();
    assert!(pos("put 9") > pos("got 5"), "{log:?}");
}

/// A rendezvous queue (`bounded(0)`) behaves like a generator's `send`:
/// each `put` returns only once a `get` has taken the item, so the producer
/// is never more than one item ahead of the consumer.
#[test]
fn rendezvous_alternates_like_generator_send() {
    let q = Queue::bounded(0);
    let log = Rc::new(RefCell::new(Vec::new()));
    let producer = greenlet::spawn({
        let (q, log) = (q.clone(), log.clone());
        move || {
            for i in 0..3 {
                log.borrow_mut().push(format!("send {i}"));
                q.put(i).unwrap();
                log.borrow_mut().push(format!("sent {i}"));
            }
        }
    });
    let consumer = greenlet::spawn({
        let (q, log) = (q.clone(), log.clone());
        move || {
            for _ in 0..3 {
                let v = q.get().unwrap();
                log.borrow_mut().push(format!("recv {v}"));
            }
        }
    });
    producer.join().unwrap();
    consumer.join().unwrap();
    let log = log.borrow();
    let pos = |s: String| log.iter().position(|l| *l == s).unwrap();
    for i in 0..3 {
        assert!(
            pos(format!("send {i}")) < pos(format!("recv {i}")),
            "{log:?}"
        );
    }
    // Nothing is buffered: a put completes only once a getter has the item,
    // so the producer is never more than one item ahead.
    for i in 0..2 {
        assert!(
            pos(format!("recv {i}")) < pos(format!("sent {}", i + 1)),
            "{log:?}"
        );
    }
    assert_eq!(q.len(), 0);
    assert_eq!(q.try_put(9), Err(TryPutError::Full(9)));
}

#[test]
fn unbounded_put_never_waits_and_keeps_order() {
    let q = Queue::new();
    for i in 0..10_000 {
        q.put(i).unwrap();
    }
    assert_eq!(q.len(), 10_000);
    assert_eq!(q.capacity(), None);
    for i in 0..10_000 {
        assert_eq!(q.try_get(), Ok(i));
    }
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}

/// A put that finds a parked getter hands it the item and runs it next,
/// ahead of greenlets that were already ready (Go's `runnext`).
#[test]
fn a_getter_handed_an_item_runs_before_other_ready_greenlets() {
    let q = Queue::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let getter = greenlet::spawn({
        let (q, log) = (q.clone(), log.clone());
        move || {
            let v: u32 = q.get().unwrap();
            log.borrow_mut().push(format!("got {v}"));
        }
    });
    greenlet::yield_now(); // the getter parks
    let putter = greenlet::spawn({
        let log = log.clone();
        move || {
            log.borrow_mut().push("put".to_string());
            q.put(7).unwrap();
            log.borrow_mut().push("after put".to_string());
        }
    });
    let bystander = greenlet::spawn({
        let log = log.clone();
        move || log.borrow_mut().push("bystander".to_string())
    });
    greenlet::joinall([putter, bystander, getter]);
    assert_eq!(*log.borrow(), ["put", "after put", "got 7", "bystander"]);
}

/// A pair handing items back and forth forever keeps the run-next slot
/// busy; the streak bound still lets a third greenlet run within a few
/// dozen hand-offs.
#[test]
fn a_hand_off_chain_does_not_starve_other_greenlets() {
    let seen = util::within(Duration::from_secs(30), || {
        let (ping, pong) = (Queue::new(), Queue::new());
        let stop = Rc::new(std::cell::Cell::new(false));
        let count = Rc::new(std::cell::Cell::new(0u64));
        let echo = greenlet::spawn({
            let (ping, pong, count) = (ping.clone(), pong.clone(), count.clone());
            move || {
                while let Ok(v) = ping.get() {
                    count.set(count.get() + 1);
                    pong.put(v).unwrap();
                }
            }
        });
        let driver = greenlet::spawn({
            let (stop, count) = (stop.clone(), count.clone());
            move || {
                while !stop.get() {
                    ping.put(1u32).unwrap();
                    pong.get().unwrap();
                    count.set(count.get() + 1);
                }
                ping.close();
            }
        });
        greenlet::yield_now(); // the chain is running
        let seen = count.get();
        let third = greenlet::spawn({
            let count = count.clone();
            move || {
                stop.set(true);
                count.get()
            }
        });
        let at = third.join().unwrap();
        driver.join().unwrap();
        echo.join().unwrap();
        at - seen
    });
    // 16 runs in a row from the slot, then the queue's first: the third
    // greenlet waits for about one streak (16 here), never forever.
    assert!(seen <= 64, "{seen} hand-offs ran before a ready greenlet");
}

#[test]
fn getters_are_served_fifo() {
    let q = Queue::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let getters: Vec<_> = (0..20)
        .map(|i| {
            let (q, order) = (q.clone(), order.clone());
            greenlet::spawn(move || {
                let v: i32 = q.get().unwrap();
                order.borrow_mut().push((i, v));
            })
        })
        .collect();
    greenlet::yield_now(); // all twenty park, in spawn order
    for v in 0..20 {
        q.put(v).unwrap();
    }
    greenlet::joinall(getters);
    let order = order.borrow();
    assert_eq!(*order, (0..20).map(|i| (i, i)).collect::<Vec<_>>());
}

#[test]
fn putters_are_served_fifo() {
    let q = Queue::bounded(1);
    q.put(-1).unwrap();
    let putters: Vec<_> = (0..20)
        .map(|i| {
            let q = q.clone();
            greenlet::spawn(move || q.put(i).unwrap())
        })
        .collect();
    greenlet::yield_now(); // all twenty park on the full queue
    let got: Vec<i32> = (0..21).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, (-1..20).collect::<Vec<_>>());
    greenlet::joinall(putters);
}

#[test]
fn get_timeout_times_out_then_succeeds() {
    let q = Queue::<u8>::new();
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(30)),
        Err(GetTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let putter = greenlet::spawn({
        let q = q.clone();
        move || {
            greenlet::sleep(Duration::from_millis(10));
            q.put(5).unwrap();
        }
    });
    assert_eq!(q.get_timeout(Duration::from_secs(5)), Ok(5));
    putter.join().unwrap();
    // Zero timeout: no waiting at all.
    assert_eq!(q.get_timeout(Duration::ZERO), Err(GetTimeoutError::Timeout));
}

#[test]
fn put_timeout_times_out_and_gives_the_item_back() {
    let q = Queue::bounded(1);
    q.put(String::from("a")).unwrap();
    let t = Instant::now();
    let err = q
        .put_timeout(String::from("b"), Duration::from_millis(30))
        .unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(err, PutTimeoutError::Timeout(String::from("b")));
    assert_eq!(err.into_inner(), "b");
    // A getter makes room in time.
    let getter = greenlet::spawn({
        let q = q.clone();
        move || {
            greenlet::sleep(Duration::from_millis(10));
            q.get().unwrap()
        }
    });
    q.put_timeout(String::from("c"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(getter.join().unwrap(), "a");
    assert_eq!(q.get().unwrap(), "c");
}

#[test]
fn timed_out_getter_leaves_no_trace() {
    // A getter that timed out must not receive (and lose) a later item.
    let q = Queue::new();
    let g = greenlet::spawn({
        let q = q.clone();
        move || q.get_timeout(Duration::from_millis(10))
    });
    assert_eq!(g.join().unwrap(), Err(GetTimeoutError::Timeout));
    q.put(1).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), Ok(1));
}

#[test]
fn with_timeout_around_get_leaves_no_trace() {
    let q = Queue::new();
    let r = greenlet::with_timeout(Duration::from_millis(10), || q.get());
    assert!(r.is_err());
    q.put(7).unwrap();
    assert_eq!(q.try_get(), Ok(7));
}

#[test]
fn close_drains_remaining_items_and_wakes_waiters() {
    // Items left in the queue and putters blocked on it.
    let q = Queue::bounded(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let putters: Vec<_> = (3..5)
        .map(|i| {
            let q = q.clone();
            greenlet::spawn(move || q.put(i))
        })
        .collect();
    greenlet::yield_now();
    q.close();
    assert!(q.is_closed());
    let results: Vec<_> = greenlet::joinall(putters)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [Err(PutError(3)), Err(PutError(4))]);
    assert_eq!(q.put(5), Err(PutError(5)));
    assert_eq!(q.try_put(5), Err(TryPutError::Closed(5)));
    // The items already queued still drain, then the closed error.
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), Ok(2));
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
    assert_eq!(q.get(), Err(GetError));
    assert_eq!(
        q.get_timeout(Duration::from_secs(1)),
        Err(GetTimeoutError::Closed)
    );
}

#[test]
fn close_wakes_blocked_getters_with_closed() {
    let q = Queue::<i32>::new();
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            greenlet::spawn(move || q.get())
        })
        .collect();
    greenlet::yield_now();
    q.close();
    for r in greenlet::joinall(getters) {
        assert_eq!(r.unwrap(), Err(GetError));
    }
}

#[test]
fn iterator_ends_on_close() {
    let q = Queue::new();
    let consumer = greenlet::spawn({
        let q = q.clone();
        move || q.into_iter().collect::<Vec<i32>>()
    });
    for i in 0..5 {
        q.put(i).unwrap();
        greenlet::yield_now();
    }
    q.close();
    assert_eq!(consumer.join().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn killed_getter_passes_its_item_on() {
    // The item is handed to the first getter, which is killed before it
    // runs: the item must go to the next getter, not vanish.
    let q = Queue::new();
    let first = greenlet::spawn({
        let q = q.clone();
        move || q.get().unwrap()
    });
    let second = greenlet::spawn({
        let q = q.clone();
        move || q.get().unwrap()
    });
    greenlet::yield_now(); // both park, `first` at the head
    q.put("item").unwrap(); // handed to `first`, now ready but not run
    first.kill();
    assert!(first.join().unwrap_err().is_killed());
    assert_eq!(second.join().unwrap(), "item");
}

#[test]
fn killed_getter_returns_item_to_the_queue() {
    let q = Queue::new();
    let getter = greenlet::spawn({
        let q = q.clone();
        move || q.get().unwrap()
    });
    greenlet::yield_now();
    q.put(1).unwrap(); // handed to the getter
    q.put(2).unwrap(); // queued behind it
    getter.kill();
    assert_eq!(q.try_get(), Ok(1), "the dead getter's item goes back first");
    assert_eq!(q.try_get(), Ok(2));
}

#[test]
fn killed_putter_leaves_the_queue_consistent() {
    let q = Queue::bounded(1);
    q.put(0).unwrap();
    let doomed = greenlet::spawn({
        let q = q.clone();
        move || q.put(1).unwrap()
    });
    let survivor = greenlet::spawn({
        let q = q.clone();
        move || q.put(2).unwrap()
    });
    greenlet::yield_now();
    doomed.kill();
    assert_eq!(q.get(), Ok(0));
    survivor.join().unwrap();
    assert_eq!(q.get(), Ok(2));
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}

#[test]
fn task_done_and_join() {
    let q = Queue::new();
    let done = Rc::new(RefCell::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (q, done) = (q.clone(), done.clone());
            greenlet::spawn(move || {
                for _job in q.iter() {
                    greenlet::sleep(Duration::from_millis(1));
                    *done.borrow_mut() += 1;
                    q.task_done();
                }
            })
        })
        .collect();
    for i in 0..30 {
        q.put(i).unwrap();
    }
    q.join();
    assert_eq!(*done.borrow(), 30);
    q.close();
    greenlet::joinall(workers);
}

#[test]
#[should_panic(expected = "task_done called more times")]
fn task_done_too_often_panics() {
    let q = Queue::<()>::new();
    q.task_done();
}

/// Four OS threads put into one queue that 100 greenlets on this thread
/// drain: every item arrives exactly once.
#[test]
fn four_threads_into_a_hundred_greenlets() {
    const PER_THREAD: u32 = 2_500;
    let q = Queue::bounded(64);
    let results = Queue::new();
    let consumers: Vec<_> = (0..100)
        .map(|_| {
            let (q, results) = (q.clone(), results.clone());
            greenlet::spawn(move || {
                let mut n = 0;
                for item in q.iter() {
                    results.put(item).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let start = Arc::new(Barrier::new(4));
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let (q, start) = (q.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    q.put(t * PER_THREAD + i).unwrap(); // parks this thread's root
                }
            })
        })
        .collect();
    // Close once every producer is done, from a greenlet that polls the
    // threads without blocking the hub.
    let closer = greenlet::spawn({
        let q = q.clone();
        move || {
            for p in producers {
                while !p.is_finished() {
                    greenlet::sleep(Duration::from_millis(1));
                }
                p.join().unwrap();
            }
            q.close();
        }
    });
    let counts: u32 = greenlet::joinall(consumers)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    closer.join().unwrap();
    results.close();
    let mut seen = HashSet::new();
    for item in results.iter() {
        assert!(seen.insert(item), "item {item} received twice");
    }
    assert_eq!(counts, 4 * PER_THREAD);
    assert_eq!(seen.len() as u32, 4 * PER_THREAD);
}

/// A greenlet on one thread waits for an item that a greenlet on another
/// thread's hub puts: the wake-up crosses hubs through the remote queue.
#[test]
fn greenlets_on_two_hubs() {
    let to_thread = Queue::new();
    let back = Queue::new();
    let worker = std::thread::spawn({
        let (to_thread, back) = (to_thread.clone(), back.clone());
        move || {
            let g = greenlet::spawn(move || {
                for v in to_thread.iter() {
                    back.put(v * 10).unwrap();
                }
            });
            g.join().unwrap();
        }
    });
    let g = greenlet::spawn(move || {
        let mut sum = 0;
        for i in 1..=100 {
            to_thread.put(i).unwrap();
            sum += back.get().unwrap();
        }
        to_thread.close();
        sum
    });
    assert_eq!(g.join().unwrap(), 10 * 5050);
    worker.join().unwrap();
}

/// Items handed across threads to getters that time out or are killed at
/// the same moment are never lost nor duplicated: a getter notified from
/// another thread waits for its wake-up, and a dying one passes its item on.
#[test]
fn cross_thread_handoffs_survive_timeouts_and_kills() {
    const PER_THREAD: u32 = 3_000;
    let q = Queue::new();
    let received = Rc::new(RefCell::new(Vec::new()));
    let consumer = |q: Queue<u32>, received: Rc<RefCell<Vec<u32>>>, seed: u64| {
        greenlet::spawn(move || {
            let mut timeout = seed;
            loop {
                timeout = timeout * 7 % 13 + 1;
                match q.get_timeout(Duration::from_micros(timeout * 50)) {
                    Ok(v) => received.borrow_mut().push(v),
                    Err(GetTimeoutError::Timeout) => {}
                    Err(GetTimeoutError::Closed) => return,
                }
            }
        })
    };
    let consumers: Rc<RefCell<Vec<_>>> = Rc::new(RefCell::new(
        (0..16)
            .map(|i| consumer(q.clone(), received.clone(), i))
            .collect(),
    ));
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    q.put(t * PER_THREAD + i).unwrap();
                    if i % 64 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        })
        .collect();
    let killer = greenlet::spawn({
        let (q, received, consumers) = (q.clone(), received.clone(), consumers.clone());
        move || {
            let mut n = 0;
            while !q.is_closed() {
                greenlet::sleep(Duration::from_micros(300));
                n += 1;
                let i = n % 16;
                let old = std::mem::replace(
                    &mut consumers.borrow_mut()[i],
                    consumer(q.clone(), received.clone(), n as u64),
                );
                old.kill();
            }
            n
        }
    });
    let closer = greenlet::spawn({
        let q = q.clone();
        move || {
            for p in producers {
                while !p.is_finished() {
                    greenlet::sleep(Duration::from_millis(1));
                }
                p.join().unwrap();
            }
            q.close();
        }
    });
    closer.join().unwrap();
    assert!(killer.join().unwrap() > 0);
    let consumers = std::mem::take(&mut *consumers.borrow_mut());
    for c in consumers {
        c.join().unwrap();
    }
    // An item handed to a getter killed after the others saw the close went
    // back into the queue: it is there, not lost.
    while let Ok(v) = q.try_get() {
        received.borrow_mut().push(v);
    }
    let mut got = received.borrow().clone();
    got.sort();
    assert_eq!(got, (0..2 * PER_THREAD).collect::<Vec<_>>());
}

/// Regression: an item handed to a getter that is killed before it runs,
/// after the queue closed, comes back to the queue; a getter already woken
/// by the close takes it instead of reporting the queue drained.
#[test]
fn item_of_a_killed_getter_reaches_a_getter_woken_by_close() {
    let q = Queue::new();
    let spawn_getter = || {
        let q = q.clone();
        greenlet::spawn(move || q.get())
    };
    let first = spawn_getter();
    let second = spawn_getter();
    greenlet::yield_now(); // both wait, `first` in front
    q.put("only").unwrap(); // handed to `first`, which has not run
    q.close(); // wakes `second` with the close
    first.kill(); // `first` passes its item back
    assert_eq!(second.join().unwrap(), Ok("only"));
    assert_eq!(q.try_get(), Err(TryGetError::Closed));
}

/// A formatter sink that asks the queue being formatted for its length.
struct AsksTheQueue<'a>(&'a Queue<u8>, String);

impl std::fmt::Write for AsksTheQueue<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let _ = self.0.len();
        self.1.push_str(s);
        Ok(())
    }
}

/// `Debug` does not hold the queue's lock while the caller's sink runs:
/// a sink that uses the queue (a log writer that reports on it, say)
/// would otherwise spin on that lock forever.
#[test]
fn debug_output_may_go_to_a_sink_that_uses_the_queue() {
    util::within(Duration::from_secs(5), || {
        use std::fmt::Write;
        let q = Queue::new();
        q.put(1).unwrap();
        let mut sink = AsksTheQueue(&q, String::new());
        write!(sink, "{q:?}").unwrap();
        assert!(sink.1.contains("len: 1"), "{}", sink.1);
    });
}
