//! `greenlet::process`: children whose waits and pipes park the greenlet.

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenlet::process::{Command, Stdio};

mod util;

/// Runs `f` on its own thread (with its own hub) and fails the test if it
/// has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

#[test]
fn twenty_children_waited_concurrently_finish_together_and_the_ticker_keeps_time() {
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
    eprintln!("20 x sh -c 'sleep 0.2': {elapsed:?}; ticker's longest gap {worst:?}");
    assert!(elapsed < Duration::from_millis(600), "took {elapsed:?}");
    worst.assert_below(Duration::from_millis(50));
}

#[test]
fn output_of_a_child_writing_10_mib_to_stdout_and_stderr_at_once_does_not_deadlock() {
    let out = deadline(60, || {
        let tick = util::ticker::start();
        // Both streams at once: a child that fills one pipe while the
        // parent reads only the other would block forever.
        let script = "head -c 10485760 /dev/zero & head -c 10485760 /dev/zero >&2; wait";
        let out = Command::new("sh").args(["-c", script]).output().unwrap();
        let worst = tick.stop();
        (
            (out.status.success(), out.stdout.len(), out.stderr.len()),
            worst,
        )
    });
    eprintln!("output() of 2 x 10 MiB: ticker's longest gap {:?}", out.1);
    assert_eq!(out.0, (true, 10 << 20, 10 << 20));
    out.1.assert_below(Duration::from_millis(100));
}

#[test]
fn exit_codes_signals_and_try_wait_mirror_std() {
    deadline(20, || {
        let st = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(st.code(), Some(3));
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(libc::SIGKILL));
        // Waiting again returns the collected status at once.
        assert_eq!(child.wait().unwrap(), st);
        assert_eq!(child.try_wait().unwrap(), Some(st));
        let err = Command::new("/no/such/program").status().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    });
}

#[test]
fn with_timeout_ends_a_wait_and_the_child_can_be_killed_and_reaped() {
    deadline(20, || {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let t = Instant::now();
        let r = greenlet::with_timeout(Duration::from_millis(50), || child.wait());
        assert!(r.is_err());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        child.kill().unwrap();
        assert!(!child.wait().unwrap().success());
    });
}

#[test]
fn kill_of_a_greenlet_waiting_for_a_child_unwinds_it() {
    deadline(20, || {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id();
        let waiter = greenlet::spawn(move || {
            let _ = child.wait();
            child // (never reached)
        });
        greenlet::sleep(Duration::from_millis(20));
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        // The Child was dropped with the greenlet: reap it by pid.
        // SAFETY: kill and waitpid on our own child's pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
        }
    });
}

#[test]
fn piped_stdin_and_stdout_stream_through_a_child_in_both_directions() {
    deadline(30, || {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // 4 MiB: many times a pipe's capacity, so writer and reader must
        // take turns through the hub.
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let writer = greenlet::spawn(move || stdin.write_all(&data));
        let mut got = Vec::new();
        stdout.read_to_end(&mut got).unwrap();
        writer.join().unwrap().unwrap();
        assert!(got == expect, "{} bytes came back", got.len());
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn output_defaults_to_null_stdin_and_keeps_explicit_stdio() {
    deadline(20, || {
        // stdin is null for output(): cat sees EOF at once.
        let out = Command::new("cat").output().unwrap();
        assert!(out.status.success() && out.stdout.is_empty());
        let out = Command::new("sh")
            .args(["-c", "echo a; echo b >&2"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a\n");
        assert!(out.stderr.is_empty());
        // status() inherits stdio; and a Command can be reused.
        let mut cmd = Command::new("true");
        assert!(cmd.status().unwrap().success());
        assert!(cmd.output().unwrap().status.success());
    });
}

#[test]
fn a_std_child_made_green_is_waited_for_without_blocking() {
    deadline(20, || {
        let std_child = std::process::Command::new("sleep")
            .arg("0.1")
            .spawn()
            .unwrap();
        let mut child = greenlet::process::Child::from_std(std_child).unwrap();
        let tick = util::ticker::start();
        assert!(child.wait().unwrap().success());
        tick.stop().assert_below(Duration::from_millis(50));
    });
}
