//! The order a queue hands its items out in: FIFO ([`Queue`](super::Queue)),
//! LIFO ([`LifoQueue`](super::LifoQueue)) or lowest first
//! ([`PriorityQueue`](super::PriorityQueue)).

use std::collections::VecDeque;

/// A queue's buffered items, in one of three orders.
pub(super) enum Items<T> {
    Fifo(VecDeque<T>),
    Lifo(Vec<T>),
    /// A binary min-heap ordered by `less`.
    Heap {
        heap: Vec<T>,
        less: fn(&T, &T) -> bool,
    },
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
            Items::Heap { heap, less } => {
                heap.push(item);
                let last = heap.len() - 1;
                sift_up(heap, *less, last);
            }
        }
    }

    /// Puts back an item that was taken out (by a getter that died): it is
    /// the next to come out again.
    pub(super) fn push_front(&mut self, item: T) {
        match self {
            Items::Fifo(q) => q.push_front(item),
            _ => self.push(item),
        }
    }

    /// Takes the next item out.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<T> {
        match self {
            Items::Fifo(q) => q.pop_front(),
            Items::Lifo(v) => v.pop(),
            Items::Heap { heap, less } => {
                if heap.is_empty() {
                    return None;
                }
                let last = heap.len() - 1;
                heap.swap(0, last);
                let item = heap.pop();
                sift_down(heap, *less, 0);
                item
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
