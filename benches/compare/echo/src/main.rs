//! Echo-server benchmark: the same echo server written three ways, each run
//! in its own child process, driven by the same load generator in this
//! process, in the same run:
//!
//! - `greenlet`: one hub thread, a greenlet per connection, blocking-style
//!   `read`/`write_all` on `greenlet::net::TcpStream`;
//! - `tokio`: the current-thread runtime `#[tokio::main(flavor =
//!   "current_thread")]` builds (`enable_all()`), a task per connection;
//! - `may`: one worker, a coroutine per connection.
//!
//! The load generator opens `--conns` connections (default 100) from plain
//! std threads with blocking sockets; each round, every connection sends one
//! `--msg`-byte message (default 64) and reads the echo back. After a
//! warm-up, a window of `--secs` seconds is measured: messages echoed, and
//! the server process's CPU time (user + system, all its threads, from
//! `getrusage(RUSAGE_SELF)` in the server). The figure of merit is server
//! CPU time per message; servers are measured in turns, `--reps` times
//! each, and the median and min-max over the reps are reported. Each
//! measurement is a fresh server process pinned to core 0 (before it
//! starts any thread); the load generator pins itself to the last core.
//!
//! Usage: `cargo run --release -- [--conns N] [--msg BYTES] [--secs S]
//! [--reps R] [--threads T] [--only NAME]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SERVERS: [&str; 3] = ["greenlet", "tokio", "may"];

struct Opts {
    conns: usize,
    msg: usize,
    secs: f64,
    reps: usize,
    threads: usize,
    only: Option<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        conns: 100,
        msg: 64,
        secs: 3.0,
        reps: 3,
        threads: 4,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--conns" => o.conns = val().parse().unwrap(),
            "--msg" => o.msg = val().parse().unwrap(),
            "--secs" => o.secs = val().parse().unwrap(),
            "--reps" => o.reps = val().parse().unwrap(),
            "--threads" => o.threads = val().parse().unwrap(),
            "--only" => o.only = Some(val()),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn main() {
    // Child mode: `compare-echo --server NAME`.
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--server" {
        pin_to_core(0);
        serve(&args[2]);
        return;
    }
    let o = parse_opts();
    let ncpu = thread::available_parallelism().map_or(1, |n| n.get());
    // The load threads inherit this.
    pin_to_core(ncpu - 1);
    println!("{}", build_profile());
    let names: Vec<&str> = SERVERS
        .iter()
        .copied()
        .filter(|n| o.only.as_deref().is_none_or(|only| only == *n))
        .collect();
    println!(
        "echo: {} connections, {}-byte messages, {} load threads, {:.1} s windows, {} reps, \
         {} cores; server (fresh process per rep) on core 0, load on the last core",
        o.conns, o.msg, o.threads, o.secs, o.reps, ncpu
    );
    let mut results: Vec<(&str, Vec<Sample>)> = names.iter().map(|n| (*n, Vec::new())).collect();
    for rep in 0..o.reps {
        for (name, samples) in results.iter_mut() {
            let s = measure(name, &o);
            println!(
                "rep {rep} {name:>8}: {:>9.0} msg/s  server cpu {:>6.3} s  {:>7.0} ns/msg",
                s.msgs as f64 / s.wall.as_secs_f64(),
                s.cpu.as_secs_f64(),
                s.ns_per_msg()
            );
            samples.push(s);
        }
    }
    println!();
    let median = |n: &str, v: &[Sample]| {
        let mut x: Vec<f64> = v.iter().map(Sample::ns_per_msg).collect();
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{n:>8}: server cpu ns/msg median {:.0} [{:.0}-{:.0}]",
            x[x.len() / 2],
            x[0],
            x[x.len() - 1]
        );
        x[x.len() / 2]
    };
    let medians: Vec<(&str, f64, f64)> = results
        .iter()
        .map(|(n, v)| {
            let mut rate: Vec<f64> = v
                .iter()
                .map(|s| s.msgs as f64 / s.wall.as_secs_f64())
                .collect();
            rate.sort_by(|a, b| a.partial_cmp(b).unwrap());
            (*n, median(n, v), rate[rate.len() / 2])
        })
        .collect();
    for (n, ns, rate) in &medians {
        println!("RESULT echo {n} server_cpu_ns_per_msg={ns:.0} msgs_per_s={rate:.0}");
    }
    if let Some((_, g, _)) = medians.iter().find(|m| m.0 == "greenlet") {
        for (n, ns, _) in medians.iter().filter(|m| m.0 != "greenlet") {
            println!("RATIO greenlet/{n} cpu_per_msg={:.2}", g / ns);
        }
    }
}

