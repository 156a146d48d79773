//! The hub's ready queue: a FIFO ring of tasks whose room is a power of
//! two, so a push or a pop wraps its index with a mask.
//!
//! `VecDeque` would do, but it wraps with a compare and a conditional move;
//! a yield ping-pong pushes and pops once per switch, and these few
//! instructions count there (with the other loop changes made with it, see
//! the CHANGELOG).

use super::task::TaskRef;

pub(super) struct ReadyQueue {
    /// The slots; `len` of them from `head` on (wrapping) are `Some`, all
    /// others `None`. Its length is a power of two (at least 1).
    buf: Box<[Option<TaskRef>]>,
    head: usize,
    len: usize,
}

impl ReadyQueue {
    /// An empty queue with room for `cap` tasks, rounded up to a power of
    /// two.
    pub(super) fn with_capacity(cap: usize) -> ReadyQueue {
        let cap = cap.max(1).next_power_of_two();
        ReadyQueue {
            buf: (0..cap).map(|_| None).collect(),
            head: 0,
            len: 0,
        }
    }

    /// Wraps an index: `buf.len()` is a power of two.
    #[inline(always)]
    fn mask(&self) -> usize {
        debug_assert!(self.buf.len().is_power_of_two());
        self.buf.len() - 1
    }

    #[inline(always)]
    fn slot(&mut self, i: usize) -> &mut Option<TaskRef> {
        let mask = self.mask();
        // SAFETY: `buf.len()` is a power of two, at least 1 (the type's
        // invariant, kept by `with_capacity` and `grow`), so `i & mask`
        // is less than it.
        unsafe { self.buf.get_unchecked_mut(i & mask) }
    }

    #[inline]
    pub(super) fn push_back(&mut self, task: TaskRef) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let i = self.head + self.len;
        // The slot is past the queue's end, so empty: writing over it
        // needs no drop of what it held (a load and a branch per push).
        let old = self.slot(i).replace(task);
        debug_assert!(old.is_none());
        std::mem::forget(old);
        self.len += 1;
    }

    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<TaskRef> {
        if self.len == 0 {
            return None;
        }
        let head = self.head;
        let task = self.slot(head).take();
        self.head = (head + 1) & self.mask();
        self.len -= 1;
        task
    }

    /// The task `i` places from the front.
    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&TaskRef> {
        if i >= self.len {
            return None;
        }
        let mask = self.mask();
        // SAFETY: as in `slot`.
        unsafe { self.buf.get_unchecked((self.head + i) & mask) }.as_ref()
    }

    #[inline]
    pub(super) fn front(&self) -> Option<&TaskRef> {
        self.get(0)
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Doubles the room, moving the tasks to the front of the new ring in
    /// order.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut bigger = ReadyQueue::with_capacity(self.buf.len() * 2);
        while let Some(t) = self.pop_front() {
            bigger.push_back(t);
        }
        *self = bigger;
    }
}

impl Default for ReadyQueue {
    fn default() -> ReadyQueue {
        ReadyQueue::with_capacity(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: u64) -> TaskRef {
        // SAFETY: the root vtable launches nothing and frees a
        // `TaskCell<()>`, which is what `new` builds with a `()` payload.
        unsafe { TaskRef::new(id, None, 0, None, super::super::task::TaskVtable::ROOT, ()) }
    }

    #[test]
    fn keeps_fifo_order_across_wraps_and_growth() {
        let mut q = ReadyQueue::with_capacity(3);
        assert_eq!(q.capacity(), 4);
        let mut next_in = 0;
        let mut next_out = 0;
        // Interleave pushes and pops so the head wraps, then grow while
        // wrapped.
        for round in 0..40 {
            for _ in 0..(round % 5 + 1) {
                q.push_back(task(next_in));
                next_in += 1;
            }
            assert_eq!(q.front().map(|t| t.id), Some(next_out));
            if q.len() > 1 {
                assert_eq!(q.get(1).map(|t| t.id), Some(next_out + 1));
            }
            for _ in 0..(round % 3 + 1) {
                let t = q.pop_front().expect("queue not empty");
                assert_eq!(t.id, next_out);
                next_out += 1;
            }
        }
        while let Some(t) = q.pop_front() {
            assert_eq!(t.id, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(q.is_empty());
        assert!(q.capacity() > 4, "it grew");
        assert!(q.get(0).is_none());
    }

    #[test]
    fn dropping_a_queue_drops_its_tasks() {
        let t = task(7);
        let mut q = ReadyQueue::default();
        for _ in 0..5 {
            q.push_back(t.clone());
        }
        q.pop_front();
        assert_eq!(t.ref_count(), 5);
        drop(q);
        assert_eq!(t.ref_count(), 1);
    }
}
