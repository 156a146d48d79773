//! Every raw libc call the runtime makes lives here, behind `syscall!`.
//!
//! Code above this module never calls `libc::` directly: it calls the small,
//! typed wrappers below, each of which states what it needs from its caller.

use std::io;
use std::ptr;

/// Calls a libc function and turns a `-1` result into
/// `io::Error::last_os_error()` (the mio idiom).
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        // SAFETY: each call site passes arguments that satisfy the libc
        // function's contract; the wrapper functions document how.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

// After the macro, so it is in scope there.
pub(crate) mod affinity;
mod fd;
pub(crate) mod fork;
mod net;
mod sockname;
pub(crate) mod tls_dtor;
pub(crate) use fd::{
    EventFd, SigSet, block_signals, close_unhooked, dup_cloexec, is_nonblocking, pidfd_open,
    poll_now, read, read_signalfd, set_nonblocking_fl, signalfd, write,
};
pub(crate) use net::{
    accept_nonblocking, recv, reuseport_listener, send, send_vectored, set_backlog,
    set_nonblocking, set_reuseport, would_block,
};
pub(crate) use sockname::describe_socket;

/// The `errno` values code above this module matches on.
pub(crate) mod errno {
    pub(crate) use libc::{
        EAGAIN, ECONNABORTED, ECONNRESET, EHOSTDOWN, EHOSTUNREACH, EINTR, EMFILE, ENETDOWN,
        ENETUNREACH, ENFILE, ENOBUFS, ENOMEM, ENONET, ENOPROTOOPT, EOPNOTSUPP, EPERM, EPROTO,
        ETIMEDOUT,
    };
}

/// `MADV_GUARD_INSTALL` (Linux 6.13+): turns pages into guard pages without
/// splitting the mapping. Not yet in every libc crate release.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The number of threads of this process (`num_threads` of
/// `/proc/self/stat`); `None` if it cannot be read.
pub(crate) fn thread_count() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // fields are counted after its closing one. `num_threads` is field 20.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(17)?.parse().ok()
}

/// Runtime threads alive that run no user code now (blocking-pool
/// workers, the monitor's watchdog, the dump-signal thread, the stack
/// provisioner): see `crate::hub::process_deadlock`.
static RUNTIME_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many [`RuntimeThread`]s are counted now.
pub(crate) fn runtime_threads() -> usize {
    RUNTIME_THREADS.load(std::sync::atomic::Ordering::SeqCst)
}

/// Counts the calling thread as a runtime thread while alive. Made first
/// thing in the thread's body, dropped last.
pub(crate) struct RuntimeThread(());

impl RuntimeThread {
    pub(crate) fn enter() -> RuntimeThread {
        RUNTIME_THREADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RuntimeThread(())
    }

