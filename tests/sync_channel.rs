//! `greenlet::channel`: std-shaped channels between greenlets and threads:
//! disconnection both ways, back-pressure, rendezvous, timeouts, and
//! exactness across threads and hubs.

mod util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenlet::channel::{
    Receiver, RecvError, RecvTimeoutError, SendError, Sender, SyncSender, TryRecvError,
    TrySendError, channel, sync_channel,
};
use util::within;

const LIMIT: Duration = Duration::from_secs(20);

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

#[test]
fn ends_are_send_and_senders_sync() {
    assert_send::<Sender<String>>();
    assert_send::<SyncSender<String>>();
    assert_send::<Receiver<String>>();
    assert_sync::<Sender<String>>();
    assert_sync::<SyncSender<String>>();
}

/// Every sender lives on another OS thread and is dropped there: the root's
/// `recv` drains what was sent, then reports the disconnection.
#[test]
fn recv_errors_once_every_sender_is_dropped_on_another_thread() {
    within(LIMIT, || {
        let (tx, rx) = channel();
        let t = std::thread::spawn(move || {
            let tx2 = tx.clone();
            tx.send(1).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            drop(tx);
            tx2.send(2).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            drop(tx2); // the receiver is parked by now
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
        t.join().unwrap();
    });
}

/// A greenlet parked in a full bounded channel wakes with its message back
/// when another OS thread drops the receiver; later sends fail at once.
#[test]
fn send_errors_once_the_receiver_is_dropped_on_another_thread() {
    within(LIMIT, || {
        let (tx, rx) = sync_channel(1);
        let (utx, urx) = channel::<u8>();
        tx.send(String::from("buffered")).unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            ready_rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            drop(rx);
            drop(urx);
        });
        let g = greenlet::spawn({
            let tx = tx.clone();
            move || {
                ready_tx.send(()).unwrap();
                tx.send(String::from("parked")) // parks: the channel is full
            }
        });
        assert_eq!(
            g.join().unwrap(),
            Err(SendError(String::from("parked"))),
            "the parked sender gets its message back"
        );
        assert_eq!(tx.send("late".into()), Err(SendError("late".into())));
        assert_eq!(
            tx.try_send("late".into()),
            Err(TrySendError::Disconnected("late".into()))
        );
        assert_eq!(utx.send(9), Err(SendError(9)));
        t.join().unwrap();
    });
}

