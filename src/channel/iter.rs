//! Iterating over a [`Receiver`]: blocking, non-blocking and owning.

use super::Receiver;

/// The iterator of [`Receiver::iter`]: receives until every sender is gone.
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// tx.send('x').unwrap();
/// drop(tx);
/// for c in &rx {
///     assert_eq!(c, 'x');
/// }
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    pub(super) rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The iterator of [`Receiver::try_iter`]: the messages buffered now.
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_iter().count(), 1);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    pub(super) rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The owning iterator of a [`Receiver`]: receives until every sender is
/// gone.
///
/// # Examples
///
/// ```
/// let (tx, rx) = greenlet::channel::channel();
/// tx.send(3).unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<Vec<_>>(), [3]);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
