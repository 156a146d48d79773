//! A patched program that forks: the monkey hooks in the child (std's
//! `Command` with `pre_exec`, and a child that goes on serving `std::net`
//! in greenlets) leave the parent's epoll registrations and events alone.
//!
//! Each test runs in a fresh process (a re-run of this binary) and waits
//! for what it forks under a deadline.

mod util;

use std::io::{Read, Write};
use std::sync::Once;
use std::time::Duration;

use greenlet::{spawn, with_timeout, yield_now};
use util::{assert_child_passed, child_mode, fork_child, run_child_within, wait_forked};

const LIMIT: Duration = Duration::from_secs(60);

fn patch() {
    static ONCE: Once = Once::new();
    ONCE.call_once(greenlet::monkey::patch_all);
}

#[test]
fn a_forked_child_serves_std_net_in_greenlets_and_leaves_the_parents_accept_alone() {
    const NAME: &str =
        "a_forked_child_serves_std_net_in_greenlets_and_leaves_the_parents_accept_alone";
    if child_mode().as_deref() != Some("serve") {
        assert_child_passed(&run_child_within(NAME, "serve", &[], LIMIT));
        return;
    }
    patch();
    // The parent's greenlet waits in a patched `accept`: the listener is
    // in the hub's epoll.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = std::cell::Cell::new(Some(spawn(move || {
        listener.accept().map(|(mut s, _)| {
            let mut b = [0u8; 4];
            s.read_exact(&mut b).map(|()| b)
        })
    })));
    yield_now();
    // The child serves `std::net` through the hooks, on a listener of its
    // own, while its hub waits in epoll.
    let pid = fork_child(|| {
        // The child's copy of the acceptor goes; the child serves an
        // echo on a listener of its own, through the hooks.
        let acceptor = acceptor.take().unwrap();
        acceptor.kill();
        let _ = acceptor.join();
        let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let own_addr = own.local_addr().unwrap();
        let echo = spawn(move || {
            let (mut s, _) = own.accept().unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let client = spawn(move || {
            let mut c = std::net::TcpStream::connect(own_addr).unwrap();
            c.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            // A patched sleep in a greenlet: the hub waits in epoll
            // meanwhile (its own, or the parent's had it kept it).
            std::thread::sleep(Duration::from_millis(1500));
            b
        });
        let ok = with_timeout(Duration::from_secs(10), || {
            client.join().map(|b| &b == b"ping").unwrap_or(false) && echo.join().is_ok()
        });
        if ok == Ok(true) { 0 } else { 2 }
    });
    // Root context: the real sleep, so the parent's hub does not poll while
    // the child's waits in epoll; then a client the parent's acceptor must
    // see, from a plain thread (the real calls), and time for a woken child
    // to take the edge first, had it been its to take.
    std::thread::sleep(Duration::from_millis(400));
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"abcd").unwrap();
        std::thread::sleep(Duration::from_millis(3000));
    });
    std::thread::sleep(Duration::from_millis(200));
    let acceptor = acceptor.take().unwrap();
    let got = with_timeout(Duration::from_secs(5), || acceptor.join().unwrap());
    match got {
        Ok(Ok(Ok(b))) => assert_eq!(&b, b"abcd"),
        other => {
            panic!("the parent's accept never completed (the child took its event?): {other:?}")
        }
    }
    assert_eq!(wait_forked(pid, Duration::from_secs(20)), 0);
    client.join().unwrap();
}

#[test]
fn a_forked_childs_dup2_over_stdin_leaves_the_parents_registration() {
    // The parent's greenlet waits to read stdin (a pipe) through the hooks,
    // so the hub has stdin in its epoll. `Command` with `pre_exec` forks,
    // and the child `dup2`s /dev/null onto stdin through the hook before
    // `exec`. The child shares the parent's epoll: had its hook removed
    // stdin there, the parent's greenlet would never see the byte below.
    use std::os::unix::process::CommandExt;
    if child_mode().as_deref() != Some("fork_dup2") {
        let out = run_child_within(
            "a_forked_childs_dup2_over_stdin_leaves_the_parents_registration",
            "fork_dup2",
            &[],
            LIMIT,
        );
        assert_child_passed(&out);
        return;
    }
    patch();
    let mut fds = [0; 2];
    // SAFETY (test): a fresh pipe; its read end replaces this process's
    // stdin (the harness's null stdin), its write end is ours.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        assert_eq!(libc::dup2(fds[0], 0), 0);
        libc::close(fds[0]);
    }
    let reader = spawn(|| {
        let mut b = [0u8; 1];
        // SAFETY (test): reads into a local buffer; parks in the hook.
        let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) };
        (n, b[0])
    });
    greenlet::yield_now(); // it parks: stdin is in the hub's epoll
    let mut cmd = std::process::Command::new("true");
    cmd.stdin(std::process::Stdio::null());
    // SAFETY (test): the closure does nothing; it makes std fork (not
    // `posix_spawn`), so the child's `dup2` goes through the hook.
    unsafe { cmd.pre_exec(|| Ok(())) };
    let status = cmd.status().expect("`true` runs");
    assert!(status.success());
    // SAFETY (test): one byte into our pipe.
    assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
    let got = greenlet::with_timeout(Duration::from_secs(5), move || reader.join().unwrap());
    assert_eq!(
        got.expect("the greenlet reading stdin never woke: its registration was removed"),
        (1, b'x')
    );
}
