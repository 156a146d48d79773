//! Short reads that are not the end of the queued data (issue 10): Linux
//! stops a TCP read at the urgent mark, and a Unix stream read after a
//! message that carries file descriptors; the rest stays queued and no new
//! epoll edge comes for it. A green read must go on to read it, as a
//! blocking std read does.

mod util;

use std::io::{ErrorKind, IoSliceMut, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use greenlet::net::TcpListener;
use greenlet::net::unix::UnixStream;
use util::{send_urgent, send_with_fd, within};

const LIMIT: Duration = Duration::from_secs(10);

/// Reads until `want` bytes came (or EOF), with plain or vectored reads.
fn read_n(mut r: impl Read, want: usize, vectored: bool) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut buf = [0; 64];
        let n = if vectored {
            let (a, b) = buf.split_at_mut(3);
            r.read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])
        } else {
            r.read(&mut buf)
        }
        .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Registers `r`'s socket with the hub and leaves its read readiness
/// cleared, as after any read that had to wait: a read that times out.
fn wait_once(r: impl Read, set_timeout: impl Fn(Option<Duration>)) {
    set_timeout(Some(Duration::from_millis(20)));
    let mut r = r;
    let err = r.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    set_timeout(None);
}

fn tcp_urgent(vectored: bool) -> Vec<u8> {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    peer.set_nodelay(true).unwrap();
    let (s, _) = l.accept().unwrap();
    wait_once(&s, |t| s.set_read_timeout(t).unwrap());
    (&peer).write_all(b"AAAA").unwrap();
    send_urgent(peer.as_raw_fd(), b'B');
    (&peer).write_all(b"CCCC").unwrap();
    // The hub sees all of it arrive before the first read.
    greenlet::sleep(Duration::from_millis(100));
    let got = read_n(&s, 8, vectored);
    drop(peer);
    got
}

#[test]
fn tcp_read_goes_on_past_urgent_data() {
    let got = within(LIMIT, || tcp_urgent(false));
    assert_eq!(got, b"AAAACCCC");
}

#[test]
fn tcp_vectored_read_goes_on_past_urgent_data() {
    let got = within(LIMIT, || tcp_urgent(true));
    assert_eq!(got, b"AAAACCCC");
}

/// The same while the reader is already parked when the data comes.
#[test]
fn parked_tcp_reader_gets_the_bytes_behind_urgent_data() {
    let got = within(LIMIT, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        peer.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        let reader = greenlet::spawn(move || read_n(&s, 8, false));
        greenlet::sleep(Duration::from_millis(20));
        (&peer).write_all(b"AAAA").unwrap();
        send_urgent(peer.as_raw_fd(), b'B');
        (&peer).write_all(b"CCCC").unwrap();
        let got = reader.join().unwrap();
        drop(peer);
        got
    });
    assert_eq!(got, b"AAAACCCC");
}

/// An urgent byte in the middle of a keep-alive exchange: every message
/// sent after it is still read.
#[test]
fn urgent_data_between_messages_does_not_stall_the_next_ones() {
    let got = within(LIMIT, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        peer.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        let reader = greenlet::spawn(move || read_n(&s, 12, false));
        for round in 0..3 {
            (&peer).write_all(b"AB").unwrap();
            if round == 1 {
                send_urgent(peer.as_raw_fd(), b'!');
            }
            (&peer).write_all(b"CD").unwrap();
            greenlet::sleep(Duration::from_millis(20));
        }
        let got = reader.join().unwrap();
        drop(peer);
        got
    });
    assert_eq!(got, b"ABCDABCDABCD");
}

fn unix_fd_message(vectored: bool) -> Vec<u8> {
    let (s, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = UnixStream::from(s);
    wait_once(&s, |t| s.set_read_timeout(t).unwrap());
    let passed = std::fs::File::open("/dev/null").unwrap();
    send_with_fd(peer.as_raw_fd(), b"AAAA", passed.as_raw_fd());
    (&peer).write_all(b"CCCC").unwrap();
    greenlet::sleep(Duration::from_millis(100));
    let got = read_n(&s, 8, vectored);
    drop(peer);
    got
}

#[test]
fn unix_read_goes_on_past_a_message_carrying_an_fd() {
    let got = within(LIMIT, || unix_fd_message(false));
    assert_eq!(got, b"AAAACCCC");
}

#[test]
fn unix_vectored_read_goes_on_past_a_message_carrying_an_fd() {
    let got = within(LIMIT, || unix_fd_message(true));
    assert_eq!(got, b"AAAACCCC");
}