    /// Uncounts the thread while it runs user code (a monitor reporter).
    pub(crate) fn run_user<R>(&self, f: impl FnOnce() -> R) -> R {
        RUNTIME_THREADS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        struct Recount;
        impl Drop for Recount {
            fn drop(&mut self) {
                RUNTIME_THREADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _recount = Recount;
        f()
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        RUNTIME_THREADS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`) in nanoseconds,
/// never 0: the time of the last timer tick, read from the vDSO without
/// touching the TSC (about 4 ns here, against 17-26 ns for
/// `Instant::now()`). Good to the tick (1-4 ms): for stamps that only
/// dumps read, never for timers.
#[inline]
pub(crate) fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant every Linux since 2.6.32 supports.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
        .max(1)
}

/// The system page size, read once.
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    };
    PAGE.store(size, Ordering::Relaxed);
    size
}

/// Reserves `len` bytes of private anonymous read/write memory without
/// committing swap (`MAP_NORESERVE`): pages are committed on first touch.
pub(crate) fn mmap_stack_region(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous mapping at a kernel-chosen address cannot alias
    // any existing Rust object.
    let ptr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(ptr.cast())
    }
}

/// Unmaps a region returned by [`mmap_stack_region`].
///
/// # Safety
/// `ptr..ptr+len` must be a region this crate mapped, with nothing in it still
/// in use.
pub(crate) unsafe fn munmap(ptr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(munmap(ptr.cast(), len)).map(drop)
}

/// Installs a guard page range with `MADV_GUARD_INSTALL`.
///
/// # Safety
/// The range must lie inside a mapping this crate owns and hold no live data.
pub(crate) unsafe fn madvise_guard_install(ptr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(madvise(ptr.cast(), len, MADV_GUARD_INSTALL)).map(drop)
}

/// `MADV_POPULATE_WRITE` (Linux 5.14+): fault pages in, writable, without
/// touching them one by one.
pub(crate) const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `PIDFD_SELF_THREAD` (Linux 6.14+): "the calling thread" for pidfd
/// syscalls; its memory map is the process's, and it stays right across
/// `fork`.
const PIDFD_SELF_THREAD: libc::c_int = -10000;

/// Applies `advice` to many page ranges of this process in one syscall
/// (`process_madvise` on `PIDFD_SELF_THREAD`, which accepts any advice since
/// Linux 6.13/6.14). Returns the bytes advised; callers fall back to
/// [`madvise_guard_install`] and friends when it fails or comes up short.
///
/// # Safety
/// Every range must lie inside a mapping this crate owns and hold no live
/// data that `advice` could destroy.
pub(crate) unsafe fn process_madvise_self(
    ranges: &[(usize, usize)],
    advice: libc::c_int,
) -> io::Result<usize> {
    let iov: Vec<libc::iovec> = ranges
        .iter()
        .map(|&(start, len)| libc::iovec {
            iov_base: start as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: `iov` is a live array of `iov.len()` iovecs; the ranges satisfy
    // the caller's contract.
    let n = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF_THREAD,
            iov.as_ptr(),
            iov.len(),
            advice,
            0,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Makes a range inaccessible with `mprotect(PROT_NONE)` (the guard-page
/// fallback; splits the mapping).
///
/// # Safety
/// The range must lie inside a mapping this crate owns and hold no live data.
pub(crate) unsafe fn mprotect_none(ptr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(mprotect(ptr.cast(), len, libc::PROT_NONE)).map(drop)
}

/// Gives the pages of a range back to the kernel (`MADV_DONTNEED`); they read
/// as zero when next touched.
///
/// # Safety
/// The range must lie inside a mapping this crate owns and hold no live data.
pub(crate) unsafe fn madvise_dontneed(ptr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(madvise(ptr.cast(), len, libc::MADV_DONTNEED)).map(drop)
}

/// Commits the pages of a range (`MADV_POPULATE_WRITE`) without touching
/// them one by one; fails on kernels before 5.14 (the pages are then
/// faulted in at first touch).
///
/// # Safety
/// The range must lie inside a writable mapping this crate owns.
pub(crate) unsafe fn populate_write(ptr: *mut u8, len: usize) -> io::Result<()> {
    syscall!(madvise(ptr.cast(), len, MADV_POPULATE_WRITE)).map(drop)
}

#[cfg(greenlet_asan)]
unsafe extern "C" {
    fn __asan_poison_memory_region(addr: *const libc::c_void, size: usize);
    fn __asan_unpoison_memory_region(addr: *const libc::c_void, size: usize);
    fn __asan_address_is_poisoned(addr: *const libc::c_void) -> libc::c_int;
}

/// Whether AddressSanitizer reports `ptr` as unaddressable (for tests).
#[cfg(all(greenlet_asan, test))]
pub(crate) fn asan_is_poisoned(ptr: *const u8) -> bool {
    // SAFETY: a query of ASan's shadow memory; any address is accepted.
    unsafe { __asan_address_is_poisoned(ptr.cast()) != 0 }
}

/// Marks memory as unaddressable for AddressSanitizer (a freed cell of a
/// custom allocator), so a use after free is reported.
///
/// # Safety
/// The range must be memory this crate owns and nothing may use it until
/// [`asan_unpoison`].
#[cfg(greenlet_asan)]
pub(crate) unsafe fn asan_poison(ptr: *mut u8, len: usize) {
    // SAFETY: per the contract; the call only updates ASan's shadow memory.
    unsafe { __asan_poison_memory_region(ptr.cast(), len) }
}

/// Makes memory addressable again for AddressSanitizer.
///
/// # Safety
/// The range must be memory this crate owns.
#[cfg(greenlet_asan)]
pub(crate) unsafe fn asan_unpoison(ptr: *mut u8, len: usize) {
    // SAFETY: per the contract; the call only updates ASan's shadow memory.
    unsafe { __asan_unpoison_memory_region(ptr.cast(), len) }
}

/// Reads `vm.max_map_count`, for error messages.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Writes bytes to stderr with the raw `write` syscall: no allocation, no
/// locks, safe inside a signal handler.
pub(crate) fn write_stderr_raw(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length come from a live slice.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Aborts the process with `SIGABRT` (async-signal-safe).
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Signature of an `SA_SIGINFO` handler.
pub(crate) type SigInfoHandler =
    unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// A saved `sigaction`, to chain to.
pub(crate) type SavedAction = libc::sigaction;

/// Installs `handler` for `signum` on the alternate stack and returns the
/// previous action.
pub(crate) fn install_fault_handler(
    signum: libc::c_int,
    handler: SigInfoHandler,
) -> io::Result<SavedAction> {
    // SAFETY: zeroed sigaction structs are valid "empty" values.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: sa_mask is a valid sigset_t inside `new`.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    syscall!(sigaction(signum, &new, &mut old))?;
    Ok(old)
}

/// Chains a fault to a previously installed action. For `SIG_DFL` (or
/// `SIG_IGN`, which the kernel does not honour for faults) it restores the
/// default action and returns, so the faulting instruction re-runs and the
/// process dies with the original signal.
///
/// # Safety
/// Must be called from the signal handler with the arguments it received.
pub(crate) unsafe fn chain_fault(
    prev: &SavedAction,
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: a zeroed sigaction with SIG_DFL is the default action.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: valid sigaction pointer; sigaction is async-signal-safe.
        unsafe { libc::sigaction(signum, &dfl, ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was registered as an SA_SIGINFO
        // handler with exactly this signature.
        let f: SigInfoHandler = unsafe { std::mem::transmute(handler) };
        // SAFETY: forwarding the kernel's own arguments.
        unsafe { f(signum, info, ctx) };
    } else {
        // SAFETY: a plain handler registered without SA_SIGINFO.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signum);
    }
}

/// Returns the fault address of a `SIGSEGV`/`SIGBUS`.
///
/// # Safety
/// `info` must be the pointer the kernel passed to an `SA_SIGINFO` handler.
pub(crate) unsafe fn fault_address(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: guaranteed by the caller.
    unsafe { (*info).si_addr() as usize }
}

/// Makes sure the calling thread has an alternate signal stack of at least
/// `size` bytes, so the overflow reporter can run when a stack is exhausted.
/// Returns the region this call mapped (to free with [`free_altstack`]), or
/// `None` when the thread already had one.
pub(crate) fn ensure_altstack(size: usize) -> io::Result<Option<(*mut u8, usize)>> {
    // SAFETY: zeroed stack_t is a valid out-parameter.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    syscall!(sigaltstack(ptr::null(), &mut old))?;
    if old.ss_flags & libc::SS_DISABLE == 0 && old.ss_size >= size {
        return Ok(None);
    }
    let page = page_size();
    let len = size + page;
    let base = mmap_stack_region(len)?;
    // SAFETY: the first page of the fresh mapping becomes its guard.
    if let Err(e) = unsafe { mprotect_none(base, page) } {
        // SAFETY: we mapped it just above and nothing uses it.
        let _ = unsafe { munmap(base, len) };
        return Err(e);
    }
    let st = libc::stack_t {
        // SAFETY: in bounds of the mapping.
        ss_sp: unsafe { base.add(page) }.cast(),
        ss_flags: 0,
        ss_size: size,
    };
    syscall!(sigaltstack(&st, ptr::null_mut()))?;
    Ok(Some((base, len)))
}

/// Disables and unmaps an alternate signal stack made by [`ensure_altstack`].
///
/// # Safety
/// Must be called on the thread that installed it, with its exact region.
pub(crate) unsafe fn free_altstack(base: *mut u8, len: usize) {
    let st = libc::stack_t {
        ss_sp: ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: disabling the altstack of the current thread.
    unsafe { libc::sigaltstack(&st, ptr::null_mut()) };
    // SAFETY: guaranteed by the caller.
    let _ = unsafe { munmap(base, len) };
}

/// A pipe whose ends are close-on-exec: `(read end, write end)`.
pub(crate) fn pipe_cloexec() -> io::Result<(libc::c_int, libc::c_int)> {
    let mut fds = [0 as libc::c_int; 2];
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
    Ok((fds[0], fds[1]))
}

/// Writes one byte to `fd`, ignoring the result. Async-signal-safe (one
/// `write`; `errno` is saved and restored for the interrupted code).
pub(crate) fn write_byte_in_signal_handler(fd: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    let b = 1u8;
    // SAFETY: writes one byte from a live local; `write` is async-signal-
    // safe.
    let _ = unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Blocks until `fd` has bytes and reads up to `buf.len()` of them
/// (retrying on `EINTR`).
pub(crate) fn read_blocking(fd: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A signal number from its name (`USR1`, `SIGUSR2`, any case) or number.
pub(crate) fn signal_number(name: &str) -> Option<libc::c_int> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("SIG").unwrap_or(&n);
    Some(match n {
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        other => other.parse().ok().filter(|s| (1..=64).contains(s))?,
    })
}

/// Installs a plain handler for `signum` (`SA_RESTART`, so interrupted
/// system calls resume).
pub(crate) fn install_plain_handler(
    signum: libc::c_int,
    handler: extern "C" fn(libc::c_int),
) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "empty" value.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler as usize;
    new.sa_flags = libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t inside `new`.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    syscall!(sigaction(signum, &new, ptr::null_mut()))?;
    Ok(())
}

/// Whether the page at `addr` is a guard page (`MADV_POPULATE_READ` fails
/// with `EFAULT` on one). Tests only: it makes an ordinary page resident.
///
/// # Safety
/// `addr` must be page-aligned and inside a mapping this crate owns.
#[cfg(test)]
pub(crate) unsafe fn is_guard_page(addr: usize, page: usize) -> bool {
    const MADV_POPULATE_READ: libc::c_int = 22;
    matches!(
        syscall!(madvise(addr as *mut libc::c_void, page, MADV_POPULATE_READ)),
        Err(e) if e.raw_os_error() == Some(libc::EFAULT)
    )
}

/// Whether the page at `addr` is resident (`mincore`). Tests only.
#[cfg(test)]
pub(crate) fn is_resident(addr: usize, page: usize) -> bool {
    let mut vec = [0u8; 1];
    // `mincore` only reads the page tables; `vec` has room for one page.
    let rc = syscall!(mincore(addr as *mut libc::c_void, page, vec.as_mut_ptr()));
    rc.is_ok() && vec[0] & 1 == 1
}
