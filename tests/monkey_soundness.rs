//! Soundness regressions in the monkey hooks (issue 9): each test is the
//! program that broke, bounded in time.

mod util;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenlet::{sleep, spawn};
use util::{assert_child_passed, child_mode, run_child_within, within};

const LIMIT: Duration = Duration::from_secs(20);

fn patch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(greenlet::monkey::patch_all);
}

#[test]
fn std_stream_read_through_the_hooks_then_converted_reads_again() {
    patch();
    within(LIMIT, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for b in [b"a", b"b"] {
                std::thread::sleep(Duration::from_millis(50));
                s.write_all(b).unwrap();
            }
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let g = spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut one = [0u8; 1];
            // Waits in the hook: the hook layer registers the fd.
            s.read_exact(&mut one).unwrap();
            assert_eq!(&one, b"a");
            let mut green = greenlet::net::TcpStream::from(s);
            // Waits in greenlet::net: must not fail with EEXIST.
            green.read_exact(&mut one).unwrap();
            assert_eq!(&one, b"b");
        });
        g.join().unwrap();
        server.join().unwrap();
    });
}

static TICKS: AtomicU64 = AtomicU64::new(0);
static TICKS_DURING_HANDLER: AtomicU64 = AtomicU64::new(u64::MAX);
static HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn sleepy_handler(_: libc::c_int) {
    let before = TICKS.load(Ordering::SeqCst);
    // SAFETY (test): usleep is async-signal-safe.
    unsafe { libc::usleep(50_000) };
    TICKS_DURING_HANDLER.store(TICKS.load(Ordering::SeqCst) - before, Ordering::SeqCst);
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_signal_handler_running_in_a_greenlet_gets_the_real_calls() {
    if child_mode().as_deref() == Some("signal") {
        patch();
        let handler = sleepy_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY (test): installs a handler through the hooked `signal`.
        let old = unsafe { libc::signal(libc::SIGUSR2, handler) };
        assert_eq!(old, libc::SIG_DFL);
        let ticker = spawn(|| {
            let end = Instant::now() + Duration::from_millis(300);
            while Instant::now() < end {
                TICKS.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(1));
            }
        });
        let raiser = spawn(|| {
            sleep(Duration::from_millis(20));
            // The handler runs right here, on this greenlet's stack.
            // SAFETY (test): raising a signal with a handler installed.
            unsafe { libc::raise(libc::SIGUSR2) };
        });
        raiser.join().unwrap();
        ticker.join().unwrap();
        assert_eq!(HANDLER_RUNS.load(Ordering::SeqCst), 1);
        // The handler's usleep was the real one: no greenlet ran during it.
        assert_eq!(TICKS_DURING_HANDLER.load(Ordering::SeqCst), 0);
        // The previous handler reads back as the user's, not a trampoline.
        // SAFETY (test): restores the default disposition.
        let back = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
        assert_eq!(back, handler);
        // And through sigaction.
        // SAFETY (test): zeroed sigactions are valid.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()),
                0
            );
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut old),
                0
            );
            assert_eq!(old.sa_sigaction, handler);
        }
        return;
    }
    let out = run_child_within(
        "a_signal_handler_running_in_a_greenlet_gets_the_real_calls",
        "signal",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

#[test]
fn poll_on_an_fd_closed_mid_wait_leaves_no_waiter_behind() {
    patch();
    within(LIMIT, || {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let poller = spawn(move || {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY (test): one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 10_000) }
        });
        let closer = spawn(move || {
            sleep(Duration::from_millis(20));
            drop(a); // close(2) through the hook, while `poller` waits
        });
        closer.join().unwrap();
        let t = Instant::now();
        assert!(poller.join().unwrap() >= 0);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "poll was not woken by the close"
        );
        // With the waiter gone, the hub knows nothing can wake a deadlock:
        // a root wait that nothing can end must be reported, not hang.
        // `stubborn` unwinds and its destructor waits for `killer`, which
        // kills `stubborn` (kills do not interrupt an unwinding greenlet).
        struct WaitOnDrop(Option<greenlet::Greenlet<()>>);
        impl Drop for WaitOnDrop {
            fn drop(&mut self) {
                let _ = greenlet::iwait(self.0.take()).next();
            }
        }
        let killer_slot = std::rc::Rc::new(std::cell::RefCell::new(None));
        let ks = killer_slot.clone();
        let stubborn = std::rc::Rc::new(spawn(move || {
            let _w = WaitOnDrop(ks.borrow_mut().take());
            panic!("stubborn unwinds (expected)");
        }));
        let target = stubborn.clone();
        *killer_slot.borrow_mut() = Some(spawn(move || target.kill()));
        greenlet::yield_now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stubborn.kill()));
        let msg = util::payload_message(&*r.expect_err("the deadlock was not reported"));
        assert!(msg.contains("would block forever"), "{msg}");
    });
}

