//! The hub's timers, ordered by (deadline, sequence).
//!
//! Every timer can be cancelled exactly (a `with_timeout` that finishes early
//! removes its action at once, dropping the task reference it held), so long
//! timeouts around short operations leave nothing behind. Equal deadlines
//! fire in insertion order.
//!
//! Most timers arrive in deadline order: a thousand greenlets sleeping the
//! same duration, or the same timeout around every request, each deadline
//! no earlier than the one before. Such timers go to the back of one of a
//! few *runs*, deques already sorted by construction: inserting one is a
//! push, firing one a pop, where an ordered map would walk and rebalance a
//! tree each time. A timer that fits behind no run goes to an ordered map.
//! The earliest timer is the first of the map or the front of a run.
//!
//! A cancelled timer in the middle of a run leaves a tombstone (its key,
//! no action) until the front reaches it or the run is compacted, which
//! happens once tombstones outnumber live timers: the memory stays within
//! twice what the live timers need.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::hub::task::{Header, TaskRef};

/// How many runs: enough for a few interleaved streams of equal durations
/// (sleeps of one length, timeouts of another), few enough to scan on
/// every pop.
const RUNS: usize = 4;

/// `TimerKey::tag` holds where the timer lives in its top bits: a run's
/// index, or [`IN_MAP`].
const LOC_SHIFT: u32 = 61;
const SEQ_MASK: u64 = (1 << LOC_SHIFT) - 1;
const IN_MAP: u64 = 7;

/// A run keeps at most this many entries of room once it empties, or once
/// no timer is left.
const KEEP_ROOM: usize = 256;

/// Identifies one armed timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    deadline: Instant,
    /// The insertion sequence number, with where the timer lives on top.
    tag: u64,
}

impl TimerKey {
    fn seq(&self) -> u64 {
        self.tag & SEQ_MASK
    }

    fn loc(&self) -> u64 {
        self.tag >> LOC_SHIFT
    }
}

