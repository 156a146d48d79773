//! Every greenlet of a hub that has not finished (unstarted, ready,
//! running or parked), so dumps and deadlock reports can find them: a slab
//! of task references whose index each task keeps in its header. Insertion
//! and removal are O(1) and touch only the slab.

use super::task::{Header, TaskRef};

#[derive(Default)]
pub(crate) struct TaskTable {
    slots: Vec<Option<TaskRef>>,
    free: Vec<u32>,
}

impl TaskTable {
    /// Adds a task that has just been spawned.
    pub(crate) fn insert(&mut self, task: &TaskRef) {
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(task.clone());
                i
            }
            None => {
                self.slots.push(Some(task.clone()));
                (self.slots.len() - 1) as u32
            }
        };
        task.slot_index.set(index);
    }

    /// Removes a task that finished; a task not in the table is ignored.
    /// Returns the table's reference (drop it after borrowing ends).
    pub(crate) fn remove(&mut self, hdr: &Header) -> Option<TaskRef> {
        let i = hdr.slot_index.replace(u32::MAX);
        if i == u32::MAX {
            return None;
        }
        self.free.push(i);
        self.slots.get_mut(i as usize).and_then(Option::take)
    }

    /// The task in slot `index` if it has id `id`.
    pub(crate) fn get(&self, index: u32, id: u64) -> Option<&TaskRef> {
        match self.slots.get(index as usize) {
            Some(Some(t)) if t.id == id => Some(t),
            _ => None,
        }
    }

    /// The tasks, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TaskRef> {
        self.slots.iter().flatten()
    }

    /// Takes every task out (hub teardown).
    pub(crate) fn take_all(&mut self) -> Vec<Option<TaskRef>> {
        self.free.clear();
        std::mem::take(&mut self.slots)
    }
}
