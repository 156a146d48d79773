//! `greenlet::server::StreamServer`: a greenlet per connection, the
//! connection limit, graceful stop (wait, then kill), stops from other
//! threads, and `workers(n)` serving from several threads.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::{Overflow, StreamServer};

mod util;
use util::within;

/// Connects, sends nothing, reads the whole reply.
#[track_caller]
fn fetch(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn the_server_handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<greenlet::server::ServerHandle>();
}

#[test]
fn handlers_of_many_connections_run_concurrently() {
    let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
        greenlet::sleep(Duration::from_millis(200));
        let _ = s.write_all(b"done");
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());

    let start = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|_| greenlet::spawn(move || fetch(addr)))
        .collect();
    for r in greenlet::joinall(clients) {
        assert_eq!(r.unwrap(), "done");
    }
    // 20 handlers of 200 ms, overlapped: far less than the 4 s in series.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");

    handle.stop();
    serving.join().unwrap().unwrap();
    assert!(handle.is_stopped());
}

#[test]
fn max_connections_caps_the_handlers_running_at_once() {
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut s: TcpStream, _| {
        r.set(r.get() + 1);
        p.set(p.get().max(r.get()));
        greenlet::sleep(Duration::from_millis(30));
        r.set(r.get() - 1);
        let _ = s.write_all(b"ok");
    })
    .unwrap()
    .max_connections(2);
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());

    let start = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| greenlet::spawn(move || fetch(addr)))
        .collect();
    for r in greenlet::joinall(clients) {
        assert_eq!(r.unwrap(), "ok");
    }
    assert_eq!(
        peak.get(),
        2,
        "at most two handlers at once, and two did run"
    );
    // Four rounds of 30 ms.
    assert!(start.elapsed() >= Duration::from_millis(110));
    handle.stop();
    serving.join().unwrap().unwrap();
}

#[test]
fn stop_refuses_new_clients_waits_for_handlers_then_kills_the_rest() {
    let killed_unwound = Rc::new(Cell::new(false));
    let flag = killed_unwound.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut s: TcpStream, _| {
        let mut cmd = [0; 1];
        if s.read_exact(&mut cmd).is_err() {
            return;
        }
        if cmd[0] == b'q' {
            // Quick: finishes within the stop timeout.
            greenlet::sleep(Duration::from_millis(50));
            let _ = s.write_all(b"finished");
        } else {
            // Stuck: must be killed, unwinding (so this guard runs).
            struct OnUnwind(Rc<Cell<bool>>);
            impl Drop for OnUnwind {
                fn drop(&mut self) {
                    self.0.set(std::thread::panicking());
                }
            }
            let _guard = OnUnwind(flag.clone());
            greenlet::sleep(Duration::from_secs(3600));
        }
    })
    .unwrap()
    .stop_timeout(Duration::from_millis(300));
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());

    let mut quick = TcpStream::connect(addr).unwrap();
    let mut stuck = TcpStream::connect(addr).unwrap();
    quick.write_all(b"q").unwrap();
    stuck.write_all(b"s").unwrap();
    greenlet::sleep(Duration::from_millis(20)); // both handlers are running

    let t = Instant::now();
    handle.stop();
    assert!(handle.is_stopping());
    greenlet::sleep(Duration::from_millis(10));
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let mut reply = String::new();
    quick.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "finished");
    assert_eq!(
        stuck.read(&mut [0; 8]).unwrap(),
        0,
        "the killed handler's stream closed"
    );
    serving.join().unwrap().unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "stop took {took:?} with a 300 ms stop timeout"
    );
    assert!(killed_unwound.get(), "the stuck handler unwound");
}

#[test]
fn killing_the_greenlet_in_serve_forever_stops_the_server() {
    let server = StreamServer::bind("127.0.0.1:0", |s: TcpStream, _| {
        let _ = (&s).read(&mut [0; 1]); // until the client or the stop ends it
    })
    .unwrap()
    .stop_timeout(Duration::from_millis(50));
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());
    let client = TcpStream::connect(addr).unwrap();
    greenlet::sleep(Duration::from_millis(10));
    serving.kill();
    assert!(serving.join().unwrap_err().is_killed());
    assert!(handle.is_stopping());
    // The shutdown went on without the killed caller: listener closed,
    // the handler killed after the stop timeout.
    assert_eq!((&client).read(&mut [0; 1]).unwrap(), 0);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_panicking_handler_ends_only_its_connection() {
    let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
        let mut b = [0; 1];
        s.read_exact(&mut b).unwrap();
        if b[0] == b'p' {
            panic!("handler panic (expected by the test)");
        }
        s.write_all(b"fine").unwrap();
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.write_all(b"p").unwrap();
    assert_eq!(bad.read(&mut [0; 4]).unwrap(), 0);
    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(b"g").unwrap();
    let mut reply = String::new();
    good.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "fine");
    handle.stop();
    serving.join().unwrap().unwrap();
}

