//! Memory for task cells: a per-thread slab, so a spawn and the last drop
//! of its task do not go through the global allocator.
//!
//! Cells of up to [`MAX_CELL`] bytes (every task whose closure and result
//! are small; larger or over-aligned ones use the global allocator) are
//! carved from 256 KiB chunks, each aligned to its size and holding cells
//! of one size class (multiples of 16 bytes). A chunk starts with a small
//! [`Chunk`] record: its own free list (through the first word of each free
//! cell), a bump offset for never-used cells, and a count of live cells.
//! Freeing a cell finds its chunk by masking the address, so a free touches
//! only the chunk record and the cell. Chunks with room are linked into
//! their class's list; a chunk whose cells are all free goes to the
//! thread's list of empty chunks, which any class reuses, and which
//! [`trim`] unmaps (keeping one) when the hub goes idle and when it is torn
//! down: after a peak of greenlets, the cells' memory goes back to the
//! kernel, as the global allocator would give it back. The chunk a class
//! allocates from (the head of its list) stays there when it empties, so
//! spawning and joining one greenlet at a time does not move a chunk
//! between lists at every spawn.
//!
//! Compared with the global allocator (glibc's `malloc` here): no 8-byte
//! header per cell, no size-class search or consolidation on free, no
//! trimming of the heap top in the middle of a burst of frees, and fresh
//! pages are committed 64 KiB at a time (`MADV_POPULATE_WRITE`) instead of
//! one page fault each.
//!
//! The state lives in a `const` thread-local without a destructor, so it
//! stays usable while other thread-locals (which may hold greenlet handles)
//! are torn down. Tasks never leave their thread, so a cell is always freed
//! on the thread that allocated it.

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

use crate::sys;

/// Bytes per chunk; chunks are aligned to it.
const CHUNK: usize = 256 * 1024;

/// Size-class granularity, and the alignment every slab cell has.
const GRAIN: usize = 16;

/// Largest cell served by the slab.
pub(crate) const MAX_CELL: usize = 1024;

const CLASSES: usize = MAX_CELL / GRAIN;

/// Offset of the first cell in a chunk (the [`Chunk`] record before it).
const HEAD: usize = 64;

/// Never-used memory of a chunk is committed at most this many bytes at a
/// time (a page at first, doubling).
const POPULATE_STEP: usize = 64 * 1024;

/// The record at the start of every chunk.
#[repr(C, align(64))]
struct Chunk {
    /// Freed cells of this chunk; each holds the next one's address.
    free: Cell<*mut u8>,
    /// Offset of the first never-used byte.
    bump: Cell<usize>,
    /// Offset up to which the pages were committed.
    populated: Cell<usize>,
    /// Cells handed out and not freed.
    live: Cell<usize>,
    /// Cell size in bytes (a multiple of [`GRAIN`]).
    cell: Cell<usize>,
    /// Links in its class's list of chunks with room, or in the empty list.
    prev: Cell<*mut Chunk>,
    next: Cell<*mut Chunk>,
    /// Which list it is in.
    list: Cell<List>,
}

const _: () = assert!(std::mem::size_of::<Chunk>() <= HEAD);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum List {
    /// Full: in no list.
    None,
    /// In its class's list of chunks with room.
    Room,
    /// In the thread's list of empty chunks.
    Empty,
}

struct Slab {
    /// Per class, the chunks with room (head = most recently listed).
    room: [Cell<*mut Chunk>; CLASSES],
    /// Chunks without a live cell.
    empty: Cell<*mut Chunk>,
    empty_count: Cell<usize>,
    /// Chunks mapped.
    chunks: Cell<usize>,
    /// Empty chunks kept mapped: 1, and 0 once the hub is gone.
    keep: Cell<usize>,
}

thread_local! {
    // `const` and without a destructor: usable during the thread's whole
    // teardown.
    static SLAB: Slab = const {
        Slab {
            room: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            empty: Cell::new(ptr::null_mut()),
            empty_count: Cell::new(0),
            chunks: Cell::new(0),
            keep: Cell::new(1),
        }
    };
}

