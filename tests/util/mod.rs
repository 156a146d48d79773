//! Helpers shared by the integration tests.
//!
//! Each test file pulls this in with `mod util;` and uses only part of it.
#![allow(dead_code)]

pub mod ticker;

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::JoinError;
use greenlet::net::{TcpListener, TcpStream};

/// A value that sets a flag when dropped: proves that destructors ran.
pub struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A [`DropFlag`] and a way to ask whether it was dropped.
pub fn drop_flag() -> (DropFlag, Rc<Cell<bool>>) {
    let flag = Rc::new(Cell::new(false));
    (DropFlag(flag.clone()), flag)
}

/// A shared, append-only log of events, cheap to clone into greenlets.
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Rc::new(RefCell::new(Vec::new())))
    }
}

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, v: T) {
        self.0.borrow_mut().push(v);
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.0.borrow().clone()
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// Asserts that a join result says "killed".
#[track_caller]
pub fn assert_killed<T: Debug>(r: Result<T, JoinError>) {
    match r {
        Err(e) => {
            assert!(e.is_killed(), "expected a killed greenlet, got {e:?}");
            assert!(
                !e.is_panic(),
                "a killed greenlet must not count as panicked: {e:?}"
            );
            assert_eq!(e.panic_message(), None);
        }
        Ok(v) => panic!("expected a killed greenlet, got Ok({v:?})"),
    }
}

/// Asserts that a join result is a panic whose message contains `needle`.
#[track_caller]
pub fn assert_panicked_with<T: Debug>(r: Result<T, JoinError>, needle: &str) -> JoinError {
    match r {
        Err(e) => {
            assert!(e.is_panic(), "expected a panicked greenlet, got {e:?}");
            assert!(
                !e.is_killed(),
                "a panicked greenlet must not count as killed: {e:?}"
            );
            let msg = e
                .panic_message()
                .unwrap_or_else(|| panic!("no message in {e:?}"));
            assert!(
                msg.contains(needle),
                "panic message {msg:?} does not contain {needle:?}"
            );
            e
        }
        Ok(v) => panic!("expected a panicked greenlet, got Ok({v:?})"),
    }
}

/// The message of a panic payload caught with `catch_unwind`.
#[track_caller]
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        panic!("the panic payload is not a string")
    }
}

/// Asserts `lo <= d < hi`, with a readable message.
#[track_caller]
pub fn assert_between(what: &str, d: Duration, lo: Duration, hi: Duration) {
    assert!(
        d >= lo && d < hi,
        "{what}: took {d:?}, expected at least {lo:?} and under {hi:?}"
    );
}

/// CPU time (user + system) consumed so far by the calling OS thread.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid out-pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// This process's fd limits: (soft, hard).
pub fn fd_limit() -> (u64, u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    (rl.rlim_cur, rl.rlim_max)
}

/// Sets this process's fd limits (to exhaust fds on purpose, then restore).
pub fn set_fd_limit(soft: u64, hard: u64) {
    let rl = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: valid pointer; lowering or restoring the soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
}

/// Lowers the soft fd limit to at most 4,096 and opens `/dev/null` until
/// `open` fails with `EMFILE`; returns the files holding the fds. Restore
/// the limit with [`set_fd_limit`] (from [`fd_limit`], read before).
pub fn exhaust_fds() -> Vec<std::fs::File> {
    let (soft, hard) = fd_limit();
    set_fd_limit(soft.min(4096), hard);
    let mut hog = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("unexpected error exhausting fds: {e}"),
        }
    }
    hog
}

/// The environment variable that tells a re-executed test binary which
/// child scenario to run.
pub const CHILD_ENV: &str = "GREENLET_TEST_CHILD";

/// The child scenario this process was started for, if any.
pub fn child_mode() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs this test binary with only the test `test_name` (exact match)
/// and `GREENLET_TEST_CHILD=mode`, plus `env`, and returns its output.
/// The test must check [`child_mode`] first and run the scenario.
#[track_caller]
pub fn run_child(test_name: &str, mode: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env_remove("GREENLET_MONITOR")
        .env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("cannot re-run the test binary")
}

/// Describes a child's output for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that the child was killed by `signal`.
#[track_caller]
pub fn assert_died_by_signal(out: &Output, signal: i32) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "expected the child to die by signal {signal}\n{}",
        describe(out)
    );
}

/// Asserts that the child exited successfully and ran exactly one test.
#[track_caller]
pub fn assert_child_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child test failed or did not run\n{}",
        describe(out)
    );
}

// ---- network helpers ----
/// A listener on an OS-chosen loopback port.
#[track_caller]
pub fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A connected (client, server-side) pair of green TCP streams on
/// loopback.
#[track_caller]
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let (l, addr) = listener();
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Echoes everything read on `s` until EOF, then shuts the write half.
pub fn echo(s: TcpStream) -> io::Result<u64> {
    let n = io::copy(&mut &s, &mut &s)?;
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(n)
}

