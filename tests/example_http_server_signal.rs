//! The `http_server` example stops gracefully on SIGTERM and SIGINT
//! (through `greenlet::signal`): a request in progress is answered, then
//! the process exits 0. The signal is sent to the process from outside, the
//! case the in-process tests of `tests/signal.rs` cannot cover.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod util;

/// A running example, killed (and reaped) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Server, SocketAddr) {
    let mut child = util::example("http_server")
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start http_server");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("Serving on http://")
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .parse()
        .unwrap();
    (server, addr)
}

/// Waits for the child's exit, for at most `limit` (then fails).
fn wait_exit(server: &mut Server, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = server.0.try_wait().unwrap() {
            return st;
        }
        assert!(
            start.elapsed() < limit,
            "http_server did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stops_gracefully_on(sig: i32, workers: &str) {
    let (mut server, addr) = start(&["--delay-ms", "300", "--workers", workers]);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(b"GET /hello/sig HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // The request is in its 300 ms delay when the signal arrives.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(server.0.id() as i32, sig) }, 0);
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(reply.ends_with("<h1>hello, sig!</h1>"), "{reply:?}");
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    // No longer listening.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn http_server_finishes_the_request_in_progress_and_exits_0_on_sigterm() {
    stops_gracefully_on(libc::SIGTERM, "1");
}

#[test]
fn http_server_with_workers_stops_gracefully_on_sigint() {
    stops_gracefully_on(libc::SIGINT, "2");
}
