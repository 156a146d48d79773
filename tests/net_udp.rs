//! `greenlet::net::UdpSocket`: datagram round trips, timeouts, modes.

use std::io;
use std::time::{Duration, Instant};

use greenlet::net::UdpSocket;

#[test]
fn datagram_round_trips_between_greenlets() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    // An echo server greenlet answering 3 datagrams from each of 50 clients.
    let echo = greenlet::spawn(move || {
        let mut buf = [0; 1500];
        for _ in 0..150 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let clients: Vec<_> = (0..50u32)
        .map(|i| {
            greenlet::spawn(move || -> io::Result<u32> {
                let s = UdpSocket::bind("127.0.0.1:0")?;
                s.connect(addr)?;
                let mut sum = 0;
                for r in 0..3u32 {
                    s.send(&(i * 10 + r).to_le_bytes())?;
                    let mut b = [0; 8];
                    let n = s.recv(&mut b)?;
                    assert_eq!(n, 4);
                    sum += u32::from_le_bytes(b[..4].try_into().unwrap());
                }
                Ok(sum)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), 30 * i as u32 + 3);
    }
    echo.join().unwrap();
}

#[test]
fn large_datagram_and_peek() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let big: Vec<u8> = (0..60_000).map(|i| i as u8).collect();
    assert_eq!(a.send_to(&big, b.local_addr().unwrap()).unwrap(), big.len());
    let mut buf = vec![0; 65_536];
    let (n, from) = b.peek_from(&mut buf).unwrap();
    assert_eq!((n, from), (big.len(), a.local_addr().unwrap()));
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &big[..]);
}

#[test]
fn recv_parks_only_the_calling_greenlet() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let receiver = greenlet::spawn(move || {
        let mut b = [0; 16];
        let (n, _) = s.recv_from(&mut b).unwrap();
        b[..n].to_vec()
    });
    let mut ticks = 0;
    for _ in 0..5 {
        greenlet::sleep(Duration::from_millis(2));
        ticks += 1;
    }
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"wake", addr)
        .unwrap();
    assert_eq!(receiver.join().unwrap(), b"wake");
    assert_eq!(ticks, 5);
}

#[test]
fn read_timeout_and_nonblocking_mode() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    let e = s.recv_from(&mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(25));
    assert_eq!(
        s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        s.set_write_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    s.set_read_timeout(None).unwrap();
    s.set_nonblocking(true).unwrap();
    let t = Instant::now();
    assert_eq!(
        s.recv(&mut [0; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert!(t.elapsed() < Duration::from_millis(25));
}

#[test]
fn send_to_a_host_name_and_errors_like_std() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Resolved on the blocking pool; its first IPv4 answer is 127.0.0.1.
    peer.send_to(b"named", ("localhost", port)).unwrap();
    let mut b = [0; 8];
    assert_eq!(s.recv(&mut b).unwrap(), 5);
    let e = peer.send_to(b"x", &[][..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(e.to_string(), "no addresses to send data to");
    // Unconnected send: the kernel's EDESTADDRREQ, exactly as std reports it.
    let std_err = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send(b"x")
        .unwrap_err();
    let e = peer.send(b"x").unwrap_err();
    assert_eq!(
        (e.kind(), e.raw_os_error()),
        (std_err.kind(), std_err.raw_os_error())
    );
}

#[test]
fn clones_share_the_socket_and_its_options() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = s.try_clone().unwrap();
    assert_eq!(c.local_addr().unwrap(), s.local_addr().unwrap());
    s.set_read_timeout(Some(Duration::from_millis(7))).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(7)));
    s.set_ttl(9).unwrap();
    assert_eq!(c.ttl().unwrap(), 9);
    c.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    assert!(s.take_error().unwrap().is_none());
}

#[test]
fn ipv6_loopback_round_trip() {
    let Ok(a) = UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let b = UdpSocket::bind("[::1]:0").unwrap();
    a.send_to(b"v6", b.local_addr().unwrap()).unwrap();
    let mut buf = [0; 4];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"v6"[..], a.local_addr().unwrap()));
}

#[test]
fn multicast_options_round_trip_and_leaving_a_group_not_joined_is_an_error() {
    use std::net::Ipv4Addr;
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(s.multicast_loop_v4().unwrap(), "the kernel default is on");
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    s.set_multicast_ttl_v4(7).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 7);
    // An IPv6-only option on an IPv4 socket fails as in std.
    assert!(s.set_multicast_loop_v6(true).is_err());
    // Leaving a group this socket never joined is refused by the kernel.
    let group = Ipv4Addr::new(239, 255, 0, 1);
    assert!(s.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).is_err());
}
