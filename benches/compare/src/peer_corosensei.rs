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
