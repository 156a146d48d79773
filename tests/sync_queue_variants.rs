//! `Queue` beyond put/get: `peek`, `is_full`, `unfinished_tasks`,
//! `LifoQueue`, `PriorityQueue`, and gevent's `Channel` ordering for a
//! rendezvous queue.

mod util;

use std::cmp::Reverse;
use std::time::Duration;

use greenlet::sync::{GetError, GetTimeoutError, LifoQueue, PriorityQueue, Queue, TryGetError};
use util::{Log, within};

const LIMIT: Duration = Duration::from_secs(20);

/// gevent's `Channel` example: a put that hands its item to a waiting
/// getter lets the getter run before the putter continues.
#[test]
fn rendezvous_put_lets_the_getter_run_first() {
    within(LIMIT, || {
        let log = Log::new();
        let ch = Queue::<&str>::bounded(0);
        let getter = greenlet::spawn({
            let (ch, log) = (ch.clone(), log.clone());
            move || {
                for _ in 0..2 {
                    log.push(ch.get().unwrap().to_string());
                }
            }
        });
        let putter = greenlet::spawn({
            let (ch, log) = (ch.clone(), log.clone());
            move || {
                for word in ["hello", "world"] {
                    log.push(format!("sending {word}"));
                    ch.put(word).unwrap();
                    log.push(format!("sent {word}"));
                }
            }
        });
        putter.join().unwrap();
        getter.join().unwrap();
        assert_eq!(
            log.snapshot(),
            [
                "sending hello",
                "hello",
                "sent hello",
                "sending world",
                "world",
                "sent world"
            ]
        );
    });
}

/// The same ordering when the putter is the root context.
#[test]
fn rendezvous_put_from_root_lets_the_getter_run_first() {
    within(LIMIT, || {
        let log = Log::new();
        let ch = Queue::bounded(0);
        let getter = greenlet::spawn({
            let (ch, log) = (ch.clone(), log.clone());
            move || log.push(ch.get().unwrap())
        });
        greenlet::yield_now();
        log.push("sending hello");
        ch.put("hello").unwrap();
        log.push("sent hello");
        assert_eq!(log.snapshot(), ["sending hello", "hello", "sent hello"]);
        getter.join().unwrap();
    });
}

#[test]
fn peek_shows_the_next_item_without_taking_it() {
    let q = Queue::new();
    assert_eq!(q.try_peek(), Err(TryGetError::Empty));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.try_peek(), Ok(1));
    assert_eq!(q.peek(), Ok(1));
    assert_eq!(q.len(), 2);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.peek(), Ok(2));
    q.get().unwrap();
    q.close();
    assert_eq!(q.peek(), Err(GetError));
    assert_eq!(q.try_peek(), Err(TryGetError::Closed));
}

/// A parked peeker wakes when an item arrives, and leaves it for a getter.
#[test]
fn peek_parks_until_an_item_arrives() {
    within(LIMIT, || {
        let q = Queue::new();
        let peekers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                greenlet::spawn(move || q.peek())
            })
            .collect();
        greenlet::yield_now();
        assert_eq!(
            q.peek_timeout(Duration::from_millis(5)),
            Err(GetTimeoutError::Timeout)
        );
        q.put("x").unwrap();
        for r in greenlet::joinall(peekers) {
            assert_eq!(r.unwrap(), Ok("x"));
        }
        assert_eq!(q.get(), Ok("x"));
    });
}

/// A peeker on another thread sees an item put here, and a closing queue
/// wakes a peeker with `GetError`.
#[test]
fn peek_across_threads_and_close() {
    within(LIMIT, || {
        let q = Queue::new();
        let t = std::thread::spawn({
            let q = q.clone();
            move || q.peek()
        });
        std::thread::sleep(Duration::from_millis(10));
        q.put(7u32).unwrap();
        assert_eq!(t.join().unwrap(), Ok(7));
        q.get().unwrap();
        let g = greenlet::spawn({
            let q = q.clone();
            move || q.peek()
        });
        greenlet::yield_now();
        q.close();
        assert_eq!(g.join().unwrap(), Err(GetError));
    });
}

