//! HTTP hello-server benchmark under `wrk`: the same minimal HTTP/1.1
//! server three ways, each in its own child process, each loaded by
//! `wrk -t1 -c100` pinned to the last core, in the same run. On one core
//! (`--cores 1`) the server is pinned to core 0; on N cores it is pinned
//! to cores 0..N and runs N workers (on a 2-core machine the second server
//! core is also wrk's core):
//!
//! - `greenlet`: `greenlet::server::StreamServer` (one hub, the calling
//!   thread; `.workers(N)` on N cores), a greenlet per connection,
//!   blocking-style `read`/`write_all`;
//! - `tokio`: the runtime `#[tokio::main]` builds (`enable_all()`):
//!   current-thread on one core, multi-thread with N worker threads on N;
//!   a task per connection, the same hand-rolled connection loop;
//! - `may_minihttp`: `may_minihttp::HttpServer` with `may` set to N workers.
//!
//! The greenlet and tokio servers parse each request with `httparse` (as
//! may_minihttp does) and answer the bytes may_minihttp sends (`Server`,
//! `Date`, `Content-Length`, `Content-Type` headers, `Hello, world!`), the
//! date being a fixed string. After a 1 s warm-up run of wrk, the server's
//! CPU time (user + system, all threads: `getrusage(RUSAGE_SELF)` inside the
//! server, read over a pipe) is taken before and after a `--secs` wrk run;
//! CPU per request = CPU time / requests wrk completed.
//!
//! Usage: `cargo run --release -- [--secs 10] [--reps 3] [--conns 100]
//! [--cores 1,2] [--wrk-core C|any] [--only NAME[,NAME..]]`. Needs `wrk` and
//! `taskset` on `PATH` and two cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The servers measured; `epoll_floor` is no peer but the kernel floor (no
/// runtime at all, see [`serve_floor`]).
/// `greenlet-pinned` is greenlet with `StreamServer::pin_workers(true)`
/// (each worker hub on its own core, as may pins its workers); measured on
/// more than one core only.
const SERVERS: [&str; 5] = [
    "greenlet",
    "greenlet-pinned",
    "tokio",
    "may_minihttp",
    "epoll_floor",
];

/// What every server sends (may_minihttp's format, with a fixed date).
const RESPONSE: &[u8] = b"HTTP/1.1 200 Ok\r\nServer: M\r\nDate: Sat, 21 Nov 2026 06:00:00 GMT\r\n\
Content-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 7 && args[1] == "--server" && args[3] == "--port" && args[5] == "--cores" {
        serve(
            &args[2],
            args[4].parse().expect("port"),
            args[6].parse().expect("cores"),
        );
        return;
    }
    drive(&args[1..]);
}

// ---------------------------------------------------------------- driver

struct Opts {
    secs: u32,
    reps: usize,
    conns: usize,
    /// Servers to measure (`None`: all).
    only: Option<Vec<String>>,
    /// Server core counts to measure, in order.
    cores: Vec<usize>,
    /// wrk's core (`None`: not pinned).
    wrk_core: Option<usize>,
}

struct Sample {
    requests: u64,
    rps: f64,
    cpu: Duration,
    /// The user-space part of `cpu` (the rest is the kernel's).
    user: Duration,
    /// Voluntary context switches of the server (each one a sleep in
    /// `epoll_wait`, or a worker parking, and a wake-up later).
    sleeps: u64,
}

impl Sample {
    fn ns_per_req(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.requests as f64
    }

    fn user_ns_per_req(&self) -> f64 {
        self.user.as_nanos() as f64 / self.requests as f64
    }

    fn sleeps_per_kreq(&self) -> f64 {
        self.sleeps as f64 * 1000.0 / self.requests as f64
    }
}

