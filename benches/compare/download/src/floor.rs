//! `epoll_floor`: the download job with no runtime at all, the floor under
//! every readiness-based client on this load.
//!
//! One thread, one edge-triggered epoll, `C` request slots, and per
//! request exactly the syscalls greenlet makes (see the README's table):
//! `socket`, `connect`, one `epoll_ctl(ADD)` (for both directions, with
//! `EPOLLRDHUP`), `send` of the request once the connect's write edge
//! comes, `recv` on each read edge until a read returns less than its room
//! (taken as drained, as greenlet and tokio do) or 0 (end of file), then
//! `close` (which takes the fd out of epoll). No task, no stack, no
//! wake-up: what is left is the kernel's work plus the response check that
//! every client does. A runtime's time above this figure is its own cost;
//! two runtimes both at it cannot be told apart on this job.
//!
//! `stack_floor` is the same client plus the one memory access a stackful
//! runtime cannot avoid: at every event, a write to the top of the slot's
//! own page, one page per slot, 256 KiB apart (greenlet's default stack
//! spacing). Its time above `epoll_floor` is what resuming a thousand
//! stacks costs on this machine before any runtime code runs.

use std::io;
use std::net::SocketAddr;

use super::{Tally, check, tally};

/// Where a slot's current request is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `connect` returned `EINPROGRESS`: waiting for the write edge.
    Connecting,
    /// The request is sent: reading the response to end of file.
    Reading,
    /// No request in flight (the slot's share is done).
    Idle,
}

struct Slot {
    fd: i32,
    phase: Phase,
    /// Requests still to start after the current one.
    left: usize,
    buf: Vec<u8>,
    filled: usize,
    tally: Tally,
}

/// Runs `share(w)` requests in slot `w`, for `w` in `0..slots`, one after
/// the other per slot and all slots at once; returns each slot's tally.
///
/// With `touch_stacks`, every event first writes one word at the top of
/// the slot's page (see the module docs).
pub fn run(
    addr: SocketAddr,
    req: &[u8],
    size: usize,
    slots: usize,
    share: impl Fn(usize) -> usize,
    touch_stacks: bool,
) -> Vec<Tally> {
    // SAFETY: a new epoll fd, owned here and closed at the end.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", io::Error::last_os_error());
    let mut slots: Vec<Slot> = (0..slots)
        .map(|w| Slot {
            fd: -1,
            phase: Phase::Idle,
            left: share(w),
            // Allocated in the loop below, inside the timed part (all of
            // `run` is timed), as every client's worker allocates its own.
            buf: Vec::new(),
            filled: 0,
            tally: (0, None),
        })
        .collect();
    let mut busy = 0;
    for (w, s) in slots.iter_mut().enumerate() {
        // Zeroed once, when allocated, as in every client.
        s.buf = vec![0u8; size + 1024];
        busy += usize::from(start(ep, w, s, addr));
    }
    let pages = touch_stacks.then(|| Pages::new(slots.len()));
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while busy > 0 {
        // SAFETY: `events` is a live buffer of `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        for ev in &events[..n as usize] {
            let w = ev.u64 as usize;
            if let Some(p) = &pages {
                p.touch(w);
            }
            let s = &mut slots[w];
            let bits = ev.events;
            let hup = bits & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            let done = match s.phase {
                Phase::Idle => continue,
                Phase::Connecting => on_connected(s, req, bits),
                Phase::Reading => on_readable(s, size, hup),
            };
            if let Some(r) = done {
                // SAFETY: the slot's own fd, closed once; closing its last
                // fd takes it out of epoll.
                unsafe { libc::close(s.fd) };
                s.fd = -1;
                s.phase = Phase::Idle;
                tally(&mut s.tally, r);
                if !start(ep, w, s, addr) {
                    busy -= 1;
                }
            }
        }
    }
    // SAFETY: our epoll fd, closed once.
    unsafe { libc::close(ep) };
    slots.into_iter().map(|s| s.tally).collect()
}

