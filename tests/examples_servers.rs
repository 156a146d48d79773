//! Runs the server examples (which `cargo test` builds) on port 0 and talks
//! to them: `http_server` with a Rust client (routes, keep-alive,
//! pipelining, HTTP/1.0, the 400/404/408/413/431/503 answers, conflicting
//! `Content-Length`s, slowloris clients, `--delay-ms`, `--workers`) and with `curl` when it is installed; `echo_server` with an
//! echo round trip. Every child is killed when its guard drops, failed
//! assertions included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The built example `name`, next to this test binary's directory.
#[track_caller]
fn example(name: &str) -> Command {
    let mut dir: PathBuf = std::env::current_exe().expect("test binary path");
    dir.pop(); // deps/
    dir.pop(); // target/<profile>/
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    Command::new(path)
}

/// A running example server, killed (and reaped) on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts example `name` with `args` and reads the address from its
/// startup line, `<prefix><addr>`.
#[track_caller]
fn start(name: &str, args: &[&str], prefix: &str) -> Server {
    let mut child = example(name)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start example");
    let stdout = child.stdout.take().unwrap();
    // The guard exists before the first assertion.
    let mut server = Server {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name}: unexpected startup line {line:?}"));
    server.addr = addr.parse().expect("an address on the startup line");
    server
}

fn http_server(args: &[&str]) -> Server {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    start("http_server", &all, "Serving on http://")
}

