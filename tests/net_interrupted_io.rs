//! Stream IO interrupted by `with_timeout` (issue 10): a `write` that has
//! sent bytes returns their count instead of parking again, so a retry
//! loop around timed-out writes delivers the stream exactly; what an
//! interrupted `write_all` or `read_exact` has done is what the
//! `greenlet::net` docs say.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use greenlet::net::TcpListener;
use greenlet::net::unix::UnixStream;
use util::{pattern, within};

/// A slow reader on its own thread: reads everything in 64 KiB chunks,
/// pausing 2 ms after every 256 KiB, until EOF.
fn slow_reader(mut s: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        let mut since_pause = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            since_pause += n;
            if since_pause >= 256 * 1024 {
                since_pause = 0;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

/// Sends `data` with `write(&data[off..])` under a 2 ms `with_timeout`,
/// retrying after every timeout; returns how many timed out.
fn send_with_retries(mut w: impl Write, data: &[u8]) -> usize {
    let mut off = 0;
    let mut timeouts = 0;
    while off < data.len() {
        match greenlet::with_timeout(Duration::from_millis(2), || w.write(&data[off..])) {
            Ok(Ok(n)) => {
                assert!(n > 0);
                off += n;
            }
            Ok(Err(e)) => panic!("write failed after {off} bytes: {e}"),
            Err(_elapsed) => timeouts += 1,
        }
    }
    timeouts
}

#[test]
fn tcp_writes_retried_after_timeouts_deliver_the_stream_exactly() {
    let (timeouts, sent, got) = within(Duration::from_secs(120), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let reader = slow_reader(peer);
        let data = pattern(32 << 20);
        let timeouts = send_with_retries(&s, &data);
        s.shutdown(Shutdown::Write).unwrap();
        (timeouts, data, reader.join().unwrap())
    });
    assert_eq!(got.len(), sent.len(), "{timeouts} timeouts");
    let first_bad = got.iter().zip(&sent).position(|(a, b)| a != b);
    assert_eq!(first_bad, None, "stream differs ({timeouts} timeouts)");
    assert!(timeouts > 0, "the test never timed a write out");
}

#[test]
fn unix_writes_retried_after_timeouts_deliver_the_stream_exactly() {
    let (timeouts, sent, got) = within(Duration::from_secs(120), || {
        let (s, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let s = UnixStream::from(s);
        let reader = slow_reader(peer);
        let data = pattern(16 << 20);
        let timeouts = send_with_retries(&s, &data);
        s.shutdown(Shutdown::Write).unwrap();
        (timeouts, data, reader.join().unwrap())
    });
    assert!(got == sent, "stream differs ({timeouts} timeouts)");
    assert!(timeouts > 0, "the test never timed a write out");
}

/// `write_all` interrupted: the peer got a proper prefix of the buffer.
#[test]
fn interrupted_write_all_has_sent_a_prefix() {
    let (sent, got) = within(Duration::from_secs(60), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let data = pattern(64 << 20); // far more than the socket buffers hold
        let r = greenlet::with_timeout(Duration::from_millis(100), || (&s).write_all(&data));
        assert!(
            r.is_err(),
            "write_all of 64 MiB to a peer that does not read finished"
        );
        drop(s); // the caller closes: the stream position is unknown
        let mut got = Vec::new();
        (&peer).read_to_end(&mut got).unwrap();
        (data, got)
    });
    assert!(
        !got.is_empty() && got.len() < sent.len(),
        "{} bytes",
        got.len()
    );
    assert!(got[..] == sent[..got.len()], "not a prefix");
}

/// `read_exact` interrupted: what it read is consumed, into the start of
/// its buffer, and the stream goes on after it.
#[test]
fn interrupted_read_exact_consumed_what_it_read() {
    within(Duration::from_secs(30), || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        peer.write_all(b"abcd").unwrap();
        let mut buf = [0; 8];
        let r = greenlet::with_timeout(Duration::from_millis(50), || (&s).read_exact(&mut buf));
        assert!(r.is_err());
        assert_eq!(&buf[..4], b"abcd");
        peer.write_all(b"efgh").unwrap();
        let mut rest = [0; 4];
        (&s).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"efgh");
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let e = (&s).read(&mut rest).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::WouldBlock,
            "nothing is delivered twice"
        );
    });
}
