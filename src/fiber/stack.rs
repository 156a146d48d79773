//! Greenlet stacks: slabs of guarded stacks and the per-thread pool.
//!
//! One `mmap(MAP_NORESERVE)` slab holds many stacks of one size; the lowest
//! page of each stack is a guard page. On Linux 6.13+ the guard is installed
//! with `MADV_GUARD_INSTALL`, which does not split the mapping, so a million
//! stacks cost a handful of VMAs. Older kernels fall back to `mprotect`, where
//! every stack costs two VMAs and `vm.max_map_count` becomes the limit; running
//! into it is reported as an error that names the limit.
//!
//! A never-used slot is prepared just before its first use: its guard page
//! installed and its top page pre-faulted, 64 slots per syscall. When
//! greenlets are waiting to start and the hub is eating through fresh slots,
//! the next ones are prepared on another core by a background thread,
//! `greenlet-stacks` (one per process, started on first need, never on a
//! single CPU, nor with `GREENLET_STACK_PROVISIONER=0`): as many as
//! greenlets wait, at most the pace seen since the pool last trimmed, and
//! 32 MiB of pages. What it prepared and nobody took goes back at the next
//! trim. It only asks the kernel to change page tables; a stack is handed
//! out only once its guard page is known to be in place.
//!
//! Deeper pages are committed lazily by the kernel on first touch. A finished
//! greenlet's stack goes back to a LIFO free list with its pages still
//! resident, so the next spawn reuses a hot stack. When the hub goes idle it
//! trims released stacks, [`TRIM_BATCH`] per idle pass (the hub comes back
//! for the rest after polling once), in one `process_madvise` per 1,024:
//!
//! - the [`WARM_STACKS`] most recently released of each size keep their top
//!   [`KEEP_RESIDENT`] bytes (the next connections start without a page
//!   fault); every page below goes back with `MADV_DONTNEED`, so one deep
//!   call does not pin memory forever;
//! - every other released stack goes back whole (all pages above its guard,
//!   which stays installed): after a peak of connections, idle stacks hold
//!   no memory;
//! - a slab none of whose stacks is lent, warm or promised is unmapped
//!   whole, which also frees its page tables and guard markers.
//!
//! [`stats`] reports what the calling thread's pool holds.

use std::cell::RefCell;
use std::io;
use std::num::NonZeroUsize;

use crate::sys;

mod guard;
mod pooled;
mod size_class;
pub use guard::{GuardKind, guard_kind};
use guard::{batch_guards, install_guard};
use pooled::POOL_WORD;
pub(crate) use pooled::PooledStack;
use size_class::SizeClass;
#[cfg(test)]
mod tests;

/// Default stack size in bytes of address space (including the guard page).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack accepted, including the guard page.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Bytes at the top of a pooled stack that stay resident when it is trimmed.
const KEEP_RESIDENT: usize = 16 * 1024;

/// Address space reserved per slab.
const SLAB_BYTES: usize = 64 * 1024 * 1024;

/// How many released stacks one idle trim pass gives back at most.
const TRIM_BATCH: usize = 1024;

/// Released stacks of each size kept warm: trimmed to their top
/// [`KEEP_RESIDENT`] bytes instead of given back whole.
const WARM_STACKS: usize = 64;

/// Stacks whose top page is pre-faulted together, in one syscall, when the
/// first of them is carved: a cold spawn then takes no page fault.
const POPULATE_BATCH: usize = 64;

/// Slots per job handed to the provisioner thread.
const JOB_SLOTS: usize = 256;

/// Never-used slots kept provisioned ahead of the hub at most: the smaller
/// of this, the greenlets waiting for a fresh stack, and the fresh stacks
/// taken since the pool last trimmed (but at least [`JOB_SLOTS`]). 32 MiB
/// of top pages at 4 KiB.
const MAX_AHEAD: usize = 8192;

/// `process_madvise` takes at most this many ranges per call (`UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

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

