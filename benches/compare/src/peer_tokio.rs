//! tokio: current-thread runtime (IO and time drivers enabled, as
//! `#[tokio::main(flavor = "current_thread")]` does). Everything runs inside
//! `block_on` on the calling thread.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};

use crate::util::{SleepOutcome, process_cpu, vm_hwm_kib, vm_rss_kib};

pub fn runtime() -> Runtime {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    // Warm up the scheduler and drivers.
    rt.block_on(async {
        tokio::spawn(async { tokio::task::yield_now().await })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
    rt
}

/// Two tasks ping-pong with `tokio::task::yield_now().await`, `n` yields in all.
pub fn switch(rt: &Runtime, n: u64) -> Duration {
    let half = n / 2;
    rt.block_on(async move {
        let t = Instant::now();
        let a = tokio::spawn(async move {
            for i in 0..half {
                black_box(i);
                tokio::task::yield_now().await;
            }
        });
        let b = tokio::spawn(async move {
            for i in 0..half {
                black_box(i);
                tokio::task::yield_now().await;
            }
        });
        a.await.unwrap();
        b.await.unwrap();
        t.elapsed()
    })
}

/// Untimed check that the two tasks of `switch` really alternate.
pub fn switch_order(rt: &Runtime, n: u64) -> Vec<u8> {
    use std::sync::{Arc, Mutex};
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let hs: Vec<_> = [0u8, 1]
            .into_iter()
            .map(|id| {
                let log = log.clone();
                tokio::spawn(async move {
                    for _ in 0..n / 2 {
                        log.lock().unwrap().push(id);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    std::mem::take(&mut *log.lock().unwrap())
}

/// Pattern (a): `tokio::spawn(async {}).await`, `n` times, in `block_on`.
pub fn spawn_one(rt: &Runtime, n: u64) -> Duration {
    rt.block_on(async move {
        let t = Instant::now();
        for _ in 0..n {
            tokio::spawn(async {}).await.unwrap();
        }
        t.elapsed()
    })
}

/// Pattern (b): spawn `n` empty tasks, then await every handle.
pub fn spawn_all(rt: &Runtime, n: u64) -> Duration {
    rt.block_on(async move {
        let t = Instant::now();
        let hs: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    })
}

/// `n` tasks each doing `tokio::time::sleep(d)`, spawned then awaited.
pub fn sleep_many(n: u64, d: Duration) -> SleepOutcome {
    let rt = runtime();
    let rss_before_kib = vm_rss_kib();
    let (wall, cpu, spawn) = rt.block_on(async move {
        let c = process_cpu();
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| tokio::spawn(async move { tokio::time::sleep(d).await }))
            .collect();
        let spawn = t.elapsed();
        for h in hs {
            h.await.unwrap();
        }
        (t.elapsed(), process_cpu() - c, spawn)
    });
    SleepOutcome {
        wall,
        cpu,
        spawn,
        rss_before_kib,
        hwm_after_kib: vm_hwm_kib(),
    }
}
