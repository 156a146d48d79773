//! Name resolution: host names on the blocking pool, numeric addresses on
//! the spot, std's errors.
//!
//! Only names the hosts file answers (`localhost`) are looked up, and the
//! failure tests fail before any query is sent: the tests never reach a
//! DNS server.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use greenlet::net::{TcpListener, TcpStream, ToSocketAddrs};

mod util;

/// Name lookups go to the blocking pool: every test that makes one is
/// bounded by this, in case one never returns.
const LOOKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `f` in a greenlet while another greenlet counts its turns; returns
/// `f`'s value and how many turns the ticker got meanwhile.
fn with_ticker<T: 'static>(f: impl FnOnce() -> T + 'static) -> (T, u64) {
    let ticks = Rc::new(Cell::new(0u64));
    let done = Rc::new(Cell::new(false));
    let (t2, d2) = (ticks.clone(), done.clone());
    let ticker = greenlet::spawn(move || {
        while !d2.get() {
            t2.set(t2.get() + 1);
            greenlet::yield_now();
        }
    });
    let worker = greenlet::spawn(move || {
        greenlet::yield_now(); // let the ticker start
        let before = ticks.get();
        let v = f();
        let during = ticks.get() - before;
        done.set(true);
        (v, during)
    });
    let r = worker.join().unwrap();
    ticker.join().unwrap();
    r
}

#[test]
fn localhost_resolves_on_the_pool_while_another_greenlet_keeps_ticking() {
    util::within(LOOKUP_LIMIT, || {
        // A lookup parks the greenlet until a pool thread answers. On a loaded
        // machine the hub thread can be preempted between handing over the job
        // and checking for the answer (the woken pool thread may run first on
        // the same core), so one lookup may find it already there and never
        // park; under heavy load (another test suite building on both cores)
        // 20 tries in a row did. Tries for up to two seconds make the check
        // robust, while lookups that never park at all (resolved on the hub
        // thread) still fail it.
        let mut best = 0;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(2) {
            let (addrs, ticks) = with_ticker(|| {
                "localhost:4242"
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<SocketAddr>>())
            });
            let addrs = addrs.unwrap();
            assert!(!addrs.is_empty());
            assert!(
                addrs
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 4242)
            );
            best = best.max(ticks);
            if best > 1 {
                break;
            }
        }
        // The resolving greenlet parked; the hub ran the ticker meanwhile.
        assert!(best > 1, "ticker ran at most {best} times during a lookup");
    });
}

#[test]
fn numeric_addresses_never_leave_the_hub_thread() {
    let (addrs, ticks) = with_ticker(|| {
        let mut v: Vec<SocketAddr> = Vec::new();
        v.extend("127.0.0.1:80".to_socket_addrs().unwrap());
        v.extend("[::1]:81".to_socket_addrs().unwrap());
        v.extend(("10.1.2.3", 82).to_socket_addrs().unwrap());
        v.extend(("::1".to_string(), 83).to_socket_addrs().unwrap());
        v
    });
    assert_eq!(
        addrs,
        [
            "127.0.0.1:80".parse::<SocketAddr>().unwrap(),
            "[::1]:81".parse().unwrap(),
            "10.1.2.3:82".parse().unwrap(),
            "[::1]:83".parse().unwrap(),
        ]
    );
    // No park: the ticker never got a turn.
    assert_eq!(ticks, 0);
}

#[test]
fn results_match_std_for_every_input_form() {
    util::within(LOOKUP_LIMIT, || {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let sa: SocketAddr = "127.0.0.1:9".parse().unwrap();
        fn both<A>(a: A) -> (Vec<SocketAddr>, Vec<SocketAddr>)
        where
            A: ToSocketAddrs + std::net::ToSocketAddrs,
        {
            (
                ToSocketAddrs::to_socket_addrs(&a).unwrap().collect(),
                std::net::ToSocketAddrs::to_socket_addrs(&a)
                    .unwrap()
                    .collect(),
            )
        }
        for (ours, std) in [
            both(sa),
            both((ip, 9)),
            both("127.0.0.1:9"),
            both(String::from("[::1]:9")),
            both(("localhost", 9)),
            both(&[sa, sa][..]),
            both::<&&str>(&"localhost:9"),
        ] {
            assert_eq!(ours, std);
        }
    });
}

#[test]
fn parse_errors_match_std() {
    util::within(LOOKUP_LIMIT, || {
        for bad in ["no-port-here", "localhost:notaport", "localhost:70000"] {
            let ours = ToSocketAddrs::to_socket_addrs(bad).unwrap_err();
            let std = std::net::ToSocketAddrs::to_socket_addrs(bad).unwrap_err();
            assert_eq!(ours.kind(), std.kind(), "{bad}");
            assert_eq!(ours.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(ours.to_string(), std.to_string(), "{bad}");
        }
    });
}

#[test]
fn lookup_failures_keep_std_kind_and_name_the_host() {
    util::within(LOOKUP_LIMIT, || {
        // A name with a NUL byte fails inside std's resolver path before any
        // query is sent.
        let host = "bad\0host.example";
        let std = std::net::ToSocketAddrs::to_socket_addrs(&(host, 80)).unwrap_err();
        let ours = ToSocketAddrs::to_socket_addrs(&(host, 80)).unwrap_err();
        assert_eq!(ours.kind(), std.kind());
        let msg = ours.to_string();
        assert!(msg.contains("bad\\0host.example"), "{msg}");
        assert!(msg.contains(&std.to_string()), "{msg}");
    });
}

#[test]
fn connect_and_bind_by_name() {
    util::within(LOOKUP_LIMIT, || {
        let l = TcpListener::bind("localhost:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let g = greenlet::spawn(move || TcpStream::connect(("localhost", port)));
        let (_s, _) = l.accept().unwrap();
        let c = g.join().unwrap().unwrap();
        assert!(c.peer_addr().unwrap().ip().is_loopback());
    });
}
