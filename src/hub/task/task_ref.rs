//! [`TaskRef`], the counted pointer to a task's header, and the typed
//! cell it points into.

use std::alloc::Layout;
use std::marker::PhantomData;
use std::panic::Location;
use std::ptr::NonNull;

use super::{Header, Launch};
use crate::hub::task_slab;

/// What is specific to a task's types: how to free its cell and how to
/// launch it. One `static` per closure type (a `const` block in `Hub::spawn`), so
/// the header holds one pointer for both.
pub(crate) struct TaskVtable {
    /// Frees the whole `TaskCell<S>`.
    pub(crate) free: unsafe fn(NonNull<Header>),
    /// See [`Header::take_launch`]; `None` for a thread's root.
    pub(crate) launch: Option<Launch>,
}

impl TaskVtable {
    /// The root's: nothing to launch, a `TaskCell<()>`.
    pub(crate) const ROOT: &'static TaskVtable = &TaskVtable {
        free: free_cell::<()>,
        launch: None,
    };
}

/// Frees a `TaskCell<S>` whose count reached zero.
///
/// # Safety
/// `p` is the header of a fully initialized `TaskCell<S>` from
/// [`TaskRef::new`] that nothing uses any more.
pub(crate) unsafe fn free_cell<S>(p: NonNull<Header>) {
    let cell = p.cast::<TaskCell<S>>();
    // SAFETY: per the contract: the cell came from `task_slab::alloc` with
    // this layout (the header is at offset 0).
    unsafe {
        std::ptr::drop_in_place(cell.as_ptr());
        task_slab::free(cell.cast(), Layout::new::<TaskCell<S>>());
    }
}

/// A counted pointer to a task's header.
///
/// # Invariant
/// Points at the `hdr` field (offset 0) of a live, heap-allocated
/// `TaskCell<S>` whose `refs` counts the live `TaskRef`s; the last one to
/// drop frees the cell through `hdr.vtable.free`, which knows `S`. Not `Send`: the
/// count is not atomic and tasks never leave their thread.
pub(crate) struct TaskRef {
    ptr: NonNull<Header>,
    _not_send: PhantomData<*const Header>,
}

impl TaskRef {
    /// Allocates a task cell and returns the first reference to it. The
    /// header is built straight into the allocation (it is a few hundred
    /// bytes: building it elsewhere and moving it costs a `memcpy` per
    /// spawn).
    ///
    /// # Safety
    /// `vtable.free` is `free_cell::<S>`, and `vtable.launch` (if any)
    /// expects a `TaskCell<S>`.
    #[inline]
    pub(crate) unsafe fn new<S>(
        id: u64,
        name: Option<Box<str>>,
        stack_size: usize,
        site: Option<&'static Location<'static>>,
        vtable: &'static TaskVtable,
        slot: S,
    ) -> TaskRef {
        let p = task_slab::alloc(Layout::new::<TaskCell<S>>())
            .cast::<TaskCell<S>>()
            .as_ptr();
        // SAFETY: `p` is a fresh, writable allocation with the layout of a
        // `TaskCell<S>`; every field is written exactly once below.
        unsafe {
            Header::init(&raw mut (*p).hdr, id, name, stack_size, site, vtable);
            (&raw mut (*p).slot).write(slot);
        }
        TaskRef {
            // SAFETY: the slab never returns null; `hdr` is at offset 0 of
            // a `#[repr(C)]` struct.
            ptr: unsafe { NonNull::new_unchecked(p.cast::<Header>()) },
            _not_send: PhantomData,
        }
    }

    /// Live references to the task (tests only).
    #[cfg(test)]
    pub(crate) fn ref_count(&self) -> u32 {
        self.refs.get()
    }

    /// A new reference to the task whose header is at `hdr`.
    ///
    /// # Safety
    /// `hdr` must point at the header of a live task.
    #[inline]
    pub(crate) unsafe fn from_header(hdr: *const Header) -> TaskRef {
        // SAFETY: guaranteed by the caller.
        let h = unsafe { &*hdr };
        // Like `Rc`: a count that would wrap aborts (it takes 4 billion
        // live references to one task).
        match h.refs.get().checked_add(1) {
            Some(n) => h.refs.set(n),
            None => crate::sys::abort(),
        }
        TaskRef {
            // SAFETY: a live header is not null.
            ptr: unsafe { NonNull::new_unchecked(hdr as *mut Header) },
            _not_send: PhantomData,
        }
    }

    /// Takes over one reference the task counts but no `TaskRef` holds:
    /// the one its first run took for itself with [`TaskRef::leak`].
    ///
    /// # Safety
    /// `hdr` is the header of a live task holding such a reference, and
    /// each one is taken over once.
    #[inline]
    pub(crate) unsafe fn adopt(hdr: *const Header) -> TaskRef {
        TaskRef {
            // SAFETY: a live header is not null.
            ptr: unsafe { NonNull::new_unchecked(hdr as *mut Header) },
            _not_send: PhantomData,
        }
    }

    /// Keeps the reference counted without a `TaskRef` holding it (see
    /// [`TaskRef::adopt`]).
    #[inline]
    pub(crate) fn leak(self) {
        std::mem::forget(self);
    }

    /// The typed result slot.
    ///
    /// # Safety
    /// The task must have been created with `TaskRef::new::<S>`.
    #[inline]
    pub(crate) unsafe fn slot<S>(&self) -> &S {
        // SAFETY: guaranteed by the caller; the cell lives while `self` does.
        unsafe { &(*self.ptr.as_ptr().cast::<TaskCell<S>>()).slot }
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *const Header {
        self.ptr.as_ptr()
    }
}

impl Clone for TaskRef {
    #[inline]
    fn clone(&self) -> TaskRef {
        // SAFETY: `self` keeps the task alive.
        unsafe { TaskRef::from_header(self.ptr.as_ptr()) }
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        let h: &Header = self;
        let n = h.refs.get() - 1;
        h.refs.set(n);
        if n == 0 {
            let free = h.vtable.free;
            // SAFETY: this was the last reference (see the invariant).
            unsafe { free(self.ptr) };
        }
    }
}

impl std::ops::Deref for TaskRef {
    type Target = Header;

    #[inline]
    fn deref(&self) -> &Header {
        // SAFETY: the invariant keeps the header alive while `self` lives.
        unsafe { self.ptr.as_ref() }
    }
}

/// A task: header plus typed result slot, in one allocation.
#[repr(C)]
pub(crate) struct TaskCell<S> {
    pub(crate) hdr: Header,
    pub(crate) slot: S,
}
