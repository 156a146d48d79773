//! Queue ping-pong between two green threads on one OS thread:
//!
//! - `greenlet`: two greenlets on one hub, `greenlet::sync::Queue`
//!   (unbounded) each way;
//! - `channel`: the same with `greenlet::channel::channel` (std's mpsc
//!   shape, unbounded) each way;
//! - `tokio`: two tasks on the runtime `#[tokio::main(flavor =
//!   "current_thread")]` builds (`new_current_thread().enable_all()`),
//!   `tokio::sync::mpsc::unbounded_channel` each way: how a tokio user
//!   writes it;
//! - `may`: two coroutines on one worker, `may::sync::mpsc` each way;
//! - `tokio-*`: other shapes of the same tokio program, for the record
//!   (`--peers` selects them; see README.md): `tokio-noio` (no
//!   `enable_all()`), `tokio-main` (the `block_on` future is the driving
//!   side), `tokio-bounded` (`mpsc::channel(1)`), `tokio-join` (both sides
//!   in one task with `tokio::join!`), `tokio-local` (`LocalSet` +
//!   `spawn_local`).
//!
//! One message is one put/send plus the matching get/recv (a round trip is
//! two messages). Every figure is the median over `--procs` fresh processes
//! (this binary re-executed with `__child`), each pinned to one core with
//! `sched_setaffinity` before it starts any thread; the peers take turns
//! within each round, so load from elsewhere hits all of them alike. Each
//! child runs an untimed warm-up of a tenth of the messages, then one timed
//! run, and reports wall time and its process CPU time per message.
//!
//! Run: `cargo run --release -- [--msgs N] [--procs P] [--core C] [--peers a,b]`
//! (and `--profile fat` instead of `--release` for fat LTO).

use std::process::Command;
use std::time::{Duration, Instant};

const DEFAULT_PEERS: [&str; 4] = ["greenlet", "channel", "tokio", "may"];
/// Pairs in the `*-pairs` shapes: many ping-pongs at once, so a woken
/// getter competes with a thousand other ready tasks.
const PAIRS: u64 = 1000;
const PAIR_PEERS: [&str; 4] = [
    "greenlet-pairs",
    "tokio-pairs",
    "greenlet-mutex",
    "tokio-mutex",
];
const TOKIO_SHAPES: [&str; 5] = [
    "tokio-noio",
    "tokio-main",
    "tokio-bounded",
    "tokio-join",
    "tokio-local",
];

/// Wall and process-CPU clocks read together.
#[derive(Clone, Copy)]
struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// (wall, cpu) elapsed since `self`.
    fn elapsed(&self) -> (Duration, Duration) {
        (self.wall.elapsed(), process_cpu() - self.cpu)
    }
}

type Elapsed = (Duration, Duration);

