//! One size class of the stack pool: its slabs, free lists and fresh
//! slots, and the provisioner jobs preparing them.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use super::{
    JOB_SLOTS, KEEP_RESIDENT, MAX_AHEAD, POPULATE_BATCH, SLAB_BYTES, batch_guards, dontneed,
    install_guard,
};
use crate::fiber::provision::{self, Job};
use crate::sys;

pub(super) struct SizeClass {
    pub(super) size: usize,
    /// Bytes of each slab of this class (a whole number of stacks).
    pub(super) slab_len: usize,
    /// This class's slabs, sorted by base address: `(base, stacks lent)`.
    pub(super) slabs: Vec<(usize, usize)>,
    /// Where `count_lent` last found a stack's slab: stacks are taken and
    /// given back in runs from one slab, and with many slabs (a million
    /// greenlets spawned before any ran reserves thousands) the binary
    /// search cost a cache miss per step.
    slab_hint: usize,
    /// Released stacks whose deep pages may still be resident (LIFO: hot).
    pub(super) dirty: Vec<usize>,
    /// Warm stacks: trimmed to their top [`KEEP_RESIDENT`] bytes, at most
    /// [`WARM_STACKS`](super::WARM_STACKS) (the hottest last).
    pub(super) clean: Vec<usize>,
    /// Stacks with no resident page (given back whole, or never used) and
    /// their guard installed.
    pub(super) cold: Vec<usize>,
    /// Never-used slots of slabs on the `MADV_GUARD_INSTALL` path, taken
    /// from the last range: `(next, end, prepared_to)`, where slots below
    /// `prepared_to` have their guard installed and top page pre-faulted.
    pub(super) fresh: Vec<(usize, usize, usize)>,
    /// Slots left in `fresh`.
    pub(super) fresh_count: usize,
    /// The uncarved rest of a slab whose guards go in one by one (old
    /// kernels, the `mprotect` fallback): `(next, end)`.
    pub(super) unguarded: (usize, usize),
    /// Stacks promised to greenlets that have not started yet.
    pub(super) reserved: usize,
    /// Jobs given to the provisioner thread, in address order, all in the
    /// last `fresh` range or below it.
    pub(super) jobs: VecDeque<Arc<Job>>,
    /// `(end of the fresh range, end of the last job)`: how far the
    /// provisioner was asked to prepare the last `fresh` range.
    pub(super) provisioned: (usize, usize),
    /// Fresh slots taken since the pool last trimmed: the observed pace.
    pub(super) fresh_taken: usize,
    /// Populate-only jobs for the top pages of `cold` stacks.
    pub(super) cold_jobs: Vec<Arc<Job>>,
    /// `cold[cold_asked..]` were handed to `cold_jobs` (taken from the end).
    pub(super) cold_asked: usize,
    /// Cold stacks taken since the pool last trimmed.
    pub(super) cold_taken: usize,
}

impl SizeClass {
    pub(super) fn new(size: usize) -> SizeClass {
        SizeClass {
            size,
            slab_len: (SLAB_BYTES / size).max(1) * size,
            slabs: Vec::new(),
            slab_hint: 0,
            dirty: Vec::new(),
            clean: Vec::new(),
            cold: Vec::new(),
            fresh: Vec::new(),
            fresh_count: 0,
            unguarded: (0, 0),
            reserved: 0,
            jobs: VecDeque::new(),
            provisioned: (0, 0),
            fresh_taken: 0,
            cold_jobs: Vec::new(),
            cold_asked: 0,
            cold_taken: 0,
        }
    }

    /// The stack [`StackPool::take`] would hand out next, if any is ready.
    ///
    /// [`StackPool::take`]: super::StackPool::take
    pub(super) fn next_to_take(&self) -> Option<usize> {
        let fresh = || {
            self.fresh
                .last()
                .filter(|&&(next, _, prepared_to)| next < prepared_to)
                .map(|&(next, _, _)| next)
        };
        (self.dirty.last().or(self.clean.last()).or(self.cold.last()))
            .copied()
            .or_else(fresh)
    }