/// Dropping the receiver drops the messages still buffered.
#[test]
fn dropping_the_receiver_drops_buffered_messages() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel();
    for _ in 0..3 {
        tx.send(Counted(dropped.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
    assert!(tx.send(Counted(dropped.clone())).is_err());
    assert_eq!(dropped.load(Ordering::SeqCst), 4);
}

/// A bounded channel throttles its producer: it is never more than the
/// bound ahead of the consumer.
#[test]
fn bounded_channel_applies_back_pressure() {
    within(LIMIT, || {
        let (tx, rx) = sync_channel(2);
        let sent = Rc::new(RefCell::new(0usize));
        let producer = greenlet::spawn({
            let sent = sent.clone();
            move || {
                for i in 0..20 {
                    tx.send(i).unwrap();
                    *sent.borrow_mut() += 1;
                }
            }
        });
        let mut received = 0;
        for v in rx.iter() {
            assert_eq!(v, received);
            received += 1;
            // Sent but not yet received: at most the bound, plus the one a
            // parked sender moved into the slot just freed.
            let ahead = *sent.borrow() - received;
            assert!(ahead <= 3, "producer ran {ahead} ahead");
            greenlet::sleep(Duration::from_millis(1));
        }
        assert_eq!(received, 20);
        producer.join().unwrap();
    });
}

/// `sync_channel(0)`: each send returns only once a receiver has its
/// message.
#[test]
fn rendezvous_send_waits_for_the_receiver() {
    within(LIMIT, || {
        let (tx, rx) = sync_channel(0);
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        let log = Rc::new(RefCell::new(Vec::new()));
        let producer = greenlet::spawn({
            let log = log.clone();
            move || {
                for i in 0..3 {
                    tx.send(i).unwrap();
                    log.borrow_mut().push(format!("sent {i}"));
                }
            }
        });
        for i in 0..3 {
            greenlet::sleep(Duration::from_millis(2));
            log.borrow_mut()
                .push(format!("recv {}", rx.recv().unwrap()));
            assert!(!log.borrow().contains(&format!("sent {}", i + 1)));
        }
        producer.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Senders parked in a full channel are served in the order they came.
#[test]
fn parked_senders_are_served_fifo() {
    within(LIMIT, || {
        let (tx, rx) = sync_channel(0);
        let senders: Vec<_> = (0..5)
            .map(|i| {
                let tx = tx.clone();
                greenlet::spawn(move || tx.send(i).unwrap())
            })
            .collect();
        drop(tx);
        greenlet::yield_now(); // all five park, in order
        assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        greenlet::joinall(senders);
    });
}

#[test]
fn recv_timeout_times_out_then_receives() {
    within(LIMIT, || {
        let (tx, rx) = channel();
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        let g = greenlet::spawn(move || {
            greenlet::sleep(Duration::from_millis(5));
            tx.send("late").unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("late"));
        g.join().unwrap();
    });
}

#[test]
fn try_iter_takes_only_what_is_buffered() {
    let (tx, rx) = channel();
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// Four OS threads and greenlets on a second hub send into one receiver:
/// every message arrives exactly once, and each sender's messages arrive in
/// the order it sent them.
#[test]
fn cross_thread_messages_arrive_exactly_once_in_per_sender_order() {
    within(LIMIT, || {
        const PER: u32 = 5_000;
        let (tx, rx) = sync_channel(16);
        let mut threads = Vec::new();
        for t in 0..4u32 {
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || {
                for i in 0..PER {
                    tx.send((t, i)).unwrap(); // parks this thread's root
                }
            }));
        }
        // A second hub whose greenlets send.
        let hub_thread = std::thread::spawn({
            let tx = tx.clone();
            move || {
                let gs: Vec<_> = (4..8u32)
                    .map(|t| {
                        let tx = tx.clone();
                        greenlet::spawn(move || {
                            for i in 0..PER {
                                tx.send((t, i)).unwrap();
                            }
                        })
                    })
                    .collect();
                for r in greenlet::joinall(gs) {
                    r.unwrap();
                }
            }
        });
        drop(tx);
        let mut next: HashMap<u32, u32> = HashMap::new();
        let mut total = 0;
        for (t, i) in rx.iter() {
            let n = next.entry(t).or_default();
            assert_eq!(i, *n, "sender {t} out of order or duplicated");
            *n += 1;
            total += 1;
        }
        assert_eq!(total, 8 * PER);
        assert!(next.values().all(|&n| n == PER));
        for t in threads {
            t.join().unwrap();
        }
        hub_thread.join().unwrap();
    });
}

/// A receiving greenlet killed after a message was handed to it passes the
/// message on: messages from another thread are neither lost nor doubled
/// while receivers sharing the receiver time out and are killed.
#[test]
fn messages_survive_receivers_timing_out_and_being_killed() {
    within(LIMIT, || {
        const N: u32 = 4_000;
        let (tx, rx) = channel();
        let rx = Rc::new(rx);
        let got = Rc::new(RefCell::new(Vec::new()));
        let receiver = |seed: u64| {
            let (rx, got) = (rx.clone(), got.clone());
            greenlet::spawn(move || {
                let mut timeout = seed;
                loop {
                    timeout = timeout * 7 % 13 + 1;
                    match rx.recv_timeout(Duration::from_micros(timeout * 50)) {
                        Ok(v) => got.borrow_mut().push(v),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
        };
        let mut receivers: Vec<_> = (0..8).map(receiver).collect();
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                tx.send(i).unwrap();
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        let mut n = 0u64;
        while !producer.is_finished() {
            greenlet::sleep(Duration::from_micros(300));
            n += 1;
            let old = std::mem::replace(&mut receivers[(n % 8) as usize], receiver(n));
            old.kill();
        }
        producer.join().unwrap();
        for r in receivers {
            r.join().unwrap();
        }
        // A message handed to a receiver killed after the others saw the
        // disconnection went back into the buffer: it is there, not lost.
        got.borrow_mut().extend(rx.try_iter());
        let mut got = got.borrow().clone();
        got.sort();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
    });
}

/// Regression: a message handed to a receiver that is killed before it
/// runs, after every sender is gone, comes back to the buffer; a receiver
/// already woken by the disconnection takes it instead of reporting
/// `Disconnected` with a message still in the channel.
#[test]
fn message_of_a_killed_receiver_reaches_a_receiver_woken_by_disconnection() {
    within(LIMIT, || {
        let (tx, rx) = channel();
        let rx = Rc::new(rx);
        let spawn_receiver = || {
            let rx = rx.clone();
            greenlet::spawn(move || rx.recv())
        };
        let first = spawn_receiver();
        let second = spawn_receiver();
        greenlet::yield_now(); // both wait, `first` in front
        tx.send("only").unwrap(); // handed to `first`, which has not run
        drop(tx); // wakes `second` with the disconnection
        first.kill(); // `first` passes its message back
        assert_eq!(second.join().unwrap(), Ok("only"));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// A send that finds a parked receiver hands it the message and runs it
/// next, ahead of greenlets that were already ready; receivers woken by a
/// run of sends still run in the order they were woken.
#[test]
fn a_receiver_handed_a_message_runs_next_and_receivers_stay_in_order() {
    let (tx, rx) = channel::<u32>();
    let log = Rc::new(RefCell::new(Vec::new()));
    let receiver = greenlet::spawn({
        let log = log.clone();
        move || {
            for _ in 0..3 {
                let v = rx.recv().unwrap();
                log.borrow_mut().push(format!("got {v}"));
            }
        }
    });
    greenlet::yield_now(); // the receiver parks
    let sender = greenlet::spawn({
        let (log, tx) = (log.clone(), tx.clone());
        move || {
            tx.send(1).unwrap();
            log.borrow_mut().push("sent 1".to_string());
        }
    });
    let bystander = greenlet::spawn({
        let log = log.clone();
        move || log.borrow_mut().push("bystander".to_string())
    });
    greenlet::joinall([sender, bystander]);
    assert_eq!(*log.borrow(), ["sent 1", "got 1", "bystander"]);
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    receiver.join().unwrap();
    assert_eq!(
        *log.borrow(),
        ["sent 1", "got 1", "bystander", "got 2", "got 3"]
    );
}
