//! The pool's fresh slots prepared by the provisioner thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::fiber::provision;
use crate::test_util::within;

/// Whether fresh slots go through the provisioner here (two CPUs or more,
/// `MADV_GUARD_INSTALL`, not switched off); prints why not otherwise.
fn provisioner_in_use() -> bool {
    let yes = guard_kind() == GuardKind::MadviseGuard && provision::available();
    if !yes {
        eprintln!("skipped: no stack provisioner here (one CPU, or the mprotect guard)");
    }
    yes
}

/// Waits until every job queued so far for the pool's only class is done.
fn wait_for_jobs(pool: &StackPool) -> Vec<Arc<provision::Job>> {
    let jobs: Vec<_> = pool.classes.borrow()[0].jobs.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs.iter().all(|j| j.is_finished()) {
        assert!(Instant::now() < deadline, "provisioner jobs not finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    jobs
}

#[test]
fn slots_prepared_by_the_provisioner_are_guarded_and_resident() {
    within(Duration::from_secs(60), || {
        let pool = StackPool::new();
        let size = DEFAULT_STACK_SIZE;
        let page = sys::page_size();
        const N: usize = 2000;
        for _ in 0..N {
            pool.reserve(size).unwrap();
        }
        // Taking the first fresh slot, with 1,999 greenlets still waiting,
        // hands the slots beyond the hub's own batch to the provisioner.
        let mut held = vec![pool.take(size).unwrap()];
        if !provisioner_in_use() {
            return;
        }
        let jobs = wait_for_jobs(&pool);
        assert!(
            !jobs.is_empty(),
            "no job queued with 1,999 greenlets waiting"
        );
        for j in &jobs {
            assert_eq!(j.ready_from(), j.lo(), "a job left slots unprepared");
            for lo in (j.lo()..j.end()).step_by(size) {
                assert!(
                    sys::is_resident(lo + size - page, page),
                    "top page of {lo:#x} not pre-faulted"
                );
            }
        }
        for _ in 1..N {
            held.push(pool.take(size).unwrap());
        }
        let mut slots: Vec<usize> = held.iter().map(|s| s.guard_lo()).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), N, "a slot was handed out twice");
        for &lo in &slots {
            // SAFETY: the guard page of a slot we hold, in a live slab.
            let guarded = unsafe { sys::is_guard_page(lo, page) };
            assert!(guarded, "no guard page at {lo:#x}");
            // SAFETY: the lowest usable page of a slot we hold (unused).
            let above = unsafe { sys::is_guard_page(lo + page, page) };
            assert!(!above, "the guard at {lo:#x} is more than one page");
        }
        // Every job slot was handed out: the provisioner worked on slots the
        // pool really lent.
        for j in &jobs {
            assert!(slots.binary_search(&j.lo()).is_ok());
        }
    });
}

#[test]
fn trim_stops_jobs_and_gives_back_what_they_pre_faulted() {
    within(Duration::from_secs(60), || {
        let pool = StackPool::new();
        let size = DEFAULT_STACK_SIZE;
        let page = sys::page_size();
        const N: usize = 5000;
        for _ in 0..N {
            pool.reserve(size).unwrap();
        }
        let held = pool.take(size).unwrap();
        if !provisioner_in_use() {
            return;
        }
        let jobs: Vec<_> = pool.classes.borrow()[0].jobs.iter().cloned().collect();
        assert!(!jobs.is_empty());
        // The greenlets waiting for those stacks are killed before they
        // start; the hub then goes idle, maybe while a job runs.
        for _ in 1..N {
            pool.unreserve(size);
        }
        assert!(pool.needs_trim(), "queued jobs must bring the pool to trim");
        pool.trim();
        assert!(!pool.needs_trim());
        assert!(
            jobs.iter().all(|j| j.is_finished()),
            "trim left a job running"
        );
        // Only the hub's own batch stays pre-faulted.
        let st = pool.stats();
        assert!(st.retained_bytes <= POPULATE_BATCH * page, "{st:?}");
        // The pool keeps the batch from the next fresh slot on.
        let keep = held.guard_lo() + (1 + POPULATE_BATCH) * size;
        for j in &jobs {
            for lo in (j.lo().max(keep)..j.end()).step_by(size) {
                assert!(
                    !sys::is_resident(lo + size - page, page),
                    "top page of {lo:#x} still resident after trim"
                );
            }
        }
        drop(held);
    });
}