/// Whether cells of `layout` come from the slab.
#[inline(always)]
const fn in_slab(layout: Layout) -> bool {
    layout.size() <= MAX_CELL && layout.align() <= GRAIN && layout.size() > 0
}

/// Allocates memory for one cell of `layout` (non-zero size).
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    if !in_slab(layout) {
        // SAFETY: task cells are never zero-sized (the header alone is not).
        let p = unsafe { std::alloc::alloc(layout) };
        return NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
    }
    let class = (layout.size() - 1) / GRAIN;
    SLAB.with(|s| {
        let mut c = s.room[class].get();
        if c.is_null() {
            c = s
                .chunk_for(class)
                .unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        }
        // SAFETY: `c` is a live chunk of this thread with room for a cell
        // of this class (the invariant of the room lists).
        unsafe { s.take(c) }
    })
}

/// Frees a cell allocated by [`alloc`] with the same `layout`.
///
/// # Safety
/// `p` came from `alloc(layout)` on this thread, is not freed yet, and
/// nothing uses it any more.
#[inline]
pub(crate) unsafe fn free(p: NonNull<u8>, layout: Layout) {
    if !in_slab(layout) {
        // SAFETY: per the contract, from `std::alloc::alloc(layout)`.
        unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        return;
    }
    let class = (layout.size() - 1) / GRAIN;
    // SAFETY: per the contract the cell lies in a live chunk of this
    // thread, which starts at the chunk-aligned address below.
    SLAB.with(|s| unsafe { s.give(p.as_ptr(), class) });
}

/// Unmaps the empty chunks but one. Called when the hub goes idle.
pub(crate) fn trim() {
    SLAB.with(Slab::trim);
}

/// Unmaps every empty chunk, and from now on every chunk as soon as it
/// is empty: the thread's hub is gone, so the cells still live (handles
/// held elsewhere, greenlets leaked at teardown) are the last ones.
pub(crate) fn hub_gone() {
    SLAB.with(|s| {
        s.keep.set(0);
        s.trim();
        for head in &s.room {
            let c = head.get();
            // SAFETY: list members are live chunks; one without live cells
            // has nothing pointing into it but the list `unlink` leaves.
            unsafe {
                if !c.is_null() && (*c).live.get() == 0 {
                    s.unlink(c);
                    s.unmap(c);
                }
            }
        }
    });
}

/// Chunks mapped by the calling thread's slab, and how many are empty.
#[cfg(test)]
pub(crate) fn chunk_counts() -> (usize, usize) {
    SLAB.with(|s| (s.chunks.get(), s.empty_count.get()))
}

/// Live cells in the chunks at the heads of the room lists, and how many
/// such chunks there are.
#[cfg(test)]
fn room_heads() -> (usize, usize) {
    SLAB.with(|s| {
        let heads: Vec<_> = s
            .room
            .iter()
            .map(Cell::get)
            .filter(|c| !c.is_null())
            .collect();
        // SAFETY: list members are live chunks.
        let live = heads.iter().map(|&c| unsafe { (*c).live.get() }).sum();
        (live, heads.len())
    })
}

impl Slab {
    fn trim(&self) {
        while self.empty_count.get() > self.keep.get() {
            let c = self.empty.get();
            // SAFETY: `c` is in the empty list: no live cell, no pointer to
            // it outside the list, which `unlink` removes it from.
            unsafe {
                self.unlink(c);
                self.unmap(c);
            }
        }
    }

    /// Unmaps a chunk in no list, without live cells.
    ///
    /// # Safety
    /// Nothing points into `c` any more.
    unsafe fn unmap(&self, c: *mut Chunk) {
        // SAFETY: per the contract; `c` is a chunk `map_chunk` mapped.
        unsafe { sys::munmap(c.cast(), CHUNK).ok() };
        self.chunks.set(self.chunks.get() - 1);
    }