#[test]
fn getaddrinfo_finishing_after_its_thread_exited_writes_into_mapped_memory() {
    if child_mode().as_deref() == Some("dns_exit") {
        patch();
        std::thread::spawn(|| {
            // Occupy the single pool thread so the lookup waits behind it.
            let _busy = spawn(|| {
                greenlet::threadpool::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(300))
                })
            });
            let _lookup = spawn(|| {
                use std::net::ToSocketAddrs;
                let _ = ("localhost", 80).to_socket_addrs();
            });
            greenlet::yield_now();
            greenlet::yield_now();
            // Both greenlets are parked; the thread exits under them.
        })
        .join()
        .unwrap();
        // The pool now runs the lookup and writes its results into the
        // exited thread's greenlet stack.
        std::thread::sleep(Duration::from_millis(800));
        return;
    }
    let out = run_child_within(
        "getaddrinfo_finishing_after_its_thread_exited_writes_into_mapped_memory",
        "dns_exit",
        &[("GREENLET_THREADPOOL_SIZE", "1")],
        LIMIT,
    );
    assert_child_passed(&out);
}

/// A patched `poll` for `events` on `fd`, from a greenlet, with a 5 s
/// timeout: returns its result, `revents` and how long it took.
fn green_poll_one(
    fd: i32,
    events: libc::c_short,
) -> greenlet::Greenlet<(i32, libc::c_short, Duration)> {
    spawn(move || {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let t = Instant::now();
        // SAFETY (test): one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 5_000) };
        (n, p.revents, t.elapsed())
    })
}

#[test]
fn poll_for_events_other_than_in_and_out_wakes_when_they_come() {
    patch();
    within(LIMIT, || {
        // POLLPRI: TCP urgent data arrives while the greenlet waits.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let poller = green_poll_one(server.as_raw_fd(), libc::POLLPRI);
        sleep(Duration::from_millis(30));
        util::send_urgent(client.as_raw_fd(), b'!');
        let (n, revents, took) = poller.join().unwrap();
        assert_eq!(n, 1, "POLLPRI poll timed out after {took:?}");
        assert!(
            took < Duration::from_secs(3),
            "POLLPRI woke only at the timeout"
        );
        assert!(revents & libc::POLLPRI != 0, "revents {revents:#x}");
        // POLLRDHUP, and no event at all (hang-ups are always reported):
        // the peer closes while the greenlet waits.
        for events in [libc::POLLRDHUP, 0] {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let poller = green_poll_one(a.as_raw_fd(), events);
            sleep(Duration::from_millis(30));
            drop(b);
            let (n, revents, took) = poller.join().unwrap();
            assert_eq!(n, 1, "poll for {events:#x} timed out after {took:?}");
            assert!(
                took < Duration::from_secs(3),
                "poll for {events:#x} woke only at the timeout"
            );
            assert!(
                revents & (libc::POLLRDHUP | libc::POLLHUP) != 0,
                "revents {revents:#x}"
            );
        }
    });
}

