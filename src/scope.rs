//! Scoped greenlets: [`scope`], modelled on `std::thread::scope`.
//!
//! # Why it is sound
//!
//! A member's closure may borrow from the caller's stack, so its task is
//! spawned with the closure's lifetime erased to `'static`. That is sound
//! only because [`scope`] does not return, by value or by unwinding, until
//! every member has finished: a finished task has run its closure to the end
//! or dropped it unstarted, and nothing of it that can name a borrow
//! survives (its result goes to a slot the handle owns; a panic payload is
//! `'static`).
//!
//! The wait for the members at the end of the scope must complete, so it is
//! made without delivering kills or timeouts to the owner (a raw park): a
//! kill of the owner arriving then is seen as a pending interrupt, the
//! members are killed, and the wait goes on until they are dead. The kill
//! stays pending (kills are level-triggered) and takes effect at the owner's
//! next park after the scope. If the body unwinds (a panic, a kill, an
//! expired `with_timeout`), the members are killed and joined first, and
//! the unwind then continues. Killing an unstarted member drops its closure
//! on the owner's stack, which runs user code that may unwind (a panic in a
//! destructor, or a kill of the owner delivered at a park in one): that
//! unwind is caught, and raised once the members are dead. Nothing the user
//! can forget or leak ends the wait early: the scope owns its member list.
//!
//! In root context the raw park runs the hub loop, which may report that
//! nothing can ever end the wait ("would block forever"). The members are
//! then killed and the wait goes on; if the loop reports it again (a
//! member's destructor waits for something nobody can give it), or the
//! scope was entered from inside the hub loop, where it cannot wait at all,
//! returning would free what the members borrow while they are still
//! alive, so the process aborts with a message.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use crate::greenlet::{
    Greenlet, GreenletId, JoinError, Unwatch, default_stack_size, kill_task, kill_task_nowait,
    wait_finished,
};
use crate::hub::task::{TaskRef, Watcher};
use crate::hub::{self, Hub};

/// Runs `f` with a [`Scope`] whose greenlets may borrow from the caller's
/// stack, and returns once every greenlet spawned in it has finished
/// (`std::thread::scope` for greenlets).
///
/// Greenlets spawned with [`Scope::spawn`] run concurrently with `f` and
/// with each other, on this thread's hub. When `f` returns, `scope` waits
/// for those not joined yet. If `f` unwinds (it panicked, or the caller was
/// killed or its [`with_timeout`](crate::with_timeout) expired), the members
/// still running are killed and joined, and then the unwind goes on. If
/// the caller is killed (or its timeout expires) while `scope` waits for the
/// members, they are killed too; the caller's kill then takes effect at its
/// next park after `scope` returns.
///
/// # Panics
/// If a member panicked and its handle was not joined, `scope` panics once
/// every member has finished (as `std::thread::scope` does). Panics if no
/// stack can be had for a member.
///
/// # Aborts
/// If the members can never finish and the scope cannot wait for them
/// (see the module docs: a root wait that nothing can end even after the
/// members were killed, or a scope entered from inside the hub loop), the
/// process aborts: returning would free data the members still borrow.
///
/// # Examples
///
/// ```
/// let mut total = 0;
/// let words = vec!["a", "bb", "ccc"];
/// greenlet::scope(|s| {
///     let lens = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>());
///     s.spawn(|| assert_eq!(words.len(), 3)); // joined by the scope
///     total = lens.join().unwrap();
/// });
/// assert_eq!(total, 6);
/// assert_eq!(words.len(), 3); // borrowed, not moved
/// ```
///
/// The borrow rules are those of `std::thread::scope`. A member cannot
/// borrow what the scope's body owns:
///
/// ```compile_fail,E0373
/// greenlet::scope(|s| {
///     let local = 5;
///     s.spawn(|| local + 1); // error: `local` does not live long enough
/// });
/// ```
///
/// Two members cannot borrow the same data mutably:
///
/// ```compile_fail,E0499
/// let mut v = vec![1];
/// greenlet::scope(|s| {
///     s.spawn(|| v.push(2));
///     s.spawn(|| v.push(3)); // error: cannot borrow `v` as mutable twice
/// });
/// ```
///
/// A member's handle cannot leave the scope:
///
/// ```compile_fail,E0521
/// let mut escaped = None;
/// greenlet::scope(|s| {
///     escaped = Some(s.spawn(|| 1)); // error: borrowed data escapes
/// });
/// ```
///
/// And the data cannot be touched while a member may still use it:
///
/// ```compile_fail,E0503
/// let mut n = 0;
/// greenlet::scope(|s| {
///     s.spawn(|| n += 1);
///     n += 1; // error: cannot use `n` because it was mutably borrowed
/// });
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        members: RefCell::new(Vec::new()),
        _scope: PhantomData,
        _env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let loop_panic = scope.wait_all(result.is_err());
    let unjoined_panic = scope.members.borrow().iter().any(|m| {
        m.as_ref().is_some_and(|g| {
            g.result()
                .is_some_and(|r| r.is_err_and(JoinError::is_panic))
        })
    });
    match (result, loop_panic) {
        (Err(payload), _) | (Ok(_), Some(payload)) => hub::resume_unwind_marked(payload),
        (Ok(_), None) if unjoined_panic => panic!("greenlet::scope: a scoped greenlet panicked"),
        (Ok(v), None) => v,
    }
}