/// Deadline first, then insertion order (where it lives plays no part).
impl Ord for TimerKey {
    fn cmp(&self, other: &TimerKey) -> Ordering {
        self.deadline
            .cmp(&other.deadline)
            .then(self.seq().cmp(&other.seq()))
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &TimerKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What an expired timer does.
pub(crate) enum TimerAction {
    /// Unpark the task with `Wake::TimedOut` (sleeps, timed waits).
    Wake(TaskRef),
    /// Expire the `with_timeout` scope `id` at nesting `depth` of the task.
    Timeout { task: TaskRef, depth: u32, id: u64 },
    /// Put a `spawn_later` task into the ready queue.
    Start(TaskRef),
}

/// Timers in (deadline, sequence) order; `None` marks a cancelled one.
///
/// # Invariant
/// The front entry, if any, is live; `live` counts the live entries.
struct Run<A> {
    q: VecDeque<(TimerKey, Option<A>)>,
    live: usize,
}

impl<A> Default for Run<A> {
    fn default() -> Self {
        Run {
            q: VecDeque::new(),
            live: 0,
        }
    }
}

impl<A> Run<A> {
    fn front_key(&self) -> Option<TimerKey> {
        self.q.front().map(|(k, _)| *k)
    }

    /// Drops the tombstones at the front (restores the invariant).
    fn settle(&mut self) {
        while matches!(self.q.front(), Some((_, None))) {
            self.q.pop_front();
        }
        if self.q.is_empty() && self.q.capacity() > KEEP_ROOM {
            self.q = VecDeque::new();
        }
    }

    fn find(&self, key: TimerKey) -> Option<usize> {
        self.q.binary_search_by(|(k, _)| k.cmp(&key)).ok()
    }

    fn remove(&mut self, key: TimerKey) -> Option<A> {
        let i = self.find(key)?;
        let action = self.q[i].1.take()?;
        self.live -= 1;
        if i == 0 {
            self.settle();
        } else if self.q.len() > 2 * self.live + 64 {
            self.q.retain(|(_, a)| a.is_some());
        }
        Some(action)
    }

    fn pop_front(&mut self) -> Option<A> {
        let (_, action) = self.q.pop_front()?;
        self.live -= 1;
        self.settle();
        action
    }
}

/// The timers, each with an action of type `A` (the hub's are
/// [`TimerAction`]s).
pub(crate) struct Timers<A = TimerAction> {
    runs: [Run<A>; RUNS],
    map: BTreeMap<TimerKey, A>,
    seq: u64,
    len: usize,
}

impl<A> Default for Timers<A> {
    fn default() -> Self {
        Timers {
            runs: std::array::from_fn(|_| Run::default()),
            map: BTreeMap::new(),
            seq: 0,
            len: 0,
        }
    }
}

impl<A> Timers<A> {
    pub(crate) fn insert(&mut self, deadline: Instant, action: A) -> TimerKey {
        self.seq += 1;
        let seq = self.seq & SEQ_MASK;
        // The run whose last deadline is the latest not after this one
        // (the tightest fit), else an empty run, else the map.
        let mut best: Option<(usize, Instant)> = None;
        let mut empty = None;
        for (i, r) in self.runs.iter().enumerate() {
            match r.q.back() {
                Some((k, _)) if k.deadline <= deadline => {
                    if best.is_none_or(|(_, d)| k.deadline > d) {
                        best = Some((i, k.deadline));
                    }
                }
                Some(_) => {}
                None => {
                    if empty.is_none() {
                        empty = Some(i);
                    }
                }
            }
        }
        self.len += 1;
        match best.map(|(i, _)| i).or(empty) {
            Some(i) => {
                let key = TimerKey {
                    deadline,
                    tag: (i as u64) << LOC_SHIFT | seq,
                };
                let run = &mut self.runs[i];
                run.q.push_back((key, Some(action)));
                run.live += 1;
                key
            }
            None => {
                let key = TimerKey {
                    deadline,
                    tag: IN_MAP << LOC_SHIFT | seq,
                };
                self.map.insert(key, action);
                key
            }
        }
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<A> {
        let action = match key.loc() {
            IN_MAP => self.map.remove(&key),
            i => self.runs[i as usize].remove(key),
        };
        if action.is_some() {
            self.len -= 1;
        }
        action
    }

    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        match key.loc() {
            IN_MAP => self.map.contains_key(&key),
            i => {
                let run = &self.runs[i as usize];
                run.find(key).is_some_and(|at| run.q[at].1.is_some())
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the earliest timer lives: a run's index or [`IN_MAP`], with
    /// its key.
    fn earliest(&self) -> Option<(u64, TimerKey)> {
        let mut min = self.map.first_key_value().map(|(k, _)| (IN_MAP, *k));
        for (i, r) in self.runs.iter().enumerate() {
            if let Some(k) = r.front_key() {
                if min.is_none_or(|(_, m)| k < m) {
                    min = Some((i as u64, k));
                }
            }
        }
        min
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.earliest().map(|(_, k)| k.deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<A> {
        let (loc, key) = self.earliest()?;
        if key.deadline > now {
            return None;
        }
        let action = match loc {
            IN_MAP => self.map.pop_first().map(|(_, a)| a),
            i => self.runs[i as usize].pop_front(),
        };
        debug_assert!(action.is_some(), "a run's front was a tombstone");
        self.len -= 1;
        action
    }

    /// Frees the structures' memory once no timer is left: an emptied
    /// `BTreeMap` keeps its last node, which a peak of timers may have left
    /// high in the heap, where it keeps the allocator from returning the
    /// memory below; an emptied run keeps its room.
    pub(crate) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.map = BTreeMap::new();
            for r in &mut self.runs {
                if r.q.capacity() > KEEP_ROOM {
                    *r = Run::default();
                }
            }
        }
    }

    /// The deadline of each task's timed park (for dumps: a scan, so the
    /// hot path stores no deadline in the task).
    /// Drops every timer (hub teardown).
    pub(crate) fn clear(&mut self) -> Vec<A> {
        let mut all: Vec<A> = std::mem::take(&mut self.map).into_values().collect();
        for r in &mut self.runs {
            all.extend(std::mem::take(r).q.into_iter().filter_map(|(_, a)| a));
        }
        self.len = 0;
        all
    }
}

impl Timers<TimerAction> {
    /// The deadline of each task's timed park (for dumps: a scan, so the
    /// hot path stores no deadline in the task).
    pub(crate) fn wake_deadlines(&self) -> HashMap<*const Header, Instant> {
        let in_runs = self
            .runs
            .iter()
            .flat_map(|r| r.q.iter().filter_map(|(k, a)| a.as_ref().map(|a| (k, a))));
        self.map
            .iter()
            .chain(in_runs)
            .filter_map(|(k, a)| match a {
                TimerAction::Wake(t) => Some((t.as_ptr(), k.deadline)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random inserts (in-order streams of several durations and out of
    /// order ones), cancellations and expiries, checked step by step
    /// against a plain ordered map.
    #[test]
    fn behaves_like_an_ordered_map() {
        let t0 = Instant::now();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut timers: Timers<u64> = Timers::default();
        let mut model: BTreeMap<(Instant, u64), u64> = BTreeMap::new();
        let mut keys: Vec<(TimerKey, Instant, u64)> = Vec::new();
        let mut now = t0;
        for step in 0..200_000u64 {
            match rng.next() % 10 {
                0..=4 => {
                    // Sleeps of a few fixed lengths (in order per length),
                    // or an arbitrary deadline.
                    let d = match rng.next() % 6 {
                        0 => Duration::from_millis(10),
                        1 => Duration::from_millis(100),
                        2 => Duration::from_secs(1),
                        3 => Duration::ZERO,
                        _ => Duration::from_micros(rng.next() % 2_000_000),
                    };
                    let deadline = now + d;
                    let k = timers.insert(deadline, step);
                    model.insert((deadline, step), step);
                    keys.push((k, deadline, step));
                }
                5..=6 if !keys.is_empty() => {
                    let i = (rng.next() % keys.len() as u64) as usize;
                    let (k, deadline, v) = keys.swap_remove(i);
                    let want = model.remove(&(deadline, v));
                    assert_eq!(timers.contains(k), want.is_some());
                    assert_eq!(timers.remove(k), want, "step {step}");
                    assert!(!timers.contains(k));
                    assert_eq!(timers.remove(k), None, "removed twice");
                }
                _ => {
                    now += Duration::from_micros(rng.next() % 20_000);
                    loop {
                        let want = match model.first_key_value() {
                            Some((&(d, _), _)) if d <= now => model.pop_first().map(|(_, v)| v),
                            _ => None,
                        };
                        let got = timers.pop_expired(now);
                        assert_eq!(got, want, "step {step}");
                        if got.is_none() {
                            break;
                        }
                    }
                }
            }
            assert_eq!(timers.is_empty(), model.is_empty());
            assert_eq!(
                timers.next_deadline(),
                model.first_key_value().map(|(&(d, _), _)| d)
            );
        }
        let mut rest = timers.clear();
        rest.sort_unstable();
        let mut want: Vec<u64> = model.into_values().collect();
        want.sort_unstable();
        assert_eq!(rest, want);
        assert!(timers.is_empty());
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order() {
        let mut timers: Timers<u32> = Timers::default();
        let d = Instant::now() + Duration::from_secs(1);
        let early = d - Duration::from_millis(5);
        for i in 0..1000 {
            timers.insert(d, i);
        }
        // Out of order: goes elsewhere, still fires first.
        timers.insert(early, 5000);
        for i in 1000..1100 {
            timers.insert(d, i);
        }
        assert_eq!(timers.pop_expired(early - Duration::from_nanos(1)), None);
        assert_eq!(timers.pop_expired(d), Some(5000));
        for i in 0..1100 {
            assert_eq!(timers.pop_expired(d), Some(i));
        }
        assert!(timers.is_empty());
    }

    #[test]
    fn cancelled_timers_leave_bounded_room() {
        // A long timeout around each of many short operations, each
        // cancelled when its operation finishes: the first stays armed.
        let t0 = Instant::now();
        let mut timers: Timers<u32> = Timers::default();
        let first = timers.insert(t0 + Duration::from_secs(10), 0);
        for i in 1..100_000u32 {
            let k = timers.insert(
                t0 + Duration::from_secs(10) + Duration::from_nanos(i.into()),
                i,
            );
            assert_eq!(timers.remove(k), Some(i));
        }
        let held: usize = timers.runs.iter().map(|r| r.q.len()).sum();
        assert!(held <= 2 + 64, "{held} entries held for 1 live timer");
        assert!(timers.contains(first));
        assert_eq!(timers.remove(first), Some(0));
        assert!(timers.is_empty());
        timers.release_if_empty();
        assert!(timers.runs.iter().all(|r| r.q.capacity() <= KEEP_ROOM));
        assert!(timers.map.is_empty());
    }
}