    /// A chunk with room for `class`: an empty one re-carved, or a new one.
    /// Listed in the class's room list.
    #[cold]
    fn chunk_for(&self, class: usize) -> Option<*mut Chunk> {
        let c = self.empty.get();
        let c = if c.is_null() {
            let c = map_chunk()?;
            self.chunks.set(self.chunks.get() + 1);
            c
        } else {
            // SAFETY: an empty chunk has no live cell: it can be re-carved.
            unsafe { self.unlink(c) };
            #[cfg(greenlet_asan)]
            // SAFETY: no live cell; the old size's free cells were poisoned.
            unsafe {
                sys::asan_unpoison((c as usize + HEAD) as *mut u8, CHUNK - HEAD)
            };
            c
        };
        // SAFETY: `c` is a mapped chunk in no list, without live cells.
        unsafe {
            let ch = &*c;
            ch.free.set(ptr::null_mut());
            ch.bump.set(HEAD);
            ch.cell.set((class + 1) * GRAIN);
            self.link(c, List::Room, class);
        }
        Some(c)
    }

    /// Takes a cell from chunk `c` of `class`.
    ///
    /// # Safety
    /// `c` is a live chunk of this thread in `class`'s room list.
    #[inline(always)]
    unsafe fn take(&self, c: *mut Chunk) -> NonNull<u8> {
        // SAFETY: per the contract.
        let ch = unsafe { &*c };
        let cell = ch.cell.get();
        let f = ch.free.get();
        let p = if !f.is_null() {
            #[cfg(greenlet_asan)]
            // SAFETY: a free cell of this chunk, poisoned by `give`.
            unsafe {
                sys::asan_unpoison(f, cell)
            };
            // SAFETY: a free cell holds the next free cell's address.
            ch.free.set(unsafe { f.cast::<*mut u8>().read() });
            f
        } else {
            let at = ch.bump.get();
            ch.bump.set(at + cell);
            if at + cell > ch.populated.get() {
                populate(ch, at + cell);
            }
            (c as usize + at) as *mut u8
        };
        ch.live.set(ch.live.get() + 1);
        // The next cell this chunk hands out: start loading it for writing,
        // so its header stores do not wait on memory (a burst of spawns
        // writes cells nobody touched for a long time).
        let next = ch.free.get();
        let next = if next.is_null() {
            (c as usize + ch.bump.get()) as *const u8
        } else {
            next
        };
        prefetch_write(next, cell);
        if ch.free.get().is_null() && ch.bump.get() + cell > CHUNK {
            // Full: out of the room list until a cell comes back.
            // SAFETY: it is in the room list (the contract).
            unsafe { self.unlink(c) };
        }
        // SAFETY: a chunk address plus an offset inside it is not null.
        unsafe { NonNull::new_unchecked(p) }
    }

    /// Gives back cell `p` of `class`.
    ///
    /// # Safety
    /// As [`free`].
    #[inline(always)]
    unsafe fn give(&self, p: *mut u8, class: usize) {
        let c = (p as usize & !(CHUNK - 1)) as *mut Chunk;
        // SAFETY: per the contract, `c` is the live chunk holding `p`.
        let ch = unsafe { &*c };
        // SAFETY: the cell is ours again and at least one word long.
        unsafe { p.cast::<*mut u8>().write(ch.free.get()) };
        #[cfg(greenlet_asan)]
        // SAFETY: the cell is free; `take` unpoisons it before reuse.
        unsafe {
            sys::asan_poison(p, ch.cell.get())
        };
        ch.free.set(p);
        let live = ch.live.get() - 1;
        ch.live.set(live);
        if live == 0 && !(self.keep.get() > 0 && self.room[class].get() == c) {
            // SAFETY: `c` is in at most one list; `unlink` handles both.
            // Without live cells nothing points into it but the lists.
            unsafe {
                if ch.list.get() != List::None {
                    self.unlink(c);
                }
                if self.keep.get() == 0 {
                    self.unmap(c);
                } else {
                    self.link(c, List::Empty, class);
                }
            }
        } else if ch.list.get() == List::None {
            // SAFETY: a full chunk that has room again.
            unsafe { self.link(c, List::Room, class) };
            // The head it displaced may be empty (it was kept as the head
            // when its last cell came back): as the head no more, it is
            // spare like any other empty chunk.
            let old = ch.next.get();
            // SAFETY: list members are live chunks; one without live cells
            // has nothing pointing into it but the lists.
            unsafe {
                if !old.is_null() && (*old).live.get() == 0 {
                    self.unlink(old);
                    self.link(old, List::Empty, class);
                }
            }
        }
    }

