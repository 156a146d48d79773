//! `Barrier`: a rendezvous point for a fixed number of waiters.

use std::fmt;

use super::lock::Lock;
use super::wait_queue::{WaitList, WaitSite, Waited, wait};
use crate::hub::SyncKind;

/// Lets `n` greenlets (or threads, in any mix of hubs) wait until all of
/// them have arrived (std's `Barrier`). Reusable: once `n` have arrived
/// they all go on, and the next `n` form a new round.
///
/// A waiter that is killed (or unwound by
/// [`with_timeout`](crate::with_timeout)) before its round completes leaves
/// it: the round then needs one more arrival. So does one whose thread
/// exits while it waits (its hub cancels the wait at teardown): a round
/// always completes with `n` live arrivals.
///
/// # Waiting protocol
///
/// Under the internal lock an arrival counts itself; the `n`-th starts a
/// new round and notifies every registered waiter; the others register at
/// the back of the waiter list and park. See [the module docs](crate::sync).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use greenlet::sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let gs: Vec<_> = (0..3)
///     .map(|_| {
///         let barrier = barrier.clone();
///         greenlet::spawn(move || barrier.wait().is_leader())
///     })
///     .collect();
/// let leaders = greenlet::joinall(gs).into_iter().filter(|r| *r.as_ref().unwrap()).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    n: usize,
    state: Lock<State>,
}

struct State {
    arrived: usize,
    round: u64,
    /// Each node holds its waiter's round.
    waiters: WaitList<u64>,
}

fn waiters(s: &mut State) -> &mut WaitList<u64> {
    &mut s.waiters
}

/// The `abandon` hook. The list passes withdrawn waiters on, so this runs
/// for a waiter its hub cancelled at thread exit (where [`Leave`] never
/// runs), still queued or already released: in the first case its round
/// is still the current one, and it leaves it as `Leave` does.
fn withdraw(s: &mut State, round: u64) -> Option<u64> {
    if s.round == round {
        s.arrived -= 1;
    }
    None
}

/// Leaves the round if the wait unwinds before the round completed.
struct Leave<'a> {
    barrier: &'a Barrier,
    round: u64,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut s = self.barrier.state.lock();
        if s.round == self.round {
            s.arrived -= 1;
        }
    }
}

impl Barrier {
    /// A barrier for `n` waiters (`n` of 0 or 1: every wait returns at
    /// once, as the leader).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = greenlet::sync::Barrier::new(1);
    /// assert!(b.wait().is_leader());
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            state: Lock::new(State {
                arrived: 0,
                round: 0,
                waiters: WaitList::passing_on_withdrawn(),
            }),
        }
    }

    /// Parks until `n` waiters have called `wait` in this round. Exactly
    /// one of them, the last to arrive, gets a result whose
    /// [`is_leader`](BarrierWaitResult::is_leader) is `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenlet::sync::Barrier;
    ///
    /// let b = Arc::new(Barrier::new(2));
    /// let t = std::thread::spawn({
    ///     let b = b.clone();
    ///     move || b.wait().is_leader() // a plain thread takes part too
    /// });
    /// let here = b.wait().is_leader();
    /// assert!(here ^ t.join().unwrap());
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut s = self.state.lock();
        s.arrived += 1;
        if s.arrived >= self.n {
            s.arrived = 0;
            s.round += 1;
            s.waiters.notify_all();
            return BarrierWaitResult(true);
        }
        let round = s.round;
        let leave = Leave {
            barrier: self,
            round,
        };
        // Untimed: this returns only once the round is complete.
        let _: Waited<u64> = wait(
            &self.state,
            s,
            waiters,
            Some(round),
            None,
            withdraw,
            WaitSite::of(SyncKind::Barrier),
        );
        std::mem::forget(leave);
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after (see `Queue`'s `Debug`).
        let arrived = self.state.lock().arrived;
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &arrived)
            .finish()
    }
}

/// What [`Barrier::wait`] returns: whether this waiter was the leader.
///
/// # Examples
///
/// ```
/// let r = greenlet::sync::Barrier::new(0).wait();
/// assert!(r.is_leader());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this waiter completed the round (exactly one per round).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(greenlet::sync::Barrier::new(1).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}