fn drive(args: &[String]) {
    let mut o = Opts {
        secs: 10,
        reps: 3,
        conns: 100,
        only: None,
        cores: vec![1, 2],
        wrk_core: Some(ncpu() - 1),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| panic!("{a} needs a value"))
                .clone()
        };
        match a.as_str() {
            "--secs" => o.secs = val().parse().unwrap(),
            "--reps" => o.reps = val().parse().unwrap(),
            "--conns" => o.conns = val().parse().unwrap(),
            "--only" => o.only = Some(val().split(',').map(str::to_string).collect()),
            "--cores" => {
                o.cores = val()
                    .split(',')
                    .map(|c| c.parse().expect("--cores 1,2"))
                    .collect()
            }
            "--wrk-core" => {
                let v = val();
                o.wrk_core = if v == "any" {
                    None
                } else {
                    Some(v.parse().expect("--wrk-core C|any"))
                };
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("compare-http: wrk not found: install it (apt-get install -y wrk)");
        std::process::exit(1);
    }
    let names: Vec<&str> = SERVERS
        .iter()
        .copied()
        .filter(|n| {
            o.only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == n))
        })
        .collect();
    assert!(
        o.cores.iter().all(|&c| c >= 1 && c <= ncpu()),
        "--cores: each count must be 1..={}",
        ncpu()
    );
    println!("== http hello under wrk ==");
    println!("{}", build_profile());
    println!(
        "`wrk -t1 -c{} -d{}s` on {}; server on cores 0..N for N in {:?}; {} reps; each \
         measurement a fresh server process; figures: median [min-max] over the reps",
        o.conns,
        o.secs,
        o.wrk_core
            .map_or("any core (not pinned)".to_string(), |c| format!("core {c}")),
        o.cores,
        o.reps
    );
    if o.cores.iter().any(|&c| o.wrk_core.is_none_or(|w| w < c)) {
        println!(
            "note: with N = {} server cores on this {}-core machine, wrk shares a core with the \
             server (there is no third core): N-core figures are a lower bound on the server's \
             throughput and include that competition",
            o.cores.iter().max().unwrap(),
            ncpu()
        );
    }
    // (server, cores) -> samples, in measuring order.
    let mut results: Vec<(&str, usize, Vec<Sample>)> = Vec::new();
    for &cores in &o.cores {
        for n in &names {
            if *n == "greenlet-pinned" && cores == 1 {
                continue; // the same server as `greenlet` on one core
            }
            results.push((n, cores, Vec::new()));
        }
    }
    for rep in 0..o.reps {
        for (name, cores, samples) in results.iter_mut() {
            let s = measure(name, *cores, &o);
            println!(
                "rep {rep} {name:>15} {cores} core(s): {:>9.0} req/s  {:>9} requests  server cpu \
                 {:>6.3} s  {:>6.0} ns/req (user {:>4.0}, kernel {:>5.0})  {:>5.1} sleeps/1k req",
                s.rps,
                s.requests,
                s.cpu.as_secs_f64(),
                s.ns_per_req(),
                s.user_ns_per_req(),
                s.ns_per_req() - s.user_ns_per_req(),
                s.sleeps_per_kreq()
            );
            samples.push(s);
        }
    }
    println!();
    // (name, cores, cpu ns/req median, min, max, req/s median, min, max,
    // user-space ns/req median, min, max, sleeps per 1k requests median, min, max)
    #[allow(clippy::type_complexity)]
    let medians: Vec<(&str, usize, [f64; 3], [f64; 3], [f64; 3], [f64; 3])> = results
        .iter()
        .map(|(n, c, v)| {
            let ns: Vec<f64> = v.iter().map(Sample::ns_per_req).collect();
            let rps: Vec<f64> = v.iter().map(|s| s.rps).collect();
            let user: Vec<f64> = v.iter().map(Sample::user_ns_per_req).collect();
            let sleeps: Vec<f64> = v.iter().map(Sample::sleeps_per_kreq).collect();
            (
                *n,
                *c,
                median_min_max(ns),
                median_min_max(rps),
                median_min_max(user),
                median_min_max(sleeps),
            )
        })
        .collect();
    println!(
        "{:<15} {:>5} {:>10} {:>19} {:>11} {:>19} {:>11} {:>17}",
        "server",
        "cores",
        "req/s",
        "[min-max]",
        "cpu ns/req",
        "[min-max]",
        "user ns/req",
        "[min-max]"
    );
    for (n, c, ns, rps, user, _) in &medians {
        println!(
            "{n:<15} {c:>5} {:>10.0} {:>19} {:>11.0} {:>19} {:>11.0} {:>17}",
            rps[0],
            format!("[{:.0}-{:.0}]", rps[1], rps[2]),
            ns[0],
            format!("[{:.0}-{:.0}]", ns[1], ns[2]),
            user[0],
            format!("[{:.0}-{:.0}]", user[1], user[2]),
        );
    }
    println!();
    for (n, c, ns, rps, user, sleeps) in &medians {
        println!(
            "RESULT http {n} cores={c} server_cpu_ns_per_req={:.0} req_per_s={:.0} \
             user_ns_per_req={:.0} sleeps_per_1k_req={:.1}",
            ns[0], rps[0], user[0], sleeps[0]
        );
    }
    let get = |name: &str, cores: usize| {
        medians
            .iter()
            .find(|m| m.0 == name && m.1 == cores)
            .map(|m| (m.2[0], m.3[0], m.4[0]))
    };
    for &c in &o.cores {
        for peer in ["tokio", "may_minihttp"] {
            if let (Some(g), Some(p)) = (get("greenlet", c), get(peer, c)) {
                println!(
                    "RATIO cores={c} greenlet/{peer} cpu_per_req={:.2} req_per_s={:.2}",
                    g.0 / p.0,
                    g.1 / p.1
                );
            }
        }
    }
    if o.cores.contains(&1) {
        for &c in o.cores.iter().filter(|&&c| c > 1) {
            for n in &names {
                if let (Some(one), Some(many)) = (get(n, 1), get(n, c)) {
                    println!(
                        "SCALING {n} 1 -> {c} cores: req/s {:.2}x, cpu/req {:.2}x",
                        many.1 / one.1,
                        many.0 / one.0
                    );
                }
            }
        }
    }
    for &c in &o.cores {
        for n in ["greenlet", "tokio", "may_minihttp"] {
            if let (Some(s), Some(f)) = (get(n, c), get("epoll_floor", c)) {
                println!(
                    "FLOOR cores={c} {n} cpu_per_req above the floor: {:.0} ns ({:.2}x floor); \
                     user {:.0} ns vs floor's {:.0}, kernel {:.0} ns vs floor's {:.0}",
                    s.0 - f.0,
                    s.0 / f.0,
                    s.2,
                    f.2,
                    s.0 - s.2,
                    f.0 - f.2
                );
            }
        }
        if let (Some(f), Some(t)) = (get("epoll_floor", c), get("tokio", c)) {
            println!(
                "FLOOR cores={c} epoll_floor/tokio cpu_per_req={:.2} (the best ratio any runtime \
                 can reach on this load)",
                f.0 / t.0
            );
        }
    }
    if let (Some(g), Some(t)) = (get("greenlet", 1), get("tokio", 1)) {
        println!(
            "target: 1 core, greenlet CPU/request <= 0.9x tokio: {:.2}x {}",
            g.0 / t.0,
            if g.0 <= 0.9 * t.0 { "PASS" } else { "MISS" }
        );
    }
    for g_name in ["greenlet", "greenlet-pinned"] {
        if let (Some(g), Some(t)) = (get(g_name, 2), get("tokio", 2)) {
            println!(
                "target: 2 cores, {g_name} req/s >= tokio multi-thread: {:.2}x {}",
                g.1 / t.1,
                if g.1 >= t.1 { "PASS" } else { "MISS" }
            );
        }
    }
}

