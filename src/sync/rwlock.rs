//! `RwLock<T>`: many readers or one writer, served in arrival order.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, wait};
use super::{TimedOut, deadline};
use crate::hub::SyncKind;
use crate::hub::deadlock::thread_tag;

/// A readers-writer lock for greenlets (std's `RwLock`, parking instead of
/// blocking the thread): any number of readers, or one writer.
///
/// Fair, in arrival order: a reader that comes while a writer waits queues
/// behind it, so a stream of readers cannot starve writers; when a writer
/// finishes, the readers queued behind it are let in together. Guards may
/// be held across parks. Not poisoned.
///
/// # Waiting protocol
///
/// Under the internal lock, `read` enters at once if no writer holds the
/// lock and nobody waits, `write` if nobody holds it and nobody waits;
/// otherwise the caller registers at the back of one waiter list, marked
/// reader or writer, and parks. Each release admits from the front: one
/// writer, or every reader up to the next writer. A waiter that dies after
/// being admitted releases again. See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use greenlet::sync::RwLock;
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let readers: Vec<_> = (0..3)
///     .map(|_| {
///         let config = config.clone();
///         greenlet::spawn(move || config.read().clone())
///     })
///     .collect();
/// *config.write() = String::from("v2");
/// for r in greenlet::joinall(readers) {
///     assert_eq!(r.unwrap(), "v2"); // the writer came first
/// }
/// ```
pub struct RwLock<T: ?Sized> {
    state: Lock<State>,
    data: UnsafeCell<T>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

struct State {
    readers: usize,
    writer: bool,
    /// The thread (a `thread_tag`) of the holders, while someone holds
    /// the lock; `mixed` once holders of several threads overlapped (kept
    /// until the lock is free). Only for "would block forever": guards are
    /// not `Send`, so holders of this thread release only on it.
    holders: usize,
    mixed: bool,
    /// Each node says what its waiter wants, and its thread.
    waiters: WaitList<Want>,
}

/// A waiter's node payload.
#[derive(Clone, Copy)]
struct Want {
    kind: Kind,
    /// The waiter's thread (a `thread_tag`).
    tag: usize,
    /// Let in by [`State::admit`]: it holds the lock now.
    admitted: bool,
}

impl State {
    /// Lets a holder of `kind` from thread `tag` in.
    #[inline]
    fn enter(&mut self, kind: Kind, tag: usize) {
        if self.readers == 0 && !self.writer {
            self.holders = tag;
            self.mixed = false;
        } else if self.holders != tag {
            self.mixed = true;
        }
        match kind {
            Kind::Read => self.readers += 1,
            Kind::Write => self.writer = true,
        }
    }

    /// Admits waiters from the front while they can enter.
    fn admit(&mut self) {
        while let Some(k) = self.waiters.first() {
            let Some(want) = self.waiters.payload_mut(k) else {
                return;
            };
            let kind = want.kind;
            match kind {
                Kind::Read if !self.writer => {}
                Kind::Write if !self.writer && self.readers == 0 => {}
                _ => return,
            }
            want.admitted = true;
            let tag = want.tag;
            self.enter(kind, tag);
            self.waiters.notify(k);
            if kind == Kind::Write {
                return;
            }
        }
    }

    /// Whether only thread `tag` can ever let a waiter in: every holder is
    /// of it (only holders release), and so is every waiter (one that
    /// leaves, timed out or killed, may let those behind it in).
    fn only_thread(&mut self, tag: usize) -> bool {
        (self.readers > 0 || self.writer)
            && !self.mixed
            && self.holders == tag
            && self.waiters.all(|w| w.tag == tag)
    }

    fn release(&mut self, kind: Kind) {
        match kind {
            Kind::Read => self.readers -= 1,
            Kind::Write => self.writer = false,
        }
        if self.readers == 0 {
            self.admit();
        }
    }
}

/// Admits the waiters that can enter now, when dropped.
struct Readmit<'a>(&'a Lock<State>);

impl Drop for Readmit<'_> {
    fn drop(&mut self) {
        self.0.lock().admit();
    }
}

fn waiters(s: &mut State) -> &mut WaitList<Want> {
    &mut s.waiters
}

/// The `abandon` hook: a waiter admitted but dead releases again; one
/// still queued when its hub cancelled the wait (the list passes withdrawn
/// waiters on) lets in those it kept out, as [`Readmit`] does.
fn pass_on(s: &mut State, want: Want) -> Option<Want> {
    if want.admitted {
        s.release(want.kind);
    } else {
        s.admit();
    }
    None
}