    /// Stacks that can be handed out without mapping anything.
    pub(super) fn available(&self) -> usize {
        self.dirty.len() + self.clean.len() + self.cold.len() + self.fresh_count
    }

    /// The index in `slabs` of the slab holding the stack at `lo`.
    #[inline]
    pub(super) fn slab_of(&self, lo: usize) -> usize {
        self.slabs.partition_point(|&(base, _)| base <= lo) - 1
    }

    /// Counts the stack at `lo` as lent (`+1`) or given back (`-1`).
    #[inline]
    pub(super) fn count_lent(&mut self, lo: usize, lent: bool) {
        // Slabs never overlap, so a slab that contains `lo` is its slab,
        // whatever moved in the vector since the hint was taken.
        let i = match self.slabs.get(self.slab_hint) {
            Some(&(base, _)) if lo.wrapping_sub(base) < self.slab_len => self.slab_hint,
            _ => {
                let i = self.slab_of(lo);
                self.slab_hint = i;
                i
            }
        };
        let n = &mut self.slabs[i].1;
        *n = if lent { *n + 1 } else { *n - 1 };
    }

    /// Upper bound of the resident bytes held by this class's idle stacks.
    pub(super) fn retained_bytes(&self, page: usize) -> usize {
        let prepared: usize = self
            .fresh
            .iter()
            .map(|&(next, end, prepared_to)| {
                let to = if self.provisioned.0 == end {
                    prepared_to.max(self.provisioned.1)
                } else {
                    prepared_to
                };
                to.saturating_sub(next) / self.size * page
            })
            .sum();
        self.dirty.len() * (self.size - page)
            + self.clean.len() * KEEP_RESIDENT.min(self.size - page)
            + prepared
    }

    /// Takes a never-used slot of a lazily guarded slab. When it crosses
    /// into slots not prepared yet, it uses what the provisioner thread
    /// prepared, or else prepares the next [`POPULATE_BATCH`] of them
    /// itself: installs their guard pages and pre-faults their top pages,
    /// one syscall each. Guards go in at first use, not at reservation, so
    /// reserving many stacks (spawning many greenlets that will run one
    /// after another on the same hot stack) costs no page tables.
    ///
    /// # Errors
    /// When the kernel refuses the guard pages (out of memory for page
    /// tables); the slot stays unused.
    pub(super) fn take_fresh(&mut self) -> io::Result<usize> {
        let page = sys::page_size();
        let size = self.size;
        let (next, end, prepared_to) = self
            .fresh
            .last_mut()
            .expect("greenlet: stack reservation without capacity");
        let lo = *next;
        if lo >= *prepared_to {
            // Jobs wholly below `lo` are of no more use once finished.
            while self
                .jobs
                .front()
                .is_some_and(|j| j.end() <= lo && j.is_finished())
            {
                self.jobs.pop_front();
            }
            let job = self.jobs.iter().find(|j| j.lo() <= lo && lo < j.end());
            match job.map(|j| (j.ready_from(), j.end())) {
                // The provisioner got here first: its slots from `lo` up
                // are guarded (acquire: its syscalls happen before).
                Some((ready, job_end)) if ready <= lo => *prepared_to = job_end,
                other => {
                    // Do not step on the provisioner's part of the job.
                    let limit = other.map_or(*end, |(ready, _)| ready);
                    let n = POPULATE_BATCH.min((limit - lo) / size).max(1);
                    if !batch_guards(lo, n, size) {
                        for i in 0..n {
                            // SAFETY: the lowest page of an unused slot of our slab.
                            unsafe { install_guard((lo + i * size) as *mut u8, page) }?;
                        }
                    }
                    let tops: Vec<(usize, usize)> =
                        (1..=n).map(|i| (lo + i * size - page, page)).collect();
                    // SAFETY: the top pages of unused slots of our slab. Failure is
                    // harmless: the pages then fault in on first touch.
                    let _ = unsafe { sys::process_madvise_self(&tops, sys::MADV_POPULATE_WRITE) };
                    *prepared_to = lo + n * size;
                    // The thread leaves these alone from its next step on.
                    let done = lo + n * size;
                    for j in self.jobs.iter().filter(|j| j.lo() < done && lo < j.end()) {
                        j.skip_below(done);
                    }
                }
            }
        }
        *next += size;
        if *next >= *end {
            self.fresh.pop();
        }
        self.fresh_count -= 1;
        self.fresh_taken += 1;
        self.provision_ahead();
        Ok(lo)
    }

