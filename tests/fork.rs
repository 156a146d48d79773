//! A process that forks and goes on using greenlet in the child: the
//! child's hub makes its own epoll (the parent's is shared through the
//! fork), and its own blocking pool (the parent's threads are not copied).
//!
//! Each test runs in a fresh process (a re-run of this binary), forks
//! there, and waits for its child under a deadline, killing it if the
//! deadline passes. A child reports through its exit status only.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use greenlet::net::unix::UnixStream;
use greenlet::threadpool::spawn_blocking;
use greenlet::{sleep, spawn, with_timeout, yield_now};
use util::{assert_child_passed, child_mode, fork_child, run_child_within, wait_forked};

/// Each scenario's process, forks included.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` in a fresh process (scenario `mode`), or, in that process,
/// runs `body`.
fn scenario(test: &str, mode: &str, body: impl FnOnce()) {
    if child_mode().as_deref() == Some(mode) {
        body();
    } else {
        assert_child_passed(&run_child_within(test, mode, &[], LIMIT));
    }
}

/// A greenlet reading one byte from `s`: (bytes read, the byte).
fn read_one(s: UnixStream) -> greenlet::Greenlet<(usize, u8)> {
    spawn(move || {
        let mut b = [0u8; 1];
        let n = (&s).read(&mut b).expect("read");
        (n, b[0])
    })
}

/// `rounds` request/reply turns between this greenlet and an echo
/// greenlet over a new socket pair, sleeping now and then; `false` if they
/// did not finish within 10 s or a reply was wrong.
fn ping_pong(rounds: u64) -> bool {
    let (x, y) = UnixStream::pair().expect("socketpair");
    let echo = spawn(move || {
        let mut b = [0u8; 8];
        while let Ok(n @ 1..) = (&y).read(&mut b) {
            if (&y).write_all(&b[..n]).is_err() {
                break;
            }
        }
    });
    let ok = with_timeout(Duration::from_secs(10), || {
        for i in 0..rounds {
            (&x).write_all(&i.to_ne_bytes()).expect("write");
            let mut b = [0u8; 8];
            (&x).read_exact(&mut b).expect("read");
            if u64::from_ne_bytes(b) != i {
                return false;
            }
            if i % 16 == 0 {
                sleep(Duration::from_millis(1));
            }
        }
        true
    });
    drop(x);
    let _ = with_timeout(Duration::from_secs(5), || echo.join());
    ok == Ok(true)
}

#[test]
fn a_forked_childs_hub_leaves_the_parents_events_alone() {
    scenario(
        "a_forked_childs_hub_leaves_the_parents_events_alone",
        "steal",
        || {
            let (a, b) = UnixStream::pair().unwrap();
            // Taken by whichever process joins it (each has a copy).
            let reader = std::cell::Cell::new(Some(read_one(a)));
            yield_now(); // it parks: `a` is in the hub's epoll
            let child = fork_child(|| {
                // The child's copy of the reader goes (closing the child's
                // copy of `a`), and its hub waits in epoll for 1.5 s: on
                // the parent's instance, had it kept it.
                let reader = reader.take().unwrap();
                reader.kill();
                let _ = reader.join();
                sleep(Duration::from_millis(1500));
                0
            });
            // The parent's hub does not poll meanwhile; the byte arrives
            // while only the child waits in epoll.
            std::thread::sleep(Duration::from_millis(300));
            (&b).write_all(b"x").unwrap();
            // Time for a woken child to take the edge, before this hub
            // polls: the event is reported once, to whichever asks first.
            std::thread::sleep(Duration::from_millis(200));
            let reader = reader.take().unwrap();
            let got = with_timeout(Duration::from_secs(5), || reader.join().unwrap());
            assert_eq!(
                got.expect("the parent's reader never woke: the child's hub took its event"),
                (1, b'x')
            );
            assert_eq!(wait_forked(child, Duration::from_secs(20)), 0);
        },
    );
}

