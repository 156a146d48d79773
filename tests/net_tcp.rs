//! `greenlet::net::{TcpStream, TcpListener}`: std's behaviour, green.

mod util;

use std::cell::Cell;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};
use util::{echo_server, listener, pattern, round_trip, tcp_pair, within};

#[test]
fn echo_round_trips_from_1_byte_to_16_mib() {
    let addr = echo_server();
    for len in [1, 2, 63, 64, 1000, 64 * 1024, 1 << 20, 16 << 20] {
        let data = pattern(len);
        let back = round_trip(addr, data.clone()).unwrap();
        assert!(back == data, "echo of {len} bytes came back different");
    }
}

#[test]
fn thousand_concurrent_clients_against_one_server_on_one_thread() {
    let addr = echo_server();
    let clients: Vec<_> = (0..1000u32)
        .map(|i| {
            greenlet::spawn(move || -> io::Result<u32> {
                let mut s = TcpStream::connect(addr)?;
                let mut sum = 0;
                for round in 0..3u32 {
                    s.write_all(&(i + round).to_le_bytes())?;
                    let mut b = [0; 4];
                    s.read_exact(&mut b)?;
                    sum += u32::from_le_bytes(b);
                }
                Ok(sum)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), 3 * i as u32 + 3);
    }
}

#[test]
fn root_context_calls_block_by_running_the_hub() {
    // No greenlet on the client side: plain blocking-style code.
    let addr = echo_server();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"from root").unwrap();
    let mut buf = [0; 9];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from root");
}

#[test]
fn read_and_write_through_shared_references_and_vectored() {
    let addr = echo_server();
    let s = TcpStream::connect(addr).unwrap();
    let n = (&s)
        .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cde")])
        .unwrap();
    assert_eq!(n, 5);
    let mut peeked = [0; 5];
    let mut got = 0;
    while got < 5 {
        got = s.peek(&mut peeked).unwrap();
    }
    assert_eq!(&peeked, b"abcde");
    let (mut x, mut y) = ([0; 2], [0; 3]);
    let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
    let mut view = &mut bufs[..];
    let mut read = 0;
    while read < 5 {
        let n = (&s).read_vectored(view).unwrap();
        IoSliceMut::advance_slices(&mut view, n);
        read += n;
    }
    assert_eq!((&x, &y), (b"ab", b"cde"));
}

#[test]
fn try_clone_lets_two_greenlets_read_and_write_one_socket_at_once() {
    let (l, addr) = listener();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = l.accept().unwrap();
    // The server echoes a stream of numbered messages.
    greenlet::spawn(move || util::echo(server));
    let reader_half = client.try_clone().unwrap();
    const N: u32 = 2000;
    let reader = greenlet::spawn(move || {
        let mut s = reader_half;
        for i in 0..N {
            let mut b = [0; 4];
            s.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_le_bytes(b), i);
        }
    });
    let writer = greenlet::spawn(move || {
        let mut s = client;
        for i in 0..N {
            s.write_all(&i.to_le_bytes()).unwrap();
            if i % 100 == 0 {
                greenlet::yield_now();
            }
        }
    });
    writer.join().unwrap();
    reader.join().unwrap();
}

