//! Under `patch_all`, unmodified `std::process` waits and blocking reads
//! and writes on pipes and eventfds park the greenlet instead of the hub.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod util;

/// Runs `f` on its own thread (with its own hub) and fails the test if it
/// has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    greenlet::monkey::patch_all();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

#[test]
fn twenty_std_command_status_calls_overlap_and_the_ticker_keeps_time() {
    let (elapsed, worst) = deadline(30, || {
        let tick = util::ticker::start();
        let start = Instant::now();
        let children: Vec<_> = (0..20)
            .map(|_| greenlet::spawn(|| Command::new("sh").args(["-c", "sleep 0.2"]).status()))
            .collect();
        for r in greenlet::joinall(children) {
            assert!(r.unwrap().unwrap().success());
        }
        let elapsed = start.elapsed();
        (elapsed, tick.stop())
    });
    eprintln!(
        "patched: 20 x Command::status(sleep 0.2): {elapsed:?}; ticker's longest gap {worst:?}"
    );
    assert!(elapsed < Duration::from_millis(600), "took {elapsed:?}");
    worst.assert_below(Duration::from_millis(50));
}

#[test]
// Two children are reaped by the raw waitid and wait4 calls under test.
#[allow(clippy::zombie_processes)]
fn std_child_wait_and_raw_waitid_park_and_report_the_exit() {
    deadline(30, || {
        let tick = util::ticker::start();
        // Hooks cooperate inside greenlets only: not in the root context.
        greenlet::spawn(move || {
            let mut child = Command::new("sh")
                .args(["-c", "sleep 0.1; exit 4"])
                .spawn()
                .unwrap();
            assert_eq!(child.wait().unwrap().code(), Some(4));
            let child = Command::new("sleep").arg("0.1").spawn().unwrap();
            // SAFETY: zeroed siginfo_t is a valid out-parameter; waitid on our
            // own child's pid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, libc::WEXITED) };
            assert_eq!(r, 0);
            // SAFETY: filled by a successful waitid.
            assert_eq!(unsafe { info.si_pid() }, child.id() as i32);
            let child = Command::new("sleep").arg("0.1").spawn().unwrap();
            let mut status = 0;
            // SAFETY: a valid out-pointer; our own child's pid.
            let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, std::ptr::null_mut()) };
            assert_eq!(r, child.id() as i32);
            assert!(libc::WIFEXITED(status));
        })
        .join()
        .unwrap();
        let worst = tick.stop();
        worst.assert_below(Duration::from_millis(50));
    });
}

#[test]
fn with_timeout_around_a_std_wait_returns_elapsed_and_the_child_stays_waitable() {
    deadline(30, || {
        // Hooks cooperate inside greenlets only: not in this root context.
        let g = greenlet::spawn(|| {
            let mut child = Command::new("sleep").arg("10").spawn().unwrap();
            let t = Instant::now();
            let r = greenlet::with_timeout(Duration::from_millis(50), || child.wait());
            assert!(r.is_err(), "{r:?}");
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
            child.kill().unwrap();
            child.wait().map(|s| s.success())
        });
        assert!(!g.join().unwrap().unwrap());
    });
}

#[test]
fn std_pipe_reads_and_writes_between_greenlets_cooperate() {
    deadline(30, || {
        let (mut reader, mut writer) = io::pipe().unwrap();
        // 1 MiB through a 64 KiB pipe: a blocking write would wait for
        // the reader greenlet forever (both on this hub).
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
        let expect = data.clone();
        let w = greenlet::spawn(move || {
            writer.write_all(&data).unwrap();
        });
        let r = greenlet::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        assert!(r.join().unwrap() == expect);
        w.join().unwrap();
    });
}

#[test]
fn a_read_on_a_child_stdout_pipe_leaves_the_ticker_running() {
    deadline(30, || {
        let tick = util::ticker::start();
        greenlet::spawn(|| {
            let mut child = Command::new("sh")
                .args(["-c", "sleep 0.2; echo done"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut s = String::new();
            child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, "done\n");
            child.wait().unwrap();
        })
        .join()
        .unwrap();
        let worst = tick.stop();
        worst.assert_below(Duration::from_millis(50));
    });
}

#[test]
fn a_blocking_eventfd_read_parks_until_another_greenlet_writes() {
    deadline(30, || {
        // SAFETY: eventfd returns a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
        let raw = fd.as_raw_fd();
        let reader = greenlet::spawn(move || {
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into `v`; `fd` outlives this greenlet.
            let n = unsafe { libc::read(raw, (&mut v as *mut u64).cast(), 8) };
            (n, v)
        });
        greenlet::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished());
        let three = 3u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer.
        assert_eq!(unsafe { libc::write(raw, three.as_ptr().cast(), 8) }, 8);
        assert_eq!(reader.join().unwrap(), (8, 3));
        drop(fd);
    });
}

#[test]
fn kill_of_a_greenlet_blocked_in_a_pipe_read_ends_it() {
    deadline(30, || {
        let (mut reader, writer) = io::pipe().unwrap();
        let g = greenlet::spawn(move || reader.read(&mut [0; 8]));
        greenlet::sleep(Duration::from_millis(20));
        g.kill();
        assert!(g.join().unwrap_err().is_killed());
        drop(writer);
    });
}