#[test]
fn stop_from_another_thread_ends_serve_forever_in_root_context() {
    let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
        let _ = s.write_all(b"hi");
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let waiter = handle.clone();
    let client = std::thread::spawn(move || {
        let mut reply = String::new();
        std::net::TcpStream::connect(addr)
            .unwrap()
            .read_to_string(&mut reply)
            .unwrap();
        handle.stop();
        waiter.wait(); // a plain thread blocks until the server is down
        reply
    });
    server.serve_forever().unwrap();
    assert_eq!(client.join().unwrap(), "hi");
}

/// Connects to a server until replies that start with `n` different
/// thread ids came back (SO_REUSEPORT spreads connections by a hash of the
/// client port: every worker shows up within a few dozen connections);
/// each reply is `"{thread id}..."`. Returns the replies read.
fn replies_from_workers(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut threads = HashSet::new();
    let mut replies = Vec::new();
    for _ in 0..500 {
        let mut reply = String::new();
        std::net::TcpStream::connect(addr)
            .unwrap()
            .read_to_string(&mut reply)
            .unwrap();
        threads.insert(reply.split(' ').next().unwrap_or_default().to_string());
        replies.push(reply);
        if threads.len() == n {
            return replies;
        }
    }
    panic!(
        "connections served by {} threads, not {n}: {threads:?}",
        threads.len()
    );
}

#[test]
fn workers_serve_from_several_threads_and_one_stop_stops_them_all() {
    // A server (like its listener) belongs to the thread that made it.
    let (tx, rx) = std::sync::mpsc::channel();
    let serving = std::thread::spawn(move || {
        let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
            let _ = write!(s, "{:?}", std::thread::current().id());
        })
        .unwrap()
        .workers(2);
        tx.send((server.local_addr().unwrap(), server.handle()))
            .unwrap();
        server.serve_forever()
    });
    let (addr, handle) = rx.recv().unwrap();

    let replies = replies_from_workers(addr, 2);
    assert!(
        replies.iter().all(|r| r.starts_with("ThreadId(")),
        "{replies:?}"
    );

    handle.stop();
    serving.join().unwrap().unwrap();
    assert!(handle.is_stopped());
    // Every worker closed its listener.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// The calling thread's allowed CPUs, as the kernel lists them
/// (`Cpus_allowed_list`, e.g. `0-1` or `1`).
fn allowed_cpus() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/thread-self/status")
        .trim()
        .to_string()
}

#[test]
fn pinned_workers_each_keep_one_cpu_and_the_caller_gets_its_affinity_back() {
    let (cpus, threads, after) = within(Duration::from_secs(60), || {
        let (tx, rx) = std::sync::mpsc::channel();
        let serving = std::thread::spawn(move || {
            let before = allowed_cpus();
            let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
                let _ = write!(s, "{:?} {}", std::thread::current().id(), allowed_cpus());
            })
            .unwrap()
            .workers(2)
            .pin_workers(true);
            tx.send((
                server.local_addr().unwrap(),
                server.handle(),
                before.clone(),
            ))
            .unwrap();
            server.serve_forever().unwrap();
            (before, allowed_cpus())
        });
        let (addr, handle, before) = rx.recv().unwrap();
        let mut cpus = HashSet::new();
        let mut threads = HashSet::new();
        for reply in replies_from_workers(addr, 2) {
            let (thread, cpu) = reply.rsplit_once(' ').unwrap();
            // One CPU each: a plain number, not a range or a list.
            assert!(cpu.parse::<usize>().is_ok(), "worker allowed on {cpu:?}");
            threads.insert(thread.to_string());
            cpus.insert(cpu.to_string());
        }
        handle.stop();
        let (before_serving, after) = serving.join().unwrap();
        assert_eq!(before, before_serving);
        (cpus, threads, (before, after))
    });
    assert_eq!(threads.len(), 2);
    let (before, after) = after;
    assert_eq!(after, before, "the caller's affinity was not restored");
    // Two CPUs allowed: each worker has its own.
    let many = before.contains('-') || before.contains(',');
    assert_eq!(cpus.len(), if many { 2 } else { 1 }, "{cpus:?} of {before}");
}

