//! The stack provisioner: one background thread per process that prepares
//! never-used stack slots before a hub needs them.
//!
//! A fresh stack costs the kernel a zeroed page, a memory-cgroup charge and,
//! every few stacks, a page-table page. On a virtual machine that is several
//! microseconds per stack, paid on the hub's thread when a greenlet first
//! runs. When a hub is eating into its fresh slots and more greenlets are
//! waiting to start, it hands the next slots to this thread, which installs
//! their guard pages and pre-faults their top pages (`MADV_GUARD_INSTALL` and
//! `MADV_POPULATE_WRITE`, one `process_madvise` per 64 slots) on another
//! core while the hub runs greenlets.
//!
//! Soundness does not rest on timing. The thread only asks the kernel to
//! change page tables; it never reads or writes memory Rust code can see.
//! A hub hands out a slot prepared here only after it has observed, with
//! acquire ordering, that the slot's guard went in ([`Job::ready_from`]);
//! otherwise it installs the guard itself (installing one twice is
//! harmless). Pre-faulting a page that a greenlet already uses is a no-op.
//! The pool never unmaps a slab, nor gives pages back, while a job on it may
//! still run (see [`Job::stop`]).
//!
//! The thread is only started when this process may run on at least two
//! CPUs (on one, its work would simply take turns with the hub's), and not
//! when the environment variable `GREENLET_STACK_PROVISIONER` is `0`; the
//! hub then prepares every slot itself, as it does when it outruns the
//! thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::sys;

/// Slots per `process_madvise` call; the thread re-reads the job's skip
/// mark between calls.
const STEP: usize = 64;

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
/// Finished: every slot at or above the skip mark is prepared.
const DONE: u8 = 2;
/// Finished early: stopped, or the kernel refused a guard.
const ABANDONED: u8 = 3;

/// Consecutive never-used stack slots to prepare.
///
/// The thread works from the top slot down while the hub takes slots from
/// the bottom up, so the two meet in the middle instead of fighting over the
/// same page tables.
pub(crate) struct Job {
    /// Lowest address of the first slot.
    lo: usize,
    /// Slot size in bytes (a whole number of pages).
    size: usize,
    /// Number of slots.
    count: usize,
    /// For a populate-only job ([`submit_tops`]): the top pages to fault
    /// in, of stacks whose guards are in place; `lo`, `size` and `count`
    /// are then 0.
    tops: Vec<usize>,
    /// Every slot from here to [`Job::end`] has its guard page installed
    /// (and, best effort, its top page resident). Only ever lowered, with
    /// release ordering, after the kernel said the guards went in.
    ready_from: AtomicUsize,
    /// Slots starting below this address are left alone: the hub prepares
    /// them itself.
    skip: AtomicUsize,
    state: AtomicU8,
    /// The process that queued the job: in a child forked while the job was
    /// running, no thread will ever finish it.
    pid: u32,
}

impl Job {
    /// One past the last slot.
    pub(crate) fn end(&self) -> usize {
        self.lo + self.count * self.size
    }

    /// Lowest address of the first slot.
    pub(crate) fn lo(&self) -> usize {
        self.lo
    }

    /// The lowest address from which every slot of the job is prepared:
    /// its guard page installed, its top page (best effort) resident.
    /// Acquire: the thread's `process_madvise` calls happen before what the
    /// caller does next.
    pub(crate) fn ready_from(&self) -> usize {
        self.ready_from.load(Ordering::Acquire)
    }

