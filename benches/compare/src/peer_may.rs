//! may: stackful coroutines, configured with ONE worker thread. The timed
//! code runs inside a coroutine on that worker (so, like greenlet and tokio,
//! everything happens on one thread), except the `may-ext` variant of
//! pattern (b), which spawns and joins from the main thread while the worker
//! runs the coroutines on the other core.

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use may::go;

use crate::util::{SleepOutcome, panic_text, process_cpu, vm_hwm_kib, vm_rss_kib};

/// Configures may (one worker) and starts its scheduler. Call once, first.
pub fn setup() {
    may::config().set_workers(1);
    go!(may::coroutine::yield_now).join().unwrap();
}

/// Runs `f` in a coroutine on the worker and waits for it from this thread.
fn in_co<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match go!(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Two coroutines ping-pong with `may::coroutine::yield_now()`, `n` yields in all.
pub fn switch(n: u64) -> Duration {
    let half = n / 2;
    in_co(move || {
        let t = Instant::now();
        let a = go!(move || {
            for i in 0..half {
                black_box(i);
                may::coroutine::yield_now();
            }
        });
        let b = go!(move || {
            for i in 0..half {
                black_box(i);
                may::coroutine::yield_now();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        t.elapsed()
    })
}

/// Untimed check that the two coroutines of `switch` really alternate.
pub fn switch_order(n: u64) -> Vec<u8> {
    use std::sync::{Arc, Mutex};
    in_co(move || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = [0u8, 1]
            .into_iter()
            .map(|id| {
                let log = log.clone();
                go!(move || {
                    for _ in 0..n / 2 {
                        log.lock().unwrap().push(id);
                        may::coroutine::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        std::mem::take(&mut *log.lock().unwrap())
    })
}

/// Pattern (a): `go!(|| ()).join()`, `n` times, inside a coroutine.
pub fn spawn_one(n: u64) -> Duration {
    in_co(move || {
        let t = Instant::now();
        for _ in 0..n {
            go!(|| ()).join().unwrap();
        }
        t.elapsed()
    })
}

/// Spawns `n` coroutines running `f` into `hs`; a stack allocation failure
/// (may panics) is turned into an error naming how many were live.
fn spawn_n<F>(n: u64, f: F, hs: &mut Vec<may::coroutine::JoinHandle<()>>) -> Result<(), String>
where
    F: Fn() + Send + Clone + 'static,
{
    catch_unwind(AssertUnwindSafe(|| {
        for _ in 0..n {
            hs.push(go!(f.clone()));
        }
    }))
    .map_err(|p| {
        format!(
            "may could not create coroutine #{} ({}): live process mappings {} vs vm.max_map_count {}; \
             every may stack is its own mmap plus an mprotect guard page = 2 mappings",
            hs.len() + 1,
            panic_text(&*p),
            crate::util::map_count(),
            crate::util::max_map_count().map_or("?".into(), |v| v.to_string())
        )
    })
}

/// Pattern (b): spawn `n` empty coroutines, then join them all, inside a coroutine.
pub fn spawn_all(n: u64) -> Result<Duration, String> {
    in_co(move || {
        let t = Instant::now();
        let mut hs = Vec::with_capacity(n as usize);
        let r = spawn_n(n, || (), &mut hs);
        for h in hs {
            let _ = h.join();
        }
        r.map(|()| t.elapsed())
    })
}

/// Pattern (b) from the main thread (not a coroutine): the single worker
/// runs (and frees) coroutines while the main thread is still spawning.
pub fn spawn_all_ext(n: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let mut hs = Vec::with_capacity(n as usize);
    let r = spawn_n(n, || (), &mut hs);
    for h in hs {
        let _ = h.join();
    }
    r.map(|()| t.elapsed())
}

/// `n` coroutines each doing `may::coroutine::sleep(d)`, spawned then joined
/// inside a coroutine.
pub fn sleep_many(n: u64, d: Duration) -> Result<SleepOutcome, String> {
    let rss_before_kib = vm_rss_kib();
    let r = in_co(move || {
        let c = process_cpu();
        let t = Instant::now();
        let mut hs = Vec::with_capacity(n as usize);
        spawn_n(n, move || may::coroutine::sleep(d), &mut hs)?;
        let spawn = t.elapsed();
        for h in hs {
            h.join().unwrap();
        }
        Ok((t.elapsed(), process_cpu() - c, spawn))
    });
    r.map(|(wall, cpu, spawn)| SleepOutcome {
        wall,
        cpu,
        spawn,
        rss_before_kib,
        hwm_after_kib: vm_hwm_kib(),
    })
}
