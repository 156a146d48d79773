//! What the hooks know about each fd, shared by every thread.
//!
//! A two-level table indexed by fd number: 1,024 lazily mapped chunks of
//! 4,096 entries (4 Mi fds; larger fds are simply not cooperated on). Chunks
//! come from `mmap`, not `malloc`, and entries are atomics, so hooks can use
//! the table before `main`, on any thread, and without locks.
//!
//! An entry caches whether the fd is a socket and the user's
//! `SO_RCVTIMEO`/`SO_SNDTIMEO`. The calls that close fds (hooked: `close`,
//! `dup2`, `dup3`, `close_range`) and socket creation reset it and bump its
//! generation, which also invalidates every thread's epoll registration of
//! the old fd.

use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use mio::unix::SourceFd;

use crate::hub::reactor::Registration;
use crate::io::Watched;
use crate::monkey::real;

const CHUNK: usize = 4096;
const CHUNKS: usize = 1024;

const KIND_UNKNOWN: u8 = 0;
const KIND_SOCKET: u8 = 1;
const KIND_OTHER: u8 = 2;
/// A pipe or FIFO.
const KIND_FIFO: u8 = 3;
/// Another pollable fd that is not a socket: a character device (tty),
/// or an anonymous inode (eventfd, timerfd, signalfd, epoll, pidfd).
const KIND_POLLABLE: u8 = 4;

#[derive(Default)]
pub(crate) struct FdInfo {
    kind: AtomicU8,
    /// `SO_RCVTIMEO` in microseconds; 0 = none.
    rcv_timeo_us: AtomicU64,
    /// `SO_SNDTIMEO` in microseconds; 0 = none.
    snd_timeo_us: AtomicU64,
    generation: AtomicU32,
}

static TABLE: [AtomicPtr<FdInfo>; CHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The entry of `fd`, mapping its chunk on first use.
pub(crate) fn info(fd: libc::c_int) -> Option<&'static FdInfo> {
    if fd < 0 {
        return None;
    }
    let fd = fd as usize;
    let (hi, lo) = (fd / CHUNK, fd % CHUNK);
    let slot = TABLE.get(hi)?;
    let mut chunk = slot.load(Ordering::Acquire);
    if chunk.is_null() {
        let bytes = CHUNK * std::mem::size_of::<FdInfo>();
        // Zeroed anonymous memory is a valid array of default `FdInfo`s
        // (all-zero atomics).
        let fresh = crate::sys::mmap_stack_region(bytes).ok()?.cast::<FdInfo>();
        match slot.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => chunk = fresh,
            Err(won) => {
                // SAFETY: `fresh` was mapped just above and never shared.
                let _ = unsafe { crate::sys::munmap(fresh.cast(), bytes) };
                chunk = won;
            }
        }
    }
    // SAFETY: `chunk` points at CHUNK entries that are never unmapped.
    Some(unsafe { &*chunk.add(lo) })
}

impl FdInfo {
    /// Whether the fd is a socket, asking the kernel once per fd lifetime.
    pub(crate) fn is_socket(&self, fd: libc::c_int) -> bool {
        match self.kind.load(Ordering::Relaxed) {
            KIND_SOCKET => true,
            KIND_OTHER | KIND_FIFO | KIND_POLLABLE => false,
            _ => match real::file_type(fd) {
                Some(t) => {
                    let s = t == libc::S_IFSOCK;
                    if s {
                        // A socket made before patch_all: learn its timeouts.
                        self.set_timeout(true, real::socket_timeout(fd, libc::SO_RCVTIMEO));
                        self.set_timeout(false, real::socket_timeout(fd, libc::SO_SNDTIMEO));
                    }
                    let kind = match t {
                        libc::S_IFSOCK => KIND_SOCKET,
                        libc::S_IFIFO => KIND_FIFO,
                        0 | libc::S_IFCHR => KIND_POLLABLE,
                        _ => KIND_OTHER,
                    };
                    self.kind.store(kind, Ordering::Relaxed);
                    s
                }
                None => false,
            },
        }
    }

    /// For a pollable fd that is not a socket: `Some(true)` for a pipe or
    /// FIFO, `Some(false)` for a tty, other character device or anonymous
    /// inode; `None` otherwise (sockets, regular files, directories).
    pub(crate) fn pollable_kind(&self, fd: libc::c_int) -> Option<bool> {
        if self.is_socket(fd) {
            return None;
        }
        match self.kind.load(Ordering::Relaxed) {
            KIND_FIFO => Some(true),
            KIND_POLLABLE => Some(false),
            _ => None,
        }
    }

    /// Forgets everything about a closed (or newly created) fd.
    pub(crate) fn reset(&self, socket: Option<bool>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.rcv_timeo_us.store(0, Ordering::Relaxed);
        self.snd_timeo_us.store(0, Ordering::Relaxed);
        let kind = match socket {
            Some(true) => KIND_SOCKET,
            Some(false) => KIND_OTHER,
            None => KIND_UNKNOWN,
        };
        self.kind.store(kind, Ordering::Relaxed);
    }

    pub(crate) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records `SO_RCVTIMEO` (`read`) or `SO_SNDTIMEO`.
    pub(crate) fn set_timeout(&self, read: bool, t: Option<Duration>) {
        let us = t.map_or(0, |d| (d.as_micros() as u64).max(1));
        if read {
            self.rcv_timeo_us.store(us, Ordering::Relaxed);
        } else {
            self.snd_timeo_us.store(us, Ordering::Relaxed);
        }
    }