    /// Asks the provisioner thread to prepare the fresh slots the hub will
    /// soon take: as many as greenlets wait for a fresh stack, bounded by
    /// the pace observed since the pool last trimmed and [`MAX_AHEAD`].
    fn provision_ahead(&mut self) {
        let Some(&(next, end, prepared_to)) = self.fresh.last() else {
            return;
        };
        let waiting = self
            .reserved
            .saturating_sub(self.dirty.len() + self.clean.len() + self.cold.len());
        let ahead = waiting.min(self.fresh_taken.max(JOB_SLOTS)).min(MAX_AHEAD);
        let want = end.min(next + ahead * self.size);
        let asked = if self.provisioned.0 == end {
            self.provisioned.1
        } else {
            0
        };
        let from = asked.max(prepared_to).max(next);
        // Half a job at least, except for the end of the range.
        if want <= from || (want < end && want - from < JOB_SLOTS / 2 * self.size) {
            return;
        }
        let mut at = from;
        while at < want {
            let n = ((want - at) / self.size).min(JOB_SLOTS);
            // SAFETY: never-used slots of the last fresh range (at or above
            // `next` and `prepared_to`), in a slab that stays mapped until
            // every job is stopped (`stop_jobs`, before any unmap).
            match unsafe { provision::submit(at, self.size, n) } {
                Some(job) => self.jobs.push_back(job),
                None => break,
            }
            at += n * self.size;
        }
        self.provisioned = (end, at);
    }

    /// Called after a stack was taken from `cold`: asks the provisioner to
    /// fault in the top pages of the cold stacks the hub will take next,
    /// as many as greenlets wait for a stack (bounded like
    /// [`provision_ahead`](Self::provision_ahead)).
    pub(super) fn provision_cold(&mut self) {
        self.cold_taken += 1;
        self.cold_asked = self.cold_asked.min(self.cold.len());
        let waiting = self
            .reserved
            .saturating_sub(self.dirty.len() + self.clean.len());
        let ahead = waiting
            .min(self.cold_taken.max(JOB_SLOTS))
            .min(MAX_AHEAD)
            .min(self.cold.len());
        let asked = self.cold.len() - self.cold_asked;
        if ahead < asked + JOB_SLOTS / 2 && ahead < self.cold.len() || ahead <= asked {
            return;
        }
        self.cold_jobs.retain(|j| !j.is_finished());
        let page = sys::page_size();
        let from = self.cold.len() - ahead;
        // The next to be taken (the end of the list) first.
        let tops: Vec<usize> = self.cold[from..self.cold_asked]
            .iter()
            .rev()
            .map(|&lo| lo + self.size - page)
            .collect();
        // SAFETY: top pages of cold (idle, guarded) stacks of our slabs,
        // which stay mapped and are not given back until `stop_jobs`.
        if let Some(job) = unsafe { provision::submit_tops(tops) } {
            self.cold_jobs.push(job);
            self.cold_asked = from;
        }
    }