#[test]
fn nonblocking_mode_returns_would_block_as_std_does() {
    let (l, addr) = listener();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
    let s = TcpStream::connect(addr).unwrap();
    let (peer, _) = loop {
        match l.accept() {
            Ok(p) => break p,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => greenlet::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        (&s).read(&mut [0; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // A non-blocking write stops at the first full buffer: a partial count,
    // then WouldBlock.
    let big = vec![7u8; 64 << 20];
    let first = (&s).write(&big).unwrap();
    assert!(first > 0 && first < big.len(), "wrote {first}");
    let mut saw_would_block = false;
    for _ in 0..100 {
        match (&s).write(&big) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                saw_would_block = true;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(saw_would_block);
    // Back to blocking mode: reads park again.
    s.set_nonblocking(false).unwrap();
    peer.set_nonblocking(false).unwrap();
    (&peer).write_all(b"x").unwrap();
    let mut b = [0; 1];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"x");
}

#[test]
fn read_timeout_expires_with_would_block_and_the_stream_stays_usable() {
    let (s, peer) = tcp_pair();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    let t = Instant::now();
    let err = (&s).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(err.raw_os_error(), Some(11), "std reports EAGAIN");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_secs(2),
        "{took:?}"
    );
    (&peer).write_all(b"late").unwrap();
    let mut b = [0; 4];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"late");
    // Clones share the timeout, as dup'ed fds share SO_RCVTIMEO.
    let c = s.try_clone().unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    s.set_read_timeout(None).unwrap();
    assert_eq!(c.read_timeout().unwrap(), None);
}

#[test]
fn write_timeout_expires_when_the_peer_does_not_read() {
    let (l, addr) = listener();
    let s = TcpStream::connect(addr).unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let t = Instant::now();
    let err = (&s).write_all(&vec![0u8; 64 << 20]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn zero_timeouts_are_rejected_with_std_errors() {
    let (_l, addr) = listener();
    let s = TcpStream::connect(addr).unwrap();
    for r in [
        s.set_read_timeout(Some(Duration::ZERO)),
        s.set_write_timeout(Some(Duration::ZERO)),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "cannot set a 0 duration timeout");
    }
    let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn connect_timeout_expires_against_a_full_accept_queue() {
    // A listener with a one-connection backlog that never accepts: once
    // its queue is full the kernel drops further SYNs, so connects hang.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    listen_backlog_zero(&std_listener);
    let mut held = Vec::new();
    let t = Instant::now();
    let err = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() < 20, "the backlog never filled");
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
}

fn listen_backlog_zero(l: &std::net::TcpListener) {
    // SAFETY: listen on a valid listening socket only changes its backlog.
    let r = unsafe { libc::listen(l.as_raw_fd(), 0) };
    assert_eq!(r, 0);
}

#[test]
fn connect_tries_every_address_and_returns_the_last_error() {
    let dead1 = closed_port();
    let dead2 = closed_port();
    let live = echo_server();
    let s = TcpStream::connect(&[dead1, dead2, live][..]).unwrap();
    assert_eq!(s.peer_addr().unwrap(), live);
    let e = TcpStream::connect(&[dead1, dead2][..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    let e = TcpStream::connect(&[][..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(e.to_string(), "could not resolve to any addresses");
}

/// A loopback address nobody listens on.
fn closed_port() -> SocketAddr {
    let (l, a) = listener();
    drop(l);
    a
}

#[test]
fn addresses_and_options() {
    let (l, addr) = listener();
    let s = TcpStream::connect(addr).unwrap();
    let (p, peer_addr) = l.accept().unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);
    assert_eq!(s.local_addr().unwrap(), peer_addr);
    assert_eq!(p.peer_addr().unwrap(), s.local_addr().unwrap());
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    s.set_ttl(77).unwrap();
    assert_eq!(s.ttl().unwrap(), 77);
    assert!(s.take_error().unwrap().is_none());
    assert!(format!("{s:?}").contains("TcpStream"));
    assert!(format!("{l:?}").contains("TcpListener"));
}

#[test]
fn ipv6_loopback_echo() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let addr = l.local_addr().unwrap();
    greenlet::spawn(move || util::echo(l.accept().unwrap().0));
    assert_eq!(round_trip(addr, b"six".to_vec()).unwrap(), b"six");
}

#[test]
fn conversions_from_std_and_raw_fds() {
    // A std listener (blocking) made green: accept parks instead of
    // blocking the thread.
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_l.local_addr().unwrap();
    let l = TcpListener::from(std_l);
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = greenlet::spawn(move || {
        for _ in 0..5 {
            greenlet::sleep(Duration::from_millis(5));
            t2.set(t2.get() + 1);
        }
        TcpStream::connect(addr).unwrap()
    });
    let (accepted, _) = l.accept().unwrap();
    assert_eq!(ticks.get(), 5, "accept let the ticker run first");
    let client = ticker.join().unwrap();

    // Into a raw fd and back, and through OwnedFd (how a socket moves to
    // another thread).
    let raw = client.into_raw_fd();
    // SAFETY: `raw` is an open socket we own.
    let client = unsafe { TcpStream::from_raw_fd(raw) };
    let fd: OwnedFd = accepted.into();
    let accepted = std::thread::spawn(move || {
        let s = TcpStream::from(fd);
        let mut b = [0; 3];
        (&s).read_exact(&mut b).unwrap();
        (&s).write_all(&b).unwrap();
        OwnedFd::from(s)
    });
    (&client).write_all(b"fds").unwrap();
    let mut b = [0; 3];
    (&client).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"fds");
    let std_s = std::net::TcpStream::from(accepted.join().unwrap());
    std_s.set_nonblocking(false).unwrap();
    drop(std_s);
    assert_eq!((&client).read(&mut b).unwrap(), 0);
}

#[test]
fn shutdown_write_delivers_eof_and_keeps_the_read_half() {
    let (l, addr) = listener();
    let s = TcpStream::connect(addr).unwrap();
    let (p, _) = l.accept().unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!((&p).read(&mut [0; 4]).unwrap(), 0);
    (&p).write_all(b"still").unwrap();
    let mut b = [0; 5];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still");
}

#[test]
fn a_dropped_stream_leaves_epoll_by_closing_and_its_fd_number_works_again() {
    // A registered stream that is simply dropped is not EPOLL_CTL_DEL'd:
    // closing its last fd removes the kernel's entry. The next socket gets
    // the same fd number and must get its own events.
    let addr = echo_server();
    let mut fds = Vec::new();
    for i in 0..50u32 {
        let mut s = TcpStream::connect(addr).unwrap();
        fds.push(s.as_raw_fd());
        s.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0; 4];
        s.read_exact(&mut back).unwrap(); // parks: the fd is in epoll
        assert_eq!(u32::from_le_bytes(back), i);
    }
    fds.dedup();
    assert!(fds.len() < 50, "fd numbers were not reused: {fds:?}");
}

#[test]
fn dropping_one_of_two_clones_keeps_the_other_getting_events() {
    // With a try_clone alive, the dropped handle's epoll entry would outlive
    // its close: it must leave epoll explicitly, and the clone (registered
    // on its own fd) keeps working.
    let (l, addr) = listener();
    let s = TcpStream::connect(addr).unwrap();
    let (peer, _) = l.accept().unwrap();
    let mut b = [0; 1];
    (&peer).write_all(b"a").unwrap();
    (&s).read_exact(&mut b).unwrap();
    let c = s.try_clone().unwrap();
    let reader = greenlet::spawn(move || {
        let mut b = [0; 2];
        (&c).read_exact(&mut b).map(|()| b)
    });
    greenlet::yield_now(); // the clone parks in epoll
    drop(s);
    greenlet::sleep(Duration::from_millis(10));
    (&peer).write_all(b"bc").unwrap();
    assert_eq!(&reader.join().unwrap().unwrap(), b"bc");
}

/// How many epoll entries of this process watch fd `fd` of the socket
/// with inode `ino` (from `/proc/self/fdinfo` of every epoll fd).
fn epoll_entries(fd: std::os::fd::RawFd, ino: u64) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_epoll =
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("eventpoll"));
        if !is_epoll {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/self/fdinfo/{}",
            e.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        for line in info.lines().filter(|l| l.starts_with("tfd:")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let tfd = words.get(1).and_then(|w| w.parse::<i32>().ok());
            let tino = words
                .iter()
                .find_map(|w| w.strip_prefix("ino:"))
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if tfd == Some(fd) && tino == Some(ino) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn a_registered_socket_cloned_then_dropped_leaves_epoll() {
    // The socket waits once (so it is in epoll), then is cloned: its
    // registration now outlives the close of its fd (the clone keeps the
    // socket open), so dropping it must take the entry out explicitly.
    within(Duration::from_secs(30), || {
        let (s, peer) = tcp_pair();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let e = (&s).read(&mut [0; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        s.set_read_timeout(None).unwrap();
        let fd = s.as_raw_fd();
        // SAFETY: fstat on an open fd into a zeroed out-parameter.
        let ino = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(fd, &mut st), 0);
            st.st_ino
        };
        assert_eq!(
            epoll_entries(fd, ino),
            1,
            "the socket waited: it is in epoll"
        );
        let c = s.try_clone().unwrap();
        drop(s);
        assert_eq!(epoll_entries(fd, ino), 0, "the dropped socket left epoll");
        let reader = greenlet::spawn(move || {
            let mut b = [0; 2];
            (&c).read_exact(&mut b).map(|()| b)
        });
        greenlet::sleep(Duration::from_millis(5));
        (&peer).write_all(b"hi").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"hi");
    });
}

// ---- accept, and reads that come up short (issue 14: the HTTP path) ----

/// The fd's `O_NONBLOCK` and `FD_CLOEXEC` bits.
fn fd_flags(fd: std::os::fd::RawFd) -> (bool, bool) {
    // SAFETY: fcntl queries on an fd the caller keeps open.
    let (fl, fdfl) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    assert!(fl >= 0 && fdfl >= 0, "{}", io::Error::last_os_error());
    (fl & libc::O_NONBLOCK != 0, fdfl & libc::FD_CLOEXEC != 0)
}

#[test]
fn accepted_streams_are_nonblocking_close_on_exec_and_name_their_peer() {
    util::within(Duration::from_secs(10), || {
        let mut listeners = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
        match TcpListener::bind("[::1]:0") {
            Ok(l) => listeners.push(l),
            Err(_) => eprintln!("no IPv6 loopback here; IPv4 only"),
        }
        for l in listeners {
            let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, peer) = l.accept().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(s.peer_addr().unwrap(), client.local_addr().unwrap());
            assert_eq!(s.local_addr().unwrap(), l.local_addr().unwrap());
            assert_eq!(fd_flags(s.as_raw_fd()), (true, true));
            // Green-blocking all the same: a read waits for the data.
            let writer = greenlet::spawn(move || {
                greenlet::sleep(Duration::from_millis(5));
                (&client).write_all(b"late").unwrap();
                client
            });
            let mut buf = [0; 4];
            (&s).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"late");
            drop(writer.join().unwrap());
        }
    });
}

#[test]
fn a_nonblocking_listener_accepts_streams_that_still_park() {
    util::within(Duration::from_secs(10), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => greenlet::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        // The listener's mode is its own: the stream parks on a read.
        let writer = greenlet::spawn(move || {
            greenlet::sleep(Duration::from_millis(5));
            (&client).write_all(b"x").unwrap();
            client
        });
        let mut b = [0; 1];
        assert_eq!((&s).read(&mut b).unwrap(), 1);
        drop(writer.join().unwrap());
    });
}

