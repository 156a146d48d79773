//! Cooperative IO on any pollable fd: pipes, ttys, eventfds, timerfds,
//! character devices, or a foreign event loop's epoll fd.
//!
//! [`wait_readable`] and [`wait_writable`] park the calling greenlet until
//! an fd is ready (gevent's `wait_read`/`wait_write`); [`FdIo`] wraps any
//! `AsFd` owner into a [`Read`]/[`Write`] whose calls park instead of
//! blocking the hub (gevent's `FileObjectPosix`, may's `CoIo`).
//!
//! Regular files are always "ready" to epoll's way of thinking (the kernel
//! refuses to watch them) and their reads block on the disk, not on
//! readiness: use [`crate::fs`] for them, which runs file IO on the
//! blocking pool.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use greenlet::io::FdIo;
//!
//! let (reader, writer) = std::io::pipe()?;
//! let mut reader = FdIo::new(reader)?;
//! let mut writer = FdIo::new(writer)?;
//! let g = greenlet::spawn(move || {
//!     let mut s = String::new();
//!     reader.read_to_string(&mut s).map(|_| s)
//! });
//! writer.write_all(b"through a pipe")?;
//! drop(writer); // EOF for the reader
//! assert_eq!(g.join().unwrap()?, "through a pipe");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use mio::unix::SourceFd;

use crate::hub::deadline_after;
use crate::hub::reactor::{Direction, Registration};

/// Parks the calling greenlet until `fd` is readable (or at end of file,
/// or in error), or `timeout` passes (`None`: no limit). From root context
/// the hub runs meanwhile, as for every blocking call.
///
/// Works on any fd `poll(2)` accepts. An fd that epoll cannot watch (a
/// regular file) is always ready and returns at once.
///
/// # Errors
///
/// `ErrorKind::TimedOut` when `timeout` passes first; `EBADF` for an fd
/// that is not open; the error of `epoll_ctl` or `dup` if the fd cannot be
/// watched. Kills and [`with_timeout`](crate::with_timeout) unwind out of
/// the wait as from any park.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::time::Duration;
///
/// let (reader, mut writer) = std::io::pipe()?;
/// // Nothing written yet: the wait times out.
/// let err = greenlet::io::wait_readable(&reader, Some(Duration::from_millis(20))).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// writer.write_all(b"x")?;
/// greenlet::io::wait_readable(&reader, None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_readable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd.as_fd(), Direction::Read, timeout)
}

/// Parks the calling greenlet until `fd` is writable (or hung up, or in
/// error), or `timeout` passes (`None`: no limit). See [`wait_readable`].
///
/// # Errors
///
/// As [`wait_readable`].
///
/// # Examples
///
/// ```
/// let (_reader, writer) = std::io::pipe()?;
/// // An empty pipe has room.
/// greenlet::io::wait_writable(&writer, None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_writable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd.as_fd(), Direction::Write, timeout)
}

