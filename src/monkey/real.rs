//! The real libc functions behind the hooks, found with
//! `dlsym(RTLD_NEXT, name)` on first use and cached in an atomic.
//!
//! This is the monkey module's own `sys` layer: every call to the real
//! function goes through here. Resolution happens lazily because the first
//! hooked call can come before `main` (std polls fds 0-2 at start-up); it
//! may allocate (inside `dlsym`), which is fine because `malloc` never calls
//! a hooked symbol.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, c_uint, c_void, size_t, sockaddr, socklen_t, ssize_t};

/// Resolves `name` (NUL-terminated) in the libraries after this executable.
/// A missing libc symbol cannot be recovered from: report with raw `write`
/// and abort.
#[cold]
fn resolve(name: &'static [u8]) -> usize {
    // SAFETY: `name` is a NUL-terminated literal; RTLD_NEXT is valid in an
    // executable that links libc dynamically (build.rs refuses crt-static).
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        crate::sys::write_stderr_raw(b"greenlet::monkey: dlsym(RTLD_NEXT) cannot find libc's ");
        crate::sys::write_stderr_raw(&name[..name.len() - 1]);
        crate::sys::write_stderr_raw(b"; aborting\n");
        crate::sys::abort();
    }
    p as usize
}

macro_rules! real_fns {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            /// Calls libc's real function of this name.
            ///
            /// # Safety
            /// The libc function's own contract.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                static PTR: AtomicUsize = AtomicUsize::new(0);
                let mut p = PTR.load(Ordering::Relaxed);
                if p == 0 {
                    p = resolve(concat!(stringify!($name), "\0").as_bytes());
                    PTR.store(p, Ordering::Relaxed);
                }
                // SAFETY: `p` is libc's function of this exact name, whose C
                // signature the declaration above spells out.
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(p) };
                // SAFETY: guaranteed by the caller.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

real_fns! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tv: *mut libc::timeval) -> c_int;
    fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn usleep(usec: libc::useconds_t) -> c_int;
    fn sleep(secs: c_uint) -> c_uint;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
    fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t;
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, fdslen: size_t) -> c_int;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t;
    fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t) -> c_int;
    fn epoll_pwait2(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn __ppoll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t, fdslen: size_t) -> c_int;
}

/// Reads `errno`.
/// A signal set holding only `sig` (empty if `sig` is not a signal).
pub(crate) fn sigset_of(sig: c_int) -> libc::sigset_t {
    // SAFETY: zeroed is a valid sigset_t for sigemptyset to initialize.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid sigset out-pointer; sigaddset rejects bad numbers
    // with EINVAL and no memory effects.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
    }
    set
}

#[inline]
pub(crate) fn errno() -> c_int {
    // SAFETY: errno is thread-local and always readable.
    unsafe { *libc::__errno_location() }
}

/// Sets `errno`.
#[inline]
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// Calls libc's real `close_range`, or makes the system call where libc
/// has none (glibc before 2.34), rather than abort as a missing symbol
/// does.
///
/// # Safety
/// The libc function's own contract.
pub(crate) unsafe fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    /// The function; `MISSING` once `dlsym` found none.
    static PTR: AtomicUsize = AtomicUsize::new(0);
    const MISSING: usize = 1;
    let mut p = PTR.load(Ordering::Relaxed);
    if p == 0 {
        // SAFETY: a NUL-terminated name; see `resolve`.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"close_range".as_ptr()) } as usize;
        if p == 0 {
            p = MISSING;
        }
        PTR.store(p, Ordering::Relaxed);
    }
    if p == MISSING {
        // SAFETY: the system call takes these three arguments; it fails
        // with ENOSYS on a kernel without it.
        return unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) } as c_int;
    }
    // SAFETY: `p` is libc's `close_range`, of this C signature.
    let f: unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int = unsafe { std::mem::transmute(p) };
    // SAFETY: guaranteed by the caller.
    unsafe { f(first, last, flags) }
}

/// `fcntl(fd, F_GETFL)` (not hooked: fcntl is variadic).
pub(crate) fn get_fl(fd: c_int) -> c_int {
    // SAFETY: F_GETFL takes no argument and has no memory effects.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

/// `fcntl(fd, F_SETFL, fl)`.
pub(crate) fn set_fl(fd: c_int, fl: c_int) -> c_int {
    // SAFETY: F_SETFL with an int argument has no memory effects.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl) }
}

/// The file type bits of `fd` (`st_mode & S_IFMT`; 0 for anonymous
/// inodes: eventfd, timerfd, signalfd, epoll, pidfd), with one `fstat`.
pub(crate) fn file_type(fd: c_int) -> Option<libc::mode_t> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(st.st_mode & libc::S_IFMT)
}

/// `getsockopt(fd, SOL_SOCKET, SO_ERROR)`.
pub(crate) fn take_socket_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut c_int).cast(),
            &mut len,
        )
    };
    if r != 0 { errno() } else { err }
}

/// `getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO | SO_SNDTIMEO)`.
pub(crate) fn socket_timeout(fd: c_int, name: c_int) -> Option<std::time::Duration> {
    // SAFETY: zeroed timeval is a valid out-parameter.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    let d = std::time::Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000);
    (!d.is_zero()).then_some(d)
}