    /// Stops every provisioner job (waiting for a running one to finish
    /// its step), so this class's pages may be given back or unmapped, and
    /// gives back the top pages the provisioner or the hub pre-faulted more
    /// than [`POPULATE_BATCH`] slots ahead of the next fresh slot, and
    /// those it faulted in for cold stacks nobody took.
    pub(super) fn stop_jobs(&mut self) {
        if !self.cold_jobs.is_empty() {
            for j in self.cold_jobs.drain(..) {
                j.stop();
            }
            let page = sys::page_size();
            let asked = self.cold_asked.min(self.cold.len());
            let tops: Vec<(usize, usize)> = self.cold[asked..]
                .iter()
                .map(|&lo| (lo + self.size - page, page))
                .collect();
            // SAFETY: top pages of cold stacks of our slabs (idle, no data);
            // no job touches them any more.
            unsafe { dontneed(&tops) };
        }
        self.cold_asked = self.cold.len();
        self.cold_taken = 0;
        if self.jobs.is_empty() {
            return;
        }
        for j in self.jobs.drain(..) {
            j.stop();
        }
        let page = sys::page_size();
        let provisioned = std::mem::take(&mut self.provisioned);
        if let Some((next, end, prepared_to)) = self.fresh.last_mut() {
            let keep = (*next + POPULATE_BATCH * self.size).min(*end);
            let to = if provisioned.0 == *end {
                provisioned.1.max(*prepared_to)
            } else {
                *prepared_to
            };
            let tops: Vec<(usize, usize)> = (keep..to)
                .step_by(self.size)
                .map(|lo| (lo + self.size - page, page))
                .collect();
            // SAFETY: top pages of never-used slots of our slab; no job
            // touches them any more.
            unsafe { dontneed(&tops) };
            // Slots from `keep` up are prepared again when first used.
            *prepared_to = (*prepared_to).min(keep);
        }
    }
}

impl SizeClass {
    /// Forgets the slabs where no stack is lent, none is warm and none
    /// is released but untrimmed, as long as the stacks promised to
    /// unstarted greenlets still fit in the rest; returns them
    /// (`(base, len)`) for the caller to unmap.
    pub(super) fn unmap_idle_slabs(&mut self) -> Vec<(usize, usize)> {
        let per_slab = self.slab_len / self.size;
        let unguarded = (self.unguarded.1 - self.unguarded.0) / self.size;
        let idle_stacks = self.cold.len() + self.fresh_count + unguarded;
        if !self.dirty.is_empty() || idle_stacks < per_slab {
            return Vec::new(); // no slab can be wholly idle
        }
        let mut warm = vec![false; self.slabs.len()];
        for &lo in &self.clean {
            warm[self.slab_of(lo)] = true;
        }
        let mut available = self.available();
        let mut victims = Vec::new();
        for (i, &(base, lent)) in self.slabs.iter().enumerate() {
            if lent > 0 || warm[i] {
                continue;
            }
            // Its stacks that count as available (not the unguarded rest).
            let counted = if (base..base + self.slab_len).contains(&self.unguarded.0) {
                per_slab - unguarded
            } else {
                per_slab
            };
            if available - counted < self.reserved {
                continue;
            }
            available -= counted;
            victims.push(i);
        }
        if victims.is_empty() {
            return Vec::new();
        }
        let dead = |c: &SizeClass, lo: usize| victims.binary_search(&c.slab_of(lo)).is_ok();
        let cold: Vec<usize> = self
            .cold
            .iter()
            .copied()
            .filter(|&lo| !dead(self, lo))
            .collect();
        self.cold = cold;
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.retain(|&(next, end, _)| {
            let keep = !dead(self, next);
            if !keep {
                self.fresh_count -= (end - next) / self.size;
            }
            keep
        });
        self.fresh = fresh;
        if self.unguarded.0 < self.unguarded.1 && dead(self, self.unguarded.0) {
            self.unguarded = (0, 0);
        }
        let gone: Vec<(usize, usize)> = victims
            .iter()
            .map(|&i| (self.slabs[i].0, self.slab_len))
            .collect();
        let mut i = 0;
        self.slabs.retain(|_| {
            i += 1;
            victims.binary_search(&(i - 1)).is_err()
        });
        gone
    }
}