fn median_min_max(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    [med, v[0], v[n - 1]]
}

fn ncpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A server child, killed on drop.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's (total, user-space) CPU time and voluntary context
    /// switches so far.
    fn cpu(&mut self) -> (Duration, Duration, u64) {
        writeln!(self.stdin, "cpu").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let ns: Vec<u64> = line
            .trim()
            .strip_prefix("CPU ")
            .unwrap_or_else(|| panic!("bad reply {line:?}"))
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        (
            Duration::from_nanos(ns[0]),
            Duration::from_nanos(ns[1]),
            ns[2],
        )
    }
}

fn measure(name: &str, cores: usize, o: &Opts) -> Sample {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--server",
            name,
            "--port",
            &port.to_string(),
            "--cores",
            &cores.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
    };
    let mut line = String::new();
    server.stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "{name} did not start");
    let url = format!("http://127.0.0.1:{port}/");
    wrk(&url, o.conns, 1, o.wrk_core); // warm-up
    let (cpu0, user0, sleeps0) = server.cpu();
    let (requests, rps) = wrk(&url, o.conns, o.secs, o.wrk_core);
    let (cpu1, user1, sleeps1) = server.cpu();
    Sample {
        requests,
        rps,
        cpu: cpu1 - cpu0,
        user: user1 - user0,
        sleeps: sleeps1 - sleeps0,
    }
}

/// Runs wrk (on `core` if given); returns (requests completed, requests/s).
fn wrk(url: &str, conns: usize, secs: u32, core: Option<usize>) -> (u64, f64) {
    let mut cmd = match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string(), "wrk"]);
            cmd
        }
        None => Command::new("wrk"),
    };
    let out = cmd
        .arg("-t1")
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "wrk saw errors:\n{text}"
    );
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .map(|(n, _)| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"));
    (requests, rps)
}

