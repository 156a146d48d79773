//! A `StreamServer` whose accepts fail with `EMFILE` backs off instead of
//! spinning, and serves the queued connection once fds are free again.
//! Lowers this process's fd limit, so it is the only test in its binary
//! (the pattern of `tests/net_emfile.rs`).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

mod util;
use util::{exhaust_fds, fd_limit, set_fd_limit, thread_cpu_time};

#[test]
fn out_of_fds_the_server_backs_off_without_spinning_then_serves() {
    let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
        let _ = s.write_all(b"served");
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());
    greenlet::sleep(Duration::from_millis(5)); // the server is parked in accept

    let (soft, hard) = fd_limit();
    let mut hog = exhaust_fds();
    // Free exactly one fd for the client; the server's accept then fails.
    drop(hog.pop());
    let mut client = TcpStream::connect(addr).unwrap();

    let cpu0 = thread_cpu_time();
    let wall0 = Instant::now();
    greenlet::sleep(Duration::from_millis(300)); // the server retries meanwhile
    let cpu = thread_cpu_time() - cpu0;
    let wall = wall0.elapsed();
    assert!(
        cpu < wall / 4,
        "the server used {cpu:?} of CPU in {wall:?} while out of fds"
    );

    // Not served yet: the server could not accept it.
    client.set_nonblocking(true).unwrap();
    let e = client.read(&mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    client.set_nonblocking(false).unwrap();

    drop(hog);
    set_fd_limit(soft, hard);
    let t = Instant::now();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "served");
    // The back-off is capped at 1 s (it reached 160 ms or so here).
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    handle.stop();
    serving.join().unwrap().unwrap();
}
