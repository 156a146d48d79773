//! Link callbacks: code that runs when a greenlet finishes (gevent's
//! `link`, `link_value`, `link_exception`).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::lifecycle::KILLED;
use super::{Greenlet, JoinError};
use crate::hub::task::{Header, ResultSlot, Watcher};

impl<T: 'static> Greenlet<T> {
    /// Runs `f` with the greenlet's result when it finishes (gevent's
    /// `link`). Callbacks run in the order they were linked, on the hub,
    /// right after the greenlet finishes and before the greenlets waiting
    /// for it resume; for a greenlet that has finished already (or that is
    /// killed before it started), `f` runs at once, in the caller.
    ///
    /// Like gevent's, a callback that runs on the hub must not block: a
    /// blocking call there panics ("a blocking call was made from inside the
    /// hub loop"). Spawn a greenlet from the callback for blocking work. A
    /// panic in a callback is reported by the panic hook and otherwise
    /// ignored: the other callbacks and the hub go on. Joining the greenlet
    /// from its own callback panics (the callback holds a reference to the
    /// result).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let g = greenlet::spawn(|| 7);
    /// for name in ["first", "second"] {
    ///     let log = log.clone();
    ///     g.link(move |r| log.borrow_mut().push(format!("{name}: {:?}", r.ok())));
    /// }
    /// assert_eq!(g.join().unwrap(), 7);
    /// assert_eq!(*log.borrow(), ["first: Some(7)", "second: Some(7)"]);
    /// ```
    pub fn link(&self, f: impl FnOnce(Result<&T, &JoinError>) + 'static) {
        let hdr: *const Header = self.task.as_ptr();
        let slot: *const ResultSlot<T> = self.slot;
        let call = move || {
            // SAFETY: this runs from the task's `notify_watchers` (the task
            // is alive: it is a method of its header) or from `link` below
            // (the handle keeps it alive), in both cases once the task has
            // finished, so nobody writes the slot; `join`, the only code
            // that moves the result out, refuses while `links_running` is
            // raised, so the reference stays valid while `f` runs.
            let (hdr, result) = unsafe { (&*hdr, &*(*slot).get()) };
            let links = &hdr.cold().links_running;
            links.set(links.get() + 1);
            struct Lower<'a>(&'a Cell<u32>);
            impl Drop for Lower<'_> {
                fn drop(&mut self) {
                    self.0.set(self.0.get() - 1);
                }
            }
            let _lower = Lower(links);
            let r = match result {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(e),
                None => Err(&KILLED),
            };
            let _ = catch_unwind(AssertUnwindSafe(|| f(r)));
        };
        if self.is_finished() {
            call();
        } else {
            self.task.watch(Watcher::Call(Box::new(call)));
        }
    }

    /// Runs `f` with the greenlet's value if it returns one (gevent's
    /// `link_value`); not if it panics or is killed. See
    /// [`link`](Greenlet::link).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let seen = Rc::new(Cell::new(0));
    /// let g = greenlet::spawn(|| 5);
    /// let s = seen.clone();
    /// g.link_value(move |v| s.set(*v));
    /// g.join().unwrap();
    /// assert_eq!(seen.get(), 5);
    /// ```
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static) {
        self.link(move |r| {
            if let Ok(v) = r {
                f(v);
            }
        });
    }

    /// Runs `f` with the greenlet's [`JoinError`] if it panics or is killed
    /// (gevent's `link_exception`). See [`link`](Greenlet::link).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let seen = Rc::new(RefCell::new(None));
    /// let g = greenlet::spawn(|| -> u8 { panic!("bad") });
    /// let s = seen.clone();
    /// g.link_exception(move |e| *s.borrow_mut() = e.panic_message().map(String::from));
    /// assert!(g.join().is_err());
    /// assert_eq!(seen.borrow().as_deref(), Some("bad"));
    /// ```
    pub fn link_exception(&self, f: impl FnOnce(&JoinError) + 'static) {
        self.link(move |r| {
            if let Err(e) = r {
                f(e);
            }
        });
    }
}