// ---------------------------------------------------------------- servers

fn serve(name: &str, port: u16, cores: usize) {
    pin_to_cores(cores);
    // Answers the driver's "cpu" lines; exits when the driver goes away.
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "cpu" {
                let (total, user, nvcsw) = process_cpu();
                println!("CPU {} {} {nvcsw}", total.as_nanos(), user.as_nanos());
            }
        }
        std::process::exit(0);
    });
    let addr = format!("127.0.0.1:{port}");
    match name {
        "greenlet" => serve_greenlet(&addr, cores, false),
        "greenlet-pinned" => serve_greenlet(&addr, cores, true),
        "tokio" => serve_tokio(&addr, cores),
        "may_minihttp" => serve_may(&addr, cores),
        "epoll_floor" => serve_floor(port, cores),
        other => panic!("unknown server {other}"),
    }
}

fn ready() {
    println!("READY");
    std::io::stdout().flush().unwrap();
}

/// Appends a response for each complete request at the start of `buf`;
/// returns the bytes consumed, or `None` for a malformed request.
fn respond_all(buf: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut pos = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[pos..]) {
            Ok(httparse::Status::Complete(n)) => {
                pos += n;
                out.extend_from_slice(RESPONSE);
            }
            Ok(httparse::Status::Partial) => return Some(pos),
            Err(_) => return None,
        }
    }
}

const BUF: usize = 8192;

fn serve_greenlet(addr: &str, workers: usize, pin: bool) {
    use greenlet::net::TcpStream;
    let server = greenlet::server::StreamServer::bind(addr, |stream: TcpStream, _| {
        let _ = stream.set_nodelay(true);
        let mut buf = vec![0u8; BUF];
        let mut len = 0;
        let mut out = Vec::with_capacity(BUF);
        loop {
            let n = match (&stream).read(&mut buf[len..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            len += n;
            let Some(used) = respond_all(&buf[..len], &mut out) else {
                return;
            };
            if !out.is_empty() {
                if (&stream).write_all(&out).is_err() {
                    return;
                }
                out.clear();
            }
            buf.copy_within(used..len, 0);
            len -= used;
            if len == BUF {
                return; // a head larger than the buffer
            }
        }
    })
    .unwrap();
    let server = if workers > 1 {
        server.workers(workers).pin_workers(pin)
    } else {
        server
    };
    ready();
    server.serve_forever().unwrap();
}

fn serve_tokio(addr: &str, workers: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // What `#[tokio::main(flavor = "current_thread")]` and
    // `#[tokio::main(worker_threads = N)]` build.
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap()
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        ready();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut buf = vec![0u8; BUF];
                let mut len = 0;
                let mut out = Vec::with_capacity(BUF);
                loop {
                    let n = match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    len += n;
                    let Some(used) = respond_all(&buf[..len], &mut out) else {
                        return;
                    };
                    if !out.is_empty() {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    buf.copy_within(used..len, 0);
                    len -= used;
                    if len == BUF {
                        return;
                    }
                }
            });
        }
    });
}

#[derive(Clone)]
struct Hello;

impl may_minihttp::HttpService for Hello {
    fn call(
        &mut self,
        _req: may_minihttp::Request,
        rsp: &mut may_minihttp::Response,
    ) -> std::io::Result<()> {
        rsp.header("Content-Type: text/plain");
        rsp.body("Hello, world!");
        Ok(())
    }
}

fn serve_may(addr: &str, workers: usize) {
    may::config().set_workers(workers);
    let server = may_minihttp::HttpServer(Hello).start(addr).unwrap();
    ready();
    server.join().unwrap();
}

// ---------------------------------------------------------------- floor

