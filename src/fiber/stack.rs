//! Greenlet stacks: slabs of guarded stacks and the per-thread pool.
//!
//! One `mmap(MAP_NORESERVE)` slab holds many stacks of one size; the lowest
//! page of each stack is a guard page. On Linux 6.13+ the guard is installed
//! with `MADV_GUARD_INSTALL`, which does not split the mapping, so a million
//! stacks cost a handful of VMAs. Older kernels fall back to `mprotect`, where
//! every stack costs two VMAs and `vm.max_map_count` becomes the limit; running
//! into it is reported as an error that names the limit.
//!
//! Pages are committed lazily by the kernel on first touch. A finished
//! greenlet's stack goes back to a LIFO free list with its pages still
//! resident, so the next spawn reuses a hot stack; when the hub goes idle it
//! trims released stacks, giving back every page below the top
//! [`KEEP_RESIDENT`] bytes with `MADV_DONTNEED`, so one deep call does not pin
//! memory forever.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sys;

/// Default stack size in bytes of address space (including the guard page).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack accepted, including the guard page.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Bytes at the top of a pooled stack that stay resident when it is trimmed.
const KEEP_RESIDENT: usize = 16 * 1024;

/// Address space reserved per slab.
const SLAB_BYTES: usize = 64 * 1024 * 1024;

/// How many released stacks one idle trim pass gives back at most.
const TRIM_BATCH: usize = 256;

/// Stacks whose top page is pre-faulted together, in one syscall, when the
/// first of them is carved: a cold spawn then takes no page fault.
const POPULATE_BATCH: usize = 64;

/// `process_madvise` takes at most this many ranges per call (`UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

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
unsafe fn install_guard(lo: *mut u8, page: usize) -> io::Result<()> {
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
fn batch_guards(base: usize, slots: usize, size: usize) -> bool {
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

/// Rounds a requested stack size to whole pages, at least [`MIN_STACK_SIZE`].
///
/// # Errors
/// `InvalidInput` when the rounded size does not fit in the address space.
pub(crate) fn normalize_size(size: usize) -> io::Result<usize> {
    let page = sys::page_size();
    size.max(MIN_STACK_SIZE)
        .div_ceil(page)
        .checked_mul(page)
        .filter(|&s| s <= isize::MAX as usize)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("greenlet stack size of {size} bytes is larger than the address space"),
            )
        })
}

/// A stack slot taken from the pool; it goes back to the pool on drop.
///
/// # Invariant
/// `lo..lo+size` is a slot of a live slab owned by the pool at `pool`, whose
/// lowest page is a guard page, and no other `PooledStack` refers to it.
pub(crate) struct PooledStack {
    lo: usize,
    size: usize,
    pool: *const StackPool,
}

impl PooledStack {
    /// Lowest address of the slot (the start of its guard page).
    pub(crate) fn guard_lo(&self) -> usize {
        self.lo
    }
}

// SAFETY: `base` and `limit` describe a mapped, writable region of at least
// MIN_STACK_SIZE - page bytes (>= corosensei's MIN_STACK_SIZE), with a guard
// page directly below `limit`, so an overflow faults instead of corrupting
// memory. Both are page-aligned, hence aligned to STACK_ALIGNMENT.
unsafe impl corosensei::stack::Stack for PooledStack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        // SAFETY (of unwrap): lo + size is a non-null mapped address.
        NonZeroUsize::new(self.lo + self.size).unwrap()
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.lo + sys::page_size()).unwrap()
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: the pool outlives every stack it hands out (the hub drops
        // all its greenlets before its pool; see `Hub`'s `Drop`).
        unsafe { &*self.pool }.release(self.lo, self.size);
    }
}

struct SizeClass {
    size: usize,
    /// Released stacks whose deep pages may still be resident (LIFO: hot).
    dirty: Vec<usize>,
    /// Trimmed or never-used stacks with their guard installed.
    clean: Vec<usize>,
    /// Never-used slots of slabs on the `MADV_GUARD_INSTALL` path, taken
    /// from the last range: `(next, end, prepared_to)`, where slots below
    /// `prepared_to` have their guard installed and top page pre-faulted.
    fresh: Vec<(usize, usize, usize)>,
    /// Slots left in `fresh`.
    fresh_count: usize,
    /// The uncarved rest of a slab whose guards go in one by one (old
    /// kernels, the `mprotect` fallback): `(next, end)`.
    unguarded: (usize, usize),
    /// Stacks promised to greenlets that have not started yet.
    reserved: usize,
}