// SAFETY: `data` is reached only through guards: several read guards (each
// giving `&T`, possibly on different threads: `T: Sync`) or one write
// guard (giving `&mut T`, possibly on another thread than the last:
// `T: Send`), never both; the state lock decides who enters. As std's.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock around `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static TABLE: greenlet::sync::RwLock<Vec<u8>> = greenlet::sync::RwLock::new(Vec::new());
    /// TABLE.write().push(1);
    /// assert_eq!(*TABLE.read(), [1]);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: Lock::new(State {
                readers: 0,
                writer: false,
                holders: 0,
                mixed: false,
                waiters: WaitList::passing_on_withdrawn(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(greenlet::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, parking while a writer holds the lock or waits for
    /// it.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RwLock::new(1);
    /// let a = l.read();
    /// let b = l.read(); // readers share
    /// assert_eq!(*a + *b, 2);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        loop {
            if let Ok(g) = self.read_until(None) {
                return g;
            }
        }
    }

    /// Exclusive access, parking until every earlier reader and writer is
    /// done.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RwLock::new(1);
    /// *l.write() += 1;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        loop {
            if let Ok(g) = self.write_until(None) {
                return g;
            }
        }
    }

    /// Shared access if that needs no waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RwLock::new(0);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut s = self.state.lock();
        if !s.writer && s.waiters.is_empty() {
            s.enter(Kind::Read, thread_tag());
            Some(self.read_guard())
        } else {
            None
        }
    }

    /// Exclusive access if that needs no waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = greenlet::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut s = self.state.lock();
        if !s.writer && s.readers == 0 && s.waiters.is_empty() {
            s.enter(Kind::Write, thread_tag());
            Some(self.write_guard())
        } else {
            None
        }
    }

    /// Shared access, parking at most `timeout`.
    ///
    /// # Errors
    /// [`TimedOut`] if a writer kept it out for `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenlet::sync::RwLock::new(0);
    /// let _w = l.write();
    /// assert!(l.read_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn read_timeout(&self, timeout: Duration) -> Result<RwLockReadGuard<'_, T>, TimedOut> {
        self.read_until(Some(deadline(timeout)))
    }

    /// Exclusive access, parking at most `timeout`.
    ///
    /// # Errors
    /// [`TimedOut`] if readers or a writer kept it busy for `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenlet::sync::RwLock::new(0);
    /// let _r = l.read();
    /// assert!(l.write_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Result<RwLockWriteGuard<'_, T>, TimedOut> {
        self.write_until(Some(deadline(timeout)))
    }

    fn read_until(&self, deadline: Option<Instant>) -> Result<RwLockReadGuard<'_, T>, TimedOut> {
        let mut s = self.state.lock();
        if !s.writer && s.waiters.is_empty() {
            s.enter(Kind::Read, thread_tag());
            return Ok(self.read_guard());
        }
        self.wait(s, Kind::Read, deadline)
            .map(|()| self.read_guard())
    }

    fn write_until(&self, deadline: Option<Instant>) -> Result<RwLockWriteGuard<'_, T>, TimedOut> {
        let mut s = self.state.lock();
        if !s.writer && s.readers == 0 && s.waiters.is_empty() {
            s.enter(Kind::Write, thread_tag());
            return Ok(self.write_guard());
        }
        self.wait(s, Kind::Write, deadline)
            .map(|()| self.write_guard())
    }

    fn wait(
        &self,
        s: super::lock::LockGuard<'_, State>,
        kind: Kind,
        deadline: Option<Instant>,
    ) -> Result<(), TimedOut> {
        // A waiter that leaves without entering (timed out, or unwound by a
        // kill) may have been all that kept the waiters behind it out.
        let readmit = Readmit(&self.state);
        let me = thread_tag();
        let state = &self.state;
        let sole = || state.try_lock().is_some_and(|mut s| s.only_thread(me));
        match wait(
            &self.state,
            s,
            waiters,
            Some(Want {
                kind,
                tag: me,
                admitted: false,
            }),
            deadline,
            pass_on,
            WaitSite::sole(SyncKind::RwLock, &sole),
        ) {
            Waited::Notified(_) => {
                std::mem::forget(readmit);
                Ok(())
            }
            Waited::TimedOut(_) => Err(TimedOut),
        }
    }

    /// A mutable reference to the data; the borrow proves no guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut l = greenlet::sync::RwLock::new(0);
    /// *l.get_mut() = 9;
    /// assert_eq!(*l.read(), 9);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RwLock`]'s data; leaves when dropped.
///
/// Not `Send`: release where you locked.
///
/// ```compile_fail
/// let l = std::sync::Arc::new(greenlet::sync::RwLock::new(0));
/// let g = l.read();
/// std::thread::spawn(move || drop(g)); // error: `RwLockReadGuard` cannot be sent between threads
/// ```
///
/// # Examples
///
/// ```
/// let l = greenlet::sync::RwLock::new(String::from("x"));
/// let g = l.read();
/// assert_eq!(g.len(), 1);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared read guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: while a read guard lives no write guard does (see `Sync
        // for RwLock`), so nothing mutates the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.state.lock().release(Kind::Read);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwLock`]'s data; leaves when dropped.
///
/// # Examples
///
/// ```
/// let l = greenlet::sync::RwLock::new(vec![1]);
/// l.write().push(2);
/// assert_eq!(*l.read(), [1, 2]);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared write guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the write guard is the only guard alive.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the only guard alive, and `&mut self`
        // makes this the only borrow through it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.state.lock().release(Kind::Write);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