    /// Whether the thread is done with this job, one way or the other.
    pub(crate) fn is_finished(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            DONE | ABANDONED => true,
            _ => self.pid != std::process::id(),
        }
    }

    /// Tells the thread to leave slots starting below `addr` alone: the
    /// caller prepares those itself.
    pub(crate) fn skip_below(&self, addr: usize) {
        self.skip.fetch_max(addr, Ordering::AcqRel);
    }

    /// Stops the job: a queued job is dropped, a running one stops after
    /// its current step. Returns once the thread no longer touches the job's
    /// slots, so the caller may give their pages back or unmap them.
    pub(crate) fn stop(&self) {
        self.skip_below(usize::MAX);
        let _ = self
            .state
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
        while !self.is_finished() {
            // At most one step of 64 slots: tens of microseconds.
            std::thread::yield_now();
        }
    }

    /// Runs on the provisioner thread.
    fn run(&self, page: usize) {
        if self
            .state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // stopped before it started
        }
        let mut ranges = Vec::with_capacity(STEP);
        if !self.tops.is_empty() {
            let mut state = DONE;
            for chunk in self.tops.chunks(STEP) {
                if self.skip.load(Ordering::Acquire) == usize::MAX {
                    state = ABANDONED;
                    break;
                }
                ranges.clear();
                ranges.extend(chunk.iter().map(|&top| (top, page)));
                // SAFETY: top pages of idle stacks of a slab that stays
                // mapped, and is not given back, until this job is finished
                // (the pool calls `stop` first); populating a page changes no
                // byte of it, even of a stack the hub has taken meanwhile.
                let _ = unsafe { sys::process_madvise_self(&ranges, sys::MADV_POPULATE_WRITE) };
            }
            self.state.store(state, Ordering::Release);
            return;
        }
        let mut hi = self.end();
        let mut state = DONE;
        // Each step: the STEP slots below `hi`, the highest first.
        while hi > self.lo {
            // The hub prepares the slots below `skip` itself.
            let skip = self.skip.load(Ordering::Acquire);
            if skip == usize::MAX {
                state = ABANDONED;
                break;
            }
            let lo = self.lo.max(hi.saturating_sub(STEP * self.size)).max(skip);
            if lo >= hi {
                break;
            }
            // Round up to a slot boundary (skip need not be on one).
            let lo = self.lo + (lo - self.lo).div_ceil(self.size) * self.size;
            if lo >= hi {
                break;
            }
            // Top pages first: that allocates the page tables the guards
            // then go into.
            ranges.clear();
            ranges.extend(
                (lo..hi)
                    .step_by(self.size)
                    .map(|s| (s + self.size - page, page)),
            );
            // SAFETY: top pages of never-used slots of a slab that stays
            // mapped until this job is finished (the pool calls `stop`
            // first); populating a page changes no byte of it. Failure is
            // harmless: the page then faults in on first touch.
            let _ = unsafe { sys::process_madvise_self(&ranges, sys::MADV_POPULATE_WRITE) };
            ranges.clear();
            ranges.extend((lo..hi).step_by(self.size).map(|s| (s, page)));
            let want = ranges.len() * page;
            // SAFETY: the lowest page of each never-used slot, which holds
            // no data (or already is a guard page).
            match unsafe { sys::process_madvise_self(&ranges, sys::MADV_GUARD_INSTALL) } {
                Ok(n) if n == want => self.ready_from.store(lo, Ordering::Release),
                _ => {
                    state = ABANDONED;
                    break;
                }
            }
            hi = lo;
        }
        self.state.store(state, Ordering::Release);
    }
}

struct Provisioner {
    queue: Mutex<VecDeque<Arc<Job>>>,
    ready: Condvar,
    /// The process whose thread serves `queue`: a forked child has none.
    pid: u32,
}

/// The process's provisioner, started on first use; `None` on a machine
/// (or affinity mask) with one CPU, when `GREENLET_STACK_PROVISIONER=0`,
/// in a child forked after it started, or when the thread cannot be
/// started.
fn provisioner() -> Option<&'static Provisioner> {
    static P: OnceLock<Option<&'static Provisioner>> = OnceLock::new();
    let p = P.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 || std::env::var_os("GREENLET_STACK_PROVISIONER").is_some_and(|v| v == "0") {
            return None;
        }
        let p: &'static Provisioner = Box::leak(Box::new(Provisioner {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            pid: std::process::id(),
        }));
        std::thread::Builder::new()
            .name("greenlet-stacks".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // Runs runtime code only (see `sys::RuntimeThread`).
                let _counted = sys::RuntimeThread::enter();
                p.serve()
            })
            .ok()
            .map(|_| p)
    });
    p.filter(|p| p.pid == std::process::id())
}

impl Provisioner {
    fn serve(&self) {
        let page = sys::page_size();
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(j) = q.pop_front() {
                        break j;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            job.run(page);
        }
    }
}

/// Queues the preparation of `count` never-used slots of `size` bytes
/// from `lo`; `None` when there is no provisioner.
///
/// # Safety
/// The slots must be never-used slots of a stack slab (no live data), and
/// the slab must stay mapped until the returned job [`is_finished`]; the
/// caller calls [`Job::stop`] before unmapping it.
///
/// [`is_finished`]: Job::is_finished
pub(crate) unsafe fn submit(lo: usize, size: usize, count: usize) -> Option<Arc<Job>> {
    let p = provisioner()?;
    let job = Arc::new(Job {
        lo,
        size,
        count,
        tops: Vec::new(),
        ready_from: AtomicUsize::new(lo + count * size),
        skip: AtomicUsize::new(0),
        state: AtomicU8::new(QUEUED),
        pid: std::process::id(),
    });
    p.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(job.clone());
    p.ready.notify_one();
    Some(job)
}

/// Queues the pre-faulting of the pages at `tops` (the top pages of idle,
/// guarded stacks given back whole); `None` when there is no provisioner.
///
/// # Safety
/// Each address must be the top page of an idle stack slot of a slab that
/// stays mapped, and whose pages are not given back, until the returned job
/// [`is_finished`]; the caller calls [`Job::stop`] first.
///
/// [`is_finished`]: Job::is_finished
pub(crate) unsafe fn submit_tops(tops: Vec<usize>) -> Option<Arc<Job>> {
    let p = provisioner()?;
    let job = Arc::new(Job {
        lo: 0,
        size: 0,
        count: 0,
        tops,
        ready_from: AtomicUsize::new(0),
        skip: AtomicUsize::new(0),
        state: AtomicU8::new(QUEUED),
        pid: std::process::id(),
    });
    p.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(job.clone());
    p.ready.notify_one();
    Some(job)
}

/// Whether this process has a provisioner thread (starting it if needed).
#[cfg(test)]
pub(crate) fn available() -> bool {
    provisioner().is_some()
}