impl SizeClass {
    fn new(size: usize) -> SizeClass {
        SizeClass {
            size,
            dirty: Vec::new(),
            clean: Vec::new(),
            fresh: Vec::new(),
            fresh_count: 0,
            unguarded: (0, 0),
            reserved: 0,
        }
    }

    /// Stacks that can be handed out without mapping anything.
    fn available(&self) -> usize {
        self.dirty.len() + self.clean.len() + self.fresh_count
    }

    /// Takes a never-used slot of a lazily guarded slab. When it crosses
    /// into slots not prepared yet, it prepares the next [`POPULATE_BATCH`]
    /// of them: installs their guard pages and pre-faults their top pages,
    /// one syscall each. Guards go in at first use, not at reservation, so
    /// reserving many stacks (spawning many greenlets that will run one
    /// after another on the same hot stack) costs no page tables.
    ///
    /// # Errors
    /// When the kernel refuses the guard pages (out of memory for page
    /// tables); the slot stays unused.
    fn take_fresh(&mut self) -> io::Result<usize> {
        let page = sys::page_size();
        let size = self.size;
        let (next, end, prepared_to) = self
            .fresh
            .last_mut()
            .expect("greenlet: stack reservation without capacity");
        let lo = *next;
        if lo >= *prepared_to {
            let n = POPULATE_BATCH.min((*end - lo) / size);
            if !batch_guards(lo, n, size) {
                for i in 0..n {
                    // SAFETY: the lowest page of an unused slot of our slab.
                    unsafe { install_guard((lo + i * size) as *mut u8, page) }?;
                }
            }
            let tops: Vec<(usize, usize)> = (1..=n).map(|i| (lo + i * size - page, page)).collect();
            // SAFETY: the top pages of unused slots of our slab. Failure is
            // harmless: the pages then fault in on first touch.
            let _ = unsafe { sys::process_madvise_self(&tops, sys::MADV_POPULATE_WRITE) };
            *prepared_to = lo + n * size;
        }
        *next += size;
        if *next >= *end {
            self.fresh.pop();
        }
        self.fresh_count -= 1;
        Ok(lo)
    }
}

