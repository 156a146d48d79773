//! The [`Waitable`] trait: what [`crate::select`] waits on. It lives here,
//! below the primitives that implement it; `select` re-exports it.

use std::fmt;

/// Something a greenlet can wait for, as one arm of a
/// [`Select`](crate::select::Select) or one object of
/// [`wait`](crate::select::wait)/[`iwait`](crate::select::iwait).
///
/// [`start`](Waitable::start) either completes the operation at once
/// ([`Attempt::Ready`]) or registers the calling greenlet to be woken when
/// it may complete ([`Attempt::Pending`]); the pending operation is then
/// [`poll`](PendingOp::poll)ed after every wake-up and dropped when the wait
/// ends without it, which must give back anything it was handed.
///
/// Implement it for your own types by delegating to a built-in waitable
/// and mapping its output:
///
/// ```
/// use greenlet::select::{Attempt, Select, Waitable};
/// use greenlet::sync::Queue;
///
/// /// A mailbox whose messages are numbered.
/// struct Mailbox(Queue<String>);
///
/// impl Waitable for Mailbox {
///     type Output = String;
///     fn start(&self) -> Attempt<'_, String> {
///         self.0.start().map(|r| r.expect("the mailbox never closes"))
///     }
/// }
///
/// let m = Mailbox(Queue::new());
/// m.0.put("hi".to_string()).unwrap();
/// let got = Select::new().on(&m, |s| s).wait();
/// assert_eq!(got, "hi");
/// ```
pub trait Waitable {
    /// What the operation yields when it completes.
    type Output;

    /// Completes at once, or registers the calling greenlet to be woken.
    fn start(&self) -> Attempt<'_, Self::Output>;
}

/// A reference waits for what it refers to (so `select.on(&queue, ..)`
/// works).
impl<W: Waitable + ?Sized> Waitable for &W {
    type Output = W::Output;

    fn start(&self) -> Attempt<'_, W::Output> {
        (**self).start()
    }
}

/// The result of [`Waitable::start`].
pub enum Attempt<'a, T> {
    /// Completed at once.
    Ready(T),
    /// Registered: completes later (or is withdrawn when dropped).
    Pending(Pending<'a, T>),
}

impl<'a, T: 'a> Attempt<'a, T> {
    /// Maps the output, now or when it completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::{Attempt, Waitable};
    /// let e = greenlet::sync::Event::new();
    /// e.set();
    /// assert!(matches!(e.start().map(|()| 5), Attempt::Ready(5)));
    /// ```
    pub fn map<U: 'a>(self, f: impl FnOnce(T) -> U + 'a) -> Attempt<'a, U> {
        match self {
            Attempt::Ready(v) => Attempt::Ready(f(v)),
            Attempt::Pending(p) => Attempt::Pending(p.map(f)),
        }
    }
}

/// An operation registered by [`Waitable::start`] that has not completed.
pub trait PendingOp<T> {
    /// The output, if the operation completed since it was registered (or
    /// last polled). Called after every wake-up of the waiting greenlet;
    /// returns `Some` at most once. Dropping an operation that did not
    /// complete withdraws it and gives back anything it was handed.
    fn poll(&mut self) -> Option<T>;
}

/// A boxed [`PendingOp`].
pub struct Pending<'a, T> {
    op: Box<dyn PendingOp<T> + 'a>,
}

impl<'a, T: 'a> Pending<'a, T> {
    /// Wraps an operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::{Pending, PendingOp};
    /// struct Never;
    /// impl PendingOp<()> for Never {
    ///     fn poll(&mut self) -> Option<()> { None }
    /// }
    /// let mut p = Pending::new(Never);
    /// assert!(p.poll().is_none());
    /// ```
    pub fn new(op: impl PendingOp<T> + 'a) -> Pending<'a, T> {
        Pending { op: Box::new(op) }
    }

    /// Maps the output when it completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::{Pending, PendingOp};
    /// struct Now(Option<u8>);
    /// impl PendingOp<u8> for Now {
    ///     fn poll(&mut self) -> Option<u8> { self.0.take() }
    /// }
    /// let mut p = Pending::new(Now(Some(2))).map(|x| x * 10);
    /// assert_eq!(p.poll(), Some(20));
    /// ```
    pub fn map<U: 'a>(self, f: impl FnOnce(T) -> U + 'a) -> Pending<'a, U> {
        struct Map<'a, T, F> {
            inner: Pending<'a, T>,
            f: Option<F>,
        }
        impl<'a, T: 'a, U, F: FnOnce(T) -> U> PendingOp<U> for Map<'a, T, F> {
            fn poll(&mut self) -> Option<U> {
                let v = self.inner.poll()?;
                Some((self.f.take().expect("polled after completion"))(v))
            }
        }
        Pending::new(Map {
            inner: self,
            f: Some(f),
        })
    }

    /// See [`PendingOp::poll`].
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::select::{Attempt, Waitable};
    /// let e = greenlet::sync::Event::new();
    /// let Attempt::Pending(mut p) = e.start() else { unreachable!() };
    /// assert!(p.poll().is_none());
    /// e.set();
    /// assert!(p.poll().is_some());
    /// ```
    pub fn poll(&mut self) -> Option<T> {
        self.op.poll()
    }
}

impl<T> fmt::Debug for Pending<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending(..)")
    }
}

impl<T: fmt::Debug> fmt::Debug for Attempt<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Ready(v) => f.debug_tuple("Ready").field(v).finish(),
            Attempt::Pending(p) => p.fmt(f),
        }
    }
}
