//! `monkey::patch_all()` with unmodified std: sleeps, TCP, UDP, timeouts,
//! DNS, kills and `with_timeout` around patched calls.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Once;
use std::time::{Duration, Instant};

fn patch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(greenlet::monkey::patch_all);
    assert!(greenlet::monkey::is_patched());
}

#[test]
fn hundred_std_sleeps_overlap_on_one_thread() {
    patch();
    let start = Instant::now();
    let gs: Vec<_> = (0..100)
        .map(|_| greenlet::spawn(|| std::thread::sleep(Duration::from_millis(100))))
        .collect();
    for r in greenlet::joinall(gs) {
        r.unwrap();
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(
        took < Duration::from_millis(500),
        "100 x 100 ms took {took:?}"
    );
}

#[test]
fn std_sleep_outside_greenlets_is_the_real_sleep() {
    patch();
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn std_tcp_echo_between_greenlets() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenlet::spawn(move || {
        let mut served = 0;
        for _ in 0..20 {
            let (mut s, _) = listener.accept().unwrap();
            greenlet::spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).unwrap();
                }
            });
            served += 1;
        }
        served
    });
    let clients: Vec<_> = (0..20)
        .map(|i| {
            greenlet::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let msg = format!("hello {i}").repeat(1000);
                s.write_all(msg.as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for r in greenlet::joinall(clients) {
        r.unwrap();
    }
    assert_eq!(server.join().unwrap(), 20);
}

#[test]
fn std_read_timeout_gives_wouldblock_after_the_timeout() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let g = greenlet::spawn(move || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let _peer = listener.accept().unwrap();
        let start = Instant::now();
        let err = (&s).read(&mut [0u8; 8]).unwrap_err();
        (err.kind(), start.elapsed())
    });
    // Another greenlet keeps running while the read waits.
    let ticker = greenlet::spawn(|| {
        let mut ticks = 0;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(10));
            ticks += 1;
        }
        ticks
    });
    let (kind, waited) = g.join().unwrap();
    assert!(
        matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{kind:?}"
    );
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(ticker.join().unwrap(), 5);
}

#[test]
fn std_udp_round_trip() {
    patch();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_addr = b.local_addr().unwrap();
    let receiver = greenlet::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        b.send_to(&buf[..n], from).unwrap();
        n
    });
    let sender = greenlet::spawn(move || {
        // Give the receiver time to park first.
        std::thread::sleep(Duration::from_millis(20));
        a.send_to(b"ping", b_addr).unwrap();
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    assert_eq!(receiver.join().unwrap(), 4);
    assert_eq!(sender.join().unwrap(), b"ping");
}

#[test]
fn nonblocking_std_socket_still_returns_wouldblock() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let g = greenlet::spawn(move || {
        let s = TcpStream::connect(addr).unwrap();
        let _peer = listener.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let e = (&s).read(&mut [0u8; 8]).unwrap_err();
        listener.set_nonblocking(true).unwrap();
        let e2 = listener.accept().unwrap_err();
        (e.kind(), e2.kind(), start.elapsed())
    });
    let (k1, k2, took) = g.join().unwrap();
    assert_eq!(k1, ErrorKind::WouldBlock);
    assert_eq!(k2, ErrorKind::WouldBlock);
    assert!(took < Duration::from_millis(500));
}

#[test]
fn refused_connection_is_an_error() {
    patch();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let g = greenlet::spawn(move || TcpStream::connect(("127.0.0.1", port)).map(drop));
    let e = g.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn getaddrinfo_from_fifty_greenlets_does_not_block_the_hub() {
    patch();
    let ticker = greenlet::spawn(|| {
        let mut ticks = 0u32;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            greenlet::sleep(Duration::from_millis(5));
            ticks += 1;
        }
        ticks
    });
    let gs: Vec<_> = (0..50)
        .map(|_| {
            greenlet::spawn(|| {
                ("localhost", 80)
                    .to_socket_addrs()
                    .unwrap()
                    .any(|a| a.ip().is_loopback())
            })
        })
        .collect();
    for r in greenlet::joinall(gs) {
        assert!(r.unwrap());
    }
    assert!(ticker.join().unwrap() >= 5);
}

