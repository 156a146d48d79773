//! `accept` when the process is out of file descriptors: the error reaches
//! the caller, and a server loop that retries with the documented back-off
//! does not spin. Lowers this process's fd limit, so it is the only test in
//! its binary.

use std::io;
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};

mod util;
use util::{exhaust_fds, fd_limit, set_fd_limit, thread_cpu_time};

#[test]
fn accept_out_of_fds_returns_emfile_and_a_backing_off_server_does_not_spin() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap(); // queued, not accepted
    greenlet::sleep(Duration::from_millis(1)); // hub and its fds exist now

    let (soft, hard) = fd_limit();
    let hog = exhaust_fds();

    // The error reaches the caller.
    let e = listener.accept().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));

    // The documented server loop: back off on EMFILE/ENFILE.
    let server = greenlet::spawn(move || {
        let mut attempts = 0u32;
        let mut backoff = Duration::from_millis(5);
        loop {
            attempts += 1;
            match listener.accept() {
                Ok((stream, _)) => return (stream, attempts),
                Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                    greenlet::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(80));
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let cpu0 = thread_cpu_time();
    let wall0 = Instant::now();
    greenlet::sleep(Duration::from_millis(300)); // the server retries meanwhile
    let cpu = thread_cpu_time() - cpu0;
    let wall = wall0.elapsed();
    assert!(
        cpu < wall / 4,
        "the retrying server used {cpu:?} of CPU in {wall:?}"
    );

    // Free the fds: the queued connection is accepted.
    drop(hog);
    set_fd_limit(soft, hard);
    let (accepted, attempts) = server.join().unwrap();
    assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
    assert!(
        (3..60).contains(&attempts),
        "{attempts} accept attempts in about 300 ms"
    );
    assert!(io::Write::write(&mut &client, b"x").is_ok());
}