/// In a rendezvous queue, `peek` shows the first waiting putter's item.
#[test]
fn peek_on_a_rendezvous_queue_shows_the_waiting_putter_item() {
    within(LIMIT, || {
        let q = Queue::bounded(0);
        assert_eq!(q.try_peek(), Err(TryGetError::Empty));
        let putter = greenlet::spawn({
            let q = q.clone();
            move || q.put('p').unwrap()
        });
        assert_eq!(q.peek(), Ok('p')); // parks until the putter waits
        assert_eq!(q.get(), Ok('p'));
        putter.join().unwrap();
    });
}

#[test]
fn is_full_and_unfinished_tasks() {
    let q = Queue::bounded(2);
    assert!(!q.is_full());
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.is_full());
    assert_eq!(q.unfinished_tasks(), 2);
    q.get().unwrap();
    assert!(!q.is_full());
    q.task_done();
    assert_eq!(q.unfinished_tasks(), 1);
    assert!(!Queue::<u8>::new().is_full());
    assert!(Queue::<u8>::bounded(0).is_full());
}

#[test]
fn lifo_queue_hands_out_newest_first() {
    let q = LifoQueue::new();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.try_peek(), Ok(4));
    q.close();
    assert_eq!(q.iter().collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
}

/// A bounded LIFO queue throttles like a FIFO one; a getter waiting gets
/// the next item put.
#[test]
fn bounded_lifo_queue_with_waiters() {
    within(LIMIT, || {
        let q = LifoQueue::bounded(1);
        let getter = greenlet::spawn({
            let q = q.clone();
            move || q.get().unwrap()
        });
        greenlet::yield_now();
        q.put(1).unwrap(); // straight to the getter
        assert_eq!(getter.join().unwrap(), 1);
        q.put(2).unwrap();
        let putter = greenlet::spawn({
            let q = q.clone();
            move || q.put(3).unwrap()
        });
        greenlet::yield_now();
        assert!(!putter.is_finished(), "full: the putter waits");
        assert_eq!(q.get(), Ok(2));
        putter.join().unwrap();
        assert_eq!(q.get(), Ok(3));
    });
}

#[test]
fn priority_queue_hands_out_lowest_first() {
    let q = PriorityQueue::new();
    for v in [5, 1, 4, 1, 9, 2, 6, 0, 3] {
        q.put(v).unwrap();
    }
    assert_eq!(q.try_peek(), Ok(0));
    q.close();
    assert_eq!(q.iter().collect::<Vec<_>>(), [0, 1, 1, 2, 3, 4, 5, 6, 9]);

    let q = PriorityQueue::new();
    for v in [2, 7, 1] {
        q.put(Reverse(v)).unwrap();
    }
    assert_eq!(q.get(), Ok(Reverse(7)));
}

/// Many producers and consumers over a priority queue: every item comes out
/// exactly once, and each consumer's own items come out in ascending
/// order while the queue is filled before consumption begins.
#[test]
fn priority_queue_under_greenlets() {
    within(LIMIT, || {
        let q = PriorityQueue::new();
        // Filled first: consumers then drain in global ascending order.
        for v in (0..1000u32).rev() {
            q.put(v).unwrap();
        }
        q.close();
        let got = Log::new();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let (q, got) = (q.clone(), got.clone());
                greenlet::spawn(move || {
                    for v in q.iter() {
                        got.push(v);
                        if v % 10 == 0 {
                            greenlet::yield_now();
                        }
                    }
                })
            })
            .collect();
        greenlet::joinall(consumers);
        assert_eq!(got.snapshot(), (0..1000).collect::<Vec<_>>());
    });
}
