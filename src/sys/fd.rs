//! Raw calls on arbitrary fds (pipes, ttys, eventfds, pidfds, signalfds)
//! for `crate::io`, `crate::process` and `crate::signal`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A new close-on-exec fd for the same open file (`F_DUPFD_CLOEXEC`).
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3))?;
    // SAFETY: `fcntl` just returned this fd, open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Whether the open file behind `fd` has `O_NONBLOCK` set.
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let fl = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    Ok(fl & libc::O_NONBLOCK != 0)
}

/// Sets or clears `O_NONBLOCK` with `fcntl` (which, unlike `FIONBIO`, works
/// on every kind of fd).
pub(crate) fn set_nonblocking_fl(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let fl = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    let new = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    if new != fl {
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, new))?;
    }
    Ok(())
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length come from a live, writable slice.
    let n = syscall!(read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// `write(2)` from `buf`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length come from a live slice.
    let n = syscall!(write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// Asks `poll(2)`, without waiting, whether `fd` is readable (`write` false)
/// or writable. Hang-ups and errors count as ready: the next call reports
/// them. An fd that is not open is `EBADF`.
pub(crate) fn poll_now(fd: BorrowedFd<'_>, write: bool) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: if write { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    };
    loop {
        // SAFETY: one live pollfd.
        match syscall!(poll(&mut p, 1, 0)) {
            Ok(0) => return Ok(false),
            Ok(_) if p.revents & libc::POLLNVAL != 0 => {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `pidfd_open(pid, 0)` (Linux 5.3+): an fd that turns readable when the
/// process `pid` exits. Close-on-exec by default.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and has no memory effects.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// A set of signal numbers (`sigset_t`).
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set of `signals`; `EINVAL` for a number that is not a signal.
    pub(crate) fn new(signals: &[i32]) -> io::Result<SigSet> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        let mut set = unsafe { set.assume_init() };
        for &s in signals {
            // SAFETY: `set` is a valid, initialised sigset_t.
            syscall!(sigaddset(&mut set, s))?;
        }
        Ok(SigSet(set))
    }

    /// Whether `signum` is in the set.
    pub(crate) fn contains(&self, signum: i32) -> bool {
        // SAFETY: a valid, initialised sigset_t.
        unsafe { libc::sigismember(&self.0, signum) == 1 }
    }
}

/// Adds `set` to the calling thread's blocked-signal mask.
pub(crate) fn block_signals(set: &SigSet) -> io::Result<()> {
    // SAFETY: valid set pointer; a null old-set pointer is allowed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// A non-blocking, close-on-exec `signalfd` for `set`.
pub(crate) fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    let fd = syscall!(signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC))?;
    // SAFETY: the kernel just returned this fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal from a `signalfd`: its number.
pub(crate) fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is exactly one signalfd_siginfo, writable.
    let n = syscall!(read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size))?;
    if n as usize != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short read from a signalfd",
        ));
    }
    // SAFETY: the kernel filled the whole struct.
    Ok(unsafe { info.assume_init() }.ssi_signo as i32)
}

/// An eventfd used as a doorbell: [`EventFd::wake`] makes it readable, and
/// an edge-triggered epoll registration reports every wake. Its count is
/// never read except when it would overflow, so it never blocks a waker.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    /// A non-blocking, close-on-exec eventfd with a count of 0.
    pub(crate) fn new() -> io::Result<EventFd> {
        let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
        // SAFETY: `eventfd` just returned this fd, owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Rings the bell: adds 1 to the count. Any thread.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        match write(self.0.as_fd(), &one) {
            Ok(_) => Ok(()),
            // The count would overflow (after 2^64 - 2 wakes): reset it by
            // reading it, then ring again (as mio's `Waker` does).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut buf = [0u8; 8];
                let _ = read(self.0.as_fd(), &mut buf);
                write(self.0.as_fd(), &one).map(drop)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Closes `fd` with the raw system call, past any `close` defined in the
/// program (the monkey hook, which keeps tables this call must not touch:
/// the caller may be inside them).
///
/// # Safety
/// `fd` must be open and owned by the caller, and nothing may use it
/// after.
pub(crate) unsafe fn close_unhooked(fd: RawFd) {
    // SAFETY: the caller owns `fd`; `SYS_close` takes one int and touches
    // no memory. Its error (EINTR, EIO) leaves nothing to do.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}