fn greenlet_pingpong(msgs: u64) -> Elapsed {
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
        let t = Clock::now();
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

/// [`PAIRS`] Queue ping-pongs at once on one hub (`msgs` in all).
fn greenlet_pairs(msgs: u64) -> Elapsed {
    use greenlet::sync::Queue;
    let rounds = msgs / 2 / PAIRS;
    let t = Clock::now();
    let mut gs = Vec::new();
    for _ in 0..PAIRS {
        let (ping, pong) = (Queue::new(), Queue::new());
        gs.push(greenlet::spawn({
            let (ping, pong) = (ping.clone(), pong.clone());
            move || {
                for _ in 0..rounds {
                    let v: u64 = ping.get().unwrap();
                    pong.put(v + 1).unwrap();
                }
            }
        }));
        gs.push(greenlet::spawn(move || {
            for i in 0..rounds {
                ping.put(i).unwrap();
                assert_eq!(pong.get().unwrap(), i + 1);
            }
        }));
    }
    for g in gs {
        g.join().unwrap();
    }
    t.elapsed()
}

/// [`PAIRS`] greenlets contending for one `Mutex`, each holding it across
/// a yield (as a lock held across I/O is): `msgs` lock-unlock cycles in
/// all. An unlock hands the lock to the first waiter.
fn greenlet_mutex(msgs: u64) -> Elapsed {
    use greenlet::sync::Mutex;
    use std::rc::Rc;
    let iters = msgs / PAIRS;
    let m = Rc::new(Mutex::new(0u64));
    let t = Clock::now();
    let gs: Vec<_> = (0..PAIRS)
        .map(|_| {
            let m = m.clone();
            greenlet::spawn(move || {
                for _ in 0..iters {
                    let mut g = m.lock();
                    *g += 1;
                    greenlet::yield_now();
                    drop(g);
                    greenlet::yield_now();
                }
            })
        })
        .collect();
    greenlet::joinall(gs);
    let el = t.elapsed();
    assert_eq!(*m.lock(), iters * PAIRS);
    el
}

fn channel_pingpong(msgs: u64) -> Elapsed {
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
        let t = Clock::now();
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

mod tokio_shapes {
    use super::{Clock, Elapsed};
    use tokio::sync::mpsc;

    /// The runtime `#[tokio::main(flavor = "current_thread")]` builds, or
    /// the same without the IO and time drivers.
    pub fn runtime(enable_all: bool) -> tokio::runtime::Runtime {
        let mut b = tokio::runtime::Builder::new_current_thread();
        if enable_all {
            b.enable_all();
        }
        b.build().unwrap()
    }

    /// Two spawned tasks, unbounded channels: what a tokio user writes.
    pub async fn tasks(rounds: u64) -> Elapsed {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
        let echo = tokio::spawn(async move {
            for _ in 0..rounds {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v + 1).unwrap();
            }
        });
        let driver = tokio::spawn(async move {
            let t = Clock::now();
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
    }

    /// The `block_on` (main) future drives; the echo side is a task.
    pub async fn main_drives(rounds: u64) -> Elapsed {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
        let echo = tokio::spawn(async move {
            for _ in 0..rounds {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v + 1).unwrap();
            }
        });
        let t = Clock::now();
        for i in 0..rounds {
            ping_tx.send(i).unwrap();
            let v = pong_rx.recv().await.unwrap();
            assert_eq!(v, i + 1);
        }
        let d = t.elapsed();
        echo.await.unwrap();
        d
    }

    /// [`PAIRS`](super::PAIRS) ping-pongs at once, each two spawned tasks.
    pub async fn pairs(msgs: u64) -> Elapsed {
        let rounds = msgs / 2 / super::PAIRS;
        let t = Clock::now();
        let mut hs = Vec::new();
        for _ in 0..super::PAIRS {
            let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
            let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
            hs.push(tokio::spawn(async move {
                for _ in 0..rounds {
                    let v = ping_rx.recv().await.unwrap();
                    pong_tx.send(v + 1).unwrap();
                }
            }));
            hs.push(tokio::spawn(async move {
                for i in 0..rounds {
                    ping_tx.send(i).unwrap();
                    assert_eq!(pong_rx.recv().await.unwrap(), i + 1);
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        t.elapsed()
    }

    /// [`PAIRS`](super::PAIRS) tasks contending for one `tokio::sync::Mutex`,
    /// each holding it across a `yield_now`.
    pub async fn mutex(msgs: u64) -> Elapsed {
        use std::sync::Arc;
        let iters = msgs / super::PAIRS;
        let m = Arc::new(tokio::sync::Mutex::new(0u64));
        let t = Clock::now();
        let hs: Vec<_> = (0..super::PAIRS)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..iters {
                        let mut g = m.lock().await;
                        *g += 1;
                        tokio::task::yield_now().await;
                        drop(g);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        let el = t.elapsed();
        assert_eq!(*m.lock().await, iters * super::PAIRS);
        el
    }

    /// Two tasks, bounded channels of capacity 1.
    pub async fn bounded(rounds: u64) -> Elapsed {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            for _ in 0..rounds {
                let v = ping_rx.recv().await.unwrap();
                pong_tx.send(v + 1).await.unwrap();
            }
        });
        let driver = tokio::spawn(async move {
            let t = Clock::now();
            for i in 0..rounds {
                ping_tx.send(i).await.unwrap();
                let v = pong_rx.recv().await.unwrap();
                assert_eq!(v, i + 1);
            }
            t.elapsed()
        });
        let d = driver.await.unwrap();
        echo.await.unwrap();
        d
    }

    /// Both sides as futures of one task (`tokio::join!` in a spawned task).
    pub async fn joined(rounds: u64) -> Elapsed {
        tokio::spawn(async move {
            let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
            let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
            let echo = async move {
                for _ in 0..rounds {
                    let v = ping_rx.recv().await.unwrap();
                    pong_tx.send(v + 1).unwrap();
                }
            };
            let driver = async move {
                let t = Clock::now();
                for i in 0..rounds {
                    ping_tx.send(i).unwrap();
                    let v = pong_rx.recv().await.unwrap();
                    assert_eq!(v, i + 1);
                }
                t.elapsed()
            };
            let (d, ()) = tokio::join!(driver, echo);
            d
        })
        .await
        .unwrap()
    }

    /// Two `spawn_local` tasks on a `LocalSet`.
    pub async fn local(rounds: u64) -> Elapsed {
        let set = tokio::task::LocalSet::new();
        set.run_until(async move {
            let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
            let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
            let echo = tokio::task::spawn_local(async move {
                for _ in 0..rounds {
                    let v = ping_rx.recv().await.unwrap();
                    pong_tx.send(v + 1).unwrap();
                }
            });
            let driver = tokio::task::spawn_local(async move {
                let t = Clock::now();
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
        .await
    }
}

fn may_pingpong(msgs: u64) -> Elapsed {
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
        let t = Clock::now();
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

/// Child: pin, warm up, run once, print `RESULT`.
fn child(peer: &str, msgs: u64, core: usize) {
    pin_to_core(core);
    let mut run: Box<dyn FnMut(u64) -> Elapsed> = match peer {
        "greenlet" => Box::new(greenlet_pingpong),
        "channel" => Box::new(channel_pingpong),
        "greenlet-pairs" => Box::new(greenlet_pairs),
        "tokio-pairs" => {
            let rt = tokio_shapes::runtime(true);
            Box::new(move |msgs| rt.block_on(tokio_shapes::pairs(msgs)))
        }
        "greenlet-mutex" => Box::new(greenlet_mutex),
        "tokio-mutex" => {
            let rt = tokio_shapes::runtime(true);
            Box::new(move |msgs| rt.block_on(tokio_shapes::mutex(msgs)))
        }
        "may" => {
            may::config().set_workers(1);
            Box::new(may_pingpong)
        }
        p if p == "tokio" || TOKIO_SHAPES.contains(&p) => {
            let rt = tokio_shapes::runtime(p != "tokio-noio");
            let p = p.to_string();
            Box::new(move |msgs| {
                let rounds = msgs / 2;
                rt.block_on(async {
                    match p.as_str() {
                        "tokio" | "tokio-noio" => tokio_shapes::tasks(rounds).await,
                        "tokio-main" => tokio_shapes::main_drives(rounds).await,
                        "tokio-bounded" => tokio_shapes::bounded(rounds).await,
                        "tokio-join" => tokio_shapes::joined(rounds).await,
                        "tokio-local" => tokio_shapes::local(rounds).await,
                        _ => unreachable!(),
                    }
                })
            })
        }
        _ => {
            eprintln!("unknown peer {peer}");
            std::process::exit(2);
        }
    };
    run(msgs / 10);
    let (wall, cpu) = run(msgs);
    println!(
        "RESULT queue {peer} msgs={msgs} wall_ns={:.2} cpu_ns={:.2}",
        wall.as_nanos() as f64 / msgs as f64,
        cpu.as_nanos() as f64 / msgs as f64
    );
}

struct Opts {
    msgs: u64,
    procs: usize,
    core: usize,
    peers: Vec<String>,
}

fn parse_opts(args: &[String]) -> Opts {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Opts {
        msgs: 2_000_000,
        procs: 5,
        core: ncpu - 1,
        peers: DEFAULT_PEERS.iter().map(|s| s.to_string()).collect(),
    };
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--msgs" => o.msgs = v.replace('_', "").parse().expect("--msgs N"),
            "--procs" => o.procs = v.parse().expect("--procs P"),
            "--core" => o.core = v.parse().expect("--core C"),
            "--peers" if v == "all" => {
                o.peers = DEFAULT_PEERS
                    .iter()
                    .chain(TOKIO_SHAPES.iter())
                    .chain(PAIR_PEERS.iter())
                    .map(|s| s.to_string())
                    .collect()
            }
            "--peers" => o.peers = v.split(',').map(str::to_string).collect(),
            other => {
                eprintln!(
                    "unknown option {other}\nusage: compare-queue [--msgs N] [--procs P] [--core C] \
                     [--peers all|greenlet,channel,tokio,may,{},{}]",
                    TOKIO_SHAPES.join(","),
                    PAIR_PEERS.join(",")
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

fn median_min_max(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__child") {
        child(
            &args[1],
            args[2].parse().expect("msgs"),
            args[3].parse().expect("core"),
        );
        return;
    }
    let o = parse_opts(&args);
    println!("== queue ping-pong ==");
    println!("{}", build_profile());
    println!(
        "{} messages per run; each figure: median [min-max] over {} fresh processes, \
         each pinned to core {}, after a warm-up of {} messages; peers take turns each round",
        o.msgs,
        o.procs,
        o.core,
        o.msgs / 10
    );
    println!(
        "uncontended atomic read-modify-write (fetch_add) on this machine: {:.1} ns of CPU; \
         tokio's wake path makes several per message (see README.md)",
        atomic_rmw_ns()
    );
    let exe = std::env::current_exe().expect("current_exe");
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); o.peers.len()];
    for round in 0..o.procs {
        for (i, peer) in o.peers.iter().enumerate() {
            let out = Command::new(&exe)
                .args(["__child", peer, &o.msgs.to_string(), &o.core.to_string()])
                .output()
                .expect("run child");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find(|l| l.starts_with("RESULT "))
                .unwrap_or_else(|| {
                    panic!(
                        "{peer}: no result ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            println!("round {round} {line}");
            let field = |k: &str| -> f64 {
                line.split(' ')
                    .find_map(|t| t.strip_prefix(k)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .expect("field")
            };
            samples[i].0.push(field("wall_ns"));
            samples[i].1.push(field("cpu_ns"));
        }
    }
    println!();
    println!(
        "{:<15} {:>9} {:>19} {:>9} {:>19}",
        "peer", "wall ns", "[min-max]", "cpu ns", "[min-max]"
    );
    let mut medians = Vec::new();
    for (peer, (wall, cpu)) in o.peers.iter().zip(samples.iter_mut()) {
        let (w, wmin, wmax) = median_min_max(wall);
        let (c, cmin, cmax) = median_min_max(cpu);
        println!(
            "{peer:<15} {w:>9.1} {:>19} {c:>9.1} {:>19}",
            format!("[{wmin:.1}-{wmax:.1}]"),
            format!("[{cmin:.1}-{cmax:.1}]")
        );
        medians.push((peer.as_str(), w, c));
    }
    let find = |p: &str| medians.iter().find(|m| m.0 == p).map(|m| (m.1, m.2));
    println!();
    for ours in ["greenlet", "channel"] {
        let Some((gw, gc)) = find(ours) else { continue };
        for (peer, w, c) in &medians {
            if !peer.starts_with("greenlet") && *peer != "channel" {
                println!(
                    "{ours} / {peer:<14} wall {:.2}x  cpu {:.2}x",
                    gw / w,
                    gc / c
                );
            }
        }
    }
    if let (Some((gw, gc)), Some((tw, tc))) = (find("greenlet"), find("tokio")) {
        // CPU time: on an idle machine it equals wall time here (one busy
        // thread), and on a shared one it leaves out time spent preempted.
        println!(
            "target: greenlet Queue <= 0.5x tokio mpsc (CPU time, medians): {:.2}x {} \
             (wall: {:.2}x)",
            gc / tc,
            if gc <= 0.5 * tc { "PASS" } else { "MISS" },
            gw / tw
        );
    }
}

/// Which cargo profile built this binary (the directory it sits in), and
/// what that profile is.
fn build_profile() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let what = match dir.as_str() {
        "release" => {
            "cargo's default release profile: opt-level 3, thin-local LTO, 16 codegen units"
        }
        "fat" => "profile `fat`: release + lto = \"fat\", codegen-units = 1",
        _ => "not one of the two stated profiles (release, fat)",
    };
    format!(
        "build profile: {dir} ({what}); every side is in this one binary; tokio {}, may {}",
        env!("PEER_VERSION_TOKIO"),
        env!("PEER_VERSION_MAY")
    )
}

/// CPU ns per uncontended `fetch_add` on a private atomic (best of 5).
fn atomic_rmw_ns() -> f64 {
    use std::hint::black_box;
    use std::sync::atomic::{AtomicU64, Ordering};
    let a = AtomicU64::new(0);
    let n = 2_000_000u64;
    (0..5)
        .map(|_| {
            let t = process_cpu();
            for _ in 0..n {
                black_box(&a).fetch_add(1, Ordering::AcqRel);
            }
            (process_cpu() - t).as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// CPU time (user + system) of this process, all threads.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the one timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread (before any other starts, so all of them) to
/// one core.
fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it; sched_setaffinity reads it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set)
    };
    assert_eq!(
        r,
        0,
        "sched_setaffinity(core {core}): {}",
        std::io::Error::last_os_error()
    );
}
