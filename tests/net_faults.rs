//! Faults: refused, reset and half-closed connections, EOF, writes to a
//! closed peer, greenlets killed while parked in IO, sockets dropped or
//! shut down while another greenlet waits on them.

mod util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use greenlet::net::unix::UnixStream;
use greenlet::net::{TcpListener, TcpStream};
use util::{listener, tcp_pair as pair};

#[test]
fn connection_refused() {
    let (l, addr) = listener();
    drop(l);
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    // From a greenlet too, while another keeps running.
    let g = greenlet::spawn(move || TcpStream::connect(addr).map(drop));
    assert_eq!(
        g.join().unwrap().unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn eof_after_the_peer_closes() {
    let (c, s) = pair();
    (&s).write_all(b"last words").unwrap();
    drop(s);
    let mut got = Vec::new();
    (&c).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    // EOF is sticky.
    assert_eq!((&c).read(&mut [0; 8]).unwrap(), 0);
    assert_eq!((&c).read(&mut [0; 8]).unwrap(), 0);
}

#[test]
fn eof_wakes_a_parked_reader() {
    let (c, s) = pair();
    let reader = greenlet::spawn(move || (&c).read(&mut [0; 8]));
    greenlet::sleep(Duration::from_millis(10));
    drop(s);
    assert_eq!(reader.join().unwrap().unwrap(), 0);
}

#[test]
fn half_closed_connection_keeps_the_other_direction() {
    let (c, s) = pair();
    c.shutdown(Shutdown::Write).unwrap();
    let server = greenlet::spawn(move || -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        (&s).read_to_end(&mut got)?; // EOF from the client's half-close
        (&s).write_all(b"reply after eof")?;
        Ok(got)
    });
    let mut reply = Vec::new();
    (&c).read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"reply after eof");
    assert!(server.join().unwrap().unwrap().is_empty());
}

#[test]
fn connection_reset_by_peer() {
    let (c, s) = pair();
    // Closing a socket with unread data makes the kernel send an RST.
    (&c).write_all(b"unread").unwrap();
    greenlet::sleep(Duration::from_millis(10));
    drop(s);
    let e = (&c).read(&mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
}

/// Restores the default `SIGPIPE` action (the Rust runtime ignores it), so
/// a write that raised it would kill this test process.
fn default_sigpipe() {
    // SAFETY: changing a signal disposition to its default is sound.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

#[test]
fn writes_to_a_closed_peer_fail_without_sigpipe() {
    default_sigpipe();
    let (c, s) = pair();
    drop(s);
    greenlet::sleep(Duration::from_millis(10));
    let chunk = vec![1u8; 64 * 1024];
    let mut errors = Vec::new();
    for i in 0..50 {
        let r = match i % 3 {
            0 => (&c).write(&chunk),
            1 => (&c).write_vectored(&[io::IoSlice::new(&chunk)]),
            _ => (&c).write_all(&chunk).map(|()| chunk.len()),
        };
        if let Err(e) = r {
            errors.push(e.kind());
        }
    }
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|k| matches!(
            k,
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        )),
        "{errors:?}"
    );

    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    assert_eq!(
        (&a).write(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    assert_eq!(
        (&a).write_vectored(&[io::IoSlice::new(b"x")])
            .unwrap_err()
            .kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
fn greenlet_killed_while_parked_in_read_closes_its_socket() {
    let (c, s) = pair();
    let reader = greenlet::spawn(move || {
        let mut buf = [0; 8];
        let _ = (&s).read(&mut buf); // parks forever: the client never writes
        unreachable!("the read was interrupted by kill");
    });
    greenlet::sleep(Duration::from_millis(10));
    reader.kill();
    assert!(reader.join().unwrap_err().is_killed());
    // The killed greenlet's socket was dropped while unwinding: closed.
    assert_eq!((&c).read(&mut [0; 8]).unwrap(), 0);
}

#[test]
fn greenlets_killed_in_accept_connect_and_write_leave_nothing_behind() {
    let (l, addr) = listener();
    let acceptor = greenlet::spawn(move || l.accept().map(drop));
    let (c, s) = pair();
    let writer = greenlet::spawn(move || (&c).write_all(&vec![0u8; 64 << 20]));
    greenlet::sleep(Duration::from_millis(20));
    acceptor.kill();
    writer.kill();
    assert!(acceptor.join().unwrap_err().is_killed());
    assert!(writer.join().unwrap_err().is_killed());
    // The writer's socket closed: the reader sees data then EOF (or a reset
    // if the close discarded unsent data).
    let mut sink = Vec::new();
    let r = (&s).read_to_end(&mut sink);
    assert!(r.is_ok() || r.unwrap_err().kind() == io::ErrorKind::ConnectionReset);
    // The acceptor's listener closed: its port refuses connections now.
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[test]
fn with_timeout_around_a_read_leaves_the_stream_usable() {
    let (c, s) = pair();
    let t = Instant::now();
    let r = greenlet::with_timeout(Duration::from_millis(30), || (&c).read(&mut [0; 8]));
    assert!(r.is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    (&s).write_all(b"ok").unwrap();
    let mut b = [0; 2];
    (&c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

#[test]
fn dropping_a_clone_does_not_disturb_a_greenlet_waiting_on_another() {
    let (c, s) = pair();
    let c2 = c.try_clone().unwrap();
    let reader = greenlet::spawn(move || {
        let mut b = [0; 5];
        (&c).read_exact(&mut b).map(|()| b)
    });
    greenlet::sleep(Duration::from_millis(10));
    drop(c2); // another handle to the same socket goes away mid-wait
    greenlet::sleep(Duration::from_millis(10));
    (&s).write_all(b"hello").unwrap();
    assert_eq!(&reader.join().unwrap().unwrap(), b"hello");
}

#[test]
fn shutdown_from_another_greenlet_wakes_a_parked_reader() {
    let (c, _s) = pair();
    let c2 = c.try_clone().unwrap();
    let reader = greenlet::spawn(move || (&c).read(&mut [0; 8]));
    greenlet::sleep(Duration::from_millis(10));
    c2.shutdown(Shutdown::Both).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), 0);
}

#[test]
fn many_readers_on_one_socket_queue_up() {
    let (c, s) = pair();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let c = c.try_clone().unwrap();
            greenlet::spawn(move || {
                let mut b = [0; 1];
                (&c).read_exact(&mut b).map(|()| b[0])
            })
        })
        .collect();
    greenlet::sleep(Duration::from_millis(10));
    (&s).write_all(&[1, 2, 3, 4]).unwrap();
    let mut got: Vec<u8> = readers
        .into_iter()
        .map(|r| r.join().unwrap().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn listener_dropped_in_one_greenlet_refuses_new_connections() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let g = greenlet::spawn(move || drop(l));
    g.join().unwrap();
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}