#[test]
fn with_timeout_around_a_patched_sleep_returns_elapsed() {
    patch();
    let g = greenlet::spawn(|| {
        let start = Instant::now();
        let r = greenlet::with_timeout(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(3600));
        });
        (r, start.elapsed())
    });
    let (r, took) = g.join().unwrap();
    assert!(r.is_err());
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn kill_during_a_patched_read_ends_the_greenlet_as_killed() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = greenlet::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 8];
        // Blocks in the hooked recv until killed; the error ends the loop.
        while s.read(&mut buf).is_ok() {}
        std::thread::sleep(Duration::from_secs(3600)); // fails at once too
    });
    // Root context is not a greenlet: its accept is the real, blocking one.
    // Let the reader connect (and park in its read) first.
    greenlet::sleep(Duration::from_millis(20));
    let (_peer, _) = listener.accept().unwrap();
    greenlet::sleep(Duration::from_millis(20));
    let start = Instant::now();
    reader.kill();
    assert!(start.elapsed() < Duration::from_secs(2));
    let err = reader.join().unwrap_err();
    assert!(err.is_killed(), "{err}");
}

#[test]
fn a_dump_names_the_patched_libc_call_a_greenlet_waits_in() {
    use greenlet::dump::WaitReason;
    patch();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (mut server_side, _) = l.accept().unwrap();
    let fd = {
        use std::os::fd::AsRawFd;
        server_side.as_raw_fd()
    };
    let reader = greenlet::Builder::new()
        .name("std-reader")
        .spawn(move || {
            let mut buf = [0u8; 8];
            server_side.read(&mut buf).unwrap()
        })
        .unwrap();
    let sleeper = greenlet::Builder::new()
        .name("std-sleeper")
        .spawn(|| std::thread::sleep(Duration::from_millis(300)))
        .unwrap();
    greenlet::sleep(Duration::from_millis(20));
    let d = greenlet::dump::dump();
    let find = |n: &str| {
        d.greenlets()
            .iter()
            .find(|g| g.name() == Some(n))
            .unwrap()
            .wait_reason()
    };
    assert_eq!(
        find("std-reader"),
        Some(WaitReason::Hook { call: "recv", fd }),
        "{d}"
    );
    // std's `thread::sleep` calls `clock_nanosleep` (recent std) or
    // `nanosleep` (older): the dump names the one it called.
    assert!(
        matches!(
            find("std-sleeper"),
            Some(WaitReason::Hook {
                call: "clock_nanosleep" | "nanosleep",
                ..
            })
        ),
        "{d}"
    );
    assert!(
        d.to_string()
            .contains(&format!("monkey-patched recv() on fd {fd}")),
        "{d}"
    );
    (&client).write_all(b"hi").unwrap();
    assert_eq!(reader.join().unwrap(), 2);
    sleeper.join().unwrap();
}

#[test]
fn each_sleep_hook_records_its_own_libc_call_name() {
    use greenlet::dump::WaitReason;
    patch();
    // Each greenlet sleeps through a different hooked libc function.
    let calls: [(&str, fn()); 4] = [
        ("sleep", || {
            // SAFETY: a plain libc call (hooked).
            unsafe { libc::sleep(1) };
        }),
        ("usleep", || {
            // SAFETY: a plain libc call (hooked).
            unsafe { libc::usleep(1_000_000) };
        }),
        ("nanosleep", || {
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: valid request; a null remainder is allowed.
            unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
        }),
        ("clock_nanosleep", || {
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: valid request; a null remainder is allowed.
            unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut()) };
        }),
    ];
    let gs: Vec<_> = calls
        .iter()
        .map(|&(name, f)| {
            greenlet::Builder::new()
                .name(format!("via-{name}"))
                .spawn(f)
                .unwrap()
        })
        .collect();
    greenlet::sleep(Duration::from_millis(20));
    let d = greenlet::dump::dump();
    for (name, _) in calls {
        let info = d
            .greenlets()
            .iter()
            .find(|g| g.name() == Some(&format!("via-{name}")))
            .unwrap();
        assert_eq!(
            info.wait_reason(),
            Some(WaitReason::Hook { call: name, fd: -1 }),
            "{d}"
        );
        assert!(
            d.to_string().contains(&format!("monkey-patched {name}()")),
            "{d}"
        );
    }
    // A kill ends each hooked sleep early (EINTR), so the test stays short.
    for g in gs {
        g.kill();
    }
}
