//! `greenlet::net::unix`: stream echo, listener, datagram round trips.

mod util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use greenlet::net::unix::{UnixDatagram, UnixListener, UnixStream};
use util::{pattern, temp_dir};

fn echo(s: UnixStream) -> io::Result<u64> {
    let n = io::copy(&mut &s, &mut &s)?;
    s.shutdown(Shutdown::Write)?;
    Ok(n)
}

#[test]
fn stream_echo_round_trips_from_1_byte_to_16_mib() {
    let dir = temp_dir("unix-echo");
    let path = dir.join("echo.sock");
    let l = UnixListener::bind(&path).unwrap();
    greenlet::spawn(move || {
        for s in l.incoming() {
            greenlet::spawn(move || echo(s.unwrap()));
        }
    });
    for len in [1, 100, 64 * 1024, 1 << 20, 16 << 20] {
        let data = pattern(len);
        let s = UnixStream::connect(&path).unwrap();
        let w = s.try_clone().unwrap();
        let d = data.clone();
        let writer = greenlet::spawn(move || {
            (&w).write_all(&d).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::with_capacity(len);
        (&s).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == data, "{len} bytes came back different");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hundreds_of_concurrent_clients_on_one_listener() {
    let dir = temp_dir("unix-many");
    let path = dir.join("many.sock");
    let l = UnixListener::bind(&path).unwrap();
    greenlet::spawn(move || {
        for s in l.incoming() {
            greenlet::spawn(move || echo(s.unwrap()));
        }
    });
    let clients: Vec<_> = (0..300u32)
        .map(|i| {
            let path = path.clone();
            greenlet::spawn(move || -> io::Result<u32> {
                let mut s = UnixStream::connect(&path)?;
                s.write_all(&i.to_le_bytes())?;
                let mut b = [0; 4];
                s.read_exact(&mut b)?;
                Ok(u32::from_le_bytes(b))
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), i as u32);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn connect_errors_match_std() {
    let dir = temp_dir("unix-err");
    let missing = dir.join("nobody.sock");
    let ours = UnixStream::connect(&missing).unwrap_err();
    let std_err = std::os::unix::net::UnixStream::connect(&missing).unwrap_err();
    assert_eq!(ours.kind(), std_err.kind());
    assert_eq!(ours.kind(), io::ErrorKind::NotFound);
    // A bound datagram socket at the path does not accept streams.
    let path = dir.join("dgram.sock");
    let _d = UnixDatagram::bind(&path).unwrap();
    let ours = UnixStream::connect(&path).unwrap_err();
    let std_err = std::os::unix::net::UnixStream::connect(&path).unwrap_err();
    assert_eq!(ours.kind(), std_err.kind());
    assert_eq!(
        UnixListener::bind(&path).unwrap_err().kind(),
        io::ErrorKind::AddrInUse
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pair_timeouts_and_nonblocking() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(
        (&a).read(&mut [0; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        a.set_write_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    b.set_nonblocking(true).unwrap();
    assert_eq!(
        (&b).read(&mut [0; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    (&b).write_all(b"nb").unwrap();
    let mut got = [0; 2];
    (&a).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"nb");
    assert!(a.peer_addr().unwrap().is_unnamed());
    assert!(a.take_error().unwrap().is_none());
}

#[test]
fn killed_reader_closes_its_unix_socket() {
    let (a, b) = UnixStream::pair().unwrap();
    let reader = greenlet::spawn(move || (&a).read(&mut [0; 4]).map(drop));
    greenlet::sleep(Duration::from_millis(5));
    reader.kill();
    assert!(reader.join().unwrap_err().is_killed());
    assert_eq!((&b).read(&mut [0; 4]).unwrap(), 0);
}

#[test]
fn datagram_round_trips() {
    let dir = temp_dir("unix-dgram");
    let server_path = dir.join("server.sock");
    let server = UnixDatagram::bind(&server_path).unwrap();
    let echo = greenlet::spawn(move || {
        let mut buf = [0; 256];
        for _ in 0..60 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let to = from.as_pathname().unwrap().to_owned();
            server.send_to(&buf[..n], to).unwrap();
        }
    });
    let clients: Vec<_> = (0..20u32)
        .map(|i| {
            let (dir, server_path) = (dir.clone(), server_path.clone());
            greenlet::spawn(move || -> io::Result<u32> {
                let c = UnixDatagram::bind(dir.join(format!("client-{i}.sock")))?;
                c.connect(&server_path)?;
                let mut sum = 0;
                for r in 0..3 {
                    c.send(&(i + r).to_le_bytes())?;
                    let mut b = [0; 4];
                    assert_eq!(c.recv(&mut b)?, 4);
                    sum += u32::from_le_bytes(b);
                }
                Ok(sum)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), 3 * i as u32 + 3);
    }
    echo.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn datagram_pair_unbound_timeouts_and_closed_peer() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let receiver = greenlet::spawn(move || {
        let mut buf = [0; 8];
        let n = b.recv(&mut buf).unwrap();
        (buf[..n].to_vec(), b)
    });
    greenlet::sleep(Duration::from_millis(5));
    a.send(b"later").unwrap();
    let (got, b) = receiver.join().unwrap();
    assert_eq!(got, b"later");
    a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(
        a.recv(&mut [0; 4]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    drop(b);
    assert_eq!(
        a.send(b"gone").unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    let u = UnixDatagram::unbound().unwrap();
    assert!(u.local_addr().unwrap().is_unnamed());
    assert!(u.peer_addr().is_err());
}

/// Fills `to`'s receive queue with datagrams from `from` (non-blocking
/// sends until `WouldBlock`), leaving `from` blocking again; returns how
/// many went.
fn fill_queue(from: &UnixDatagram, send: impl Fn(&UnixDatagram) -> io::Result<usize>) -> usize {
    from.set_nonblocking(true).unwrap();
    let mut sent = 0;
    loop {
        match send(from) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the queue: {e}"),
        }
        assert!(sent < 100_000, "the receive queue never filled");
    }
    from.set_nonblocking(false).unwrap();
    sent
}

#[test]
fn datagram_send_to_a_full_receiver_waits_until_it_drains() {
    util::within(Duration::from_secs(20), || {
        let dir = temp_dir("unix-dgram-full");
        let path = dir.join("full.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        // Unconnected (`send_to`) and connected (`send`) senders, the
        // queue filled by another socket: the room the receiver makes
        // frees none of the sender's own buffers.
        for connected in [false, true] {
            let filler = UnixDatagram::unbound().unwrap();
            let p = path.clone();
            let queued = fill_queue(&filler, move |s| s.send_to(b"x", &p));
            let sender = UnixDatagram::unbound().unwrap();
            if connected {
                sender.connect(&path).unwrap();
            }
            let p = path.clone();
            let send = move |s: &UnixDatagram| {
                if connected {
                    s.send(b"x")
                } else {
                    s.send_to(b"x", &p)
                }
            };
            // A blocking send parks until the receiver makes room.
            let blocked = greenlet::spawn(move || {
                greenlet::with_timeout(Duration::from_secs(5), || send(&sender))
            });
            let cpu = util::thread_cpu_time();
            greenlet::sleep(Duration::from_millis(300));
            let cpu = util::thread_cpu_time() - cpu;
            assert!(
                !blocked.is_finished(),
                "the send did not wait (connected: {connected})"
            );
            // It sleeps while it waits: the hub does not spin retrying.
            assert!(
                cpu < Duration::from_millis(60),
                "the hub spun while the send waited (connected: {connected}): {cpu:?} of CPU in 300 ms"
            );
            let mut buf = [0; 8];
            for _ in 0..queued {
                receiver.recv(&mut buf).unwrap();
            }
            let sent = blocked.join().unwrap();
            assert!(
                matches!(sent, Ok(Ok(1))),
                "the send did not finish once there was room (connected: {connected}): {sent:?}"
            );
            assert_eq!(receiver.recv(&mut buf).unwrap(), 1);
        }
    });
}

/// A `send_to` to a full receiver, retried with growing pauses (up to
/// 64 ms), still expires at its write timeout: the last pause is cut to
/// the time left. Before, it could overshoot by up to 64 ms (128 ms for a
/// 70 ms timeout). The best of three sends is compared, with 40 ms of
/// slack, so a loaded machine delaying one wake-up cannot fail it.
#[test]
fn datagram_send_to_a_full_receiver_times_out_at_its_write_timeout() {
    util::within(Duration::from_secs(20), || {
        let dir = temp_dir("unix-dgram-timeout");
        let path = dir.join("full.sock");
        let _receiver = UnixDatagram::bind(&path).unwrap();
        let filler = UnixDatagram::unbound().unwrap();
        let p = path.clone();
        fill_queue(&filler, move |s| s.send_to(b"x", &p));
        let timeout = Duration::from_millis(70);
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let sender = UnixDatagram::unbound().unwrap();
            sender.set_write_timeout(Some(timeout)).unwrap();
            let start = std::time::Instant::now();
            let err = sender.send_to(b"x", &path).unwrap_err();
            let took = start.elapsed();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
            assert!(took >= timeout, "timed out early: {took:?}");
            best = best.min(took);
        }
        assert!(
            best < timeout + Duration::from_millis(40),
            "the send overshot its {timeout:?} write timeout: {best:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    });
}
