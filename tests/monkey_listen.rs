//! Under `patch_all`, std's `TcpListener::bind` gets the system's largest
//! accept queue: a burst of connects larger than std's backlog of 128 loses
//! no SYN (a lost SYN is retried only after a full second).

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn a_patched_std_listener_takes_1000_simultaneous_connects_without_a_syn_retry() {
    greenlet::monkey::patch_all();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let start = Instant::now();
        // Nobody accepts until every connect has finished: the whole burst
        // has to fit in the accept queue.
        let clients: Vec<_> = (0..1000)
            .map(|_| greenlet::spawn(move || TcpStream::connect(addr)))
            .collect();
        let streams: Vec<TcpStream> = greenlet::joinall(clients)
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        let connected = start.elapsed();
        let mut accepted = 0;
        while accepted < streams.len() {
            listener.accept().unwrap();
            accepted += 1;
        }
        let _ = tx.send((connected, start.elapsed(), accepted));
    });
    let (connected, all, accepted) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the test did not finish in time (or panicked)");
    eprintln!(
        "1000 connects to a patched std listener: all connected in {connected:?}, all accepted in {all:?}"
    );
    assert_eq!(accepted, 1000);
    assert!(
        all < Duration::from_millis(900),
        "a SYN was retried: {all:?}"
    );
}