#[test]
fn patched_poll_on_a_green_socket_lets_the_hub_run() {
    patch();
    within(LIMIT, || {
        use greenlet::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        // A read that waits registers the green socket's fd with the hub.
        let reader = spawn(move || {
            let mut one = [0u8; 1];
            (&server).read_exact(&mut one).unwrap();
            server
        });
        sleep(Duration::from_millis(20));
        client.write_all(b"a").unwrap();
        let server = reader.join().unwrap();
        // A C library handed the socket's fd (libssh2, say) polls it: the
        // poll must park, so the writer below runs on the same hub.
        let fd = server.as_raw_fd();
        let writer = spawn(move || {
            sleep(Duration::from_millis(30));
            client.write_all(b"b").unwrap();
            client
        });
        let poller = green_poll_one(fd, libc::POLLIN);
        let (n, revents, took) = poller.join().unwrap();
        let _client = writer.join().unwrap();
        assert_eq!(n, 1, "poll timed out after {took:?}");
        assert!(revents & libc::POLLIN != 0, "revents {revents:#x}");
        assert!(took < Duration::from_secs(3), "the poll blocked the hub");
        // The green socket still waits through its own registration.
        let mut one = [0u8; 1];
        (&server).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"b");
    });
}

#[test]
fn std_unix_datagram_send_to_a_full_receiver_sleeps_until_it_drains() {
    use std::os::unix::net::UnixDatagram;
    patch();
    util::within(Duration::from_secs(20), || {
        let dir = util::temp_dir("monkey-dgram-full");
        let path = dir.join("full.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        // Another socket fills the receiver's queue.
        let filler = UnixDatagram::unbound().unwrap();
        filler.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while filler.send_to(b"x", &path).is_ok() {
            queued += 1;
            assert!(queued < 100_000, "the receive queue never filled");
        }
        let p = path.clone();
        let blocked = greenlet::spawn(move || {
            let sender = UnixDatagram::unbound().unwrap();
            sender.send_to(b"y", &p)
        });
        let cpu = util::thread_cpu_time();
        greenlet::sleep(Duration::from_millis(300));
        let cpu = util::thread_cpu_time() - cpu;
        assert!(!blocked.is_finished(), "the send did not wait");
        assert!(
            cpu < Duration::from_millis(60),
            "the hub spun while the send waited: {cpu:?} of CPU in 300 ms"
        );
        let mut buf = [0; 8];
        for _ in 0..queued {
            receiver.recv(&mut buf).unwrap();
        }
        assert_eq!(blocked.join().unwrap().unwrap(), 1);
        assert_eq!(receiver.recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'y');
    });
}

#[test]
fn select_with_a_timeval_of_more_than_a_second_of_microseconds_waits_it() {
    if child_mode().as_deref() == Some("select_usec") {
        patch();
        // The kernel carries microseconds past a second into seconds:
        // 4.3 s here (4,300,000,000 ns overflows a u32).
        let g = spawn(|| {
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 4_300_000,
            };
            greenlet::with_timeout(Duration::from_millis(300), || {
                // SAFETY (test): no fd sets, a valid timeval.
                unsafe {
                    libc::select(
                        0,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        &mut tv,
                    )
                }
            })
        });
        let r = g.join().unwrap();
        assert!(
            r.is_err(),
            "select returned {r:?} before 300 ms of its 4.3 s"
        );
        return;
    }
    let out = run_child_within(
        "select_with_a_timeval_of_more_than_a_second_of_microseconds_waits_it",
        "select_usec",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

/// `ppoll` with a timespec the kernel rejects (negative seconds, or
/// nanoseconds outside `0..1_000_000_000`) fails with EINVAL at once, in a
/// greenlet too. Before, the hook clamped it into range and waited.
#[test]
fn ppoll_with_an_invalid_timespec_fails_with_einval() {
    patch();
    within(LIMIT, || {
        let g = spawn(|| {
            // Never readable: a wait would last the whole timeout.
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let bad = [(0, -1), (0, 1_000_000_000), (-1, 0), (-1, 500_000_000)];
            for (sec, nsec) in bad {
                let ts = libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                };
                let mut p = libc::pollfd {
                    fd: a.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let t = Instant::now();
                // SAFETY (test): one valid pollfd, a timespec, no mask.
                let r = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
                let err = std::io::Error::last_os_error();
                assert_eq!(r, -1, "ppoll({sec} s, {nsec} ns) returned {r}");
                assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{sec} s, {nsec} ns");
                assert!(t.elapsed() < Duration::from_millis(500), "it waited");
            }
            // A valid one still waits through the hub and times out.
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            let mut p = libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY (test): as above.
            assert_eq!(unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) }, 0);
        });
        g.join().unwrap();
    });
}

