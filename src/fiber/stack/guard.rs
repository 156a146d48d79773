//! Guard pages: which mechanism this process uses ([`guard_kind`]), and
//! installing them, one slot at a time or a whole slab's at once.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

use super::MAX_IOV;
use crate::sys;

/// How guard pages are installed on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)`: no extra mappings per stack.
    MadviseGuard,
    /// `mprotect(PROT_NONE)`: two mappings per stack, bounded by
    /// `vm.max_map_count`.
    Mprotect,
}

const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;
static GUARD: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// The guard-page mechanism this process uses (decided on first use: the
/// fallback is taken when the kernel refuses `MADV_GUARD_INSTALL`, or when
/// the crate was built with `GREENLET_FORCE_MPROTECT_GUARD=1`).
pub fn guard_kind() -> GuardKind {
    match GUARD.load(Ordering::Relaxed) {
        GUARD_MPROTECT => GuardKind::Mprotect,
        GUARD_MADVISE => GuardKind::MadviseGuard,
        _ if cfg!(greenlet_force_mprotect) => GuardKind::Mprotect,
        _ => GuardKind::MadviseGuard,
    }
}

/// Installs the guard page at `lo`.
///
/// # Safety
/// `lo..lo+page` must be inside a slab this module mapped and hold no data.
pub(super) unsafe fn install_guard(lo: *mut u8, page: usize) -> io::Result<()> {
    if !cfg!(greenlet_force_mprotect) && GUARD.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: guaranteed by the caller.
        match unsafe { sys::madvise_guard_install(lo, page) } {
            Ok(()) => {
                GUARD.store(GUARD_MADVISE, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                GUARD.store(GUARD_MPROTECT, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    } else {
        GUARD.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: guaranteed by the caller.
    unsafe { sys::mprotect_none(lo, page) }.map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOMEM) {
            let limit = sys::max_map_count()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into());
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot install a greenlet stack guard page: the process reached \
                     vm.max_map_count ({limit}) memory mappings. This kernel lacks \
                     MADV_GUARD_INSTALL (Linux 6.13+), so every stack costs two mappings; \
                     raise vm.max_map_count or run fewer greenlets at once"
                ),
            )
        } else {
            e
        }
    })
}

/// Installs the guard pages of a whole fresh slab in as few syscalls as
/// possible. Returns false (nothing lost: the caller then guards each slot
/// as it carves it) when the kernel cannot, or when the `mprotect` fallback
/// is in force.
pub(super) fn batch_guards(base: usize, slots: usize, size: usize) -> bool {
    if cfg!(greenlet_force_mprotect) || GUARD.load(Ordering::Relaxed) == GUARD_MPROTECT {
        return false;
    }
    let page = sys::page_size();
    let guards: Vec<(usize, usize)> = (0..slots).map(|i| (base + i * size, page)).collect();
    for chunk in guards.chunks(MAX_IOV) {
        // SAFETY: each range is the lowest page of an unused slot of the slab
        // the caller just mapped.
        match unsafe { sys::process_madvise_self(chunk, sys::MADV_GUARD_INSTALL) } {
            Ok(n) if n == chunk.len() * page => {}
            // Partly done is fine: installing a guard twice is harmless, and
            // the caller guards each slot itself from here on.
            _ => return false,
        }
    }
    GUARD.store(GUARD_MADVISE, Ordering::Relaxed);
    true
}