/// The scope of [`scope`]: spawns greenlets that may borrow data that
/// outlives it. Members run on the scope's thread: the scope cannot be
/// shared with another thread.
///
/// ```compile_fail,E0277
/// greenlet::scope(|s| {
///     std::thread::scope(|t| {
///         t.spawn(|| s.spawn(|| ())); // error: `Scope` is not `Sync`
///     });
/// });
/// ```
///
/// # Examples
///
/// ```
/// let data = [1, 2, 3];
/// greenlet::scope(|s| {
///     for x in &data {
///         s.spawn(move || assert!(*x > 0));
///     }
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    /// Every member's handle, until its scoped handle joins it.
    members: RefCell<Vec<Option<Greenlet<()>>>>,
    /// Invariant in `'scope`, like std's.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a greenlet in the scope; it may borrow anything that
    /// outlives the scope. It starts when the hub next gets control.
    ///
    /// # Panics
    /// Panics if no stack can be had (see [`Builder::spawn`](crate::Builder::spawn)).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = String::from("world");
    /// let greeting = greenlet::scope(|s| s.spawn(|| format!("hello {name}")).join().unwrap());
    /// assert_eq!(greeting, "hello world");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedGreenlet<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        self.spawn_with(None, default_stack_size(), f)
            .unwrap_or_else(|e| panic!("greenlet::Scope::spawn: cannot spawn a greenlet: {e}"))
    }

    /// [`Scope::spawn`] with a name and a stack size (normalized) from a
    /// [`Builder`](crate::Builder); see [`Builder::spawn_scoped`](crate::Builder::spawn_scoped).
    #[track_caller]
    pub(crate) fn spawn_with<F, T>(
        &'scope self,
        name: Option<Box<str>>,
        stack_size: usize,
        f: F,
    ) -> std::io::Result<ScopedGreenlet<'scope, T>>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let value: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let out = value.clone();
        let main: Box<dyn FnOnce() + 'scope> = Box::new(move || {
            let v = f();
            *out.borrow_mut() = Some(v);
        });
        // SAFETY: only the lifetime changes. The task runs `main` (or drops
        // it unstarted) before it finishes, and `scope` does not return,
        // neither normally nor by unwinding, before every member task has
        // finished (see the module docs), so nothing `main` borrows is used
        // after `'scope`.
        let main: Box<dyn FnOnce() + 'static> = unsafe {
            std::mem::transmute::<Box<dyn FnOnce() + 'scope>, Box<dyn FnOnce() + 'static>>(main)
        };
        let parts =
            Hub::current().spawn(main, name, stack_size, None, std::panic::Location::caller())?;
        let g = Greenlet::from_parts(parts);
        let task = g.task().clone();
        let mut members = self.members.borrow_mut();
        members.push(Some(g));
        Ok(ScopedGreenlet {
            members: &self.members,
            index: members.len() - 1,
            task,
            value,
        })
    }

    /// Waits until every member has finished; kills them once `kill` is
    /// set or the caller gets a kill or an expired timeout. Never unwinds
    /// before they are all finished (see the module docs). Returns the
    /// loop's report if the root's wait could never have ended (after the
    /// members were killed), or else the first unwind out of an unstarted
    /// member's closure dropped by a kill here, to be raised once they are
    /// dead.
    fn wait_all(&self, mut kill: bool) -> Option<Box<dyn std::any::Any + Send>> {
        let hub = Hub::current();
        let me = hub.current_task();
        let mut loop_panic = None;
        // The first unwind out of an unstarted member's dropped closure.
        let mut drop_unwind = None;
        loop {
            if !kill && hub::interrupt_pending() {
                kill = true;
            }
            let pending: Vec<TaskRef> = self
                .members
                .borrow()
                .iter()
                .flatten()
                .map(|g| g.task().clone())
                .filter(|t| !t.is_finished())
                .collect();
            let Some(first) = pending.first() else {
                return loop_panic.or(drop_unwind);
            };
            if kill {
                for t in &pending {
                    if !t.kill.get() {
                        // An unstarted member's closure is dropped right
                        // here, on this stack: its destructor may panic, or
                        // park and have a kill or timeout of the owner
                        // delivered. The unwind waits until the members are
                        // dead (the member is finished either way).
                        let r = catch_unwind(AssertUnwindSafe(|| kill_task_nowait(t)));
                        if let Err(p) = r {
                            drop_unwind.get_or_insert(p);
                        }
                    }
                }
                if first.is_finished() {
                    continue;
                }
            }
            first.watch(Watcher::Task(me.clone()));
            let _unwatch = Unwatch {
                task: first,
                me: &me,
            };
            // A raw park: kills and timeouts of the owner are not delivered
            // here (they are noticed above), so this wait always completes.
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| {
                hub.park_raw(crate::hub::WaitReason::Iwait)
            })) {
                // Root only: the loop reports that nothing can end this wait,
                // or refuses to run (entered from inside the loop). Killing
                // the members is the only way on; if they were killed
                // already, there is none.
                if kill || loop_panic.is_some() {
                    abandon_scope();
                }
                loop_panic = Some(p);
                kill = true;
            }
        }
    }
}

