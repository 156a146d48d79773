//! 10,000 concurrent connections held open and echoing on one thread.
//!
//! Both ends of 10,000 connections need 20,000 descriptors, the hard limit
//! here, so the clients run in a child process (this same test binary,
//! running the ignored `c10k_client` test). The server is this process's
//! main test thread: one hub, a greenlet per connection. Each side raises
//! its own soft fd limit within the hard limit.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};

const N: usize = 10_000;

/// Raises the soft fd limit to at least `want` (within the hard limit).
fn raise_fd_limit(want: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    assert!(
        rl.rlim_max >= want,
        "the hard fd limit {} is below the {want} this test needs",
        rl.rlim_max
    );
    if rl.rlim_cur < want {
        rl.rlim_cur = want;
        // SAFETY: valid pointer; a soft limit within the hard one.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
    }
}

#[test]
fn ten_thousand_connections_held_open_and_echoing_on_one_thread() {
    raise_fd_limit(N as u64 + 1000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let echoed = Rc::new(Cell::new(0usize));
    let errors = Rc::new(Cell::new(0usize));
    let (l2, p2, e2, x2) = (live.clone(), peak.clone(), echoed.clone(), errors.clone());
    greenlet::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                x2.set(x2.get() + 1);
                continue;
            };
            l2.set(l2.get() + 1);
            p2.set(p2.get().max(l2.get()));
            let (l3, e3, x3) = (l2.clone(), e2.clone(), x2.clone());
            greenlet::spawn(move || {
                let mut buf = [0; 64];
                loop {
                    match (&stream).read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if (&stream).write_all(&buf[..n]).is_err() {
                                x3.set(x3.get() + 1);
                                break;
                            }
                            e3.set(e3.get() + 1);
                        }
                        Err(_) => {
                            x3.set(x3.get() + 1);
                            break;
                        }
                    }
                }
                l3.set(l3.get() - 1);
            });
        }
    });

    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "c10k_client", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env("GREENLET_C10K_ADDR", addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // This thread's hub serves the connections while a pool thread waits
    // for the child.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (status, out, err) = greenlet::threadpool::spawn_blocking(move || {
        let read_all = |mut r: Box<dyn Read + Send>| {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        };
        let err_reader = std::thread::spawn(move || read_all(Box::new(stderr)));
        let out = read_all(Box::new(stdout));
        (child.wait().unwrap(), out, err_reader.join().unwrap())
    });
    // Let the handlers see the clients' EOFs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.get() > 0 && Instant::now() < deadline {
        greenlet::sleep(Duration::from_millis(10));
    }
    assert!(status.success(), "client process failed:\n{out}\n{err}");
    assert!(out.contains("c10k client ok"), "{out}\n{err}");
    assert_eq!(peak.get(), N, "connections open at once");
    assert_eq!(echoed.get(), 2 * N, "echo rounds");
    assert_eq!(errors.get(), 0, "server-side errors");
    assert_eq!(live.get(), 0, "connections left open");
    eprintln!(
        "{N} connections, 2 echo rounds each, in {:?}",
        start.elapsed()
    );
}

/// The client side, run by the test above in a child process.
#[test]
#[ignore = "run by ten_thousand_connections_held_open_and_echoing_on_one_thread in a child process"]
fn c10k_client() {
    let Ok(addr) = std::env::var("GREENLET_C10K_ADDR") else {
        eprintln!("GREENLET_C10K_ADDR not set: nothing to do");
        return;
    };
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    raise_fd_limit(N as u64 + 1000);
    let round = |s: &TcpStream, i: usize| -> io::Result<()> {
        let msg = (i as u64).to_le_bytes();
        (&*s).write_all(&msg)?;
        let mut back = [0; 8];
        (&*s).read_exact(&mut back)?;
        assert_eq!(back, msg);
        Ok(())
    };
    // Phase 1: every client connects and echoes once; the streams stay open.
    let connecting: Vec<_> = (0..N)
        .map(|i| {
            greenlet::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || -> io::Result<TcpStream> {
                    let s = TcpStream::connect(addr)?;
                    round(&s, i)?;
                    Ok(s)
                })
                .unwrap()
        })
        .collect();
    let streams: Vec<TcpStream> = greenlet::joinall(connecting)
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    // Phase 2: all 10,000 are open at once; each echoes again.
    let echoing: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            greenlet::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || round(&s, i + N))
                .unwrap()
        })
        .collect();
    for r in greenlet::joinall(echoing) {
        r.unwrap().unwrap();
    }
    println!("c10k client ok");
}
