//! [`Group`]: a [`Pool`] without a bound (gevent's `gevent.pool.Group`).

use std::fmt;
use std::ops::Deref;

use super::Pool;

/// A [`Pool`] without a bound: every spawn starts at once (gevent's
/// `gevent.pool.Group`). Derefs to [`Pool`] for `spawn`, `map`,
/// `imap_unordered`, `join`, `kill` and the rest.
///
/// # Examples
///
/// ```
/// use greenlet::pool::Group;
///
/// let group = Group::new();
/// let gs: Vec<_> = (0..3).map(|i| group.spawn(move || i)).collect();
/// group.join();
/// let got: Vec<i32> = greenlet::joinall(gs).into_iter().map(Result::unwrap).collect();
/// assert_eq!(got, [0, 1, 2]);
/// ```
#[derive(Clone)]
pub struct Group(Pool);

impl Group {
    /// An empty group.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = greenlet::pool::Group::new();
    /// assert!(group.is_empty());
    /// ```
    pub fn new() -> Group {
        Group(Pool::with_slots(None, usize::MAX))
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Deref for Group {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("members", &self.len())
            .finish()
    }
}
