//! Download benchmark: N HTTP/1.1 GETs (default 10,000), C at a time
//! (default 1,000), a new connection each, bodies of S bytes (default
//! 16 KiB), against one local server, by each client in the same run:
//!
//! - `greenlet`: `greenlet::net::TcpStream`, C worker greenlets on one hub;
//! - `patched`: plain `std::net::TcpStream` in C greenlets after
//!   `greenlet::monkey::patch_all()`;
//! - `tokio`: a current-thread runtime, C tasks, `tokio::net::TcpStream`;
//! - `may`: `may::config().set_workers(1)`, C coroutines, `may::net::TcpStream`;
//! - `gevent` (when `python3` can import it, e.g. from `target/pydeps`):
//!   `gevent_client.py`, C greenlets on plain `socket` after
//!   `monkey.patch_all()`;
//! - `epoll_floor`: no runtime at all, one edge-triggered epoll and
//!   greenlet's syscalls per request (see `floor.rs`): the floor under
//!   every client above;
//! - `stack_floor`: `epoll_floor` plus one write per event to a page of
//!   the request slot's own, as a stackful runtime's resume makes.
//!
//! Every client runs the same hand-written GET (write the request, read to
//! EOF, check the status, `Content-Length` and body size): `get_sync` for
//! the three blocking-style clients, `get_async` its line-for-line async
//! twin. Each worker does N/C requests one after the other.
//!
//! The server (a tokio current-thread runtime, one task per connection,
//! the same for every client) runs in its own process pinned to core 1;
//! each client runs in a fresh child process pinned to core 0. Clients run
//! in turns, `--reps` times each (the order rotates each rep); the median
//! wall time per client is the figure of merit, with its client CPU time
//! (`getrusage`, user + system).
//!
//! Usage: `cargo run --release -- [--n N] [--conc C] [--size BYTES]
//! [--reps R] [--peers greenlet,patched,tokio,may,gevent] [--server-core K]
//! [--client-core K]`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod floor;

const PEERS: [&str; 10] = [
    "greenlet",
    "patched",
    "tokio",
    "may",
    "gevent",
    "epoll_floor",
    "stack_floor",
    "greenlet2",
    "tokio2",
    "may2",
];

/// The two-core clients (run only when named in `--peers`).
fn two_core(peer: &str) -> bool {
    peer.ends_with('2')
}

struct Opts {
    n: usize,
    conc: usize,
    size: usize,
    reps: usize,
    peers: Vec<String>,
    server_core: usize,
    client_core: usize,
}