/// Hints the CPU to load the top cache lines below `top` (a stack's
/// highest address). A prefetch never faults: an address with no page
/// behind it is ignored.
#[inline]
fn prefetch_top(top: usize) {
    const PREFETCH_LINES: usize = 4;
    #[cfg(target_arch = "x86_64")]
    for line in 1..=PREFETCH_LINES {
        // SAFETY: a prefetch is only a hint; it reads nothing and cannot
        // fault, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (top - line * 64) as *const i8,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = top;
}

/// Size classes (distinct stack sizes) a pool has at most: each keeps
/// slabs of its own (about 64 MiB of address space each), so a program
/// that asked for a new size at every spawn would reserve address space
/// without end.
const MAX_CLASSES: usize = 4096;

#[cfg(test)]
thread_local! {
    /// Makes this thread's next [`StackPool::take`] fail as if the kernel
    /// had refused the stack (the failure `launch` reports), for tests of
    /// that path.
    pub(crate) static FAIL_NEXT_TAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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

    fn class_index(classes: &mut Vec<SizeClass>, size: usize) -> io::Result<usize> {
        match classes.iter().position(|c| c.size == size) {
            Some(i) => Ok(i),
            None if classes.len() < MAX_CLASSES => {
                classes.push(SizeClass::new(size));
                Ok(classes.len() - 1)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot use a greenlet stack of {size} bytes: a thread uses at most \
                     {MAX_CLASSES} distinct stack sizes"
                ),
            )),
        }
    }

    /// The size of the stacks of class number `class`.
    fn class_size(&self, class: usize) -> usize {
        self.classes.borrow()[class].size
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
        let idx = Self::class_index(&mut classes, size)?;
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
    /// are hot), else a warm one, else a cold one, else a fresh slot. The reservation is
    /// used up either way.
    ///
    /// # Errors
    /// Only when a fresh slot's guard page cannot be installed.
    // Always inlined: returned through memory, the `Result` was copied
    // with a load wider than the stores that wrote it (a store-forwarding
    // stall on every first run of a greenlet).
    #[inline(always)]
    pub(crate) fn take(&self, size: usize) -> io::Result<PooledStack> {
        let mut classes = self.classes.borrow_mut();
        let index = classes
            .iter()
            .position(|c| c.size == size)
            .expect("greenlet: stack taken without a reservation");
        let class = &mut classes[index];
        class.reserved -= 1;
        #[cfg(test)]
        if FAIL_NEXT_TAKE.with(|f| f.replace(false)) {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "stack refused by a test (FAIL_NEXT_TAKE)",
            ));
        }
        let lo = match class.dirty.pop().or_else(|| class.clean.pop()) {
            Some(lo) => lo,
            None => match class.cold.pop() {
                Some(lo) => {
                    class.provision_cold();
                    lo
                }
                None => class.take_fresh()?,
            },
        };
        class.count_lent(lo, true);
        if class.reserved > 0 {
            // Another greenlet will start soon, most likely on this stack:
            // start the page walk and the load of its top lines now, while
            // this one runs, instead of stalling on them when it starts.
            if let Some(next) = class.next_to_take() {
                prefetch_top(next + size);
            }
        }
        let base = lo + size - POOL_WORD;
        // SAFETY: the slot's top two words, in a slot now lent to nobody
        // else (its top page is committed, or faults in here as the
        // fiber's first run would); `PooledStack::home` reads them back.
        unsafe {
            let at = base as *mut usize;
            at.write(self as *const StackPool as usize);
            at.add(1).write(index);
        }
        Ok(PooledStack {
            // SAFETY (of unwrap): a mapped slot's top is far above 16.
            base: NonZeroUsize::new(base).unwrap(),
        })
    }

    /// Adds capacity for at least one more stack.
    #[cold]
    fn grow(&self, class: &mut SizeClass) -> io::Result<()> {
        let page = sys::page_size();
        if class.unguarded.0 == class.unguarded.1 {
            let len = class.slab_len;
            let slots = len / class.size;
            let base = sys::mmap_stack_region(len).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot reserve {len} bytes for greenlet stacks: {e}"),
                )
            })? as usize;
            self.slabs.borrow_mut().push((base, len));
            let at = class.slabs.partition_point(|&(b, _)| b < base);
            class.slabs.insert(at, (base, 0));
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
        class.cold.push(lo);
        Ok(())
    }

    fn release(&self, top: usize, class: usize) {
        let mut classes = self.classes.borrow_mut();
        let c = &mut classes[class];
        let lo = top - c.size;
        c.count_lent(lo, false);
        c.dirty.push(lo);
    }

    /// Whether any released stack is waiting to be trimmed.
    pub(crate) fn needs_trim(&self) -> bool {
        self.classes
            .borrow()
            .iter()
            .any(|c| !c.dirty.is_empty() || !c.jobs.is_empty() || !c.cold_jobs.is_empty())
    }

    /// Trims up to [`TRIM_BATCH`] released stacks (the coldest first): the
    /// ones that will be among the [`WARM_STACKS`] hottest keep their top
    /// [`KEEP_RESIDENT`] bytes, the others give back every page. Once no
    /// released stack is left untrimmed, unmaps the slabs that became idle.
    /// Called when the hub is about to go idle; while
    /// [`needs_trim`](StackPool::needs_trim) stays true the hub polls
    /// without sleeping and calls it again.
    pub(crate) fn trim(&self) {
        let page = sys::page_size();
        let mut budget = TRIM_BATCH;
        let mut ranges = Vec::new();
        let mut classes = self.classes.borrow_mut();
        for c in classes.iter_mut() {
            // Before any page goes back: no job may populate it again.
            c.stop_jobs();
            c.fresh_taken = 0;
        }
        for c in classes.iter_mut() {
            let n = budget.min(c.dirty.len());
            if n == 0 {
                continue;
            }
            let warm_room = WARM_STACKS.saturating_sub(c.clean.len());
            let len = c.dirty.len();
            let size = c.size;
            for (i, lo) in c.dirty.drain(..n).enumerate() {
                // The last `warm_room` of the LIFO list are the hottest.
                let warm = len - i <= warm_room;
                let from = lo + page;
                let to = if warm {
                    lo + size - KEEP_RESIDENT.min(size - page)
                } else {
                    lo + size
                };
                if to > from {
                    ranges.push((from, to - from));
                }
                if warm {
                    c.clean.push(lo);
                } else {
                    c.cold.push(lo);
                }
            }
            if c.dirty.is_empty() && c.dirty.capacity() > WARM_STACKS {
                // It grew during a peak: free it rather than keep the room.
                c.dirty = Vec::new();
            }
            budget -= n;
            if budget == 0 {
                break;
            }
        }
        // SAFETY: every range lies in a released slot of one of our slabs,
        // above its guard page; no greenlet uses it.
        unsafe { dontneed(&ranges) };
        if classes.iter().all(|c| c.dirty.is_empty()) {
            let mut all = self.slabs.borrow_mut();
            for c in classes.iter_mut() {
                for (base, len) in c.unmap_idle_slabs() {
                    all.retain(|&(b, _)| b != base);
                    // SAFETY: no stack of this slab is lent (its count is
                    // 0), warm, promised or listed any more.
                    let _ = unsafe { sys::munmap(base as *mut u8, len) };
                }
            }
        }
        for c in classes.iter_mut() {
            // The cold list changed: none of it is handed to a job.
            c.cold_asked = c.cold.len();
        }
    }

    /// What this pool holds (see [`stats`]).
    pub(crate) fn stats(&self) -> StackStats {
        let page = sys::page_size();
        let classes = self.classes.borrow();
        let mut st = StackStats::default();
        for c in classes.iter() {
            st.in_use += c.slabs.iter().map(|&(_, lent)| lent).sum::<usize>();
            st.idle += c.dirty.len() + c.clean.len() + c.cold.len();
            st.retained_bytes += c.retained_bytes(page);
            st.mapped_bytes += c.slabs.len() * c.slab_len;
        }
        st
    }
}

