//! Under `patch_all`, a foreign event loop inside a greenlet (here a tokio
//! current-thread runtime, as the `postgres` crate drives one) parks the
//! greenlet on its epoll fd instead of blocking the hub in `epoll_wait`.
//! Also the limitation that comes with tokio's thread-local runtime
//! context, and the pattern that overlaps tokio-based blocking clients.

use std::sync::mpsc;
use std::time::{Duration, Instant};

mod util;

/// Runs `f` on its own thread (with its own hub) and fails the test if it
/// has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    greenlet::monkey::patch_all();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_tokio_block_on_in_one_greenlet_leaves_a_5_ms_ticker_unstalled() {
    let (took, worst) = deadline(30, || {
        let tick = util::ticker::start();
        greenlet::yield_now(); // the ticker is running
        let took = greenlet::spawn(|| {
            let rt = runtime();
            let t = Instant::now();
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
            t.elapsed()
        })
        .join()
        .unwrap();
        (took, tick.stop())
    });
    eprintln!(
        "tokio block_on(sleep 300 ms) in a greenlet: {took:?}; ticker's longest gap {worst:?}"
    );
    assert!(
        took >= Duration::from_millis(290),
        "the tokio timer ended early: {took:?}"
    );
    assert!(took < Duration::from_millis(1000), "{took:?}");
    worst.assert_below(Duration::from_millis(50));
}

#[test]
fn with_timeout_around_a_tokio_block_on_returns_elapsed_on_time() {
    let took = deadline(30, || {
        greenlet::spawn(|| {
            let rt = runtime();
            let t = Instant::now();
            // tokio panics ("unexpected error when polling the I/O
            // driver") when the hook fails its epoll_wait with ETIMEDOUT;
            // with_timeout recognises that its timeout caused it.
            let r = greenlet::with_timeout(Duration::from_millis(50), || {
                rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await })
            });
            assert!(r.is_err(), "expected Err(Elapsed)");
            // (tokio loses its I/O driver in that panic: this runtime is
            // unusable now, and dropping it is all that is left to do.)
            t.elapsed()
        })
        .join()
        .unwrap()
    });
    eprintln!(
        "with_timeout(50 ms) around tokio block_on(sleep 300 ms): Err(Elapsed) after {took:?}"
    );
    assert!(took < Duration::from_millis(150), "took {took:?}");
}

#[test]
fn a_second_block_on_while_one_is_parked_panics_cannot_start_a_runtime_within_a_runtime() {
    deadline(30, || {
        let first = greenlet::spawn(|| {
            runtime().block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        });
        let second = greenlet::spawn(|| {
            runtime().block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
        });
        let results = greenlet::joinall([first, second]);
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err();
        let msg = err.panic_message().unwrap_or_default();
        assert!(
            msg.contains("Cannot start a runtime from within a runtime"),
            "unexpected: {msg:?}"
        );
    });
}

#[test]
fn tokio_calls_on_the_blocking_pool_overlap_and_the_ticker_keeps_time() {
    let (took, worst) = deadline(30, || {
        let tick = util::ticker::start();
        let t = Instant::now();
        let calls: Vec<_> = (0..10)
            .map(|_| {
                greenlet::spawn(|| {
                    // One runtime per pool thread call: each block_on runs
                    // on its own OS thread, so none is inside another.
                    greenlet::threadpool::spawn_blocking(|| {
                        runtime().block_on(async {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        })
                    })
                })
            })
            .collect();
        for r in greenlet::joinall(calls) {
            r.unwrap();
        }
        let took = t.elapsed();
        (took, tick.stop())
    });
    eprintln!(
        "10 x tokio block_on(sleep 100 ms) via spawn_blocking: {took:?}; ticker's longest gap {worst:?}"
    );
    assert!(took < Duration::from_millis(600), "took {took:?}");
    worst.assert_below(Duration::from_millis(50));
}

#[test]
fn kill_of_a_greenlet_inside_a_tokio_block_on_ends_it_at_once() {
    let took = deadline(30, || {
        let g = greenlet::spawn(|| {
            let rt = runtime();
            rt.block_on(async { tokio::time::sleep(Duration::from_secs(10)).await });
        });
        greenlet::sleep(Duration::from_millis(20));
        let t = Instant::now();
        g.kill();
        // The hook fails tokio's epoll_wait with ECANCELED and tokio panics
        // on it: the greenlet ends (reported as that panic, not as killed).
        assert!(g.join().is_err());
        t.elapsed()
    });
    // The sleep is 10 s; "at once" is anything well short of it. The bound
    // is loose because the join includes tokio's panic and the runtime's
    // teardown, which took 208 ms once on a loaded CI machine.
    assert!(took < Duration::from_secs(3), "the kill took {took:?}");
}