#[test]
fn a_forked_child_keeps_using_its_hub_and_pool_while_the_parent_uses_its_own() {
    scenario(
        "a_forked_child_keeps_using_its_hub_and_pool_while_the_parent_uses_its_own",
        "both",
        || {
            // Before the fork: a pool thread exists (idle), and a greenlet
            // is parked on a socket the child will write to.
            assert_eq!(spawn_blocking(|| 1), 1);
            let (a, b) = UnixStream::pair().unwrap();
            // Taken by whichever process joins it (each has a copy).
            let waiter = std::cell::Cell::new(Some(read_one(a)));
            yield_now();
            let child = fork_child(|| {
                // The greenlet parked before the fork wakes in the child.
                (&b).write_all(b"c").unwrap();
                let waiter = waiter.take().unwrap();
                match with_timeout(Duration::from_secs(5), || waiter.join()) {
                    Ok(Ok((1, b'c'))) => {}
                    other => {
                        eprintln!("child: the waiter from before the fork: {other:?}");
                        return 2;
                    }
                }
                // The child's own blocking pool (the parent's thread is
                // not here).
                if with_timeout(Duration::from_secs(5), || spawn_blocking(|| 7)) != Ok(7) {
                    eprintln!("child: spawn_blocking did not come back");
                    return 3;
                }
                // New fds, while the parent polls its own.
                if !ping_pong(400) {
                    eprintln!("child: ping-pong failed");
                    return 4;
                }
                0
            });
            // The parent's copy of the waiter must not read the child's
            // byte: it stays off the loop until the child has it.
            std::thread::sleep(Duration::from_millis(300));
            let waiter = waiter.take().unwrap();
            waiter.kill();
            assert!(waiter.join().unwrap_err().is_killed());
            assert!(ping_pong(400), "the parent's ping-pong failed");
            assert_eq!(spawn_blocking(|| 8), 8);
            assert_eq!(wait_forked(child, Duration::from_secs(30)), 0);
        },
    );
}

#[test]
fn a_grandchild_gets_its_own_epoll_and_pool_too() {
    scenario(
        "a_grandchild_gets_its_own_epoll_and_pool_too",
        "grandchild",
        || {
            assert_eq!(spawn_blocking(|| 1), 1);
            let child = fork_child(|| {
                if !ping_pong(50) || spawn_blocking(|| 2) != 2 {
                    return 2;
                }
                let grandchild = fork_child(|| {
                    if !ping_pong(200) {
                        return 3;
                    }
                    match with_timeout(Duration::from_secs(5), || spawn_blocking(|| 3)) {
                        Ok(3) => 0,
                        _ => 4,
                    }
                });
                // The child polls its own epoll while the grandchild does.
                if !ping_pong(200) {
                    return 5;
                }
                wait_forked(grandchild, Duration::from_secs(20))
            });
            assert!(ping_pong(200), "the parent's ping-pong failed");
            assert_eq!(wait_forked(child, Duration::from_secs(30)), 0);
        },
    );
}

#[test]
fn pool_jobs_running_or_queued_at_the_fork_stay_the_parents() {
    scenario(
        "pool_jobs_running_or_queued_at_the_fork_stay_the_parents",
        "pool_job",
        || {
            // One pool thread: the second job queues behind the first.
            greenlet::threadpool::set_max_threads(1);
            let started = std::sync::Arc::new(std::sync::Barrier::new(2));
            let s = started.clone();
            let running = std::cell::Cell::new(Some(spawn(move || {
                spawn_blocking(move || {
                    s.wait();
                    std::thread::sleep(Duration::from_millis(500));
                    5
                })
            })));
            let queued = std::cell::Cell::new(Some(spawn(|| spawn_blocking(|| 9))));
            yield_now(); // both waiters queue their jobs and park
            started.wait(); // the pool thread runs the first
            let child = fork_child(|| {
                // Both jobs are the parent's: the child's copies of their
                // waiters wait on; the child's own jobs run.
                for (name, waiter) in [("running", &running), ("queued", &queued)] {
                    let waiter = waiter.take().unwrap();
                    let r = with_timeout(Duration::from_millis(1500), || waiter.join());
                    if r.is_ok() {
                        eprintln!("child: the parent's {name} job came back in the child: {r:?}");
                        return 2;
                    }
                }
                if spawn_blocking(|| 6) != 6 {
                    return 3;
                }
                // The child's pool has the parent's limit.
                if greenlet::threadpool::max_threads() != 1 {
                    return 4;
                }
                0
            });
            assert_eq!(running.take().unwrap().join().unwrap(), 5);
            assert_eq!(queued.take().unwrap().join().unwrap(), 9);
            assert_eq!(wait_forked(child, Duration::from_secs(20)), 0);
        },
    );
}

