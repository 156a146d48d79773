//! With the `monkey` feature compiled in but `patch_all()` never called, the
//! hooks are inert: std behaves exactly as std, inside greenlets too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[test]
fn std_sleep_in_greenlets_blocks_the_thread_as_usual() {
    assert!(!greenlet::monkey::is_patched());
    let start = Instant::now();
    let gs: Vec<_> = (0..3)
        .map(|_| greenlet::spawn(|| std::thread::sleep(Duration::from_millis(50))))
        .collect();
    for r in greenlet::joinall(gs) {
        r.unwrap();
    }
    // Not patched: the three sleeps run one after the other.
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
fn std_tcp_and_timeouts_work_unchanged() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        // Then stay silent so the client's read times out.
        std::thread::sleep(Duration::from_millis(300));
    });
    let g = greenlet::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        let start = Instant::now();
        let e = c.read(&mut buf).unwrap_err();
        (buf, e.kind(), start.elapsed())
    });
    let (buf, kind, waited) = g.join().unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
    assert!(waited >= Duration::from_millis(90));
    t.join().unwrap();
}