/// One HTTP response: status code, headers (lower-case names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (with a `Content-Length`) from `r`.
#[track_caller]
fn read_response(r: &mut BufReader<TcpStream>) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').expect("a header line");
        headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut resp = Response {
        status,
        headers,
        body: String::new(),
    };
    let len: usize = resp
        .header("content-length")
        .expect("content-length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    resp.body = String::from_utf8(body).unwrap();
    resp
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Sends `request` on a new connection and reads one response.
#[track_caller]
fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let (mut s, mut r) = connect(addr);
    s.write_all(request).unwrap();
    read_response(&mut r)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

#[test]
fn http_server_routes_and_keeps_connections_alive() {
    let server = http_server(&[]);
    let (mut s, mut r) = connect(server.addr);
    let cases = [
        ("/", 200, "<h1>Index</h1>"),
        ("/hello/world", 200, "<h1>hello, world!</h1>"),
        ("/hello/gevent?x=1", 200, "<h1>hello, gevent!</h1>"),
        ("/hello/%3Cb%3E", 200, "<h1>hello, &lt;b&gt;!</h1>"),
        ("/nowhere", 404, "<h1>Not Found</h1>"),
        ("/hello/", 404, "<h1>Not Found</h1>"),
    ];
    // All on one keep-alive connection.
    for (path, status, body) in cases {
        s.write_all(&get(path)).unwrap();
        let resp = read_response(&mut r);
        assert_eq!((resp.status, resp.body.as_str()), (status, body), "{path}");
        assert_eq!(resp.header("connection"), Some("keep-alive"));
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    // Pipelined: three requests in one write, answered in order.
    let mut burst = get("/hello/a");
    burst.extend(get("/"));
    burst.extend(get("/hello/b"));
    s.write_all(&burst).unwrap();
    let bodies: Vec<String> = (0..3).map(|_| read_response(&mut r).body).collect();
    assert_eq!(
        bodies,
        ["<h1>hello, a!</h1>", "<h1>Index</h1>", "<h1>hello, b!</h1>"]
    );
    // A request with a body: the body is skipped, not taken for a request.
    s.write_all(b"POST /hello/post HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(read_response(&mut r).body, "<h1>hello, post!</h1>");
    // `Expect: 100-continue`: the go-ahead, then the answer.
    s.write_all(b"PUT /hello/expect HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    r.read_line(&mut line).unwrap();
    s.write_all(b"abc").unwrap();
    assert_eq!(read_response(&mut r).body, "<h1>hello, expect!</h1>");
    // `Connection: close` closes after the answer.
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut r);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(
        r.read(&mut [0; 1]).unwrap(),
        0,
        "closed after Connection: close"
    );
}

#[test]
fn http_server_closes_http_1_0_connections_unless_asked_to_keep_them() {
    let server = http_server(&[]);
    let (mut s, mut r) = connect(server.addr);
    s.write_all(b"GET /hello/old HTTP/1.0\r\n\r\n").unwrap();
    let resp = read_response(&mut r);
    assert_eq!(resp.body, "<h1>hello, old!</h1>");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(r.read(&mut [0; 1]).unwrap(), 0);

    let (mut s, mut r) = connect(server.addr);
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut r);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn http_server_refuses_bad_oversized_and_unsupported_requests() {
    let server = http_server(&[]);
    let addr = server.addr;
    let bad = exchange(addr, b"NOT A REQUEST\r\n\r\n");
    assert_eq!(bad.status, 400);
    let bad_len = exchange(addr, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n");
    assert_eq!(bad_len.status, 400);

    let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(10 * 1024));
    assert_eq!(exchange(addr, big_header.as_bytes()).status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(exchange(addr, many.as_bytes()).status, 431);

    let big_body = b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n";
    assert_eq!(exchange(addr, big_body).status, 413);
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(exchange(addr, chunked).status, 501);

    // Still serving after all that.
    assert_eq!(exchange(addr, &get("/")).body, "<h1>Index</h1>");
}

/// RFC 9112 section 6.3: two different `Content-Length` values make the
/// body length unknowable (request smuggling), so the request gets 400;
/// repeated identical values are one length.
#[test]
fn http_server_refuses_conflicting_content_lengths() {
    let server = http_server(&[]);
    let addr = server.addr;
    let two = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_eq!(exchange(addr, two).status, 400);
    let list = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!";
    assert_eq!(exchange(addr, list).status, 400);
    let signed = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello";
    assert_eq!(exchange(addr, signed).status, 400);
    let same = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(exchange(addr, same).status, 200);
    let same_list = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello";
    assert_eq!(exchange(addr, same_list).status, 200);
}

/// Connections that trickle a request head, one byte per `every` from one
/// driver thread, until dropped; returns the stop flag and the thread.
fn slowloris(
    addr: SocketAddr,
    n: usize,
    every: Duration,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<Vec<Option<Instant>>>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let flag = stop.clone();
    let driver = std::thread::spawn(move || {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        // When each connection was seen closed by the server, if it was.
        let mut closed: Vec<Option<Instant>> = vec![None; conns.len()];
        for s in &conns {
            s.set_nonblocking(true).unwrap();
        }
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            for (s, closed) in conns.iter().zip(closed.iter_mut()) {
                if closed.is_some() {
                    continue;
                }
                let mut buf = [0; 256];
                let gone = match (&*s).read(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false, // a 408: the close follows
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                };
                if gone || (&*s).write_all(&head[i % head.len()..][..1]).is_err() {
                    *closed = Some(Instant::now());
                }
            }
            i += 1;
            std::thread::sleep(every);
        }
        closed
    });
    (stop, driver)
}

/// 200 slowloris connections do not keep a normal request from being
/// answered at once.
#[test]
fn http_server_answers_while_200_connections_trickle_their_heads() {
    let server = http_server(&[]);
    let (stop, driver) = slowloris(server.addr, 200, Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let start = Instant::now();
        let resp = exchange(server.addr, &get("/"));
        let took = start.elapsed();
        assert_eq!(resp.body, "<h1>Index</h1>");
        assert!(
            took < Duration::from_secs(1),
            "a normal request took {took:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let closed = driver.join().unwrap();
    assert!(
        closed.iter().all(Option::is_none),
        "the default head deadline is 10 s"
    );
}

/// The head deadline counts from a request's first byte, however slowly
/// the rest comes; a head that misses it gets 408 and the connection
/// closes.
#[test]
fn http_server_closes_heads_that_miss_the_deadline() {
    let server = http_server(&["--head-timeout-ms", "500"]);
    let start = Instant::now();
    let (stop, driver) = slowloris(server.addr, 20, Duration::from_millis(50));
    // A trickled head takes at least 100 x 50 ms = 5 s.
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let closed = driver.join().unwrap();
    for c in closed {
        let at = c
            .expect("a slow connection outlived the head deadline")
            .duration_since(start);
        assert!(
            at >= Duration::from_millis(400) && at < Duration::from_millis(2500),
            "closed after {at:?}"
        );
    }
    // The 408 itself.
    let (mut s, mut r) = connect(server.addr);
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let resp = read_response(&mut r);
    assert_eq!(resp.status, 408);
    // An idle connection (no byte of a request yet) is not cut off.
    let (mut idle, mut idle_r) = connect(server.addr);
    std::thread::sleep(Duration::from_millis(800));
    idle.write_all(&get("/")).unwrap();
    assert_eq!(read_response(&mut idle_r).status, 200);
}

/// A keep-alive request split by one urgent (out-of-band) byte is still
/// read whole and answered: the server's read stops at the urgent mark and
/// must go on without a new epoll edge (issue 10).
#[test]
fn http_server_answers_a_request_split_by_urgent_data() {
    use std::os::fd::AsRawFd;
    let server = http_server(&[]);
    let (mut s, mut r) = connect(server.addr);
    s.set_nodelay(true).unwrap();
    for round in 0..5 {
        s.write_all(b"GET /hello/oob HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: one byte from a live local, on an open socket.
        let n = unsafe { libc::send(s.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(n, 1);
        s.write_all(b"\r\n").unwrap();
        let resp = read_response(&mut r); // 5 s read timeout: a stall fails
        assert_eq!(resp.body, "<h1>hello, oob!</h1>", "round {round}");
    }
}

/// Past `--max-connections`, clients get a 503 at once.
#[test]
fn http_server_answers_503_past_max_connections() {
    let server = http_server(&["--max-connections", "2"]);
    let held: Vec<_> = (0..2).map(|_| connect(server.addr)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let resp = exchange(server.addr, &get("/"));
    assert_eq!(resp.status, 503);
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(held);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(exchange(server.addr, &get("/")).status, 200);
}

#[test]
fn http_server_delay_overlaps_across_connections() {
    let server = http_server(&["--delay-ms", "200"]);
    let addr = server.addr;
    let start = Instant::now();
    let clients: Vec<_> = (0..5)
        .map(|i| std::thread::spawn(move || exchange(addr, &get(&format!("/hello/{i}"))).body))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), format!("<h1>hello, {i}!</h1>"));
    }
    let took = start.elapsed();
    // Each waited 200 ms; the five waits overlapped (1 s in series).
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(800),
        "{took:?}"
    );
}

#[test]
fn http_server_with_two_workers_serves() {
    let server = http_server(&["--workers", "2"]);
    for i in 0..10 {
        let resp = exchange(server.addr, &get(&format!("/hello/{i}")));
        assert_eq!(resp.body, format!("<h1>hello, {i}!</h1>"));
    }
}

#[test]
fn http_server_answers_curl() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("note: curl is not installed; skipping the curl part of the http_server tests");
        return;
    }
    let server = http_server(&[]);
    let base = format!("http://{}", server.addr);
    // Two URLs in one call: curl reuses the kept-alive connection.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-v"])
        .arg(format!("{base}/"))
        .arg(format!("{base}/hello/curl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "<h1>Index</h1><h1>hello, curl!</h1>"
    );
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(
        verbose.contains("Re-using existing connection")
            || verbose.contains("Reusing existing connection"),
        "curl did not keep the connection alive:\n{verbose}"
    );
    let code = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{base}/missing"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(code.stdout).unwrap(), "404");
    let head = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-I", "--http1.0"])
        .arg(format!("{base}/"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 14\r\n"), "{head}");
}

#[test]
fn echo_server_echoes() {
    let server = start("echo_server", &["--port", "0"], "Echo server on ");
    let (mut s, mut r) = connect(server.addr);
    for msg in ["hello\n", "greenlet\n"] {
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = String::new();
        r.read_line(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    let big = vec![7u8; 256 * 1024];
    let writer = {
        let mut s = s.try_clone().unwrap();
        let big = big.clone();
        std::thread::spawn(move || s.write_all(&big).unwrap())
    };
    let mut back = vec![0; big.len()];
    r.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == big);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        r.read(&mut [0; 1]).unwrap(),
        0,
        "the server closes after EOF"
    );
}
