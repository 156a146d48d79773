//! The small lock that guards a primitive's state.
//!
//! Every critical section it protects is a handful of instructions: check
//! a counter, link or unlink a waiter, move an item, make a task of this
//! hub ready or push a message onto another hub's remote queue (which, when
//! that hub sleeps in epoll, also writes its eventfd). None of them parks or
//! runs user code, so the lock is never held across a
//! greenlet switch, and the only way to find it taken is that another OS
//! thread is inside one of those few instructions right now. A
//! test-and-test-and-set spin lock fits that: uncontended, it costs one
//! atomic read-modify-write to lock and a plain release store to unlock
//! (`std::sync::Mutex` pays a second read-modify-write to unlock, because
//! it must know whether to wake a sleeper), which is most of the cost of a
//! same-hub queue hand-off. Contended, it spins briefly, then yields the OS
//! thread so that a preempted holder can finish.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Spins this many times before yielding the OS thread.
const SPINS: u32 = 100;

/// A spin lock around `S`.
///
/// `#[repr(C)]` with `gone` first, so that `gone`'s address is the lock's.
#[repr(C)]
pub(crate) struct Lock<S> {
    gone: LockGone,
    locked: AtomicBool,
    /// The primitive's id for dumps and reports; 0 until first asked.
    id: AtomicU32,
    state: UnsafeCell<S>,
}

// SAFETY: `state` is reached only through a `LockGuard`, and `locked`
// admits one guard at a time with acquire/release ordering, as a mutex
// does: sharing the lock shares `S` one holder at a time.
unsafe impl<S: Send> Sync for Lock<S> {}

impl<S> Lock<S> {
    pub(crate) const fn new(state: S) -> Lock<S> {
        Lock {
            gone: LockGone,
            locked: AtomicBool::new(false),
            id: AtomicU32::new(0),
            state: UnsafeCell::new(state),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, S> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        LockGuard { lock: self }
    }

    /// Locks if nobody holds the lock right now.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, S>> {
        // Not `.then_some(LockGuard { .. })`: its argument is built
        // whether or not the lock was taken, and dropping an unused guard
        // releases the lock for whoever holds it (a lost wake-up and two
        // holders at once, found by `sync_mutex::shared_between_threads`).
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            Some(LockGuard { lock: self })
        } else {
            None
        }
    }

    /// The primitive's id: unique in the process, given at the first call.
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        match self.id.load(Ordering::Relaxed) {
            0 => self.assign_id(),
            id => id,
        }
    }

    #[cold]
    fn assign_id(&self) -> u32 {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let new = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
        match self
            .id
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(id) => id,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// Dropped with its lock (whose address is its own): has this thread's
/// hub forget the waits still registered on the lock.
///
/// A wait borrows its primitive, so it normally ends before the primitive
/// can be dropped. But a greenlet parked inside `LocalKey::with` of a
/// thread-local primitive stays parked while the thread exits, and that
/// thread-local may be destroyed before the hub (thread-locals are torn
/// down in reverse order of first use). The hub's teardown then must not
/// cancel the wait through the freed primitive (see
/// `crate::hub::sync_wait`); the greenlet is never resumed either way.
/// Not generic, so `Lock<S>` needs no `Drop` of its own (which would make
/// the borrow checker require the primitives' `T` to outlive them).
struct LockGone;

impl Drop for LockGone {
    #[inline]
    fn drop(&mut self) {
        super::wait_queue::lock_gone((self as *const LockGone).cast());
    }
}

impl<S: Default> Default for Lock<S> {
    fn default() -> Self {
        Lock::new(S::default())
    }
}

/// Access to a [`Lock`]'s state; unlocks when dropped (also on unwinding:
/// there is no poisoning, every critical section leaves the state valid).
pub(crate) struct LockGuard<'a, S> {
    lock: &'a Lock<S>,
}

impl<S> Deref for LockGuard<'_, S> {
    type Target = S;

    #[inline]
    fn deref(&self) -> &S {
        // SAFETY: this guard is the only one (see `Sync for Lock`).
        unsafe { &*self.lock.state.get() }
    }
}

impl<S> DerefMut for LockGuard<'_, S> {
    #[inline]
    fn deref_mut(&mut self) -> &mut S {
        // SAFETY: this guard is the only one, borrowed mutably.
        unsafe { &mut *self.lock.state.get() }
    }
}

impl<S> Drop for LockGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Lock;

    #[test]
    fn a_failed_try_lock_leaves_the_holder_holding() {
        let lock = Lock::new(0u32);
        let held = lock.lock();
        assert!(lock.try_lock().is_none());
        // Still held: a second failed attempt must fail too, and a third
        // party cannot get in.
        assert!(lock.try_lock().is_none());
        drop(held);
        assert!(lock.try_lock().is_some());
    }
}
