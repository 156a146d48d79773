//! Memory after a peak of connections (issue 10): once 5,000 connections
//! to a `StreamServer` have come and gone, the stack pool gives their
//! stacks back (`greenlet::stack::stats`), not just their deep pages.

mod util;

use std::io::Read;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;
use greenlet::stack::{StackStats, stats};
use greenlet::sync::Event;
use util::{fd_limit, within};

const CONNECTIONS: usize = 5_000;

/// What idle stacks may keep once the hub has trimmed them: the top
/// 16 KiB of 64 warm stacks plus one batch of 64 pre-faulted top pages
/// (1.25 MiB), with room to spare.
const RETAINED_BOUND: usize = 2 << 20;

/// Parks (running the hub) until `cond` holds, failing after `limit`.
#[track_caller]
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        greenlet::sleep(Duration::from_millis(10));
    }
}

/// This process's resident set, in KiB (`VmRSS`).
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A handler that uses 8 KiB of its stack, then waits for the client to
/// close.
fn handler(stream: TcpStream, _peer: std::net::SocketAddr) {
    let mut buf = [1u8; 8192];
    std::hint::black_box(&mut buf);
    while let Ok(1..) = (&stream).read(&mut buf) {}
}

#[test]
fn idle_stacks_are_given_back_after_5000_connections() {
    let (soft, _) = fd_limit();
    if soft < (2 * CONNECTIONS + 200) as u64 {
        eprintln!(
            "skipped: the fd limit {soft} is below {}",
            2 * CONNECTIONS + 200
        );
        return;
    }
    let (before, peak, after, rss) = within(Duration::from_secs(120), || {
        let server = StreamServer::bind("127.0.0.1:0", handler).unwrap();
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let serving = greenlet::spawn(move || server.serve_forever());
        greenlet::sleep(Duration::from_millis(10));
        let before: StackStats = stats();
        let rss_before = rss_kib();

        let opened = Event::new();
        let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
        let clients = {
            let opened = opened.clone();
            std::thread::spawn(move || {
                let conns: Vec<_> = (0..CONNECTIONS)
                    .map(|_| std::net::TcpStream::connect(addr).unwrap())
                    .collect();
                opened.set();
                let _ = close_rx.recv();
                drop(conns);
            })
        };
        opened.wait();
        wait_until("5,000 handlers running", Duration::from_secs(60), || {
            stats().in_use >= before.in_use + CONNECTIONS
        });
        let peak = stats();
        let rss_peak = rss_kib();

        close_tx.send(()).unwrap();
        wait_until("every handler finished", Duration::from_secs(60), || {
            stats().in_use <= before.in_use
        });
        // The hub trims as it goes idle, a batch per pass.
        wait_until("idle stacks trimmed", Duration::from_secs(10), || {
            stats().retained_bytes < RETAINED_BOUND
        });
        let after = stats();
        let rss_after = rss_kib();
        handle.stop();
        serving.join().unwrap().unwrap();
        clients.join().unwrap();
        (before, peak, after, (rss_before, rss_peak, rss_after))
    });
    eprintln!(
        "stacks before {before:?}\n       peak {peak:?}\n      after {after:?}\n\
         test process RSS (server and clients): before {} KiB, peak {} KiB, after {} KiB",
        rss.0, rss.1, rss.2
    );
    assert!(after.retained_bytes < RETAINED_BOUND, "{after:?}");
    assert!(peak.mapped_bytes >= CONNECTIONS * 256 * 1024, "{peak:?}");
    assert!(
        after.mapped_bytes * 4 <= peak.mapped_bytes,
        "idle slabs were not unmapped: peak {peak:?}, after {after:?}"
    );
}
