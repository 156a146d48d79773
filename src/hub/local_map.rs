//! The storage behind `greenlet::Local`: each task's greenlet-local
//! values (the API is in `crate::local`).

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

/// A task's greenlet-local values, keyed by the address of their `Local`.
/// Few per task, so a short vector beats a map.
#[derive(Default)]
pub(crate) struct LocalMap {
    values: RefCell<Vec<(usize, Rc<dyn Any>)>>,
}

impl LocalMap {
    /// The value under `key`, made by `init` (with no borrow held, so it
    /// may use other locals) if there is none yet.
    pub(crate) fn get_or_init(
        &self,
        key: usize,
        init: impl FnOnce() -> Rc<dyn Any>,
    ) -> Rc<dyn Any> {
        if let Some(v) = self.find(key) {
            return v;
        }
        let v = init();
        // `init` may have created this very key (re-entrantly): keep the
        // first value.
        if let Some(existing) = self.find(key) {
            return existing;
        }
        self.values.borrow_mut().push((key, v.clone()));
        v
    }

    pub(crate) fn find(&self, key: usize) -> Option<Rc<dyn Any>> {
        self.values
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    /// Drops every value. A destructor that touches a local creates a
    /// fresh value, dropped in the next round.
    pub(crate) fn clear(&self) {
        loop {
            let values = std::mem::take(&mut *self.values.borrow_mut());
            if values.is_empty() {
                return;
            }
            drop(values);
        }
    }
}
