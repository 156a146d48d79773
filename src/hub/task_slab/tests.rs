use super::*;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Cells never overlap, keep what was written into them, stay inside
/// one chunk and 16-byte aligned, and come back after a free.
#[test]
fn cells_are_disjoint_and_reused() {
    crate::test_util::within(std::time::Duration::from_secs(30), || {
        let sizes = [24usize, 280, 288, 1000, MAX_CELL];
        let mut cells = Vec::new();
        for i in 0..20_000usize {
            let size = sizes[i % sizes.len()];
            let p = alloc(layout(size));
            let a = p.as_ptr() as usize;
            assert_eq!(a % GRAIN, 0);
            assert_eq!(a & !(CHUNK - 1), (a + size - 1) & !(CHUNK - 1));
            assert!(a & (CHUNK - 1) >= HEAD);
            // SAFETY: a fresh cell of `size` bytes.
            unsafe { ptr::write_bytes(p.as_ptr(), (i % 251) as u8, size) };
            cells.push((p, size, i));
        }
        let mut addrs: Vec<(usize, usize)> = cells
            .iter()
            .map(|&(p, s, _)| (p.as_ptr() as usize, s))
            .collect();
        addrs.sort();
        for w in addrs.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {w:?}");
        }
        // Free every other cell, reallocate, and check the survivors.
        let mut kept = Vec::new();
        for (j, (p, size, i)) in cells.into_iter().enumerate() {
            if j % 2 == 0 {
                // SAFETY: from `alloc(layout(size))`, freed once.
                unsafe { free(p, layout(size)) };
            } else {
                kept.push((p, size, i));
            }
        }
        let again: Vec<_> = (0..5_000).map(|_| (alloc(layout(280)), 280)).collect();
        for &(p, size, i) in &kept {
            // SAFETY: a live cell of `size` bytes.
            let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), size) };
            assert!(s.iter().all(|&b| b == (i % 251) as u8), "cell {i} changed");
        }
        for (p, size) in again
            .into_iter()
            .chain(kept.into_iter().map(|(p, s, _)| (p, s)))
        {
            // SAFETY: live cells, freed once.
            unsafe { free(p, layout(size)) };
        }
        let (chunks, empty) = chunk_counts();
        let (live, heads) = room_heads();
        assert_eq!(live, 0, "every cell is free");
        assert_eq!(chunks, empty + heads, "every chunk is empty");
        trim();
        let (chunks, empty) = chunk_counts();
        assert_eq!(empty, 1, "trim keeps one empty chunk");
        assert_eq!(chunks, 1 + heads, "and the chunk each class allocates from");
    });
}

/// Under AddressSanitizer a free cell is unaddressable until it is
/// handed out again, so a use of a freed task is reported.
#[cfg(greenlet_asan)]
#[test]
fn free_cells_are_poisoned_under_asan() {
    crate::test_util::within(std::time::Duration::from_secs(30), || {
        let a = alloc(layout(200));
        let b = alloc(layout(200));
        assert!(!sys::asan_is_poisoned(a.as_ptr()));
        // SAFETY: from `alloc(layout(200))`, freed once.
        unsafe { free(a, layout(200)) };
        assert!(sys::asan_is_poisoned(a.as_ptr()));
        assert!(sys::asan_is_poisoned(a.as_ptr().wrapping_add(199)));
        assert!(!sys::asan_is_poisoned(b.as_ptr()));
        let c = alloc(layout(200));
        assert_eq!(c, a, "the freed cell comes back first");
        assert!(!sys::asan_is_poisoned(c.as_ptr().wrapping_add(199)));
        // SAFETY: from `alloc(layout(200))`, freed once each.
        unsafe {
            free(b, layout(200));
            free(c, layout(200));
        }
    });
}

/// Layouts the slab does not serve go to the global allocator, and an
/// empty chunk is re-carved for another size.
#[test]
fn large_cells_and_recarving() {
    crate::test_util::within(std::time::Duration::from_secs(30), || {
        let big = alloc(layout(MAX_CELL + 1));
        let over = alloc(Layout::from_size_align(64, 64).unwrap());
        assert_eq!(chunk_counts().0, 0, "neither came from a chunk");
        assert_eq!(over.as_ptr() as usize % 64, 0);
        // SAFETY: from `alloc` with these layouts.
        unsafe {
            free(big, layout(MAX_CELL + 1));
            free(over, Layout::from_size_align(64, 64).unwrap());
        }
        // One cell at a time: the chunk stays where it is.
        for _ in 0..3 {
            let a = alloc(layout(100));
            // SAFETY: from `alloc(layout(100))`.
            unsafe { free(a, layout(100)) };
            assert_eq!(chunk_counts(), (1, 0));
        }
        // More than a chunk's worth: the full first chunk leaves the
        // room list, and comes back to it as its cells are freed.
        let per_chunk = (CHUNK - HEAD) / 112;
        let cells: Vec<_> = (0..per_chunk + 1).map(|_| alloc(layout(100))).collect();
        assert_eq!(chunk_counts(), (2, 0));
        for &p in &cells {
            // SAFETY: from `alloc(layout(100))`, freed once.
            unsafe { free(p, layout(100)) };
        }
        // One empty chunk heads the class's list, the other is spare.
        assert_eq!(chunk_counts(), (2, 1));
        let spare = SLAB.with(|s| s.empty.get()) as usize;
        let b = alloc(layout(500));
        assert_eq!(chunk_counts(), (2, 0), "the empty chunk was re-carved");
        assert_eq!(b.as_ptr() as usize & !(CHUNK - 1), spare);
        // SAFETY: from `alloc(layout(500))`.
        unsafe { free(b, layout(500)) };
        hub_gone();
        assert_eq!(chunk_counts(), (0, 0), "nothing left once the hub is gone");
    });
}

/// A chunk that emptied while it headed its class's list, and was then
/// displaced as head by a full chunk getting a cell back, is spare like any
/// other empty chunk: `trim` gives it back.
#[test]
fn an_empty_chunk_displaced_as_head_is_trimmed() {
    crate::test_util::within(std::time::Duration::from_secs(30), || {
        let per_chunk = (CHUNK - HEAD) / 208;
        let cells: Vec<_> = (0..per_chunk * 8).map(|_| alloc(layout(200))).collect();
        assert_eq!(chunk_counts(), (8, 0));
        // Freed in order: each chunk in turn gets a cell back (becoming the
        // head), then empties while it is the head.
        for &p in &cells {
            // SAFETY: from `alloc(layout(200))`, freed once.
            unsafe { free(p, layout(200)) };
        }
        assert_eq!(room_heads(), (0, 1));
        trim();
        assert_eq!(chunk_counts(), (2, 1), "the class's head and one spare");
        hub_gone();
        assert_eq!(chunk_counts(), (0, 0));
    });
}