#[test]
fn a_pool_dropped_while_its_jobs_run_stops_them_first() {
    within(Duration::from_secs(60), || {
        let pool = StackPool::new();
        let size = DEFAULT_STACK_SIZE;
        for _ in 0..20_000 {
            pool.reserve(size).unwrap();
        }
        let held = pool.take(size).unwrap();
        if !provisioner_in_use() {
            return;
        }
        let jobs: Vec<_> = pool.classes.borrow()[0].jobs.iter().cloned().collect();
        drop(held);
        drop(pool); // unmaps the slabs
        assert!(
            jobs.iter().all(|j| j.is_finished()),
            "slabs unmapped under a running job"
        );
    });
}

#[test]
fn the_provisioner_faults_in_cold_stacks_before_they_are_taken() {
    within(Duration::from_secs(60), || {
        let pool = StackPool::new();
        let size = DEFAULT_STACK_SIZE;
        let page = sys::page_size();
        const N: usize = 3000;
        for _ in 0..N {
            pool.reserve(size).unwrap();
        }
        let held: Vec<_> = (0..N).map(|_| pool.take(size).unwrap()).collect();
        if !provisioner_in_use() {
            return;
        }
        // Another burst is promised, so the slabs stay mapped; meanwhile
        // the pool goes idle and gives the released stacks back whole. (The
        // promise is made after the release: made before, it maps new slabs,
        // and which idle slabs then go depends on where the kernel put them.)
        drop(held);
        for _ in 0..N {
            pool.reserve(size).unwrap();
        }
        while pool.needs_trim() {
            pool.trim();
        }
        let cold: Vec<usize> = pool.classes.borrow()[0].cold.clone();
        assert!(cold.len() > 1000, "{} cold stacks", cold.len());
        let top = |lo: usize| lo + size - page;
        assert!(cold.iter().all(|&lo| !sys::is_resident(top(lo), page)));
        // Take the warm ones, then one cold one: the cold stacks next in
        // line are handed to the provisioner.
        let warm = pool.classes.borrow()[0].clean.len();
        let mut again: Vec<_> = (0..warm + 1).map(|_| pool.take(size).unwrap()).collect();
        assert_eq!(again.last().unwrap().guard_lo(), *cold.last().unwrap());
        let jobs: Vec<_> = pool.classes.borrow()[0].cold_jobs.clone();
        assert_eq!(jobs.len(), 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !jobs[0].is_finished() {
            assert!(Instant::now() < deadline, "cold job not finished");
            std::thread::sleep(Duration::from_millis(1));
        }
        let next = &cold[cold.len() - 1 - 100..cold.len() - 1];
        assert!(next.iter().all(|&lo| sys::is_resident(top(lo), page)));
        // The hub takes them in that order.
        for &lo in next.iter().rev() {
            again.push(pool.take(size).unwrap());
            assert_eq!(again.last().unwrap().guard_lo(), lo);
        }
        // What was faulted in for nobody goes back when the hub idles.
        for _ in 0..N - again.len() {
            pool.unreserve(size);
        }
        assert!(pool.needs_trim());
        pool.trim();
        let left: Vec<usize> = pool.classes.borrow()[0].cold.clone();
        assert!(left.iter().all(|&lo| !sys::is_resident(top(lo), page)));
        drop(again);
    });
}

/// A `PooledStack` is one word (its base) and finds its pool and size
/// class in its slot: stacks of several sizes report their own slot and
/// bounds, and go back to their own class.
#[test]
fn pooled_stack_keeps_its_pool_and_class_in_its_slot() {
    use corosensei::stack::Stack;
    assert_eq!(
        std::mem::size_of::<PooledStack>(),
        std::mem::size_of::<usize>()
    );
    within(Duration::from_secs(30), || {
        let pool = StackPool::new();
        let page = sys::page_size();
        let sizes = [
            MIN_STACK_SIZE,
            DEFAULT_STACK_SIZE,
            DEFAULT_STACK_SIZE + page,
        ];
        let mut held = Vec::new();
        for &size in &sizes {
            for _ in 0..3 {
                pool.reserve(size).unwrap();
                let s = pool.take(size).unwrap();
                assert_eq!(s.guard_lo() % page, 0);
                assert_eq!(s.limit().get(), s.guard_lo() + page);
                assert_eq!(s.top(), s.guard_lo() + size);
                assert_eq!(s.base().get(), s.top() - POOL_WORD);
                assert_eq!(s.base().get() % 16, 0);
                assert!(std::ptr::eq(s.home().0, &pool));
                held.push((s.guard_lo(), size, s));
            }
        }
        let mut slots: Vec<_> = held.iter().map(|&(lo, size, _)| (lo, size)).collect();
        slots.sort();
        for w in slots.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "slots overlap: {w:?}");
        }
        drop(held);
        // Each stack went back to its own class: each class lends it again.
        for &size in &sizes {
            let class = pool
                .classes
                .borrow()
                .iter()
                .position(|c| c.size == size)
                .unwrap();
            assert_eq!(pool.classes.borrow()[class].dirty.len(), 3, "size {size}");
        }
    });
}