/// More workers than allowed CPUs: the pinning wraps around, every worker
/// still gets exactly one CPU of the caller's, and together they use all
/// of them.
#[test]
fn pinned_workers_wrap_around_the_allowed_cpus() {
    let (cpus, threads, allowed) = within(Duration::from_secs(60), || {
        let before = allowed_cpus();
        let n = cpu_list(&before).len() + 1;
        let (tx, rx) = std::sync::mpsc::channel();
        let serving = std::thread::spawn(move || {
            let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
                let _ = write!(s, "{:?} {}", std::thread::current().id(), allowed_cpus());
            })
            .unwrap()
            .workers(n)
            .pin_workers(true);
            tx.send((server.local_addr().unwrap(), server.handle()))
                .unwrap();
            server.serve_forever().unwrap();
        });
        let (addr, handle) = rx.recv().unwrap();
        let mut cpus = HashSet::new();
        let mut threads = HashSet::new();
        for reply in replies_from_workers(addr, n) {
            let (thread, cpu) = reply.rsplit_once(' ').unwrap();
            threads.insert(thread.to_string());
            cpus.insert(cpu.parse::<usize>().expect("one CPU per worker"));
        }
        handle.stop();
        serving.join().unwrap();
        (cpus, threads.len(), cpu_list(&before))
    });
    assert_eq!(threads, allowed.len() + 1);
    assert_eq!(cpus, allowed.into_iter().collect::<HashSet<_>>());
}

/// Parses a `Cpus_allowed_list` (`0-1,3`) into CPU numbers.
fn cpu_list(list: &str) -> Vec<usize> {
    list.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

#[test]
fn a_server_given_a_listener_serves_it() {
    let listener = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap(); // the server turns this off
    let addr = listener.local_addr().unwrap();
    let server = StreamServer::new(listener, |mut s: TcpStream, peer| {
        let _ = write!(s, "{}", peer.port());
    });
    let handle = server.handle();
    let serving = greenlet::spawn(move || server.serve_forever());
    greenlet::sleep(Duration::from_millis(5));
    let mut s = TcpStream::connect(addr).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, s.local_addr().unwrap().port().to_string());
    handle.stop();
    serving.join().unwrap().unwrap();
}

/// A server of at most `n` connections whose handlers hold their slot
/// until the client closes.
fn holding_server(n: usize, overflow: Overflow) -> (SocketAddr, greenlet::server::ServerHandle) {
    let server = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _peer| {
        while let Ok(1..) = (&stream).read(&mut [0; 64]) {}
    })
    .unwrap()
    .max_connections(n)
    .overflow(overflow);
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    greenlet::spawn(move || server.serve_forever());
    (addr, handle)
}

