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

/// An operation [`Waitable::start`] could not complete at once.
///
/// It is not registered with its primitive: [`poll`](PendingOp::poll)
/// tries it again. The select machinery ([`Select`](crate::select::Select),
/// [`wait`](crate::select::wait), [`iwait`](crate::select::iwait)) also
/// registers the built-in operations for the time it parks, and withdraws
/// them before it returns or unwinds, so a `Pending` kept, dropped or
/// leaked (`mem::forget`) by its caller leaves nothing behind in the
/// primitive. Wrap a built-in operation with [`Pending::map`] (or
/// [`Attempt::map`]): an operation of your own is polled after every
/// wake-up of the select it is part of, but nothing registers it to wake
/// that select.
pub trait PendingOp<T> {
    /// The output, if the operation can complete now (or completed while
    /// the select waited). Called after every wake-up of the waiting
    /// greenlet; returns `Some` at most once.
    fn poll(&mut self) -> Option<T>;

    /// For the select machinery only (the token cannot be made outside
    /// this crate): registers the operation to wake the running task, or
    /// returns `true`, registering nothing, if it can complete at once.
    #[doc(hidden)]
    fn arm(&mut self, _: ArmToken) -> bool {
        false
    }

    /// For the select machinery only: withdraws a registration made by
    /// [`arm`](PendingOp::arm), giving back anything it was handed.
    #[doc(hidden)]
    fn disarm(&mut self, _: ArmToken) {}
}

/// The proof that the caller of [`PendingOp::arm`] is the select
/// machinery, which withdraws the registration before its frame is left.
/// Not constructible outside this crate.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct ArmToken(());

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
            fn arm(&mut self, token: ArmToken) -> bool {
                self.inner.op.arm(token)
            }
            fn disarm(&mut self, token: ArmToken) {
                self.inner.op.disarm(token);
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

    /// Registers the operation for the running task until
    /// [`disarm`](Pending::disarm); `true` (nothing registered) if it can
    /// complete at once. The caller must disarm before the frame that
    /// holds this `Pending` can be left, unwinding included: a registration
    /// borrows the primitive and names the task, so it must not outlive
    /// that frame (see `crate::select`'s `Multi`).
    pub(crate) fn arm(&mut self) -> bool {
        self.op.arm(ArmToken(()))
    }

    /// Withdraws the registration made by [`arm`](Pending::arm), if any.
    pub(crate) fn disarm(&mut self) {
        self.op.disarm(ArmToken(()));
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