fn parse_opts(mut args: impl Iterator<Item = String>) -> Opts {
    let mut o = Opts {
        n: 10_000,
        conc: 1_000,
        size: 16 * 1024,
        reps: 5,
        peers: PEERS
            .iter()
            .filter(|&&p| !two_core(p) && (p != "gevent" || gevent_available()))
            .map(|p| p.to_string())
            .collect(),
        server_core: 1,
        client_core: 0,
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        let num = |v: String| {
            v.parse()
                .unwrap_or_else(|_| die(&format!("{a}: bad number {v:?}")))
        };
        match a.as_str() {
            "--n" => o.n = num(val()),
            "--conc" => o.conc = num(val()),
            "--size" => o.size = num(val()),
            "--reps" => o.reps = num(val()),
            "--server-core" => o.server_core = num(val()),
            "--client-core" => o.client_core = num(val()),
            "--peers" => {
                o.peers = val().split(',').map(str::to_owned).collect();
                if let Some(p) = o.peers.iter().find(|p| !PEERS.contains(&p.as_str())) {
                    die(&format!("unknown peer {p:?} (known: {})", PEERS.join(",")));
                }
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    if o.conc == 0 || o.n == 0 || o.reps == 0 {
        die("--n, --conc and --reps must be positive");
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("compare-download: {msg}");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("__server") => {
            let core: usize = args.next().unwrap().parse().unwrap();
            let size: usize = args.next().unwrap().parse().unwrap();
            server::run(core, size);
        }
        Some("__client") => {
            let peer = args.next().unwrap();
            let addr: SocketAddr = args.next().unwrap().parse().unwrap();
            let args: Vec<String> = args.collect();
            let (cores, nums) = args
                .split_last()
                .unwrap_or_else(|| die("__client: no cores"));
            let nums: Vec<usize> = nums.iter().map(|a| a.parse().unwrap()).collect();
            let [n, conc, size] = nums[..] else {
                die("__client: bad arguments")
            };
            let cores: Vec<usize> = cores.split(',').map(|c| c.parse().unwrap()).collect();
            client(&peer, addr, n, conc, size, &cores);
        }
        first => {
            let args = first.map(str::to_owned).into_iter().chain(args);
            parent(parse_opts(args));
        }
    }
}

/// Pins the calling thread (and the threads it creates later) to `core`.
fn pin_to(core: usize) {
    pin_to_cores(&[core]);
}

/// Pins the calling thread (and the threads it creates later) to `cores`.
fn pin_to_cores(cores: &[usize]) {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &core in cores {
        // SAFETY: `set` is a valid cpu_set_t; CPU_SET ignores out-of-range cores.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: a valid set of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        eprintln!(
            "warning: cannot pin to cores {cores:?}: {}",
            io::Error::last_os_error()
        );
    }
}

/// Raises the soft open-file limit to the hard limit (C connections on
/// each side need more than the usual 1,024).
fn raise_nofile() {
    // SAFETY: a zeroed rlimit is a valid out-parameter.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: valid pointer to an initialised rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The request every client sends.
fn request(addr: SocketAddr) -> Vec<u8> {
    format!(
        "GET /bytes HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: compare-download\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Checks a whole response (head and body) read to EOF: status 200, and a
/// body of exactly `Content-Length` = `size` bytes.
fn check(resp: &[u8], size: usize) -> io::Result<()> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?
        + 4;
    let head = std::str::from_utf8(&resp[..head_end]).map_err(|_| bad("head not UTF-8"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(bad("status is not 200"));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| bad("no Content-Length"))?;
    if len != size || resp.len() - head_end != len {
        return Err(bad("wrong body length"));
    }
    Ok(())
}

/// One GET on a connected blocking-style stream: the request, then
/// everything to EOF into `buf` (the server closes after the body).
fn get_sync<S: Read + Write>(
    mut s: S,
    req: &[u8],
    buf: &mut Vec<u8>,
    size: usize,
) -> io::Result<()> {
    s.write_all(req)?;
    // `buf` is zeroed once, when allocated, not for every read.
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2 + 4096, 0);
        }
        let n = s.read(&mut buf[filled..])?;
        if n == 0 {
            return check(&buf[..filled], size);
        }
        filled += n;
    }
}

/// [`get_sync`] for tokio.
async fn get_async(
    mut s: tokio::net::TcpStream,
    req: &[u8],
    buf: &mut Vec<u8>,
    size: usize,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(req).await?;
    // `buf` is zeroed once, when allocated, not for every read.
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2 + 4096, 0);
        }
        let n = s.read(&mut buf[filled..]).await?;
        if n == 0 {
            return check(&buf[..filled], size);
        }
        filled += n;
    }
}

/// What one worker did: (requests that succeeded, the first error).
type Tally = (usize, Option<String>);

fn tally(tally: &mut Tally, r: io::Result<()>) {
    match r {
        Ok(()) => tally.0 += 1,
        Err(e) => {
            tally.1.get_or_insert_with(|| e.to_string());
        }
    }
}