/// The members of a scope can never finish and the scope cannot wait: it
/// must not return while they borrow from its caller.
#[cold]
fn abandon_scope() -> ! {
    crate::sys::write_stderr_raw(
        b"greenlet::scope: the scope's greenlets can never finish and the scope cannot wait for \
          them (a deadlock, or a scope entered from inside the hub loop); aborting, since \
          returning would free data they borrow\n",
    );
    crate::sys::abort()
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not borrowed while the caller's sink runs: it may spawn here.
        let members = self.members.borrow().len();
        f.debug_struct("Scope")
            .field("members", &members)
            .finish_non_exhaustive()
    }
}

/// A handle to a greenlet spawned with [`Scope::spawn`]. Dropping it does
/// not detach the greenlet from the scope: the scope still waits for it.
///
/// Like [`Greenlet`], it never leaves its thread:
///
/// ```compile_fail,E0277
/// greenlet::scope(|s| {
///     let g = s.spawn(|| 1);
///     std::thread::scope(|t| {
///         t.spawn(move || g.join()); // error: cannot be sent between threads
///     });
/// });
/// ```
///
/// # Examples
///
/// ```
/// let v = vec![1, 2, 3];
/// greenlet::scope(|s| {
///     let g = s.spawn(|| v.len());
///     assert_eq!(g.join().unwrap(), 3);
/// });
/// ```
pub struct ScopedGreenlet<'scope, T> {
    members: &'scope RefCell<Vec<Option<Greenlet<()>>>>,
    index: usize,
    task: TaskRef,
    value: Rc<RefCell<Option<T>>>,
}

impl<T> ScopedGreenlet<'_, T> {
    /// Waits for the greenlet to finish and returns its value.
    ///
    /// # Errors
    /// [`JoinError`] if it panicked or was killed. A panic reported here
    /// does not make [`scope`] panic.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::scope(|s| {
    ///     let g = s.spawn(|| -> i32 { panic!("oops") });
    ///     assert!(g.join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        wait_finished(&self.task);
        let g = self.members.borrow_mut()[self.index]
            .take()
            .expect("a scoped greenlet is joined once");
        g.join()?;
        Ok(self
            .value
            .borrow_mut()
            .take()
            .expect("a greenlet that returned stored its value"))
    }

    /// Whether the greenlet has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::scope(|s| {
    ///     let g = s.spawn(|| ());
    ///     assert!(!g.is_finished());
    ///     greenlet::yield_now();
    ///     assert!(g.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Kills the greenlet and waits until it is dead (see
    /// [`Greenlet::kill`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// greenlet::scope(|s| {
    ///     let g = s.spawn(|| greenlet::sleep(Duration::from_secs(60)));
    ///     g.kill();
    ///     assert!(g.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        kill_task(&self.task);
    }

    /// The greenlet's id.
    ///
    /// # Examples
    ///
    /// ```
    /// greenlet::scope(|s| {
    ///     let g = s.spawn(|| greenlet::current().unwrap().id());
    ///     let id = g.id();
    ///     assert_eq!(g.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> GreenletId {
        GreenletId(self.task.id)
    }
}

impl<T> fmt::Debug for ScopedGreenlet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGreenlet")
            .field("id", &self.task.id)
            .field("finished", &self.task.is_finished())
            .finish()
    }
}