/// The one-off wait behind `wait_readable`/`wait_writable`.
///
/// It asks `poll` first (one syscall when the fd is ready, the common
/// case). Otherwise it registers a `dup` of the fd: epoll keys an entry by
/// fd number and open file, so the dup never collides with a registration
/// the fd may already have (an [`FdIo`], a green socket, a monkey hook),
/// and removing it leaves those alone. Registering reports the fd's current
/// state, so readiness that arrives between the `poll` and the registration
/// is not lost.
fn wait_fd(fd: BorrowedFd<'_>, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
    if crate::sys::poll_now(fd, dir == Direction::Write)? {
        return Ok(());
    }
    if timeout == Some(Duration::ZERO) {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let deadline = timeout.map(deadline_after);
    let Some(watch) = Watched::new(fd)? else {
        return Ok(());
    };
    let reg = watch.registration();
    reg.clear_readiness(dir);
    reg.wait(dir, deadline)
}

/// A dup of an fd, registered with this thread's hub. Dropping it takes the
/// dup out of epoll (the original stays open, so closing the dup alone
/// would not) and closes it.
pub(crate) struct Watched {
    /// Declared before `fd`: the slot is freed while the fd is open.
    reg: Registration,
    /// # Invariant
    /// An open dup of the watched fd, registered under `reg`.
    fd: OwnedFd,
}

impl Watched {
    /// Watches a dup of `fd`; `None` when epoll refuses the fd as always
    /// ready (`EPERM`: a regular file or directory).
    pub(crate) fn new(fd: BorrowedFd<'_>) -> io::Result<Option<Watched>> {
        let dup = crate::sys::dup_cloexec(fd)?;
        match Registration::new(&mut SourceFd(&dup.as_raw_fd())) {
            Ok(reg) => Ok(Some(Watched { reg, fd: dup })),
            Err(e) if e.raw_os_error() == Some(crate::sys::errno::EPERM) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers `fd` itself, taking ownership (an fd nobody else has, such
    /// as a fresh pidfd or signalfd: closing it removes it from epoll).
    pub(crate) fn own(fd: OwnedFd) -> io::Result<Watched> {
        let reg = Registration::new(&mut SourceFd(&fd.as_raw_fd()))?;
        Ok(Watched { reg, fd })
    }

    pub(crate) fn registration(&self) -> &Registration {
        &self.reg
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // A dup must leave epoll explicitly: the entry belongs to the open
        // file, which outlives this fd. Harmless for an owned fd.
        let _ = self.reg.deregister(&mut SourceFd(&self.fd.as_raw_fd()));
    }
}

/// Any pollable fd as a [`Read`]/[`Write`] that parks the calling greenlet
/// instead of blocking the hub (gevent's `FileObjectPosix`, may's `CoIo`).
///
/// `FdIo::new` switches the open file to `O_NONBLOCK`; dropping the
/// `FdIo` (or [`into_inner`](FdIo::into_inner)) switches it back if it was
/// blocking before. `O_NONBLOCK` belongs to the open file, not to the fd:
/// while the `FdIo` lives, every process sharing that file (a shell sharing
/// a terminal on stdin, say) sees it non-blocking, as with gevent.
///
/// Reads and writes try the syscall first and park on `EAGAIN` until the
/// hub sees the fd ready. Like std's pipes, `write` may write less than
/// asked; `write_all` loops. One reader and one writer may wait at once
/// (`Read` and `Write` are also implemented for `&FdIo`).
///
/// An fd epoll cannot watch (a regular file) is accepted and simply never
/// waits; its reads still block on the disk (use [`crate::fs`]).
///
/// # Examples
///
/// An eventfd as a counter that parks while it is zero:
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::{FromRawFd, OwnedFd};
/// use greenlet::io::FdIo;
///
/// // SAFETY: eventfd returns a new fd that nothing else owns.
/// let fd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
/// let counter = std::rc::Rc::new(FdIo::new(fd)?);
/// let reader = counter.clone();
/// let g = greenlet::spawn(move || {
///     let mut buf = [0; 8];
///     (&*reader).read_exact(&mut buf).map(|()| u64::from_ne_bytes(buf))
/// });
/// greenlet::sleep(std::time::Duration::from_millis(10));
/// (&*counter).write_all(&5u64.to_ne_bytes())?;
/// assert_eq!(g.join().unwrap()?, 5);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FdIo<T: AsFd> {
    /// `None` when epoll refuses the fd (always ready). Declared before
    /// `inner`, so the dup leaves epoll while the file is open.
    watch: Option<Watched>,
    was_blocking: bool,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    /// # Invariant
    /// `Some` until `into_inner`; its fd is in `O_NONBLOCK` mode.
    inner: Option<T>,
}

impl<T: AsFd> FdIo<T> {
    /// Wraps `inner`, switching its open file to `O_NONBLOCK` and
    /// registering a dup of its fd with this thread's hub.
    ///
    /// # Errors
    ///
    /// The error of `fcntl`, `dup` or `epoll_ctl` (for instance `EMFILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, _writer) = std::io::pipe()?;
    /// let _reader = greenlet::io::FdIo::new(reader)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: T) -> io::Result<FdIo<T>> {
        let fd = inner.as_fd();
        let was_blocking = !crate::sys::is_nonblocking(fd)?;
        let watch = Watched::new(fd)?;
        crate::sys::set_nonblocking_fl(fd, true)?;
        Ok(FdIo {
            watch,
            was_blocking,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            inner: Some(inner),
        })
    }

    /// The wrapped value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, _writer) = std::io::pipe()?;
    /// let reader = greenlet::io::FdIo::new(reader)?;
    /// let _: &std::io::PipeReader = reader.get_ref();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &T {
        self.inner.as_ref().expect("FdIo used after into_inner")
    }

    /// Gives the wrapped value back, its open file switched back to
    /// blocking mode if it was blocking before [`FdIo::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (reader, _writer) = std::io::pipe()?;
    /// let _reader: std::io::PipeReader = greenlet::io::FdIo::new(reader)?.into_inner();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(mut self) -> T {
        self.restore();
        drop(self.watch.take());
        self.inner.take().expect("FdIo used after into_inner")
    }

    /// Sets how long a read may wait (`None`: no limit, the default); an
    /// expired read fails with `ErrorKind::TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as std's sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let (reader, _writer) = std::io::pipe()?;
    /// let mut reader = greenlet::io::FdIo::new(reader)?;
    /// reader.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = reader.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// Sets how long a write may wait (`None`: no limit, the default); an
    /// expired write fails with `ErrorKind::TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_reader, writer) = std::io::pipe()?;
    /// let writer = greenlet::io::FdIo::new(writer)?;
    /// writer.set_write_timeout(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    /// Runs `op` until it does not fail with `WouldBlock`, parking in
    /// between.
    fn io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        let fd = self.as_fd();
        let Some(w) = &self.watch else {
            return op(fd);
        };
        let timeout = match dir {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        };
        // `TimedOut` once the deadline passes, like any green wait.
        w.registration()
            .do_io(dir, timeout.map(deadline_after), || op(fd))
    }

    fn restore(&self) {
        if self.was_blocking {
            if let Some(inner) = &self.inner {
                let _ = crate::sys::set_nonblocking_fl(inner.as_fd(), false);
            }
        }
    }
}

fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

impl<T: AsFd> Drop for FdIo<T> {
    fn drop(&mut self) {
        self.restore();
    }
}

impl<T: AsFd> Read for &FdIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Direction::Read, |fd| crate::sys::read(fd, buf))
    }
}

impl<T: AsFd> Write for &FdIo<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io(Direction::Write, |fd| crate::sys::write(fd, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> Read for FdIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl<T: AsFd> Write for FdIo<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> AsFd for FdIo<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for FdIo<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for FdIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdIo")
            .field("inner", self.get_ref())
            .finish()
    }
}