/// The kernel floor: no runtime at all, one thread per core, each with its
/// own `SO_REUSEPORT` listener and its own edge-triggered epoll, the same
/// `respond_all` per read, and the syscalls every server above makes per
/// request (one `recv`, one `send`; a read that returns less than the
/// buffer's room is taken as draining the socket, as greenlet and tokio
/// do). What no readiness-based runtime can go below on this load: its CPU
/// per request is the kernel's share plus parsing.
fn serve_floor(port: u16, workers: usize) {
    let fds: Vec<i32> = (0..workers).map(|_| floor_listener(port)).collect();
    ready();
    let threads: Vec<_> = fds
        .into_iter()
        .map(|fd| std::thread::spawn(move || floor_loop(fd)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A non-blocking listener on 127.0.0.1:`port` in a `SO_REUSEPORT` group.
fn floor_listener(port: u16) -> i32 {
    // SAFETY: plain socket calls on an fd this function owns; every pointer
    // passed is to a live local of the size given.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            let r = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(r, 0, "setsockopt: {}", std::io::Error::last_os_error());
        }
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        let r = libc::bind(
            fd,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        assert_eq!(libc::listen(fd, 1024), 0);
        fd
    }
}

struct FloorConn {
    buf: Vec<u8>,
    len: usize,
    out: Vec<u8>,
}

fn floor_loop(listener: i32) {
    const LISTENER: u64 = u64::MAX;
    // fd -> connection.
    let mut conns: Vec<Option<FloorConn>> = Vec::new();
    // SAFETY: epoll calls on fds this loop owns, with live buffers of the
    // lengths given; each connection fd is closed once, when it leaves
    // `conns`.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        assert!(ep >= 0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: LISTENER,
        };
        assert_eq!(
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, listener, &mut ev),
            0
        );
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1);
            if n < 0 {
                continue; // EINTR
            }
            for ev in &events[..n as usize] {
                if ev.u64 == LISTENER {
                    loop {
                        let fd = libc::accept4(
                            listener,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if fd < 0 {
                            break;
                        }
                        let one: libc::c_int = 1;
                        libc::setsockopt(
                            fd,
                            libc::IPPROTO_TCP,
                            libc::TCP_NODELAY,
                            (&raw const one).cast(),
                            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                        );
                        let mut cev = libc::epoll_event {
                            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
                            u64: fd as u64,
                        };
                        assert_eq!(libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut cev), 0);
                        let i = fd as usize;
                        if conns.len() <= i {
                            conns.resize_with(i + 1, || None);
                        }
                        conns[i] = Some(FloorConn {
                            buf: vec![0; BUF],
                            len: 0,
                            out: Vec::with_capacity(BUF),
                        });
                    }
                    continue;
                }
                let fd = ev.u64 as i32;
                let Some(c) = conns[fd as usize].as_mut() else {
                    continue;
                };
                let hup = ev.events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if !floor_serve(fd, c, hup != 0) {
                    conns[fd as usize] = None;
                    libc::close(fd);
                }
            }
        }
    }
}

/// Serves what `fd` has to read; false when the connection is done. After
/// a hang-up (`hup`) it reads on to the end instead of waiting for an edge
/// that will not come.
fn floor_serve(fd: i32, c: &mut FloorConn, hup: bool) -> bool {
    loop {
        let room = BUF - c.len;
        // SAFETY: `buf[len..]` is `room` writable bytes.
        let n = unsafe { libc::recv(fd, c.buf[c.len..].as_mut_ptr().cast(), room, 0) };
        if n < 0 {
            return std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
        }
        if n == 0 {
            return false;
        }
        let n = n as usize;
        c.len += n;
        let Some(used) = respond_all(&c.buf[..c.len], &mut c.out) else {
            return false;
        };
        let mut sent = 0;
        while sent < c.out.len() {
            // SAFETY: `out[sent..]` is initialized bytes.
            let w = unsafe {
                libc::send(
                    fd,
                    c.out[sent..].as_ptr().cast(),
                    c.out.len() - sent,
                    libc::MSG_NOSIGNAL,
                )
            };
            if w < 0 {
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock {
                    return false;
                }
                // A full send buffer (never on this load): wait for room.
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one live pollfd.
                unsafe { libc::poll(&mut p, 1, -1) };
                continue;
            }
            sent += w as usize;
        }
        c.out.clear();
        c.buf.copy_within(used..c.len, 0);
        c.len -= used;
        if c.len == BUF {
            return false;
        }
        if n < room && !hup {
            return true; // drained: wait for the next edge
        }
    }
}

// ---------------------------------------------------------------- OS

/// Pins this thread (and every thread started later) to cores `0..n`.
fn pin_to_cores(n: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for core in 0..n {
        // SAFETY: `core` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: valid pointer and size; pid 0 is this thread, and threads
    // started later inherit the mask.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        r,
        0,
        "sched_setaffinity: {}",
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

/// User + system CPU time of this process, all threads, the user part, and
/// the voluntary context switches. (The kernel splits its exact runtime
/// into user and system in the proportion its timer ticks found, so the
/// split is rough: tens of ns per request over a few seconds.)
fn process_cpu() -> (Duration, Duration, u64) {
    // SAFETY: a zeroed rusage is a valid out-value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        tv(ru.ru_utime),
        ru.ru_nvcsw as u64,
    )
}