/// A client child: runs `peer`'s client and prints one RESULT line.
fn client(peer: &str, addr: SocketAddr, n: usize, conc: usize, size: usize, cores: &[usize]) {
    pin_to_cores(cores);
    raise_nofile();
    let req = request(addr);
    // Requests of worker w: w, w + conc, w + 2 conc, ... below n.
    let share = move |w: usize| (w..n).step_by(conc).count();
    let (tallies, wall, cpu): (Vec<Tally>, Duration, Duration) = match peer {
        "greenlet" | "patched" => {
            let patched = peer == "patched";
            if patched {
                greenlet::monkey::patch_all();
            }
            greenlet_warm_up(addr, &req, size, patched);
            let (t0, c0) = (Instant::now(), cpu_time());
            let tallies = greenlet_workers(addr, &req, size, patched, 0..conc.min(n), share);
            (tallies, t0.elapsed(), cpu_time() - c0)
        }
        "greenlet2" => {
            // The job split across two hubs: two OS threads, each with its
            // own hub and every other worker.
            let start = std::sync::Arc::new(std::sync::Barrier::new(3));
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let (req, start) = (req.clone(), start.clone());
                    std::thread::spawn(move || {
                        greenlet_warm_up(addr, &req, size, false);
                        start.wait();
                        let ws = (t..conc.min(n)).step_by(2);
                        greenlet_workers(addr, &req, size, false, ws, share)
                    })
                })
                .collect();
            start.wait();
            let (t0, c0) = (Instant::now(), cpu_time());
            let tallies = threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            (tallies, t0.elapsed(), cpu_time() - c0)
        }
        "tokio" | "tokio2" => {
            let rt = if peer == "tokio" {
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .unwrap()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_io()
                    .build()
                    .unwrap()
            };
            rt.block_on(async move {
                let mut buf = vec![0u8; size + 1024];
                let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                get_async(s, &req, &mut buf, size).await.unwrap();
                let (t0, c0) = (Instant::now(), cpu_time());
                let workers: Vec<_> = (0..conc.min(n))
                    .map(|w| {
                        let req = req.clone();
                        tokio::spawn(async move {
                            let mut t: Tally = (0, None);
                            let mut buf = vec![0u8; size + 1024];
                            for _ in 0..share(w) {
                                let r = match tokio::net::TcpStream::connect(addr).await {
                                    Ok(s) => get_async(s, &req, &mut buf, size).await,
                                    Err(e) => Err(e),
                                };
                                tally(&mut t, r);
                            }
                            t
                        })
                    })
                    .collect();
                let mut tallies = Vec::new();
                for w in workers {
                    tallies.push(w.await.unwrap());
                }
                (tallies, t0.elapsed(), cpu_time() - c0)
            })
        }
        "epoll_floor" | "stack_floor" => {
            let touch = peer == "stack_floor";
            // One warm-up request, as every client makes.
            let warm = floor::run(addr, &req, size, 1, |_| 1, touch);
            assert_eq!(warm[0].0, 1, "warm-up: {:?}", warm[0].1);
            let (t0, c0) = (Instant::now(), cpu_time());
            let tallies = floor::run(addr, &req, size, conc.min(n), share, touch);
            (tallies, t0.elapsed(), cpu_time() - c0)
        }
        "may" | "may2" => {
            may::config().set_workers(if peer == "may" { 1 } else { 2 });
            let warm = {
                let req = req.clone();
                may::go!(move || {
                    let mut buf = vec![0u8; size + 1024];
                    let s = may::net::TcpStream::connect(addr).unwrap();
                    get_sync(s, &req, &mut buf, size).unwrap();
                })
            };
            warm.join().unwrap();
            let (t0, c0) = (Instant::now(), cpu_time());
            let workers: Vec<_> = (0..conc.min(n))
                .map(|w| {
                    let req = req.clone();
                    may::go!(move || {
                        let mut t: Tally = (0, None);
                        let mut buf = vec![0u8; size + 1024];
                        for _ in 0..share(w) {
                            let r = may::net::TcpStream::connect(addr)
                                .and_then(|s| get_sync(s, &req, &mut buf, size));
                            tally(&mut t, r);
                        }
                        t
                    })
                })
                .collect();
            let tallies = workers.into_iter().map(|w| w.join().unwrap()).collect();
            (tallies, t0.elapsed(), cpu_time() - c0)
        }
        other => die(&format!("unknown peer {other}")),
    };
    let ok: usize = tallies.iter().map(|t| t.0).sum();
    let error = tallies.iter().find_map(|t| t.1.clone());
    print!(
        "RESULT download {peer} n={n} conc={conc} size={size} ok={ok} wall_ns={} cpu_ns={}",
        wall.as_nanos(),
        cpu.as_nanos()
    );
    match error {
        Some(e) => println!(" first_error={e}"),
        None => println!(),
    }
}

/// One warm-up request on this thread's hub (hub, stack pool, first
/// connection).
fn greenlet_warm_up(addr: SocketAddr, req: &[u8], size: usize, patched: bool) {
    let mut buf = vec![0u8; size + 1024];
    let r = if patched {
        std::net::TcpStream::connect(addr).and_then(|s| get_sync(s, req, &mut buf, size))
    } else {
        greenlet::net::TcpStream::connect(addr).and_then(|s| get_sync(s, req, &mut buf, size))
    };
    r.unwrap();
}

