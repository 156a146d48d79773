//! The order a queue hands its items out in: FIFO ([`Queue`](super::Queue)),
//! LIFO ([`LifoQueue`](super::LifoQueue)) or lowest first
//! ([`PriorityQueue`](super::PriorityQueue)).

//!
//! # The user's `Ord`
//!
//! A heap's comparisons run the user's `Ord` under the queue's lock. Each
//! operation keeps every item in the heap's vector until its comparisons
//! are done, and the swaps between them move whole items, so a panicking
//! `Ord` loses and duplicates nothing: the panic leaves the heap holding
//! the same items, possibly out of order (as std's `BinaryHeap`), and the
//! lock guard releases the lock as it unwinds. While `Ord` runs, the
//! queue is marked as running user code on this thread (see
//! [`UserCode`]), so a call back into the queue panics instead of spinning
//! on the lock for good.

use std::cell::Cell;
use std::collections::VecDeque;

/// A queue's buffered items, in one of three orders.
pub(super) enum Items<T> {
    Fifo(VecDeque<T>),
    Lifo(Vec<T>),
    /// A binary min-heap ordered by `less`.
    Heap {
        heap: Vec<T>,
        less: fn(&T, &T) -> bool,
        /// The queue's lock's address (see [`UserCode`]).
        owner: usize,
    },
}

thread_local! {
    /// The queue (its lock's address) whose lock this thread holds while
    /// it runs the user's `Ord` or `Clone` of its items; 0 when none.
    static RUNNING_USER_CODE: Cell<usize> = const { Cell::new(0) };
}

/// Marks the queue `owner` as running user code under its lock on this
/// thread, until dropped (which restores the mark it found: one queue's
/// `Ord` may use another queue).
pub(super) struct UserCode(usize);

impl UserCode {
    #[inline]
    pub(super) fn enter(owner: usize) -> UserCode {
        UserCode(RUNNING_USER_CODE.replace(owner))
    }

    /// Whether this thread runs the user's code under the lock of the
    /// queue `owner`: if so, that lock can only be taken by this very
    /// thread, which would spin on it for good.
    pub(super) fn running(owner: usize) -> bool {
        RUNNING_USER_CODE.get() == owner
    }
}

impl Drop for UserCode {
    #[inline]
    fn drop(&mut self) {
        RUNNING_USER_CODE.set(self.0);
    }
}

impl<T> Items<T> {
    #[inline]
    pub(super) fn len(&self) -> usize {
        match self {
            Items::Fifo(q) => q.len(),
            Items::Lifo(v) | Items::Heap { heap: v, .. } => v.len(),
        }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds an item put into the queue.
    #[inline]
    pub(super) fn push(&mut self, item: T) {
        match self {
            Items::Fifo(q) => q.push_back(item),
            Items::Lifo(v) => v.push(item),
            Items::Heap { heap, less, owner } => {
                // In first: a panicking `Ord` leaves it in the heap.
                heap.push(item);
                let last = heap.len() - 1;
                let _user = UserCode::enter(*owner);
                sift_up(heap, *less, last);
            }
        }
    }

    /// Puts back an item that was taken out (by a getter that died): it is
    /// the next to come out again.
    ///
    /// This runs in a dying waiter's cleanup, where a panic would abort
    /// the process (or, at a hub's teardown, leave it half done): a panic
    /// of the user's `Ord` is caught here (the panic hook has reported
    /// it), and the item stays in the heap, possibly out of order.
    pub(super) fn push_front(&mut self, item: T) {
        match self {
            Items::Fifo(q) => q.push_front(item),
            Items::Lifo(v) => v.push(item),
            Items::Heap { .. } => {
                crate::hub::run_caught(|| self.push(item));
            }
        }
    }

    /// Takes the next item out.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<T> {
        match self {
            Items::Fifo(q) => q.pop_front(),
            Items::Lifo(v) => v.pop(),
            Items::Heap { heap, less, owner } => {
                if heap.is_empty() {
                    return None;
                }
                let last = heap.len() - 1;
                heap.swap(0, last);
                // The item leaves the vector only after the comparisons.
                let _user = UserCode::enter(*owner);
                sift_down(&mut heap[..last], *less, 0);
                heap.pop()
            }
        }
    }

    /// Takes the next item out and adds `more` (a waiting putter's), as
    /// [`pop`](Items::pop) then [`push`](Items::push) would, for a
    /// non-empty queue; but both stay in until the comparisons are done,
    /// so a panicking `Ord` loses neither.
    pub(super) fn pop_then_push(&mut self, more: T) -> T {
        match self {
            Items::Fifo(q) => {
                q.push_back(more);
                q.pop_front().expect("checked by the caller")
            }
            Items::Lifo(v) => {
                let item = v.pop().expect("checked by the caller");
                v.push(more);
                item
            }
            Items::Heap { heap, less, owner } => {
                let last = heap.len() - 1;
                heap.swap(0, last);
                // [rest of the heap.., item, more] -> [.., more, item]
                heap.push(more);
                heap.swap(last, last + 1);
                let _user = UserCode::enter(*owner);
                sift_down(&mut heap[..last], *less, 0);
                sift_up(&mut heap[..=last], *less, last);
                heap.pop().expect("pushed above")
            }
        }
    }

    /// The next item to come out.
    pub(super) fn peek(&self) -> Option<&T> {
        match self {
            Items::Fifo(q) => q.front(),
            Items::Lifo(v) => v.last(),
            Items::Heap { heap, .. } => heap.first(),
        }
    }
}

fn sift_up<T>(heap: &mut [T], less: fn(&T, &T) -> bool, mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if !less(&heap[i], &heap[parent]) {
            break;
        }
        heap.swap(i, parent);
        i = parent;
    }
}

fn sift_down<T>(heap: &mut [T], less: fn(&T, &T) -> bool, mut i: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut min = i;
        if l < heap.len() && less(&heap[l], &heap[min]) {
            min = l;
        }
        if r < heap.len() && less(&heap[r], &heap[min]) {
            min = r;
        }
        if min == i {
            return;
        }
        heap.swap(i, min);
        i = min;
    }
}