    fn head(&self, list: List, class: usize) -> &Cell<*mut Chunk> {
        match list {
            List::Room => &self.room[class],
            List::Empty => &self.empty,
            List::None => unreachable!("no list"),
        }
    }

    /// Links `c` at the head of `list`.
    ///
    /// # Safety
    /// `c` is a live chunk of this thread in no list.
    unsafe fn link(&self, c: *mut Chunk, list: List, class: usize) {
        // SAFETY: per the contract; list members are live chunks.
        unsafe {
            let head = self.head(list, class);
            let old = head.get();
            (*c).prev.set(ptr::null_mut());
            (*c).next.set(old);
            if !old.is_null() {
                (*old).prev.set(c);
            }
            head.set(c);
            (*c).list.set(list);
        }
        if list == List::Empty {
            self.empty_count.set(self.empty_count.get() + 1);
        }
    }

    /// Removes `c` from the list it is in.
    ///
    /// # Safety
    /// `c` is a live chunk of this thread in a list.
    unsafe fn unlink(&self, c: *mut Chunk) {
        // SAFETY: per the contract; list members are live chunks.
        unsafe {
            let ch = &*c;
            let list = ch.list.get();
            let class = ch.cell.get() / GRAIN - 1;
            let (prev, next) = (ch.prev.get(), ch.next.get());
            if prev.is_null() {
                self.head(list, class).set(next);
            } else {
                (*prev).next.set(next);
            }
            if !next.is_null() {
                (*next).prev.set(prev);
            }
            ch.list.set(List::None);
            if list == List::Empty {
                self.empty_count.set(self.empty_count.get() - 1);
            }
        }
    }
}

/// Hints the CPU to fetch `len` bytes at `p` for writing. A prefetch never
/// faults and changes nothing but the caches.
#[inline(always)]
fn prefetch_write(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..len).step_by(64) {
        // SAFETY: a prefetch is only a hint: it reads nothing and cannot
        // fault, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(
                p.wrapping_add(line).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Maps a chunk-aligned chunk and writes its record (in no list).
fn map_chunk() -> Option<*mut Chunk> {
    // Twice the size, then the unaligned ends go back.
    let raw = sys::mmap_stack_region(2 * CHUNK).ok()? as usize;
    let base = (raw + CHUNK - 1) & !(CHUNK - 1);
    // SAFETY: both ranges lie in the mapping just made, outside the chunk.
    unsafe {
        if base > raw {
            sys::munmap(raw as *mut u8, base - raw).ok();
        }
        let end = raw + 2 * CHUNK;
        if end > base + CHUNK {
            sys::munmap((base + CHUNK) as *mut u8, end - base - CHUNK).ok();
        }
    }
    let c = base as *mut Chunk;
    // SAFETY: `base` starts a fresh, writable, chunk-aligned mapping.
    unsafe {
        c.write(Chunk {
            free: Cell::new(ptr::null_mut()),
            bump: Cell::new(HEAD),
            populated: Cell::new(0),
            live: Cell::new(0),
            cell: Cell::new(GRAIN),
            prev: Cell::new(ptr::null_mut()),
            next: Cell::new(ptr::null_mut()),
            list: Cell::new(List::None),
        });
    }
    Some(c)
}

/// Commits the chunk's pages up to at least offset `to`, a step at a time.
#[cold]
fn populate(ch: &Chunk, to: usize) {
    let from = ch.populated.get();
    // Doubling up to a step: a hub with a few greenlets commits a page.
    let page = sys::page_size();
    let end = to
        .max(from.saturating_mul(2))
        .min(from + POPULATE_STEP)
        .max(to)
        .next_multiple_of(page)
        .min(CHUNK);
    let base = ch as *const Chunk as usize;
    // SAFETY: the range lies in this chunk, above every used cell; a
    // failure (an old kernel) only leaves the pages to be faulted in.
    let _ = unsafe { sys::populate_write((base + from) as *mut u8, end - from) };
    ch.populated.set(end);
}

#[cfg(test)]
mod tests;
