//! Helpers shared by the network tests.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};

/// A listener on an OS-chosen loopback port.
#[track_caller]
pub fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Echoes everything read on `s` until EOF, then shuts the write half.
pub fn echo(s: TcpStream) -> io::Result<u64> {
    let n = io::copy(&mut &s, &mut &s)?;
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(n)
}

/// An echo server greenlet that serves every connection in its own
/// greenlet, forever (until the test's hub goes away).
pub fn echo_server() -> SocketAddr {
    let (l, a) = listener();
    greenlet::spawn(move || {
        for s in l.incoming() {
            let s = s.expect("accept");
            greenlet::spawn(move || echo(s));
        }
    });
    a
}

/// Sends `data` through an echo connection (writer and reader greenlets on
/// one socket) and returns what came back.
pub fn round_trip(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let s = TcpStream::connect(addr)?;
    let w = s.try_clone()?;
    let writer = greenlet::spawn(move || -> io::Result<()> {
        (&w).write_all(&data)?;
        w.shutdown(std::net::Shutdown::Write)
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back)?;
    writer.join().unwrap()?;
    Ok(back)
}

/// Deterministic test bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

/// Runs `f` and returns its value with the wall time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

/// A fresh directory for Unix socket paths.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "greenlet-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