#[test]
fn after_a_short_read_each_later_segment_wakes_the_reader() {
    // A read that returns less than the buffer marks the socket drained,
    // so the next read parks without a syscall: every segment the peer
    // sends afterwards must still wake it.
    util::within(Duration::from_secs(10), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        client.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        let segments: Vec<Vec<u8>> = (1..=6u8).map(|i| vec![i; i as usize * 7]).collect();
        let sent = segments.clone();
        let writer = greenlet::spawn(move || {
            for seg in &sent {
                (&client).write_all(seg).unwrap();
                greenlet::sleep(Duration::from_millis(3));
            }
            client
        });
        let want: Vec<u8> = segments.concat();
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        let mut reads = 0;
        while got.len() < want.len() {
            let n = (&s).read(&mut buf).unwrap();
            assert!(n > 0 && n < buf.len(), "read {n} bytes");
            got.extend_from_slice(&buf[..n]);
            reads += 1;
        }
        assert_eq!(got, want);
        assert!(
            reads >= 2,
            "the segments came in one read; the test proves nothing"
        );
        drop(writer.join().unwrap());
    });
}

/// A connected pair whose server side is registered with the hub and has
/// just made a short read (so it is marked drained): its first read parked
/// until the client's `b"one"` came.
fn drained_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let writer = greenlet::spawn(move || {
        greenlet::sleep(Duration::from_millis(5));
        (&client).write_all(b"one").unwrap();
        client
    });
    let mut buf = [0; 64];
    assert_eq!(
        (&s).read(&mut buf).unwrap(),
        3,
        "the first read parks, then reads short"
    );
    (s, writer.join().unwrap())
}