/// A per-thread pool of stacks, one free list per size.
pub(crate) struct StackPool {
    classes: RefCell<Vec<SizeClass>>,
    slabs: RefCell<Vec<(usize, usize)>>,
    /// Keep the slabs mapped when the pool drops (see [`StackPool::leak`]).
    leaked: std::cell::Cell<bool>,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: RefCell::new(Vec::new()),
            slabs: RefCell::new(Vec::new()),
            leaked: std::cell::Cell::new(false),
        }
    }

    /// Makes the pool leave its slabs mapped when it drops: a greenlet
    /// leaked at thread exit may still be linked, through a node on its
    /// stack, into a sync primitive that other threads use.
    pub(crate) fn leak(&self) {
        self.leaked.set(true);
    }

    fn class_index(classes: &mut Vec<SizeClass>, size: usize) -> usize {
        match classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                classes.push(SizeClass::new(size));
                classes.len() - 1
            }
        }
    }

    /// Promises one stack of `size` bytes (already normalized) to a greenlet
    /// that will start later: makes sure a guarded slot exists, without
    /// touching its memory. Spawning reserves; the first run [`take`]s.
    ///
    /// # Errors
    /// When no slab can be mapped, or (with the `mprotect` fallback) when
    /// `vm.max_map_count` is reached; the message names the limit.
    ///
    /// [`take`]: StackPool::take
    pub(crate) fn reserve(&self, size: usize) -> io::Result<()> {
        let mut classes = self.classes.borrow_mut();
        let idx = Self::class_index(&mut classes, size);
        let class = &mut classes[idx];
        if class.available() <= class.reserved {
            self.grow(class)?;
        }
        class.reserved += 1;
        Ok(())
    }

    /// Gives back a reservation that will not be used (a greenlet killed
    /// before it started).
    pub(crate) fn unreserve(&self, size: usize) {
        let mut classes = self.classes.borrow_mut();
        if let Some(c) = classes.iter_mut().find(|c| c.size == size) {
            c.reserved -= 1;
        }
    }

    /// Takes a reserved stack: the most recently released one (its pages
    /// are hot), else a trimmed one, else a fresh slot. The reservation is
    /// used up either way.
    ///
    /// # Errors
    /// Only when a fresh slot's guard page cannot be installed.
    pub(crate) fn take(&self, size: usize) -> io::Result<PooledStack> {
        let mut classes = self.classes.borrow_mut();
        let class = classes
            .iter_mut()
            .find(|c| c.size == size)
            .expect("greenlet: stack taken without a reservation");
        class.reserved -= 1;
        let lo = match class.dirty.pop().or_else(|| class.clean.pop()) {
            Some(lo) => lo,
            None => class.take_fresh()?,
        };
        Ok(PooledStack {
            lo,
            size,
            pool: self,
        })
    }

    /// Adds capacity for at least one more stack.
    #[cold]
    fn grow(&self, class: &mut SizeClass) -> io::Result<()> {
        let page = sys::page_size();
        if class.unguarded.0 == class.unguarded.1 {
            let slots = (SLAB_BYTES / class.size).max(1);
            let len = slots * class.size;
            let base = sys::mmap_stack_region(len).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot reserve {len} bytes for greenlet stacks: {e}"),
                )
            })? as usize;
            self.slabs.borrow_mut().push((base, len));
            // Probe the fast path with the first slot's guard; the rest are
            // installed as slots are first used (see `take_fresh`).
            if batch_guards(base, 1, class.size) {
                class.fresh.push((base, base + len, base));
                class.fresh_count += slots;
                return Ok(());
            }
            class.unguarded = (base, base + len);
        }
        // Old kernel, or the mprotect fallback: guard one slot now, so a
        // failure surfaces at spawn, and keep it ready.
        let lo = class.unguarded.0;
        // SAFETY: `lo` starts an unused slot of a slab we mapped.
        unsafe { install_guard(lo as *mut u8, page) }?;
        class.unguarded.0 += class.size;
        class.clean.push(lo);
        Ok(())
    }

    fn release(&self, lo: usize, size: usize) {
        let mut classes = self.classes.borrow_mut();
        if let Some(c) = classes.iter_mut().find(|c| c.size == size) {
            c.dirty.push(lo);
        }
    }

    /// Whether any released stack is waiting to be trimmed.
    pub(crate) fn needs_trim(&self) -> bool {
        self.classes.borrow().iter().any(|c| !c.dirty.is_empty())
    }

    /// Gives back the deep pages of up to [`TRIM_BATCH`] released stacks
    /// (the coldest first). Called when the hub is about to go idle.
    pub(crate) fn trim(&self) {
        let page = sys::page_size();
        let mut budget = TRIM_BATCH;
        let mut classes = self.classes.borrow_mut();
        for c in classes.iter_mut() {
            let n = budget.min(c.dirty.len());
            for lo in c.dirty.drain(..n) {
                let from = lo + page;
                let to = lo + c.size - KEEP_RESIDENT.min(c.size - page);
                if to > from {
                    // SAFETY: `from..to` lies in a released slot of our slab,
                    // above its guard page; no greenlet uses it.
                    let _ = unsafe { sys::madvise_dontneed(from as *mut u8, to - from) };
                }
                c.clean.push(lo);
            }
            budget -= n;
            if budget == 0 {
                break;
            }
        }
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        if self.leaked.get() {
            return;
        }
        for &(base, len) in self.slabs.borrow().iter() {
            // SAFETY: every greenlet of this thread has finished or been
            // leaked (never to run again) before the pool drops.
            let _ = unsafe { sys::munmap(base as *mut u8, len) };
        }
    }
}
