//! Short reads through the `monkey` hooks (issue 10): unmodified
//! `std::net::TcpStream` and `std::os::unix::net::UnixStream` reads inside
//! greenlets, after `patch_all`, go on past TCP urgent data and past a Unix
//! message carrying an fd, as a blocking std read does.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Once;
use std::time::Duration;

use util::{send_urgent, send_with_fd, within};

const LIMIT: Duration = Duration::from_secs(10);

fn patch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(greenlet::monkey::patch_all);
}

/// Reads until `want` bytes came (or EOF).
fn read_n(mut r: impl Read, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut buf = [0; 64];
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// A patched read that has to wait (and times out): the fd is then
/// registered with the hub and its read readiness cleared.
fn wait_once(r: impl Read, set_timeout: impl Fn(Option<Duration>)) {
    set_timeout(Some(Duration::from_millis(20)));
    let mut r = r;
    let err = r.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    set_timeout(None);
}

#[test]
fn patched_std_tcp_read_goes_on_past_urgent_data() {
    patch();
    let got = within(LIMIT, || {
        greenlet::spawn(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            peer.set_nodelay(true).unwrap();
            let (s, _) = l.accept().unwrap();
            wait_once(&s, |t| s.set_read_timeout(t).unwrap());
            (&peer).write_all(b"AAAA").unwrap();
            send_urgent(peer.as_raw_fd(), b'B');
            (&peer).write_all(b"CCCC").unwrap();
            std::thread::sleep(Duration::from_millis(100)); // patched: parks
            let got = read_n(&s, 8);
            drop(peer);
            got
        })
        .join()
        .unwrap()
    });
    assert_eq!(got, b"AAAACCCC");
}

#[test]
fn patched_std_tcp_reader_parked_before_urgent_data_gets_the_rest() {
    patch();
    let got = within(LIMIT, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        peer.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        let reader = greenlet::spawn(move || read_n(&s, 8));
        let writer = greenlet::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            (&peer).write_all(b"AAAA").unwrap();
            send_urgent(peer.as_raw_fd(), b'B');
            (&peer).write_all(b"CCCC").unwrap();
            peer
        });
        let got = reader.join().unwrap();
        drop(writer.join().unwrap());
        got
    });
    assert_eq!(got, b"AAAACCCC");
}

#[test]
fn patched_std_unix_read_goes_on_past_a_message_carrying_an_fd() {
    patch();
    let got = within(LIMIT, || {
        greenlet::spawn(|| {
            let (s, peer) = UnixStream::pair().unwrap();
            wait_once(&s, |t| s.set_read_timeout(t).unwrap());
            let passed = std::fs::File::open("/dev/null").unwrap();
            send_with_fd(peer.as_raw_fd(), b"AAAA", passed.as_raw_fd());
            (&peer).write_all(b"CCCC").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let got = read_n(&s, 8);
            drop(peer);
            got
        })
        .join()
        .unwrap()
    });
    assert_eq!(got, b"AAAACCCC");
}