#[test]
fn overflow_reply_answers_clients_past_max_connections_at_once() {
    within(Duration::from_secs(30), || {
        let (addr, handle) = holding_server(2, Overflow::Reply(b"503 busy\n"));
        let held: Vec<_> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        greenlet::sleep(Duration::from_millis(20));
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(fetch(addr), "503 busy\n");
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        // A freed slot serves again: the client is held, not refused.
        drop(held);
        greenlet::sleep(Duration::from_millis(20));
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let e = (&s).read(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        handle.stop();
        handle.wait();
    });
}

#[test]
fn overflow_close_closes_clients_past_max_connections() {
    within(Duration::from_secs(30), || {
        let (addr, handle) = holding_server(1, Overflow::Close);
        let _held = TcpStream::connect(addr).unwrap();
        greenlet::sleep(Duration::from_millis(20));
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!((&s).read(&mut [0; 8]).unwrap(), 0, "closed at once");
        handle.stop();
        handle.wait();
    });
}

/// Slowloris against a server with a connection timeout: clients that
/// send a byte every 20 ms never finish a line and are cut off at the
/// timeout, while a normal client is answered at once meanwhile.
#[test]
fn connection_timeout_cuts_off_slow_clients() {
    within(Duration::from_secs(30), || {
        let server = StreamServer::bind("127.0.0.1:0", |mut stream: TcpStream, _peer| {
            let mut line = Vec::new();
            let mut byte = [0; 1];
            while let Ok(1) = stream.read(&mut byte) {
                if byte[0] == b'\n' {
                    let _ = stream.write_all(b"ok\n");
                    return;
                }
                line.push(byte[0]);
            }
        })
        .unwrap()
        .connection_timeout(Duration::from_millis(300));
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        greenlet::spawn(move || server.serve_forever());

        let start = Instant::now();
        let slow: Vec<_> = (0..20)
            .map(|_| {
                greenlet::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    // Sends until the server closes (a write then fails) or
                    // for 5 s at most.
                    while start.elapsed() < Duration::from_secs(5) {
                        if s.write_all(b"x").is_err() {
                            break;
                        }
                        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                        if let Ok(0) = s.read(&mut [0; 8]) {
                            break; // closed by the server
                        }
                    }
                    start.elapsed()
                })
            })
            .collect();
        greenlet::sleep(Duration::from_millis(50));
        let mut normal = TcpStream::connect(addr).unwrap();
        normal.write_all(b"hello\n").unwrap();
        let mut reply = String::new();
        normal.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok\n");
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "normal client waited"
        );
        for g in slow {
            let cut_off = g.join().unwrap();
            assert!(
                cut_off >= Duration::from_millis(250) && cut_off < Duration::from_secs(4),
                "slow client ended after {cut_off:?}"
            );
        }
        handle.stop();
        handle.wait();
    });
}

/// With `workers(n)`, the greenlets that send `Overflow::Reply` to refused
/// clients end with the server: their sockets are closed when
/// `serve_forever` returns. Before, one still waiting for its client (up to
/// a second) was left parked on a worker thread that exited, its socket
/// never closed.
#[test]
fn overflow_replies_still_running_at_the_stop_are_ended_and_closed() {
    within(Duration::from_secs(30), || {
        let (tx, rx) = std::sync::mpsc::channel();
        let serving = std::thread::spawn(move || {
            let server = StreamServer::bind("127.0.0.1:0", |mut s: TcpStream, _| {
                let _ = writeln!(s, "{:?}", std::thread::current().id());
                let mut sink = [0; 64];
                while let Ok(1..) = s.read(&mut sink) {}
            })
            .unwrap()
            .max_connections(1)
            .overflow(Overflow::Reply(b"busy\n"))
            .workers(2);
            tx.send((server.local_addr().unwrap(), server.handle()))
                .unwrap();
            server.serve_forever()
        });
        let (addr, handle) = rx.recv().unwrap();
        let connect = || {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        };
        fn first_line(s: &mut std::net::TcpStream) -> String {
            let mut line = Vec::new();
            let mut b = [0; 1];
            while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                line.push(b[0]);
            }
            String::from_utf8(line).unwrap()
        }
        // Fill both workers' one slot: handlers answer with their thread.
        let mut held = Vec::new();
        let mut threads = HashSet::new();
        while threads.len() < 2 {
            assert!(held.len() < 200, "connections reached one worker only");
            let mut s = connect();
            let line = first_line(&mut s);
            if line != "busy" {
                threads.insert(line);
            }
            held.push(s);
        }
        // Both full: every further client is refused, by either worker
        // (connections are spread by a hash of the client port), and its
        // reply greenlet waits for the client to close, which it does not.
        let mut refused: Vec<_> = (0..16)
            .map(|_| {
                let mut s = connect();
                assert_eq!(first_line(&mut s), "busy");
                s
            })
            .collect();
        handle.stop_with_timeout(Duration::from_millis(50));
        serving.join().unwrap().unwrap();
        // A socket closed at the server's end answers more data with a
        // reset; one still open takes it (and reads end at its FIN).
        let deadline = Instant::now() + Duration::from_secs(3);
        while !refused.is_empty() && Instant::now() < deadline {
            refused.retain_mut(|s| {
                if s.write(b"x").is_err() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
                !matches!(s.read(&mut [0; 8]), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
            });
        }
        assert!(
            refused.is_empty(),
            "{} refused connections still open at the server after the stop",
            refused.len()
        );
        drop(held);
    });
}