#[test]
fn data_and_fin_arriving_together_read_short_then_eof() {
    // The peer's last bytes and its FIN come in one go, before the read:
    // the short read must not leave the next read waiting for an edge that
    // already came.
    util::within(Duration::from_secs(10), || {
        let (s, mut client) = drained_pair();
        client.write_all(b"last").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The hub sees the data and the FIN before the reads below.
        greenlet::sleep(Duration::from_millis(10));
        let mut buf = [0; 64];
        assert_eq!((&s).read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"last");
        assert_eq!((&s).read(&mut buf).unwrap(), 0);
        assert_eq!((&s).read(&mut buf).unwrap(), 0);
        // Half-closed: the other direction still works.
        (&s).write_all(b"bye").unwrap();
        let mut back = [0; 3];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"bye");
    });
}

#[test]
fn a_parked_reader_sees_eof_after_a_short_read() {
    util::within(Duration::from_secs(10), || {
        let (s, client) = drained_pair();
        // Drained: this read parks until the FIN comes.
        let closer = greenlet::spawn(move || {
            greenlet::sleep(Duration::from_millis(5));
            drop(client);
        });
        assert_eq!((&s).read(&mut [0; 64]).unwrap(), 0);
        closer.join().unwrap();
    });
}

#[test]
fn a_parked_reader_gets_data_that_came_with_the_fin_after_a_short_read() {
    util::within(Duration::from_secs(10), || {
        let (s, mut client) = drained_pair();
        let closer = greenlet::spawn(move || {
            greenlet::sleep(Duration::from_millis(5));
            client.write_all(b"tail").unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            client
        });
        let mut buf = [0; 64];
        assert_eq!((&s).read(&mut buf).unwrap(), 4);
        assert_eq!((&s).read(&mut buf).unwrap(), 0);
        drop(closer.join().unwrap());
    });
}