/// A thread's pool takes at most `MAX_CLASSES` distinct stack sizes (each
/// keeps slabs of its own); one more is refused with an error, not mixed
/// up with another class.
#[test]
fn too_many_stack_sizes_is_an_error() {
    within(Duration::from_secs(30), || {
        let pool = StackPool::new();
        let page = sys::page_size();
        let mut classes = pool.classes.borrow_mut();
        for i in 0..MAX_CLASSES {
            StackPool::class_index(&mut classes, MIN_STACK_SIZE + i * page).unwrap();
        }
        let e =
            StackPool::class_index(&mut classes, MIN_STACK_SIZE + MAX_CLASSES * page).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            StackPool::class_index(&mut classes, MIN_STACK_SIZE).unwrap(),
            0
        );
    });
}

/// The words at the top of a lent slot (its pool's address and class) are
/// outside the fiber's stack: a fiber that runs, suspends and finishes on
/// the stack leaves them as `take` wrote them, and the stack goes back to
/// its pool.
#[test]
fn a_fiber_leaves_the_pool_words_alone() {
    within(Duration::from_secs(30), || {
        let pool = StackPool::new();
        pool.reserve(MIN_STACK_SIZE).unwrap();
        let stack = pool.take(MIN_STACK_SIZE).unwrap();
        let words = (stack.top() - POOL_WORD) as *const usize;
        let mut fiber =
            corosensei::Coroutine::with_stack(stack, |y: &corosensei::Yielder<(), ()>, ()| {
                // Frames right under the base, written through.
                let buf = std::hint::black_box([0xa5u8; 512]);
                y.suspend(());
                std::hint::black_box(&buf);
                y.suspend(());
            });
        let mut yields = 0;
        while let corosensei::CoroutineResult::Yield(()) = fiber.resume(()) {
            yields += 1;
            // SAFETY: the slot is mapped and lent to `fiber`, which is
            // suspended; reading its top words races with nothing.
            let (p, class) = unsafe { (words.read(), words.add(1).read()) };
            assert_eq!(p, &pool as *const StackPool as usize);
            assert_eq!(class, 0);
        }
        assert_eq!(yields, 2);
        let stack = fiber.into_stack();
        assert!(std::ptr::eq(stack.home().0, &pool));
        drop(stack);
        assert_eq!(pool.stats().in_use, 0);
        assert_eq!(pool.stats().idle, 1);
    });
}
