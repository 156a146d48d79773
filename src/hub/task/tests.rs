/// The header every spawn writes stays within four cache lines, and a
/// switch's fields within the first (see [`super::Header`]).
#[test]
fn header_layout() {
    use std::mem::{offset_of, size_of};
    // The fiber is 32 bytes in normal builds (its stack is one word; more
    // under ASan, where corosensei keeps sanitizer state in it): the
    // bounds are on the rest, so they hold in both.
    let fiber = size_of::<Option<super::Fiber>>();
    let header = size_of::<super::Header>();
    assert!(header - fiber <= 168 - 32, "{header} bytes, fiber {fiber}");
    // A `JoinError` is one word, and the whole cell of a greenlet
    // returning `()` (header, result slot, closure) 192 bytes, a slab size
    // class of its own: a million spawned greenlets commit 192 MB for their
    // cells.
    assert_eq!(size_of::<crate::hub::JoinError>(), size_of::<usize>());
    let f = || ();
    fn cell_size<F>(_: &F) -> usize {
        size_of::<super::TaskCell<crate::hub::Payload<F, ()>>>()
    }
    assert!(cell_size(&f) - fiber <= 192 - 32, "{} bytes", cell_size(&f));
    if fiber == 32 {
        assert_eq!(size_of::<super::Fiber>(), 32);
        assert_eq!(cell_size(&f), 192);
    }
    // What every park and yield checks afterwards (a kill or an expired
    // timeout pending) is in the first word, next to the state.
    assert!(offset_of!(super::Header, kill) < 8);
    assert!(offset_of!(super::Header, timeout_pending) < 8);
    // The stores of every park stay within a cache line.
    // (In normal builds: under ASan the fiber is larger.)
    if fiber == 32 {
        assert_eq!(offset_of!(super::Header, reason) % 16, 0);
        assert_eq!(offset_of!(super::Header, since) % 8, 0);
    }
    assert!(std::mem::align_of::<super::Header>() <= 16);
    // The state bytes and the yielder come first, then the fiber: with
    // a 48-byte fiber a switch touches one cache line.
    assert!(offset_of!(super::Header, fiber) <= 16);
    // What resuming a task reads first (state, yielder, fiber, and the
    // stack pointer to prefetch from) is in the header's first 64
    // bytes: the loop prefetches them a task ahead.
    assert!(offset_of!(super::Header, park_sp) + 8 <= 64 + fiber - 32);
}