/// An echo server greenlet that serves every connection in its own
/// greenlet, forever (until the test's hub goes away).
pub fn echo_server() -> SocketAddr {
    let (l, a) = listener();
    greenlet::spawn(move || {
        for s in l.incoming() {
            let s = s.expect("accept");
            greenlet::spawn(move || echo(s));
        }
    });
    a
}

/// Sends `data` through an echo connection (writer and reader greenlets on
/// one socket) and returns what came back.
pub fn round_trip(addr: SocketAddr, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let s = TcpStream::connect(addr)?;
    let w = s.try_clone()?;
    let writer = greenlet::spawn(move || -> io::Result<()> {
        (&w).write_all(&data)?;
        w.shutdown(std::net::Shutdown::Write)
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back)?;
    writer.join().unwrap()?;
    Ok(back)
}

/// Deterministic test bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

/// Runs `f` and returns its value with the wall time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

/// A fresh directory for Unix socket paths.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "greenlet-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A command for the built example `name` (`cargo test` builds examples
/// into `target/<profile>/examples/`, next to this test binary's `deps/`).
#[track_caller]
pub fn example(name: &str) -> Command {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // deps/
    dir.pop(); // target/<profile>/
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    Command::new(path)
}

// ---- deadlines ----

/// [`run_child`] with a deadline: a child still running after `limit` is
/// killed and the test fails, naming the scenario.
#[track_caller]
pub fn run_child_within(
    test_name: &str,
    mode: &str,
    env: &[(&str, &str)],
    limit: Duration,
) -> Output {
    use std::process::Stdio;
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env_remove("GREENLET_MONITOR")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot re-run the test binary");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            panic!(
                "child scenario {mode:?} still running after {limit:?} (a hang)\n{}",
                describe(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on its own OS thread (with its own hub) and fails the test if
/// it has not returned within `limit`: a test that would hang fails
/// instead. A panic in `f` fails the test with its message.
#[track_caller]
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            t.join().unwrap();
            v
        }
        Ok(Err(payload)) => panic!("test body panicked: {}", payload_message(&*payload)),
        Err(_) => panic!("test body did not finish within {limit:?} (hang?)"),
    }
}

// ---- raw peers ----
/// Sends `byte` as TCP urgent (out-of-band) data on `fd`.
#[track_caller]
pub fn send_urgent(fd: std::os::fd::RawFd, byte: u8) {
    // SAFETY: one byte from a live local, on an fd the caller owns.
    let n = unsafe { libc::send(fd, (&byte as *const u8).cast(), 1, libc::MSG_OOB) };
    assert_eq!(n, 1, "send(MSG_OOB): {}", io::Error::last_os_error());
}

/// Sends `data` on the Unix stream socket `fd` in one message that also
/// carries `passed` as an `SCM_RIGHTS` control message.
#[track_caller]
pub fn send_with_fd(fd: std::os::fd::RawFd, data: &[u8], passed: std::os::fd::RawFd) {
    let fd_len = std::mem::size_of::<std::os::fd::RawFd>() as u32;
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the fields set below point at live
    // buffers (`iov`, `control`) that outlive the sendmsg call, and the
    // control buffer is 8-byte aligned and CMSG_SPACE bytes long, so
    // CMSG_FIRSTHDR returns a header inside it with room for one fd.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<std::os::fd::RawFd>(), passed);
        libc::sendmsg(fd, &msg, 0)
    };
    assert_eq!(
        n,
        data.len() as isize,
        "sendmsg(SCM_RIGHTS): {}",
        io::Error::last_os_error()
    );
}

/// The exit code of `pid`, a child this process forked, waited for up to
/// `limit` (then killed, and the test fails): no forked child may hang a
/// test. Polls: the caller may be root context, where a blocking
/// `waitpid` is the real call.
pub fn wait_forked(pid: libc::pid_t, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY (test): `pid` is our child; `status` is a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", io::Error::last_os_error());
        if r == pid {
            assert!(
                libc::WIFEXITED(status),
                "the child died: status {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        if start.elapsed() > limit {
            // SAFETY (test): our child, still running.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY (test): reaps it.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the forked child still ran after {limit:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Forks; the child runs `f` and exits with its code (99 if it panicked).
/// Returns the child's pid.
pub fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY (test): callers run this in a process of one test (a
    // `run_child_within` scenario); the child uses only greenlet, std, the
    // allocator (fork-safe in glibc) and stderr, and leaves with `_exit`,
    // running no exit handlers of the parent's.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
        // SAFETY (test): ends the child without unwinding into the test
        // harness's copy.
        unsafe { libc::_exit(code) };
    }
    pid
}