/// Runs workers `ws` (worker w making `share(w)` requests) as greenlets on
/// this thread's hub and returns their tallies.
fn greenlet_workers(
    addr: SocketAddr,
    req: &[u8],
    size: usize,
    patched: bool,
    ws: impl Iterator<Item = usize>,
    share: impl Fn(usize) -> usize,
) -> Vec<Tally> {
    let workers: Vec<_> = ws
        .map(|w| {
            let req = req.to_vec();
            let count = share(w);
            greenlet::spawn(move || {
                let mut t: Tally = (0, None);
                let mut buf = vec![0u8; size + 1024];
                for _ in 0..count {
                    let r = if patched {
                        std::net::TcpStream::connect(addr)
                            .and_then(|s| get_sync(s, &req, &mut buf, size))
                    } else {
                        greenlet::net::TcpStream::connect(addr)
                            .and_then(|s| get_sync(s, &req, &mut buf, size))
                    };
                    tally(&mut t, r);
                }
                t
            })
        })
        .collect();
    greenlet::joinall(workers)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// One client run, as parsed from its RESULT line.
struct Run {
    ok: usize,
    wall: Duration,
    cpu: Duration,
    error: Option<String>,
}

/// This crate's directory (for `gevent_client.py` and `target/pydeps`).
fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `python3` command that can import gevent from `target/pydeps` (see
/// the README) or the system.
fn python() -> Command {
    let mut cmd = Command::new("python3");
    let mut path = crate_dir().join("target/pydeps").into_os_string();
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        path.push(":");
        path.push(old);
    }
    cmd.env("PYTHONPATH", path);
    cmd
}

fn gevent_available() -> bool {
    python()
        .args(["-c", "import gevent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_client(peer: &str, addr: SocketAddr, o: &Opts) -> Result<Run, String> {
    let mut cmd = if peer == "gevent" {
        let mut cmd = python();
        cmd.arg(crate_dir().join("gevent_client.py"));
        cmd
    } else {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["__client", peer]);
        cmd
    };
    // A two-core client gets the server's core too (this machine has two).
    let cores = if two_core(peer) {
        format!("{},{}", o.client_core, o.server_core)
    } else {
        o.client_core.to_string()
    };
    let out = cmd
        .arg(addr.to_string())
        .args([o.n, o.conc, o.size].map(|v| v.to_string()))
        .arg(cores)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("no RESULT line ({})", out.status))?;
    println!("{line}");
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let num = |k: &str| field(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(Run {
        ok: num("ok") as usize,
        wall: Duration::from_nanos(num("wall_ns")),
        cpu: Duration::from_nanos(num("cpu_ns")),
        error: line.split_once(" first_error=").map(|(_, e)| e.to_owned()),
    })
}

fn parent(o: Opts) {
    let exe = std::env::current_exe().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "compare-download: n={} conc={} size={} reps={} peers={} server core {} client core {} ({cores} cores)",
        o.n,
        o.conc,
        o.size,
        o.reps,
        o.peers.join(","),
        o.server_core,
        o.client_core
    );
    let mut server = Command::new(&exe)
        .args(["__server", &o.server_core.to_string(), &o.size.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("LISTENING ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| die(&format!("server said {line:?}")));

    let mut runs: Vec<(String, Vec<Run>)> = o.peers.iter().map(|p| (p.clone(), vec![])).collect();
    for rep in 0..o.reps {
        for i in 0..runs.len() {
            let k = (i + rep) % runs.len();
            let peer = runs[k].0.clone();
            match run_client(&peer, addr, &o) {
                Ok(run) => runs[k].1.push(run),
                Err(e) => println!("RESULT download {peer} status=failed reason={e}"),
            }
        }
    }
    // The server is our child: end it by its id.
    let _ = server.kill();
    let _ = server.wait();

    let median = |mut v: Vec<Duration>| -> Option<Duration> {
        v.sort();
        v.get(v.len() / 2).copied()
    };
    let mut table = Vec::new();
    for (peer, rs) in &runs {
        let clean: Vec<&Run> = rs
            .iter()
            .filter(|r| r.ok == o.n && r.error.is_none())
            .collect();
        if clean.len() < rs.len() {
            for r in rs.iter().filter(|r| r.ok != o.n || r.error.is_some()) {
                println!(
                    "{peer}: a run completed {} of {} requests (first error: {})",
                    r.ok,
                    o.n,
                    r.error.as_deref().unwrap_or("none")
                );
            }
        }
        let walls: Vec<Duration> = clean.iter().map(|r| r.wall).collect();
        let (Some(wall), Some(cpu)) = (
            median(walls.clone()),
            median(clean.iter().map(|r| r.cpu).collect()),
        ) else {
            continue;
        };
        let min = walls.iter().min().copied().unwrap_or(wall);
        let max = walls.iter().max().copied().unwrap_or(wall);
        table.push((peer.clone(), wall, min, max, cpu, clean.len()));
    }

    println!();
    println!(
        "| client | wall (median) | min | max | requests/s | client CPU | clean runs | wall / greenlet |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let base = table.iter().find(|t| t.0 == "greenlet").map(|t| t.1);
    for (peer, wall, min, max, cpu, clean) in &table {
        println!(
            "| {peer} | {:.3} s | {:.3} s | {:.3} s | {:.0} | {:.3} s | {clean}/{} | {} |",
            wall.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            o.n as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64(),
            o.reps,
            base.map_or("-".into(), |b| format!(
                "{:.2}",
                wall.as_secs_f64() / b.as_secs_f64()
            )),
        );
    }
    // (median wall, min wall, median CPU) of a client.
    let get = |p: &str| {
        table
            .iter()
            .find(|t| t.0 == p)
            .map(|t| [t.1, t.2, t.4].map(|d| d.as_secs_f64()))
    };
    println!();
    println!("ratios by median wall time (the figure of merit), min wall time, median client CPU:");
    let goals = [
        ("patched", "greenlet", 1.15, "<="),
        ("greenlet", "tokio", 1.0, "<"),
        ("greenlet", "may", 1.0, "<"),
        ("greenlet", "gevent", 1.0, "<"),
        ("greenlet2", "tokio2", 1.0, "<"),
        ("greenlet2", "may2", 1.0, "<"),
    ];
    for (a, b, goal, op) in goals {
        let (Some(x), Some(y)) = (get(a), get(b)) else {
            continue;
        };
        let r = [0, 1, 2].map(|k| x[k] / y[k]);
        let pass = if op == "<=" {
            r[0] <= goal
        } else {
            r[0] < goal
        };
        println!(
            "{a} / {b} = {:.2} (min {:.2}, CPU {:.2}); goal {op} {goal}: {}",
            r[0],
            r[1],
            r[2],
            if pass { "PASS" } else { "MISS" }
        );
    }
    // The floor: what no client with these syscalls can go below.
    if let Some(f) = get("epoll_floor") {
        for p in ["greenlet", "patched", "tokio", "may", "stack_floor"] {
            if let Some(x) = get(p) {
                println!(
                    "{p} / epoll_floor = {:.2} (min {:.2}, CPU {:.2}): {:.1} us per request above the floor by median wall",
                    x[0] / f[0],
                    x[1] / f[1],
                    x[2] / f[2],
                    (x[0] - f[0]) * 1e6 / o.n as f64
                );
            }
        }
    }
    print_scaling(get);
}

/// Prints, for each runtime run on one and on two cores, the scaling
/// factor: one-core median wall time over two-core median wall time (2.0
/// would be perfect), and the CPU time growth.
fn print_scaling(get: impl Fn(&str) -> Option<[f64; 3]>) {
    for base in ["greenlet", "tokio", "may"] {
        let (Some(one), Some(two)) = (get(base), get(&format!("{base}2"))) else {
            continue;
        };
        println!(
            "scaling 1 -> 2 cores, {base}: {:.2}x requests/s by median wall ({:.2}x by min wall), CPU {:.2}x",
            one[0] / two[0],
            one[1] / two[1],
            two[2] / one[2]
        );
    }
}

mod server {
    //! The one server every client downloads from: a tokio current-thread
    //! runtime pinned to its own core, a task per connection that reads the
    //! request head, writes one prepared response (`Content-Length`,
    //! `Connection: close`) and closes.

    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub fn run(core: usize, size: usize) {
        super::pin_to(core);
        super::raise_nofile();
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        response.extend((0..size).map(|i| b'a' + (i % 26) as u8));
        let response: Arc<[u8]> = response.into();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(4096).unwrap();
            println!("LISTENING {}", listener.local_addr().unwrap());
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let response = response.clone();
                tokio::spawn(async move {
                    let mut req = Vec::with_capacity(512);
                    let mut buf = [0u8; 1024];
                    while !req.ends_with(b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = s.write_all(&response).await;
                });
            }
        });
    }
}