/// A pipe read end with `b"hi"` queued, and its write end.
fn pipe_with_data() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY (test): a valid out-array of two fds.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY (test): both fds were just opened, and are owned here alone.
    let (r, w) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    std::fs::File::from(w.try_clone().unwrap())
        .write_all(b"hi")
        .unwrap();
    (r, w)
}

/// Reads `fd` through the `read` hook, in a greenlet.
fn hooked_read(fd: libc::c_int) -> std::io::Result<Vec<u8>> {
    spawn(move || {
        let mut buf = [0u8; 8];
        // SAFETY (test): a valid buffer; `fd` is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(buf[..n as usize].to_vec())
        }
    })
    .join()
    .unwrap()
}

/// An fd closed by `dup2`, `dup3` or `close_range` (not through the `close`
/// hook) leaves nothing behind in the hooks' fd table: the fd number, now
/// a pipe, is read as a pipe. Before, it kept the socket's entry, and the
/// `read` hook tried `recv` on the pipe (ENOTSOCK). A `close_range` that
/// only sets close-on-exec closes nothing and keeps the entry (the
/// socket's read timeout still applies). In a child process: the test
/// needs the fd number it freed back, with no other test opening fds.
#[test]
fn fds_closed_by_dup2_dup3_and_close_range_leave_no_stale_entry() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    if child_mode().as_deref() != Some("dup_close") {
        let out = run_child_within(
            "fds_closed_by_dup2_dup3_and_close_range_leave_no_stale_entry",
            "dup_close",
            &[],
            LIMIT,
        );
        assert_child_passed(&out);
        return;
    }
    patch();
    let socket_fd = || {
        // Created through the `socket` hook: its entry says "socket".
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.into_raw_fd()
    };
    let (r, _w) = pipe_with_data();
    // SAFETY (test): both fds are open; dup2 closes the socket.
    let n = socket_fd();
    assert_eq!(unsafe { libc::dup2(r.as_raw_fd(), n) }, n);
    assert_eq!(hooked_read(n).unwrap(), b"hi", "after dup2");
    // SAFETY (test): `n` is ours.
    unsafe { libc::close(n) };

    let (r, _w) = pipe_with_data();
    let n = socket_fd();
    // SAFETY (test): as above.
    assert_eq!(unsafe { libc::dup3(r.as_raw_fd(), n, libc::O_CLOEXEC) }, n);
    assert_eq!(hooked_read(n).unwrap(), b"hi", "after dup3");
    // SAFETY (test): `n` is ours.
    unsafe { libc::close(n) };

    let (r, _w) = pipe_with_data();
    let n = socket_fd();
    // SAFETY (test): `n` is ours; closed by close_range, then the number
    // is taken again (the lowest free one at or above `n`: `n` itself).
    assert_eq!(unsafe { libc::close_range(n as u32, n as u32, 0) }, 0);
    let again = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_DUPFD, n) };
    assert_eq!(again, n, "the freed fd number was taken meanwhile");
    assert_eq!(hooked_read(n).unwrap(), b"hi", "after close_range");
    // SAFETY (test): `n` is ours.
    unsafe { libc::close(n) };

    // Close-on-exec only: the socket stays, and so does its timeout.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let n = s.as_raw_fd() as u32;
    // SAFETY (test): flags only.
    assert_eq!(
        unsafe { libc::close_range(n, n, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) },
        0
    );
    let r = spawn(move || greenlet::with_timeout(Duration::from_secs(5), || s.recv(&mut [0; 8])))
        .join()
        .unwrap();
    match r {
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        other => panic!("the read timeout was lost: {other:?}"),
    }
}
