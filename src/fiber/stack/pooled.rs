//! [`PooledStack`], a stack slot lent out of the pool: one word, which
//! finds its pool and size class in the slot itself and goes back on drop.

use std::num::NonZeroUsize;

use super::StackPool;
use crate::sys;

/// A stack slot taken from the pool; it goes back to the pool on drop.
///
/// One word, so it moves in a register: the fiber is built around it at
/// every first run (a three-word copy went through memory with a load
/// wider than the stores that wrote it: a store-forwarding stall), and it
/// is part of every task header, so each word here is 8 bytes more per
/// greenlet. What else a stack needs to go back to its pool (the pool's
/// address and the size class) is kept in the slot itself, in the
/// [`POOL_WORD`] bytes just below its top, which [`StackPool::take`]
/// writes. The fiber's stack starts below them: the one word held here is
/// that start, the stack's [`base`](corosensei::stack::Stack::base),
/// which corosensei asks for at every resume and so gets with no
/// arithmetic (from the bottom it was a look-up of the class size through
/// the pool, a `RefCell` borrow on every switch: ~1 ns of a 7 ns yield).
///
/// # Invariant
/// `base + POOL_WORD` is the top of a slot (page-aligned) of a live slab
/// owned by the pool whose address is stored at `base`, in the size class
/// whose number is stored at `base + 8`; its lowest page is a guard page,
/// and no other `PooledStack` refers to it. The fiber never writes at or
/// above `base`.
pub(crate) struct PooledStack {
    pub(super) base: NonZeroUsize,
}

/// Bytes at the top of every lent slot that hold its pool's address and
/// its size class (two words, a multiple of the 16-byte stack alignment);
/// the fiber's stack starts below them.
pub(super) const POOL_WORD: usize = 16;

impl PooledStack {
    /// Highest address of the slot (one past its last byte).
    #[inline]
    pub(crate) fn top(&self) -> usize {
        self.base.get() + POOL_WORD
    }

    /// The two words `take` wrote at `base`: the pool and the class.
    #[inline]
    pub(super) fn home(&self) -> (&StackPool, usize) {
        let at = self.base.get() as *const usize;
        // SAFETY: `take` wrote the pool's address and the class number at
        // `base` (two aligned words of the slot's own, which the fiber never
        // writes; see the invariant), and the pool outlives every stack it
        // hands out (the hub drops all its greenlets before its pool; see
        // `Hub`'s `Drop`).
        unsafe { (&*(at.read() as *const StackPool), at.add(1).read()) }
    }

    /// Lowest address of the slot (the start of its guard page). Looks the
    /// class size up in the pool: where the size is known, `top() - size`
    /// is cheaper.
    #[inline]
    pub(crate) fn guard_lo(&self) -> usize {
        let (pool, class) = self.home();
        self.top() - pool.class_size(class)
    }
}

// SAFETY: `base` and `limit` describe a mapped, writable region of at least
// MIN_STACK_SIZE - page - POOL_WORD bytes (>= corosensei's MIN_STACK_SIZE),
// with a guard page directly below `limit`, so an overflow faults instead of
// corrupting memory. `base` is 16 bytes below the page-aligned top and
// `limit` page-aligned, hence both aligned to STACK_ALIGNMENT (16).
unsafe impl corosensei::stack::Stack for PooledStack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.guard_lo() + sys::page_size()).unwrap()
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let (pool, class) = self.home();
        pool.release(self.top(), class);
    }
}
