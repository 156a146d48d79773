//! Criterion benchmarks of the core runtime: switch, spawn+join, timers.
//!
//! `cargo bench --bench core`. Peer comparisons (corosensei, tokio, may)
//! live in the separate crate `benches/compare/`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Two greenlets ping-ponging with `yield_now`; reports time per switch.
fn switch(c: &mut Criterion) {
    c.bench_function("switch (yield_now ping-pong, per switch)", |b| {
        b.iter_custom(|iters| {
            let a = greenlet::spawn(move || {
                for _ in 0..iters {
                    greenlet::yield_now();
                }
            });
            let g = greenlet::spawn(move || {
                for _ in 0..iters {
                    greenlet::yield_now();
                }
            });
            let t = Instant::now();
            a.join().unwrap();
            g.join().unwrap();
            t.elapsed() / 2
        })
    });
}

/// Spawn and join an empty greenlet, one at a time.
fn spawn_join(c: &mut Criterion) {
    c.bench_function("spawn+join (one at a time)", |b| {
        b.iter(|| greenlet::spawn(|| ()).join().unwrap())
    });
    c.bench_function("spawn 1000 then joinall (per greenlet)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1000);
                let t = Instant::now();
                let gs: Vec<_> = (0..n).map(|_| greenlet::spawn(|| ())).collect();
                greenlet::joinall(gs);
                total += t.elapsed();
                left -= n;
            }
            total
        })
    });
}

/// A `with_timeout` scope whose body does not park: arms and cancels a timer.
fn timers(c: &mut Criterion) {
    c.bench_function("with_timeout around a non-blocking body", |b| {
        b.iter(|| greenlet::with_timeout(Duration::from_secs(60), || 1).unwrap())
    });
}

criterion_group!(benches, switch, spawn_join, timers);
criterion_main!(benches);
