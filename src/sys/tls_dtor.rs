//! Thread-local destructors: how many this thread has registered, and
//! registering one of the runtime's own.
//!
//! glibc runs a thread's thread-local destructors (those registered with
//! `__cxa_thread_atexit_impl`, which is how std registers every
//! `thread_local!` that needs dropping) in reverse order of registration,
//! and std registers a thread-local's destructor at its first use. The hub
//! needs to stop before the first thread-local that one of its parked
//! greenlets may borrow is destroyed (see `crate::hub::exit`), so it must
//! register a destructor of its own after every such registration: this
//! module counts them.
//!
//! The count comes from interposing `__cxa_thread_atexit_impl`: the
//! definition below is linked into the program, so std's (weak) reference
//! binds to it; it counts, then forwards to glibc's, found with
//! `dlsym(RTLD_NEXT)`. Only on Linux with glibc, dynamically linked; on
//! other targets [`registrations`] stays 0 and [`register`] declines, and
//! the hub falls back to stopping in its own destructor. One definition
//! per program: Cargo refuses two versions of this crate in one build
//! (the `links` key in Cargo.toml, there for the monkey hooks too), so
//! no second definition can reach the linker.

use std::cell::Cell;
use std::ffi::c_void;

/// A thread-local destructor, as glibc calls it.
pub(crate) type Dtor = unsafe extern "C" fn(*mut c_void);

thread_local! {
    /// Destructors registered on this thread through the interposer. A
    /// `const` thread-local without `Drop`: reading it registers nothing.
    static REGISTRATIONS: Cell<u64> = const { Cell::new(0) };
}

/// How many thread-local destructors this thread has registered so far
/// (not counting [`register`]'s).
#[inline]
pub(crate) fn registrations() -> u64 {
    REGISTRATIONS.with(Cell::get)
}

#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
))]
mod imp {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicPtr, Ordering};

    use super::{Dtor, REGISTRATIONS};

    type AtexitImpl = unsafe extern "C" fn(Dtor, *mut c_void, *mut c_void) -> c_int;

    /// glibc's `__cxa_thread_atexit_impl`; null until first needed.
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

    fn real() -> Option<AtexitImpl> {
        let mut p = REAL.load(Ordering::Acquire);
        if p.is_null() {
            // SAFETY: a NUL-terminated name; `RTLD_NEXT` looks past this
            // object, so it finds glibc's definition, not the one below.
            p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"__cxa_thread_atexit_impl".as_ptr()) };
            if p.is_null() {
                return None;
            }
            REAL.store(p, Ordering::Release);
        }
        // SAFETY: the symbol glibc exports under this name has this
        // signature (glibc 2.18 and later).
        Some(unsafe { std::mem::transmute::<*mut c_void, AtexitImpl>(p) })
    }

    /// Counts the registration, then registers with glibc.
    ///
    /// # Safety
    /// As glibc's: `dtor(obj)` may be called at this thread's exit.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __cxa_thread_atexit_impl(
        dtor: Dtor,
        obj: *mut c_void,
        dso_symbol: *mut c_void,
    ) -> c_int {
        REGISTRATIONS.with(|r| r.set(r.get() + 1));
        match real() {
            // SAFETY: forwarded unchanged; the caller's contract.
            Some(f) => unsafe { f(dtor, obj, dso_symbol) },
            // No glibc definition (not reachable with glibc >= 2.18): the
            // destructor is not registered, so it leaks, as std's fallback
            // would on failure.
            None => -1,
        }
    }

    pub(super) fn register(dtor: Dtor, obj: *mut c_void) -> bool {
        let Some(f) = real() else {
            return false;
        };
        // Any address inside this object names it to glibc (which keeps
        // it loaded while the destructor is pending).
        let dso = (&REAL as *const AtomicPtr<c_void>)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: glibc's registration, with the caller's destructor.
        unsafe { f(dtor, obj, dso) == 0 }
    }
}

/// Registers `dtor(obj)` to run at this thread's exit, before every
/// thread-local destructor registered so far (and after those registered
/// later). Not counted in [`registrations`]. `false` where unsupported.
///
/// # Safety
/// `dtor(obj)` must be sound to call once at this thread's exit, while
/// thread-locals registered before it are still alive.
pub(crate) unsafe fn register(dtor: Dtor, obj: *mut c_void) -> bool {
    #[cfg(all(
        target_os = "linux",
        target_env = "gnu",
        not(target_feature = "crt-static")
    ))]
    {
        imp::register(dtor, obj)
    }
    #[cfg(not(all(
        target_os = "linux",
        target_env = "gnu",
        not(target_feature = "crt-static")
    )))]
    {
        let _ = (dtor, obj);
        false
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    target_env = "gnu",
    not(target_feature = "crt-static")
))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ORDER: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

    struct Named(&'static str);

    impl Drop for Named {
        fn drop(&mut self) {
            ORDER.lock().unwrap().push(self.0);
        }
    }

    thread_local! {
        static FIRST: Named = const { Named("first") };
        static SECOND: Named = const { Named("second") };
    }

    static OURS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn ours(_: *mut c_void) {
        OURS.fetch_add(1, Ordering::SeqCst);
        ORDER.lock().unwrap().push("ours");
    }

    #[test]
    fn counts_thread_local_registrations_and_runs_ours_before_earlier_ones() {
        std::thread::spawn(|| {
            let before = registrations();
            FIRST.with(|_| {});
            assert_eq!(registrations(), before + 1, "a first use registers once");
            FIRST.with(|_| {});
            assert_eq!(
                registrations(),
                before + 1,
                "a second use registers nothing"
            );
            // SAFETY: `ours` only records that it ran.
            assert!(unsafe { register(ours, std::ptr::null_mut()) });
            assert_eq!(registrations(), before + 1, "ours is not counted");
            SECOND.with(|_| {});
        })
        .join()
        .unwrap();
        assert_eq!(OURS.load(Ordering::SeqCst), 1);
        // Reverse order of registration: `SECOND`, ours, then `FIRST`.
        assert_eq!(*ORDER.lock().unwrap(), ["second", "ours", "first"]);
    }
}
