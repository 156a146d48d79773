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

// ---- the user's `Ord` and `Clone`, which run under the queue's lock ----

thread_local! {
    /// While set, [`Touchy`]'s `Ord` and `Clone` panic.
    static FAIL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An item whose `Ord` and `Clone` panic on demand.
#[derive(Debug, PartialEq, Eq)]
struct Touchy(u32);

impl Ord for Touchy {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if FAIL.with(|f| f.get()) {
            panic!("Touchy::cmp");
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Touchy {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Clone for Touchy {
    fn clone(&self) -> Self {
        if FAIL.with(|f| f.get()) {
            panic!("Touchy::clone");
        }
        Touchy(self.0)
    }
}

/// Runs `f` with `Touchy` panicking; returns whether `f` panicked.
fn with_failing(f: impl FnOnce()) -> bool {
    FAIL.with(|x| x.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    FAIL.with(|x| x.set(false));
    r.is_err()
}

/// Drains `q` (without waiting): the items in the order they come out.
fn drain(q: &Queue<Touchy>) -> Vec<u32> {
    std::iter::from_fn(|| q.try_get().ok().map(|t| t.0)).collect()
}

/// A `get` whose `Ord` panics takes nothing: the lock is released and
/// every item is still there (in an unspecified order, as in std's
/// `BinaryHeap`), and once drained the queue orders again. Before, the
/// item being taken was dropped with the panic.
#[test]
fn priority_queue_get_whose_ord_panics_loses_no_item() {
    within(LIMIT, || {
        let q = PriorityQueue::new();
        for i in [5, 1, 4, 2, 3] {
            q.put(Touchy(i)).unwrap();
        }
        assert!(with_failing(|| drop(q.get())));
        assert_eq!(q.len(), 5);
        assert_eq!(q.unfinished_tasks(), 5);
        let mut got = drain(&q);
        got.sort();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        for i in [3, 1, 2] {
            q.put(Touchy(i)).unwrap();
        }
        assert_eq!(drain(&q), [1, 2, 3]);
    });
}

/// A `put` whose `Ord` panics leaves its item in the queue, counted (as
/// std's `BinaryHeap::push` keeps its element): nothing is lost, the
/// counts agree, and the queue goes on working. Before, the item was in
/// but not counted by `unfinished_tasks`.
#[test]
fn priority_queue_put_whose_ord_panics_keeps_the_queue_consistent() {
    within(LIMIT, || {
        let q = PriorityQueue::new();
        for i in [3, 1, 2] {
            q.put(Touchy(i)).unwrap();
        }
        assert!(with_failing(|| drop(q.put(Touchy(0)))));
        assert_eq!(q.len(), 4);
        assert_eq!(q.unfinished_tasks(), 4);
        q.put(Touchy(9)).unwrap();
        let mut got = drain(&q);
        got.sort();
        assert_eq!(got, [0, 1, 2, 3, 9]);
        // Ordered again once the broken comparison is gone.
        for i in [7, 5, 6] {
            q.put(Touchy(i)).unwrap();
        }
        assert_eq!(drain(&q), [5, 6, 7]);
    });
}

/// A `get` from a full bounded queue moves a waiting putter's item in; if
/// `Ord` panics then, the item being taken stays in the queue too, and the
/// putter's item is in (its put returned). Before, the taken item was lost.
#[test]
fn priority_queue_get_topped_up_from_a_putter_whose_ord_panics_loses_no_item() {
    within(LIMIT, || {
        let q = PriorityQueue::bounded(2);
        q.put(Touchy(1)).unwrap();
        q.put(Touchy(2)).unwrap();
        let putter = greenlet::spawn({
            let q = q.clone();
            move || q.put(Touchy(3)).is_ok()
        });
        greenlet::yield_now(); // parked: the queue is full
        assert!(!putter.is_finished());
        assert!(with_failing(|| drop(q.get())));
        assert!(putter.join().unwrap(), "the putter's item was refused");
        assert_eq!(q.unfinished_tasks(), 3);
        let mut got = drain(&q);
        got.sort();
        assert_eq!(got, [1, 2, 3]);
    });
}

/// An item handed to a getter that died goes back into the queue through
/// `Ord` (under the lock, from the dying getter's cleanup, where a panic
/// aborted the process). A panicking `Ord` there is contained: the item is
/// back. In a child process, which the abort would end.
#[test]
fn priority_queue_item_passed_back_from_a_dead_getter_survives_a_panicking_ord() {
    if util::child_mode().is_none() {
        let out = util::run_child_within(
            "priority_queue_item_passed_back_from_a_dead_getter_survives_a_panicking_ord",
            "pass_back",
            &[],
            LIMIT,
        );
        util::assert_child_passed(&out);
        return;
    }
    within(LIMIT, || {
        let q: PriorityQueue<Touchy> = PriorityQueue::new();
        let getter = greenlet::spawn({
            let q = q.clone();
            move || q.get()
        });
        greenlet::yield_now(); // parked in get
        // Hand it an item, then kill it before it runs: the item comes back.
        q.put(Touchy(1)).unwrap();
        q.put(Touchy(2)).unwrap(); // buffered: the passed-back item needs Ord
        FAIL.with(|x| x.set(true));
        getter.kill();
        FAIL.with(|x| x.set(false));
        assert!(getter.join().unwrap_err().is_killed());
        let mut got = drain(&q);
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// `Ord` calling back into the queue it orders (which holds its lock
/// meanwhile) panics with a message saying so, instead of spinning for
/// good; the queue stays usable.
#[test]
fn priority_queue_ord_calling_back_into_its_queue_panics() {
    struct Nosy(u32, Queue<Nosy>);
    impl PartialEq for Nosy {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Nosy {}
    impl Ord for Nosy {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            let _ = self.1.len(); // re-enters the queue
            self.0.cmp(&other.0)
        }
    }
    impl PartialOrd for Nosy {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    within(LIMIT, || {
        let q = PriorityQueue::new();
        let handle: Queue<Nosy> = (*q).clone();
        q.put(Nosy(2, handle.clone())).unwrap(); // alone: no comparison
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.put(Nosy(1, handle.clone())).unwrap()
        }));
        let msg = util::payload_message(&*r.unwrap_err());
        assert!(msg.contains("called back into"), "{msg}");
        assert_eq!(q.len(), 2);
        assert!(q.try_get().is_ok());
    });
}

/// A `peek` whose `Clone` panics leaves the queue as it was: the lock is
/// released and the item is still first.
#[test]
fn peek_whose_clone_panics_leaves_the_queue_usable() {
    within(LIMIT, || {
        let q = Queue::new();
        q.put(Touchy(1)).unwrap();
        q.put(Touchy(2)).unwrap();
        assert!(with_failing(|| drop(q.try_peek())));
        assert!(with_failing(|| drop(q.peek())));
        assert_eq!(q.len(), 2);
        assert_eq!(q.try_peek(), Ok(Touchy(1)));
        assert_eq!(drain(&q), [1, 2]);
    });
}

/// `Clone` calling back into the queue being peeked panics with a message
/// saying so, instead of spinning for good.
#[test]
fn peek_whose_clone_calls_back_into_its_queue_panics() {
    struct Nosy(Queue<Nosy>);
    impl Clone for Nosy {
        fn clone(&self) -> Self {
            let _ = self.0.len(); // re-enters the queue
            Nosy(self.0.clone())
        }
    }
    within(LIMIT, || {
        let q = Queue::new();
        q.put(Nosy(q.clone())).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.try_peek().is_ok()));
        let msg = util::payload_message(&*r.unwrap_err());
        assert!(msg.contains("called back into"), "{msg}");
        assert_eq!(q.len(), 1);
        // The item holds a handle to its own queue: take it out to free both.
        drop(q.try_get());
    });
}