struct Sample {
    msgs: u64,
    cpu: Duration,
    wall: Duration,
}

impl Sample {
    fn ns_per_msg(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.msgs.max(1) as f64
    }
}

/// A server child process and its control pipe.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &str) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--server", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start server process");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("ADDR ")
            .unwrap_or_else(|| panic!("server {name} said {line:?}"))
            .trim()
            .parse()
            .unwrap();
        Server {
            child,
            stdin,
            stdout,
            addr,
        }
    }

    /// The server process's CPU time so far.
    fn cpu(&mut self) -> Duration {
        self.stdin.write_all(b"cpu\n").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let us: u64 = line
            .strip_prefix("CPU ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .trim()
            .parse()
            .unwrap();
        Duration::from_micros(us)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the load against server `name` and measures one window.
fn measure(name: &str, o: &Opts) -> Sample {
    let mut server = Server::start(name);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let per_thread = o.conns.div_ceil(o.threads);
    let mut loaders = Vec::new();
    let mut left = o.conns;
    while left > 0 {
        let k = left.min(per_thread);
        left -= k;
        let conns: Vec<TcpStream> = (0..k)
            .map(|_| {
                let s = TcpStream::connect(server.addr).unwrap();
                s.set_nodelay(true).unwrap();
                s
            })
            .collect();
        let (stop, count, msg) = (stop.clone(), count.clone(), o.msg);
        loaders.push(thread::spawn(move || load(conns, msg, &stop, &count)));
    }
    thread::sleep(Duration::from_millis(500)); // warm-up
    let (c0, cpu0, t0) = (count.load(Ordering::Relaxed), server.cpu(), Instant::now());
    thread::sleep(Duration::from_secs_f64(o.secs));
    let (c1, cpu1, t1) = (count.load(Ordering::Relaxed), server.cpu(), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().unwrap();
    }
    Sample {
        msgs: c1 - c0,
        cpu: cpu1 - cpu0,
        wall: t1 - t0,
    }
}

/// One load thread: each round sends a message on every connection, then
/// reads every echo back.
fn load(mut conns: Vec<TcpStream>, msg: usize, stop: &AtomicBool, count: &AtomicU64) {
    let out = vec![b'x'; msg];
    let mut back = vec![0; msg];
    while !stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut() {
            c.write_all(&out).unwrap();
        }
        for c in conns.iter_mut() {
            c.read_exact(&mut back).unwrap();
        }
        count.fetch_add(conns.len() as u64, Ordering::Relaxed);
    }
}

/// Child mode: run server `name`, print `ADDR <addr>`, then answer `cpu`
/// requests on stdin with `CPU <microseconds>` until stdin closes.
fn serve(name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("ADDR {}", listener.local_addr().unwrap());
    thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.map(|l| l.trim() == "cpu").unwrap_or(false) {
                println!("CPU {}", process_cpu_micros());
            } else {
                break;
            }
        }
        std::process::exit(0);
    });
    match name {
        "greenlet" => greenlet_server(listener),
        "tokio" => tokio_server(listener),
        "may" => may_server(listener),
        other => panic!("unknown server {other}"),
    }
}

fn process_cpu_micros() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

fn greenlet_server(listener: TcpListener) {
    let listener = greenlet::net::TcpListener::from(listener);
    for stream in listener.incoming() {
        let stream = stream.unwrap();
        stream.set_nodelay(true).unwrap();
        greenlet::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = match (&stream).read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if (&stream).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

fn tokio_server(listener: TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    listener.set_nonblocking(true).unwrap();
    // What `#[tokio::main(flavor = "current_thread")]` builds.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn may_server(listener: TcpListener) {
    use std::os::fd::{FromRawFd, IntoRawFd};
    may::config().set_workers(1);
    // SAFETY: `listener` gives up ownership of its open listening socket.
    let listener = unsafe { may::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
    may::go!(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            may::go!(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    })
    .join()
    .unwrap();
}

/// Pins the calling thread (and the threads it starts later) to one core.
fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within
    // it; sched_setaffinity only reads it.
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

/// Which cargo profile built this binary (the directory it sits in under
/// `target/`), and what that profile is.
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
    format!("build profile: {dir} ({what}); every server is in this one binary")
}
