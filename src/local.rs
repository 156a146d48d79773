//! Greenlet-local storage: [`Local`] and the [`local!`](crate::local!)
//! macro (gevent's `gevent.local.local`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::hub::Hub;

/// A value with one instance per greenlet, like `thread_local!` is one per
/// thread (gevent's `gevent.local.local`).
///
/// Each greenlet that touches a `Local` gets its own value, made by the
/// initializer on first access and dropped when the greenlet finishes (on
/// the greenlet's own stack, so its destructor may still park). Code in the
/// root context (not in any greenlet) uses one value per thread, dropped at
/// thread exit, after the thread's hub is gone: such a destructor must not
/// use greenlet APIs.
///
/// Declare one with [`local!`](crate::local!) (or as a `static` with
/// [`Local::new`]). Access goes through [`with`](Local::with), which lends
/// `&T`; put a [`Cell`] or [`RefCell`] inside for mutation, as with
/// `thread_local!`, and use the shortcuts ([`set`](Local::set),
/// [`get`](Local::get), [`with_borrow_mut`](Local::with_borrow_mut), ...).
///
/// # Why not `thread_local!`?
///
/// All greenlets of a thread share its thread-locals. A value borrowed from
/// a plain `thread_local!` `RefCell` across a park (a sleep, a queue get, a
/// socket read) is still borrowed when another greenlet of the same thread
/// runs: that greenlet sees the half-updated value, or panics with
/// "already borrowed". A `Local`'s value belongs to one greenlet, so holding
/// a borrow across a park is safe.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// greenlet::local! {
///     static REQUEST_ID: Cell<u32> = Cell::new(0);
/// }
///
/// let gs: Vec<_> = (1..=3)
///     .map(|id| {
///         greenlet::spawn(move || {
///             REQUEST_ID.set(id);
///             greenlet::yield_now(); // the others set theirs meanwhile
///             REQUEST_ID.get()
///         })
///     })
///     .collect();
/// let seen: Vec<u32> = greenlet::joinall(gs).into_iter().map(Result::unwrap).collect();
/// assert_eq!(seen, [1, 2, 3]);
/// assert_eq!(REQUEST_ID.get(), 0); // the root's own value
/// ```
pub struct Local<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> Local<T> {
    /// A greenlet-local whose values start as `init()`. Store it in a
    /// `static`: the static's address is the key ([`local!`](crate::local!)
    /// does this for you).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use greenlet::Local;
    ///
    /// static NAMES: Local<RefCell<Vec<String>>> = Local::new(|| RefCell::new(Vec::new()));
    /// NAMES.with_borrow_mut(|v| v.push("root".into()));
    /// assert_eq!(NAMES.with_borrow(|v| v.len()), 1);
    /// ```
    pub const fn new(init: fn() -> T) -> Local<T> {
        Local { init }
    }

    /// Calls `f` with this greenlet's value (the thread's value in root
    /// context), creating it first if needed.
    ///
    /// # Panics
    /// Panics if called while the thread is exiting, after its hub was torn
    /// down (from another thread-local's destructor).
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! {
    ///     static GREETING: String = String::from("hello");
    /// }
    /// assert_eq!(GREETING.with(|s| s.len()), 5);
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let task = Hub::current().current_task();
        let value = task
            .cold()
            .locals
            .get_or_init(self.key(), || Rc::new((self.init)()));
        let value = value
            .downcast_ref::<T>()
            .expect("greenlet::Local: each key holds one type");
        f(value)
    }

    fn key(&'static self) -> usize {
        self as *const Local<T> as usize
    }
}

impl<T: 'static> Local<Cell<T>> {
    /// Sets this greenlet's value.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static N: std::cell::Cell<i32> = std::cell::Cell::new(0); }
    /// N.set(3);
    /// assert_eq!(N.get(), 3);
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value));
    }

    /// A copy of this greenlet's value.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static N: std::cell::Cell<i32> = std::cell::Cell::new(7); }
    /// assert_eq!(N.get(), 7);
    /// ```
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes this greenlet's value, leaving `T::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static N: std::cell::Cell<i32> = std::cell::Cell::new(7); }
    /// assert_eq!(N.take(), 7);
    /// assert_eq!(N.get(), 0);
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces this greenlet's value, returning the old one.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static N: std::cell::Cell<i32> = std::cell::Cell::new(1); }
    /// assert_eq!(N.replace(2), 1);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> Local<RefCell<T>> {
    /// Calls `f` with a shared borrow of this greenlet's value.
    ///
    /// # Panics
    /// Panics if this greenlet holds a mutable borrow of it.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static V: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1]); }
    /// assert_eq!(V.with_borrow(|v| v.len()), 1);
    /// ```
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|c| f(&c.borrow()))
    }

    /// Calls `f` with a mutable borrow of this greenlet's value.
    ///
    /// # Panics
    /// Panics if this greenlet holds another borrow of it.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static V: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![]); }
    /// V.with_borrow_mut(|v| v.push(1));
    /// assert_eq!(V.with_borrow(|v| v.clone()), [1]);
    /// ```
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|c| f(&mut c.borrow_mut()))
    }

    /// Sets this greenlet's value.
    ///
    /// # Panics
    /// Panics if this greenlet holds a borrow of it.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static S: std::cell::RefCell<String> = std::cell::RefCell::new(String::new()); }
    /// S.set("x".into());
    /// assert_eq!(S.take(), "x");
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| *c.borrow_mut() = value);
    }

    /// Takes this greenlet's value, leaving `T::default()`.
    ///
    /// # Panics
    /// Panics if this greenlet holds a borrow of it.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static S: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1]); }
    /// assert_eq!(S.take(), [1]);
    /// assert!(S.take().is_empty());
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces this greenlet's value, returning the old one.
    ///
    /// # Panics
    /// Panics if this greenlet holds a borrow of it.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::local! { static S: std::cell::RefCell<u8> = std::cell::RefCell::new(1); }
    /// assert_eq!(S.replace(2), 1);
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Local { .. }")
    }
}

/// Declares greenlet-local statics: each greenlet sees its own value (see
/// [`Local`]). The syntax is `thread_local!`'s.
///
/// # Examples
///
/// ```
/// use std::cell::{Cell, RefCell};
///
/// greenlet::local! {
///     /// Requests served by this greenlet.
///     pub static SERVED: Cell<u64> = Cell::new(0);
///     static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
/// }
///
/// let g = greenlet::spawn(|| {
///     SERVED.set(SERVED.get() + 1);
///     LOG.with_borrow_mut(|l| l.push("in greenlet".into()));
///     (SERVED.get(), LOG.with_borrow(|l| l.len()))
/// });
/// assert_eq!(g.join().unwrap(), (1, 1));
/// assert_eq!(SERVED.get(), 0); // the root's value is untouched
/// ```
#[macro_export]
macro_rules! local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::Local<$t> = $crate::Local::new(|| $init);
        $crate::local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])* $vis static $name: $crate::Local<$t> = $crate::Local::new(|| $init);
    };
}