    /// The user's timeout for reads or writes.
    pub(crate) fn timeout(&self, read: bool) -> Option<Duration> {
        let us = if read {
            self.rcv_timeo_us.load(Ordering::Relaxed)
        } else {
            self.snd_timeo_us.load(Ordering::Relaxed)
        };
        (us != 0).then(|| Duration::from_micros(us))
    }
}

/// An fd's registration with this thread's hub, tagged with the fd-table
/// generation it was made for.
type Registered = Option<(u32, Rc<Registration>)>;

thread_local! {
    /// This thread's epoll registrations of hooked fds, indexed by fd.
    static REGS: RefCell<Vec<Registered>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's registration of `fd`, registering it first
/// (or again, if the fd was closed and reused since). Returns `None` when the
/// fd cannot be registered with epoll (a regular file, say).
pub(crate) fn with_registration<R>(
    fd: libc::c_int,
    info: &FdInfo,
    f: impl FnOnce(&Registration) -> R,
) -> Option<R> {
    // The map keeps its own reference: other greenlets may wait on the same
    // fd while this one is parked inside `f`.
    registration(fd, info).map(|reg| f(&reg))
}

/// What a hook waits on for an fd: this thread's cached registration of
/// it, or, for an fd the hub already watches under another owner, a
/// registered dup of it made for this wait alone.
pub(crate) enum HookRegistration {
    Cached(Rc<Registration>),
    /// Dropping it takes the dup out of epoll and closes it.
    Dup(Rc<Watched>),
}

impl Clone for HookRegistration {
    fn clone(&self) -> HookRegistration {
        match self {
            HookRegistration::Cached(r) => HookRegistration::Cached(r.clone()),
            HookRegistration::Dup(w) => HookRegistration::Dup(w.clone()),
        }
    }
}

impl std::ops::Deref for HookRegistration {
    type Target = Registration;

    fn deref(&self) -> &Registration {
        match self {
            HookRegistration::Cached(r) => r,
            HookRegistration::Dup(w) => w.registration(),
        }
    }
}

/// This thread's registration of `fd` (see [`with_registration`]), as a
/// handle that stays valid after the fd is closed: a waiter that must undo
/// its registration later (`poll`'s) undoes it on the registration it made,
/// never on whatever a reused fd number maps to by then.
///
/// An fd this thread's hub already watches (a `greenlet::net` socket's,
/// whose fd a C library polls) cannot be registered again (`EEXIST`):
/// it is waited on through a dup of it, registered for this wait only, so
/// the dup never keeps the socket open past the wait.
pub(crate) fn registration(fd: libc::c_int, info: &FdInfo) -> Option<HookRegistration> {
    let generation = info.generation();
    let idx = fd as usize;
    let cached: std::io::Result<Rc<Registration>> = REGS.with(|regs| {
        let mut regs = regs.borrow_mut();
        if regs.len() <= idx {
            regs.resize_with(idx + 1, || None);
        }
        match &regs[idx] {
            Some((g, reg)) if *g == generation => Ok(reg.clone()),
            _ => {
                // A stale entry's fd is gone; its epoll entry went with it
                // (or belongs to a dup we must not disturb).
                regs[idx] = None;
                let reg = Rc::new(Registration::new(fd)?);
                regs[idx] = Some((generation, reg.clone()));
                Ok(reg)
            }
        }
    });
    match cached {
        Ok(reg) => Some(HookRegistration::Cached(reg)),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            // SAFETY: epoll just found `fd` registered, so it is open; the
            // borrow lasts only for the `dup` below, within the hooked
            // call that was handed `fd`.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let watched = Watched::new(borrowed).ok()??;
            Some(HookRegistration::Dup(Rc::new(watched)))
        }
        Err(_) => None,
    }
}

/// Removes this thread's registration of `fd` (before it closes), waking
/// any greenlet still waiting on it.
pub(crate) fn forget_registration(fd: libc::c_int) {
    let idx = fd as usize;
    let reg = REGS
        .try_with(|regs| regs.borrow_mut().get_mut(idx).and_then(Option::take))
        .ok()
        .flatten();
    if let Some((_, reg)) = reg {
        let _ = reg.deregister(&mut SourceFd(&fd));
        // Waiters (a `poll` hook's) may hold the registration too: wake
        // them now rather than when the last reference drops.
        reg.retire();
    }
}

/// [`forget_registration`] for every fd in `first..=last` this thread has
/// registered (`close_range`).
pub(crate) fn forget_registrations(first: u32, last: u32) {
    let known = REGS.try_with(|regs| regs.borrow().len()).unwrap_or(0);
    let end = known.min(last as usize + 1);
    for fd in first as usize..end {
        forget_registration(fd as libc::c_int);
    }
}

/// Clears the entries of the fds `first..=last` (`close_range`). Only the
/// chunks already mapped are walked: an fd whose chunk was never mapped
/// has no entry yet.
pub(crate) fn reset_range(first: u32, last: u32) {
    let first = first as usize;
    let last = (last as usize).min(CHUNK * CHUNKS - 1);
    if first > last {
        return;
    }
    let (first_hi, last_hi) = (first / CHUNK, last / CHUNK);
    for (hi, slot) in TABLE.iter().enumerate().take(last_hi + 1).skip(first_hi) {
        let chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            continue;
        }
        let lo_first = if hi == first_hi { first % CHUNK } else { 0 };
        let lo_last = if hi == last_hi {
            last % CHUNK
        } else {
            CHUNK - 1
        };
        for lo in lo_first..=lo_last {
            // SAFETY: a mapped chunk holds CHUNK entries and is never
            // unmapped.
            unsafe { &*chunk.add(lo) }.reset(None);
        }
    }
}
