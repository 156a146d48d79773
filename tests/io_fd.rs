//! `greenlet::io`: waiting on any fd and `FdIo` over pipes and eventfds.

use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenlet::io::{FdIo, wait_readable, wait_writable};

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

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd (checked) that nothing else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: just created, owned here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn wait_readable_parks_until_a_pipe_has_data_while_others_run() {
    deadline(10, || {
        let (reader, mut writer) = io::pipe().unwrap();
        let waiter = greenlet::spawn(move || {
            let t = Instant::now();
            wait_readable(&reader, None).unwrap();
            let mut b = [0; 4];
            let n = (&reader).read(&mut b).unwrap();
            (t.elapsed(), b[..n].to_vec())
        });
        // The hub keeps serving this (root) sleeper meanwhile.
        greenlet::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        writer.write_all(b"ping").unwrap();
        let (waited, got) = waiter.join().unwrap();
        assert_eq!(got, b"ping");
        assert!(waited >= Duration::from_millis(40), "woke after {waited:?}");
    });
}

#[test]
fn wait_readable_times_out_and_sees_eof_and_ready_fds_at_once() {
    deadline(10, || {
        let (reader, writer) = io::pipe().unwrap();
        let t = Instant::now();
        let err = wait_readable(&reader, Some(Duration::from_millis(30))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(25));
        // Zero timeout: a poll, no wait.
        let err = wait_readable(&reader, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // An empty pipe is writable; a closed writer makes the reader ready (EOF).
        wait_writable(&writer, Some(Duration::from_secs(1))).unwrap();
        drop(writer);
        wait_readable(&reader, Some(Duration::from_secs(1))).unwrap();
        // A regular file is always ready.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        wait_readable(&f, None).unwrap();
    });
}

#[test]
fn wait_readable_on_a_closed_fd_is_ebadf() {
    // SAFETY: fd 9999 is not open in this process; the borrow is only
    // handed to poll, which reports POLLNVAL.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(9999) };
    let err = wait_readable(fd, Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
}

#[test]
fn the_same_pipe_waited_on_twice_at_once_wakes_both() {
    deadline(10, || {
        let (reader, mut writer) = io::pipe().unwrap();
        let reader = Rc::new(reader);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let r = reader.clone();
                greenlet::spawn(move || wait_readable(&*r, Some(Duration::from_secs(5))))
            })
            .collect();
        greenlet::sleep(Duration::from_millis(10));
        writer.write_all(b"x").unwrap();
        for r in greenlet::joinall(waiters) {
            r.unwrap().unwrap();
        }
    });
}

/// A stdin-like pipe: a line-reading greenlet parks on `FdIo` while a
/// ticker keeps running, and the writer feeds it slowly.
#[test]
fn fdio_reads_a_stdin_like_pipe_line_by_line_without_stalling_the_hub() {
    deadline(10, || {
        let (reader, writer) = io::pipe().unwrap();
        let reader = FdIo::new(reader).unwrap();
        let mut writer = FdIo::new(writer).unwrap();
        let start = Instant::now();
        let ticker = greenlet::spawn(move || {
            let mut ticks = 0;
            while start.elapsed() < Duration::from_millis(150) {
                greenlet::sleep(Duration::from_millis(5));
                ticks += 1;
            }
            ticks
        });
        let lines = greenlet::spawn(move || {
            use std::io::BufRead;
            io::BufReader::new(reader)
                .lines()
                .collect::<io::Result<Vec<String>>>()
        });
        for i in 0..3 {
            greenlet::sleep(Duration::from_millis(40));
            writeln!(writer, "line {i}").unwrap();
        }
        drop(writer);
        assert_eq!(
            lines.join().unwrap().unwrap(),
            ["line 0", "line 1", "line 2"]
        );
        assert!(ticker.join().unwrap() >= 10);
    });
}

#[test]
fn fdio_moves_more_than_a_pipe_holds_between_two_greenlets() {
    deadline(20, || {
        let (reader, writer) = io::pipe().unwrap();
        let mut reader = FdIo::new(reader).unwrap();
        let mut writer = FdIo::new(writer).unwrap();
        let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i * 7) as u8).collect();
        let expect = data.clone();
        let w = greenlet::spawn(move || writer.write_all(&data));
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        w.join().unwrap().unwrap();
        assert!(got == expect, "{} bytes came through", got.len());
    });
}

#[test]
fn fdio_restores_blocking_mode_and_honours_timeouts() {
    deadline(10, || {
        let (reader, _writer) = io::pipe().unwrap();
        let io = FdIo::new(reader).unwrap();
        io.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        assert!(io.set_read_timeout(Some(Duration::ZERO)).is_err());
        let t = Instant::now();
        let err = (&io).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(15));
        let reader = io.into_inner();
        // SAFETY: F_GETFL on an open fd.
        let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&reader), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0, "blocking mode was not restored");
    });
}

#[test]
fn fdio_kill_while_parked_on_a_pipe_unwinds() {
    deadline(10, || {
        let (reader, _writer) = io::pipe().unwrap();
        let io = FdIo::new(reader).unwrap();
        let g = greenlet::spawn(move || (&io).read(&mut [0; 4]));
        greenlet::sleep(Duration::from_millis(10));
        g.kill();
        assert!(g.join().unwrap_err().is_killed());
    });
}

#[test]
fn eventfd_counter_wakes_a_parked_reader() {
    deadline(10, || {
        let counter = Rc::new(FdIo::new(eventfd()).unwrap());
        let reader = counter.clone();
        let g = greenlet::spawn(move || {
            let mut total = 0;
            let mut buf = [0; 8];
            while total < 6 {
                (&*reader).read_exact(&mut buf).unwrap();
                total += u64::from_ne_bytes(buf);
            }
            total
        });
        for n in 1..=3u64 {
            greenlet::sleep(Duration::from_millis(10));
            (&*counter).write_all(&n.to_ne_bytes()).unwrap();
        }
        assert_eq!(g.join().unwrap(), 6);
    });
}

#[test]
fn eventfd_written_from_another_thread_wakes_wait_readable() {
    deadline(10, || {
        let fd = eventfd();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let one = 1u64.to_ne_bytes();
            // SAFETY: `raw` stays open until this thread is joined below.
            let n = unsafe { libc::write(raw, one.as_ptr().cast(), 8) };
            assert_eq!(n, 8);
        });
        let start = Instant::now();
        wait_readable(&fd, Some(Duration::from_secs(5))).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(20));
        t.join().unwrap();
    });
}

/// A pseudo-terminal pair: (master, slave), both owned.
fn pty() -> (std::fs::File, std::fs::File) {
    // SAFETY: posix_openpt returns a new fd (checked) that nothing else
    // owns; grantpt/unlockpt/ptsname_r only read it and fill `name`.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_owned();
        let master = std::fs::File::from_raw_fd(m);
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap();
        (master, slave)
    }
}

#[test]
fn fdio_reads_a_terminal_line_while_the_hub_keeps_running() {
    deadline(10, || {
        let (master, slave) = pty();
        let tty = FdIo::new(slave).unwrap();
        let reader = greenlet::spawn(move || {
            let mut line = [0; 64];
            let n = (&tty).read(&mut line).unwrap();
            String::from_utf8_lossy(&line[..n]).into_owned()
        });
        greenlet::sleep(Duration::from_millis(30));
        assert!(
            !reader.is_finished(),
            "read returned before a line was typed"
        );
        let mut master = FdIo::new(master).unwrap();
        // Canonical mode: the slave's read returns one whole line.
        master.write_all(b"typed line\n").unwrap();
        assert_eq!(reader.join().unwrap(), "typed line\n");
    });
}
