//! Queue ping-pong between two green threads on one OS thread, in one run:
//!
//! - greenlet: two greenlets on one hub, `greenlet::sync::Queue` (unbounded)
//!   each way;
//! - greenlet channel: the same with `greenlet::channel::channel` (std's
//!   mpsc shape, unbounded) each way;
//! - tokio: two tasks on a current-thread runtime, `tokio::sync::mpsc`
//!   (unbounded) each way;
//! - may: two coroutines on one worker, `may::sync::mpsc` each way.
//!
//! One message is one `put`/`send` plus the matching `get`/`recv` (a round
//! trip is two messages). Prints nanoseconds per message, best of several
//! rounds, and greenlet's time as a ratio of each peer's.
//!
//! Run: `cargo run --release -- [messages per round] [rounds] [greenlet|channel|tokio|may]`.

use std::time::{Duration, Instant};

fn greenlet_pingpong(msgs: u64) -> Duration {
    use greenlet::sync::Queue;
    let (ping, pong) = (Queue::new(), Queue::new());
    let rounds = msgs / 2;
    let echo = greenlet::spawn({
        let (ping, pong) = (ping.clone(), pong.clone());
        move || {
            for _ in 0..rounds {
                let v: u64 = ping.get().unwrap();
                pong.put(v + 1).unwrap();
            }
        }
    });
    let driver = greenlet::spawn(move || {
        let t = Instant::now();
        for i in 0..rounds {
            ping.put(i).unwrap();
            let v = pong.get().unwrap();
            assert_eq!(v, i + 1);
        }
        t.elapsed()
    });
    let d = driver.join().unwrap();
    echo.join().unwrap();
    d
}

fn channel_pingpong(msgs: u64) -> Duration {
    use greenlet::channel::channel;
    let (ping_tx, ping_rx) = channel::<u64>();
    let (pong_tx, pong_rx) = channel::<u64>();
    let rounds = msgs / 2;
    let echo = greenlet::spawn(move || {
        for _ in 0..rounds {
            let v = ping_rx.recv().unwrap();
            pong_tx.send(v + 1).unwrap();
        }
    });
    let driver = greenlet::spawn(move || {
        let t = Instant::now();
        for i in 0..rounds {
            ping_tx.send(i).unwrap();
            let v = pong_rx.recv().unwrap();
            assert_eq!(v, i + 1);
        }
        t.elapsed()
    });
    let d = driver.join().unwrap();
    echo.join().unwrap();
    d
}

fn tokio_pingpong(msgs: u64) -> Duration {
    use tokio::sync::mpsc;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let rounds = msgs / 2;
    rt.block_on(async move {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
        let echo = tokio::spawn(async move {
            for _ in 0..rounds {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v + 1).unwrap();
            }
        });
        let driver = tokio::spawn(async move {
            let t = Instant::now();
            for i in 0..rounds {
                ping_tx.send(i).unwrap();
                let v = pong_rx.recv().await.unwrap();
                assert_eq!(v, i + 1);
            }
            t.elapsed()
        });
        let d = driver.await.unwrap();
        echo.await.unwrap();
        d
    })
}

fn may_pingpong(msgs: u64) -> Duration {
    use may::sync::mpsc;
    let rounds = msgs / 2;
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    // SAFETY (may's contract for `go!`): the coroutines use no thread-local
    // storage and do not block the worker thread outside may's primitives.
    let echo = may::go!(move || {
        for _ in 0..rounds {
            let v = ping_rx.recv().unwrap();
            pong_tx.send(v + 1).unwrap();
        }
    });
    let driver = may::go!(move || {
        let t = Instant::now();
        for i in 0..rounds {
            ping_tx.send(i).unwrap();
            let v = pong_rx.recv().unwrap();
            assert_eq!(v, i + 1);
        }
        t.elapsed()
    });
    let d = driver.join().unwrap();
    echo.join().unwrap();
    d
}

fn ns_per_msg(d: Duration, msgs: u64) -> f64 {
    d.as_nanos() as f64 / msgs as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let msgs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    // Optional: run only one of "greenlet", "channel", "tokio", "may" (for
    // profiling).
    let only = args.next();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    may::config().set_workers(1);

    let mut best = [f64::INFINITY; 4];
    for _ in 0..rounds {
        if run("greenlet") {
            best[0] = best[0].min(ns_per_msg(greenlet_pingpong(msgs), msgs));
        }
        if run("channel") {
            best[3] = best[3].min(ns_per_msg(channel_pingpong(msgs), msgs));
        }
        if run("tokio") {
            best[1] = best[1].min(ns_per_msg(tokio_pingpong(msgs), msgs));
        }
        if run("may") {
            best[2] = best[2].min(ns_per_msg(may_pingpong(msgs), msgs));
        }
    }
    println!("queue ping-pong, {msgs} messages x {rounds} rounds, best ns/message:");
    println!("  greenlet Queue          {:8.1} ns", best[0]);
    println!("  greenlet channel        {:8.1} ns", best[3]);
    println!("  tokio mpsc (current)    {:8.1} ns", best[1]);
    println!("  may mpsc (1 worker)     {:8.1} ns", best[2]);
    println!(
        "  greenlet / tokio = {:.2}x, greenlet / may = {:.2}x",
        best[0] / best[1],
        best[0] / best[2]
    );
    println!(
        "  channel / tokio = {:.2}x, channel / Queue = {:.2}x",
        best[3] / best[1],
        best[3] / best[0]
    );
}
