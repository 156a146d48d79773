//! Task accounting (gevent's `JoinableQueue`): `task_done`, `join`,
//! `unfinished_tasks`.

use super::super::wait_queue::{WaitSite, drop_payload, wait};
use super::{Queue, joiners};
use crate::hub::SyncKind;
use std::sync::Arc;

impl<T> Queue<T> {
    /// Items put and not yet marked done with
    /// [`task_done`](Queue::task_done) (gevent's `unfinished_tasks`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// q.get().unwrap();
    /// q.task_done();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.state().unfinished
    }

    /// Marks one item taken from the queue as processed (gevent's
    /// `JoinableQueue.task_done`); when every item put so far is done,
    /// [`join`](Queue::join)ers wake.
    ///
    /// # Panics
    /// Panics if called more times than items were put.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = greenlet::sync::Queue::new();
    /// q.put("job").unwrap();
    /// let job = q.get().unwrap();
    /// // ... process `job` ...
    /// q.task_done();
    /// q.join(); // returns at once: nothing is unfinished
    /// # let _ = job;
    /// ```
    pub fn task_done(&self) {
        let mut s = self.state();
        assert!(
            s.unfinished > 0,
            "Queue::task_done called more times than items were put"
        );
        s.unfinished -= 1;
        if s.unfinished == 0 {
            s.joiners.notify_all();
        }
    }

    /// Parks until every item put so far has been marked done with
    /// [`task_done`](Queue::task_done) (gevent's `JoinableQueue.join`).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::sync::Queue;
    ///
    /// let q = Queue::new();
    /// let worker = greenlet::spawn({
    ///     let q = q.clone();
    ///     move || {
    ///         for _job in q.iter() {
    ///             greenlet::sleep(std::time::Duration::from_millis(1));
    ///             q.task_done();
    ///         }
    ///     }
    /// });
    /// for i in 0..5 {
    ///     q.put(i).unwrap();
    /// }
    /// q.join(); // all five processed
    /// assert!(q.is_empty());
    /// q.close();
    /// worker.join().unwrap();
    /// ```
    pub fn join(&self) {
        let s = self.state();
        if s.unfinished == 0 {
            return;
        }
        let _ = wait(
            &self.inner,
            s,
            joiners,
            None,
            None,
            drop_payload,
            WaitSite::sole(SyncKind::QueueJoin, &|| Arc::strong_count(&self.inner) == 1),
        );
    }
}
