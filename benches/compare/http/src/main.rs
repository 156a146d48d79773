//! HTTP hello-server benchmark under `wrk`: the same minimal HTTP/1.1
//! server three ways, each in its own child process pinned to core 0, each
//! loaded by `wrk -t1 -c100` pinned to core 1, in the same run:
//!
//! - `greenlet`: `greenlet::server::StreamServer` (one hub, the calling
//!   thread), a greenlet per connection, blocking-style `read`/`write_all`;
//! - `tokio`: a current-thread runtime, a task per connection, the same
//!   hand-rolled connection loop;
//! - `may_minihttp`: `may_minihttp::HttpServer` with `may` set to one worker.
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
//! [--only NAME]`. Needs `wrk` and `taskset` on `PATH` and two cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

const SERVERS: [&str; 3] = ["greenlet", "tokio", "may_minihttp"];
const SERVER_CORE: usize = 0;
const WRK_CORE: usize = 1;

/// What every server sends (may_minihttp's format, with a fixed date).
const RESPONSE: &[u8] = b"HTTP/1.1 200 Ok\r\nServer: M\r\nDate: Sat, 21 Nov 2026 06:00:00 GMT\r\n\
Content-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--server" && args[3] == "--port" {
        serve(&args[2], args[4].parse().expect("port"));
        return;
    }
    drive(&args[1..]);
}

// ---------------------------------------------------------------- driver

struct Opts {
    secs: u32,
    reps: usize,
    conns: usize,
    only: Option<String>,
}

struct Sample {
    requests: u64,
    rps: f64,
    cpu: Duration,
}

impl Sample {
    fn ns_per_req(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.requests as f64
    }
}

fn drive(args: &[String]) {
    let mut o = Opts {
        secs: 10,
        reps: 3,
        conns: 100,
        only: None,
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
            "--only" => o.only = Some(val()),
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
        .filter(|n| o.only.as_deref().is_none_or(|only| only == *n))
        .collect();
    println!(
        "http hello: server on core {SERVER_CORE}, `wrk -t1 -c{} -d{}s` on core {WRK_CORE}, {} reps",
        o.conns, o.secs, o.reps
    );
    let mut results: Vec<(&str, Vec<Sample>)> = names.iter().map(|n| (*n, Vec::new())).collect();
    for rep in 0..o.reps {
        for (name, samples) in results.iter_mut() {
            let s = measure(name, &o);
            println!(
                "rep {rep} {name:>12}: {:>9.0} req/s  {:>9} requests  server cpu {:>6.3} s  {:>6.0} ns/req",
                s.rps,
                s.requests,
                s.cpu.as_secs_f64(),
                s.ns_per_req()
            );
            samples.push(s);
        }
    }
    println!();
    let medians: Vec<(&str, f64, f64)> = results
        .iter()
        .map(|(n, v)| {
            let mut ns: Vec<f64> = v.iter().map(Sample::ns_per_req).collect();
            let mut rps: Vec<f64> = v.iter().map(|s| s.rps).collect();
            ns.sort_by(f64::total_cmp);
            rps.sort_by(f64::total_cmp);
            (*n, ns[ns.len() / 2], rps[rps.len() / 2])
        })
        .collect();
    for (n, ns, rps) in &medians {
        println!("RESULT http {n} server_cpu_ns_per_req={ns:.0} req_per_s={rps:.0}");
    }
    let get = |name: &str| medians.iter().find(|m| m.0 == name).map(|m| m.1);
    if let (Some(g), Some(t)) = (get("greenlet"), get("tokio")) {
        println!("RATIO greenlet/tokio cpu_per_req={:.2}", g / t);
    }
    if let (Some(g), Some(m)) = (get("greenlet"), get("may_minihttp")) {
        println!("RATIO greenlet/may_minihttp cpu_per_req={:.2}", g / m);
    }
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
    fn cpu(&mut self) -> Duration {
        writeln!(self.stdin, "cpu").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let ns: u64 = line
            .trim()
            .strip_prefix("CPU ")
            .unwrap_or_else(|| panic!("bad reply {line:?}"))
            .parse()
            .unwrap();
        Duration::from_nanos(ns)
    }
}

fn measure(name: &str, o: &Opts) -> Sample {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--server", name, "--port", &port.to_string()])
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
    wrk(&url, o.conns, 1); // warm-up
    let cpu0 = server.cpu();
    let (requests, rps) = wrk(&url, o.conns, o.secs);
    let cpu = server.cpu() - cpu0;
    Sample { requests, rps, cpu }
}

/// Runs wrk on its core; returns (requests completed, requests/s).
fn wrk(url: &str, conns: usize, secs: u32) -> (u64, f64) {
    let out = Command::new("taskset")
        .args(["-c", &WRK_CORE.to_string(), "wrk", "-t1"])
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

fn serve(name: &str, port: u16) {
    pin_to_core(SERVER_CORE);
    // Answers the driver's "cpu" lines; exits when the driver goes away.
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "cpu" {
                println!("CPU {}", process_cpu().as_nanos());
            }
        }
        std::process::exit(0);
    });
    let addr = format!("127.0.0.1:{port}");
    match name {
        "greenlet" => serve_greenlet(&addr),
        "tokio" => serve_tokio(&addr),
        "may_minihttp" => serve_may(&addr),
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

fn serve_greenlet(addr: &str) {
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
    ready();
    server.serve_forever().unwrap();
}

fn serve_tokio(addr: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
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

fn serve_may(addr: &str) {
    may::config().set_workers(1);
    let server = may_minihttp::HttpServer(Hello).start(addr).unwrap();
    ready();
    server.join().unwrap();
}

// ---------------------------------------------------------------- OS

fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(core, &mut set) };
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

/// User + system CPU time of this process, all threads.
fn process_cpu() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
