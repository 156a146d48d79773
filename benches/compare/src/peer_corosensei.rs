//! corosensei: the raw context switch greenlet is built on, with no scheduler.

use std::hint::black_box;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};

/// One coroutine that loops `suspend(())`, resumed `n` times: each
/// iteration is one resume + suspend round trip (two context switches).
pub fn round_trip(n: u64) -> Duration {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|yielder, ()| {
        loop {
            yielder.suspend(());
        }
    });
    // Start it (first resume runs up to the first suspend) outside the timing.
    assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
    let t = Instant::now();
    for _ in 0..n {
        black_box(co.resume(()));
    }
    let el = t.elapsed();
    // The coroutine never returns: unwind its stack explicitly.
    co.force_unwind();
    el
}

/// Two coroutines resumed in turn, `n` resumes in all: the shape of a
/// two-greenlet yield ping-pong (the scheduler's resume alternates between
/// two stacks), with no scheduler. Not a target row: it shows how much of
/// greenlet's switch cost comes from alternating stacks alone.
pub fn alternating(n: u64) -> Duration {
    let mk = || -> Coroutine<(), (), ()> {
        Coroutine::new(|yielder, ()| {
            loop {
                yielder.suspend(());
            }
        })
    };
    let mut cos = [mk(), mk()];
    for co in &mut cos {
        assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
    }
    let t = Instant::now();
    for i in 0..n {
        black_box(cos[(i & 1) as usize].resume(()));
    }
    let el = t.elapsed();
    for co in &mut cos {
        co.force_unwind();
    }
    el
}