/// Gives the pages of `ranges` back to the kernel (`MADV_DONTNEED`), 1,024
/// ranges per `process_madvise`, or one `madvise` each where that call is
/// refused.
///
/// # Safety
/// Every range must lie inside a slab of this module and hold no live data.
unsafe fn dontneed(ranges: &[(usize, usize)]) {
    for chunk in ranges.chunks(MAX_IOV) {
        let total: usize = chunk.iter().map(|&(_, len)| len).sum();
        // SAFETY: guaranteed by the caller.
        match unsafe { sys::process_madvise_self(chunk, libc::MADV_DONTNEED) } {
            Ok(n) if n == total => {}
            // Refused or partly done: giving back a page twice is harmless.
            _ => {
                for &(start, len) in chunk {
                    // SAFETY: guaranteed by the caller.
                    let _ = unsafe { sys::madvise_dontneed(start as *mut u8, len) };
                }
            }
        }
    }
}

/// What the calling thread's stack pool holds, from [`stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackStats {
    /// Stacks lent to greenlets that have started and not finished.
    pub in_use: usize,
    /// Stacks of finished greenlets kept for reuse.
    pub idle: usize,
    /// An upper bound of the memory (resident bytes) the idle stacks hold:
    /// the whole of stacks released since the hub last went idle, the top
    /// 16 KiB of up to 64 warm stacks per size, and pre-faulted top pages
    /// of never-used stacks. Stacks given back whole count 0.
    pub retained_bytes: usize,
    /// Address space of the mapped stack slabs (reserved, not committed).
    pub mapped_bytes: usize,
}

/// What the calling thread's stack pool holds: stacks lent and idle, an
/// upper bound of the memory idle stacks keep, and the address space
/// mapped. Each thread's hub has its own pool; a thread without a hub has
/// none (all zeros).
///
/// The pool trims idle stacks when the hub goes idle, so after a peak of
/// greenlets (a burst of connections, say) `retained_bytes` falls back to
/// at most about 1 MiB per stack size in use (64 warm stacks' top 16 KiB),
/// and slabs whose stacks are all idle are unmapped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let gs: Vec<_> = (0..1000).map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_millis(10)))).collect();
/// greenlet::sleep(Duration::from_millis(1));
/// assert!(greenlet::stack::stats().in_use >= 1000);
/// greenlet::joinall(gs);
/// greenlet::sleep(Duration::from_millis(20)); // the hub goes idle and trims
/// let after = greenlet::stack::stats();
/// assert_eq!(after.in_use, 0);
/// assert!(after.retained_bytes <= 2 << 20, "{after:?}");
/// ```
pub fn stats() -> StackStats {
    crate::hub::Hub::try_current().map_or_else(StackStats::default, |h| h.stacks.stats())
}

impl Drop for StackPool {
    fn drop(&mut self) {
        if self.leaked.get() {
            return;
        }
        for c in self.classes.get_mut().iter_mut() {
            for j in c.jobs.drain(..).chain(c.cold_jobs.drain(..)) {
                j.stop();
            }
        }
        for &(base, len) in self.slabs.borrow().iter() {
            // SAFETY: every greenlet of this thread has finished or been
            // leaked (never to run again) before the pool drops.
            let _ = unsafe { sys::munmap(base as *mut u8, len) };
        }
    }
}