#[test]
fn a_waiter_on_an_fd_the_child_cannot_register_again_is_not_stranded() {
    scenario(
        "a_waiter_on_an_fd_the_child_cannot_register_again_is_not_stranded",
        "replaced_fd",
        || {
            use std::os::fd::AsRawFd;
            let (a, _b) = UnixStream::pair().unwrap();
            let fd = a.as_raw_fd();
            let reader = std::cell::Cell::new(Some(spawn(move || {
                let mut buf = [0u8; 1];
                (&a).read(&mut buf).map_err(|e| e.raw_os_error())
            })));
            yield_now(); // it parks on `fd`
            let child = fork_child(|| {
                // Behind the hub's back, `fd` becomes /dev/null, which
                // epoll refuses (EPERM): the child's own epoll cannot have
                // it. Its waiter is woken to retry, and its `recv` says
                // why (ENOTSOCK), instead of waiting on an fd no epoll
                // watches.
                let null = std::fs::File::open("/dev/null").unwrap();
                // SAFETY (test): replaces an fd the reader owns with another
                // open file; the reader's stream closes it later.
                assert_eq!(unsafe { libc::dup2(null.as_raw_fd(), fd) }, fd);
                let reader = reader.take().unwrap();
                match with_timeout(Duration::from_secs(5), || reader.join()) {
                    Ok(Ok(Err(Some(libc::ENOTSOCK)))) => 0,
                    other => {
                        eprintln!("child: the reader of the replaced fd: {other:?}");
                        2
                    }
                }
            });
            assert_eq!(wait_forked(child, Duration::from_secs(20)), 0);
            let reader = reader.take().unwrap();
            reader.kill();
            assert!(reader.join().unwrap_err().is_killed());
        },
    );
}

#[test]
fn a_child_forked_inside_a_greenlet_goes_on_in_it() {
    scenario(
        "a_child_forked_inside_a_greenlet_goes_on_in_it",
        "in_greenlet",
        || {
            let forker = spawn(|| {
                // In the child this greenlet goes on, over the copy of the
                // loop (the root is parked in `join` below).
                fork_child(|| if ping_pong(200) { 0 } else { 2 })
            });
            let child = forker.join().unwrap();
            assert!(ping_pong(200), "the parent's ping-pong failed");
            assert_eq!(wait_forked(child, Duration::from_secs(20)), 0);
        },
    );
}

#[test]
fn another_thread_of_the_child_wakes_its_hub() {
    scenario(
        "another_thread_of_the_child_wakes_its_hub",
        "remote",
        || {
            // The parent's hub has polled (its doorbell is in its epoll).
            sleep(Duration::from_millis(1));
            let child = fork_child(|| {
                // The root waits in the child's own epoll for a set from a
                // thread the child starts: only the doorbell wakes it (the
                // timeout is 5 s away).
                let ev = std::sync::Arc::new(greenlet::sync::Event::new());
                let setter = {
                    let ev = ev.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(200));
                        ev.set();
                    })
                };
                let start = std::time::Instant::now();
                let woke = with_timeout(Duration::from_secs(5), || ev.wait());
                setter.join().unwrap();
                if woke.is_err() || start.elapsed() > Duration::from_secs(3) {
                    eprintln!("child: the set from another thread did not wake the hub");
                    return 2;
                }
                0
            });
            assert_eq!(wait_forked(child, Duration::from_secs(20)), 0);
        },
    );
}
