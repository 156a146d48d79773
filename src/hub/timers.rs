//! The hub's timers: an ordered map from (deadline, sequence) to what to do.
//!
//! Every timer can be cancelled exactly (a `with_timeout` that finishes early
//! removes its entry), so long timeouts around short operations leave nothing
//! behind. Equal deadlines fire in insertion order.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::hub::task::{Header, TaskRef};

/// Identifies one armed timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: Instant,
    seq: u64,
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

#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, TimerAction>,
    seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, deadline: Instant, action: TimerAction) -> TimerKey {
        self.seq += 1;
        let key = TimerKey {
            deadline,
            seq: self.seq,
        };
        self.map.insert(key, action);
        key
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<TimerAction> {
        self.map.remove(&key)
    }

    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.map.contains_key(&key)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(k, _)| k.deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerAction> {
        match self.map.first_entry() {
            Some(e) if e.key().deadline <= now => Some(e.remove()),
            _ => None,
        }
    }

    /// Frees the map's nodes once it is empty: an emptied `BTreeMap` keeps
    /// its last node, which a peak of timers may have left high in the
    /// heap, where it keeps the allocator from returning the memory below.
    pub(crate) fn release_if_empty(&mut self) {
        if self.map.is_empty() {
            self.map = BTreeMap::new();
        }
    }

    /// The deadline of each task's timed park (for dumps: a scan, so the
    /// hot path stores no deadline in the task).
    pub(crate) fn wake_deadlines(&self) -> HashMap<*const Header, Instant> {
        self.map
            .iter()
            .filter_map(|(k, a)| match a {
                TimerAction::Wake(t) => Some((t.as_ptr(), k.deadline)),
                _ => None,
            })
            .collect()
    }

    /// Drops every timer (hub teardown).
    pub(crate) fn clear(&mut self) -> Vec<TimerAction> {
        std::mem::take(&mut self.map).into_values().collect()
    }
}
