//! `read`/`write` (and vectored) on pipes, FIFOs, ttys and other pollable
//! fds that are not sockets (eventfd, timerfd, signalfd, ...), inside
//! greenlets.
//!
//! There is no `MSG_DONTWAIT` for these, and switching the fd to
//! `O_NONBLOCK` for the call would change it for every process sharing the
//! open file (a pipe to the parent, a terminal). So the hook asks `poll`
//! first, without waiting: if the fd is ready the real call does not block;
//! if not, the greenlet parks until the hub sees it ready.
//!
//! A blocking write to a pipe writes everything before it returns, which
//! can take any amount of room in the pipe; readiness only promises
//! `PIPE_BUF` (4 KiB) of it. So a write to a pipe or FIFO moves at most
//! 4 KiB per call, and returns that count: callers that write in a loop
//! (`write_all`, `fwrite`) carry on; a caller that assumes a blocking
//! pipe write is complete would lose the rest. Writes to ttys and other
//! character devices are not cut (they rarely block).
//!
//! Another process reading the same pipe can take the data between the
//! `poll` and the `read`; then the read blocks, as it would have without
//! the hook. An fd the user made non-blocking keeps returning `EAGAIN`.

use libc::{c_int, c_void};

use crate::hub::reactor::Direction;
use crate::monkey::real::set_errno;
use crate::monkey::{Hook, fdtable, interrupt_errno, real, wait_fd};

/// The room a writable pipe is guaranteed to have.
const PIPE_BUF: usize = libc::PIPE_BUF;

/// Whether `fd` is a pollable non-socket fd (cached per fd).
pub(crate) fn is_pollable(fd: c_int) -> bool {
    fdtable::info(fd).is_some_and(|i| i.pollable_kind(fd).is_some())
}

fn is_fifo(fd: c_int) -> bool {
    fdtable::info(fd).is_some_and(|i| i.pollable_kind(fd) == Some(true))
}

/// The length one write to `fd` may ask for: at most [`PIPE_BUF`] on a
/// pipe.
pub(crate) fn write_len(fd: c_int, n: usize) -> usize {
    if is_fifo(fd) { n.min(PIPE_BUF) } else { n }
}

/// `writev`, cut to the iovecs that fit in [`PIPE_BUF`] on a pipe (a
/// first iovec larger than that is written alone, cut).
///
/// # Safety
/// As libc's `writev`.
pub(crate) unsafe fn capped_writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    if n <= 0 || iov.is_null() || !is_fifo(fd) {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real::writev(fd, iov, n) };
    }
    // SAFETY: the caller passes `n` valid iovecs.
    let iovs = unsafe { std::slice::from_raw_parts(iov, n as usize) };
    if iovs[0].iov_len > PIPE_BUF {
        // SAFETY: a prefix of the caller's first buffer.
        return unsafe { real::write(fd, iovs[0].iov_base as *const c_void, PIPE_BUF) };
    }
    let mut total = 0;
    let mut count = 0;
    for v in iovs {
        if total + v.iov_len > PIPE_BUF {
            break;
        }
        total += v.iov_len;
        count += 1;
    }
    // SAFETY: a prefix of the caller's iovecs.
    unsafe { real::writev(fd, iov, count) }
}

/// Whether `fd` is ready in `dir` now (a `poll` that does not wait).
/// Hang-ups and errors count as ready: the real call reports them.
fn ready_now(fd: c_int, dir: Direction) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: match dir {
            Direction::Read => libc::POLLIN,
            Direction::Write => libc::POLLOUT,
        },
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { real::poll(&mut p, 1, 0) };
    n != 0 // an error (EBADF, say) counts as ready: the real call reports it
}

/// Runs `op` (the real call) once the fd is ready, parking until then.
pub(crate) fn cooperate(
    hook: &Hook,
    fd: c_int,
    dir: Direction,
    op: &mut dyn FnMut() -> isize,
) -> isize {
    if let Some(e) = interrupt_errno() {
        set_errno(e);
        return -1;
    }
    loop {
        if ready_now(fd, dir) || real::get_fl(fd) & libc::O_NONBLOCK != 0 {
            return op();
        }
        if let Some(e) = wait_fd(hook, fd, dir, None).failure(libc::EAGAIN) {
            set_errno(e);
            return -1;
        }
    }
}