/// Starts the slot's next request, if it has one left: a non-blocking
/// socket, `connect`, and one registration for both edges.
fn start(ep: i32, w: usize, s: &mut Slot, addr: SocketAddr) -> bool {
    while s.left > 0 {
        s.left -= 1;
        match connect(addr) {
            Ok(fd) => {
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET)
                        as u32,
                    u64: w as u64,
                };
                // SAFETY: a live fd of ours and a live event.
                if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
                    let e = io::Error::last_os_error();
                    // SAFETY: our fd, closed once.
                    unsafe { libc::close(fd) };
                    tally(&mut s.tally, Err(e));
                    continue;
                }
                s.fd = fd;
                s.phase = Phase::Connecting;
                s.filled = 0;
                return true;
            }
            Err(e) => tally(&mut s.tally, Err(e)),
        }
    }
    false
}

/// A non-blocking socket with `connect` started (`EINPROGRESS`) or done.
fn connect(addr: SocketAddr) -> io::Result<i32> {
    let SocketAddr::V4(a) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the floor client speaks IPv4 only",
        ));
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: plain socket calls on an fd this function owns (closed on
    // error), with a live address of the size given.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let r = libc::connect(
            fd,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                libc::close(fd);
                return Err(e);
            }
        }
        Ok(fd)
    }
}

/// The connect's edge: on success sends the request (one `send`; it is a
/// hundred bytes into an empty buffer) and waits for the read edge. Some
/// result when the request is over (it failed).
fn on_connected(s: &mut Slot, req: &[u8], bits: u32) -> Option<io::Result<()>> {
    if bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
        return Some(Err(so_error(s.fd)));
    }
    if bits & libc::EPOLLOUT as u32 == 0 {
        return None;
    }
    // SAFETY: `req` is initialized bytes; the slot's own fd.
    let w = unsafe { libc::send(s.fd, req.as_ptr().cast(), req.len(), libc::MSG_NOSIGNAL) };
    if w < 0 {
        return Some(Err(io::Error::last_os_error()));
    }
    if w as usize != req.len() {
        return Some(Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short send of the request",
        )));
    }
    s.phase = Phase::Reading;
    None
}

/// A read edge: reads until drained (a short read, unless the peer has
/// hung up) or end of file. Some result when the request is over.
fn on_readable(s: &mut Slot, size: usize, hup: bool) -> Option<io::Result<()>> {
    loop {
        if s.filled == s.buf.len() {
            s.buf.resize(s.buf.len() * 2 + 4096, 0);
        }
        let room = s.buf.len() - s.filled;
        // SAFETY: `buf[filled..]` is `room` writable bytes; our fd.
        let n = unsafe { libc::recv(s.fd, s.buf[s.filled..].as_mut_ptr().cast(), room, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return None;
            }
            return Some(Err(e));
        }
        if n == 0 {
            return Some(check(&s.buf[..s.filled], size));
        }
        s.filled += n as usize;
        if (n as usize) < room && !hup {
            return None; // drained: wait for the next edge
        }
    }
}

/// Why a connect failed (`SO_ERROR`).
fn so_error(fd: i32) -> io::Error {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a live int and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    if r != 0 {
        io::Error::last_os_error()
    } else if err != 0 {
        io::Error::from_raw_os_error(err)
    } else {
        io::Error::new(io::ErrorKind::ConnectionRefused, "connect hung up")
    }
}

/// One page per slot, [`SPACING`] apart, as greenlet lays out its stacks.
struct Pages {
    base: usize,
    len: usize,
}

/// Greenlet's default stack size (and so the distance between two stacks'
/// tops).
const SPACING: usize = 256 * 1024;

impl Pages {
    fn new(slots: usize) -> Pages {
        let len = slots * SPACING;
        // SAFETY: a fresh anonymous mapping, owned here, unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(
            p != libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        Pages {
            base: p as usize,
            len,
        }
    }

    /// Writes the top word of slot `w`'s page (the first touch faults it
    /// in, as a new stack's first run does).
    fn touch(&self, w: usize) {
        let top = (self.base + (w + 1) * SPACING - 8) as *mut u64;
        // SAFETY: inside the mapping (`w` < slots), aligned, ours alone.
        unsafe { top.write_volatile(top.read_volatile().wrapping_add(1)) };
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}
