//! The tasks waiting on one direction of one registered fd.

use crate::hub::task::{Header, TaskRef};

/// The tasks waiting for one direction of one fd, in arrival order. Almost
/// always one or none: the first is held inline, so registering it
/// allocates nothing and waking it reads no second allocation (the event
/// loop touches the slot and the task, nothing in between); the rare
/// others go to a boxed list.
#[derive(Default)]
pub(super) struct WaitSet {
    /// The earliest waiter; `None` only when `rest` is empty too.
    first: Option<TaskRef>,
    // Boxed: one word instead of three in every slot of the reactor's
    // slab, for a list that is almost never there.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<TaskRef>>>,
}

impl WaitSet {
    pub(super) fn push(&mut self, t: TaskRef) {
        if self.first.is_none() {
            self.first = Some(t);
        } else {
            self.rest.get_or_insert_default().push(t);
        }
    }

    pub(super) fn contains(&self, task: *const Header) -> bool {
        self.first.as_ref().is_some_and(|t| t.as_ptr() == task)
            || self
                .rest
                .as_ref()
                .is_some_and(|r| r.iter().any(|t| t.as_ptr() == task))
    }

    /// Removes `task` if it is waiting, keeping the others in order.
    pub(super) fn remove(&mut self, task: *const Header) {
        if self.first.as_ref().is_some_and(|t| t.as_ptr() == task) {
            self.first = match &mut self.rest {
                Some(r) if !r.is_empty() => Some(r.remove(0)),
                _ => None,
            };
        } else if let Some(r) = &mut self.rest {
            r.retain(|t| t.as_ptr() != task);
        }
        if self.rest.as_ref().is_some_and(|r| r.is_empty()) {
            self.rest = None;
        }
    }

    /// How many tasks wait (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    /// Takes every waiter, in order, leaving the set empty.
    pub(super) fn take(&mut self) -> impl Iterator<Item = TaskRef> + use<> {
        let first = self.first.take();
        let rest = self.rest.take().map(|r| *r).unwrap_or_default();
        first.into_iter().chain(rest)
    }
}
