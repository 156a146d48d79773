//! The blocking pool: run code that would block the hub (a blocking C
//! library, heavy computation, `getaddrinfo`) on OS threads while the
//! calling greenlet parks and the others keep running (gevent's
//! `threadpool`, asyncio's `run_in_executor`).
//!
//! One pool serves the whole process. Threads start on demand up to
//! [`max_threads`] (default [`DEFAULT_MAX_THREADS`], or the environment
//! variable `GREENLET_THREADPOOL_SIZE`, or [`set_max_threads`]); further
//! jobs queue. A thread idle for 10 seconds exits. Results come back
//! through the waiting greenlet's hub remote queue.
//!
//! Do not call [`spawn_blocking`] from inside a pool job and wait for it:
//! with every thread busy that way, the inner jobs would queue forever.
//!
//! A child made by `fork` has none of its parent's pool threads (`fork`
//! copies only the calling thread), so it gets a pool of its own at its
//! first job, with the same [`max_threads`]. The jobs queued or running at
//! the fork are the parent's: they run there, and a copy of a greenlet
//! waiting for one in the child waits on.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::hub::{oneshot, process_deadlock};
use crate::sys;

/// The pool size when neither [`set_max_threads`] nor
/// `GREENLET_THREADPOOL_SIZE` says otherwise.
pub const DEFAULT_MAX_THREADS: usize = 16;

/// How long an idle pool thread waits for work before it exits.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<State>,
    work: Condvar,
    max: AtomicUsize,
    /// The fork generation whose threads serve this pool (see
    /// `sys::fork`).
    fork_generation: u64,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// This process's pool (made at first use, and again in a forked child).
static POOL: AtomicPtr<Pool> = AtomicPtr::new(ptr::null_mut());

#[inline]
fn pool() -> &'static Pool {
    let p = POOL.load(Ordering::Acquire);
    // SAFETY: `POOL` only ever holds null or a leaked `Box<Pool>`, never
    // freed.
    match unsafe { p.as_ref() } {
        Some(pool) if pool.fork_generation == sys::fork::generation() => pool,
        old => new_pool(old),
    }
}

/// Installs a new pool: the first, or one for a forked child (which has
/// none of `old`'s threads). Leaks `old` with its queue: its lock may be
/// held by a thread that does not exist in the child.
#[cold]
fn new_pool(mut old: Option<&'static Pool>) -> &'static Pool {
    // A fork must be seen for the child to make its own pool.
    sys::fork::watch();
    let generation = sys::fork::generation();
    let max = old.map_or_else(size_from_env, |o| o.max.load(Ordering::Relaxed));
    let fresh: &'static Pool = Box::leak(Box::new(Pool {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work: Condvar::new(),
        max: AtomicUsize::new(max),
        fork_generation: generation,
    }));
    loop {
        let current = old.map_or(ptr::null_mut(), |o| ptr::from_ref(o).cast_mut());
        match POOL.compare_exchange(
            current,
            ptr::from_ref(fresh).cast_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return fresh,
            Err(other) => {
                // SAFETY: as in `pool`.
                let Some(other) = (unsafe { other.as_ref() }) else {
                    old = None;
                    continue;
                };
                if other.fork_generation == generation {
                    // Another thread of this process installed one first;
                    // `fresh` was never shared.
                    // SAFETY: leaked above, and seen by nobody else.
                    drop(unsafe { Box::from_raw(ptr::from_ref(fresh).cast_mut()) });
                    return other;
                }
                old = Some(other);
            }
        }
    }
}

fn size_from_env() -> usize {
    match std::env::var("GREENLET_THREADPOOL_SIZE") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!(
                "greenlet: GREENLET_THREADPOOL_SIZE={v:?} is not a positive number of threads"
            ),
        },
        Err(_) => DEFAULT_MAX_THREADS,
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and nothing in it panics.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn execute(&'static self, job: Job) {
        // Counted until it has run (see `crate::hub::process_deadlock`).
        process_deadlock::pool_job_queued();
        let mut st = self.lock();
        st.queue.push_back(job);
        if let Err(e) = self.start_threads(&mut st)
            && st.threads == 0
        {
            st.queue.pop_back();
            process_deadlock::pool_job_done();
            drop(st);
            panic!("greenlet: cannot start a blocking-pool thread: {e}");
        }
        drop(st);
        self.work.notify_one();
    }

    /// Starts threads for the queued jobs no idle thread will take, while
    /// under the limit. A thread that cannot be started is reported; the
    /// ones started before it stay.
    fn start_threads(&'static self, st: &mut State) -> std::io::Result<()> {
        let max = self.max.load(Ordering::Relaxed);
        // Each idle thread (and each one started here) will take one
        // queued job.
        let mut takers = st.idle;
        while st.queue.len() > takers && st.threads < max {
            thread::Builder::new()
                .name("greenlet-blocking".into())
                .spawn(move || self.worker())?;
            st.threads += 1;
            takers += 1;
        }
        Ok(())
    }

    fn worker(&self) {
        let _counted = process_deadlock::RuntimeThread::enter();
        let mut st = self.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                {
                    // Uncounted after it ran, also if it panicked.
                    struct Done;
                    impl Drop for Done {
                        fn drop(&mut self) {
                            process_deadlock::pool_job_done();
                        }
                    }
                    let _done = Done;
                    // A job that unwinds (the result of an abandoned wait
                    // whose `Drop` panics, an uninterruptible job's panic)
                    // must not end this thread: it is counted in `threads`
                    // until it leaves this loop. The panic was reported by
                    // the hook; its payload's own `Drop` may panic too.
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
                        drop_payload(payload);
                    }
                }
                st = self.lock();
                continue;
            }
            if st.threads > self.max.load(Ordering::Relaxed) {
                break; // the pool was shrunk
            }
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, KEEP_ALIVE)
                .unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
    }
}

/// Drops a panic payload caught on a pool thread; one whose `Drop` panics
/// in turn is leaked.
#[cold]
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f` on the blocking pool and returns its value; the calling
/// greenlet parks meanwhile and the hub keeps running the others. From root
/// context the thread runs its hub until the result is back.
///
/// If the greenlet is killed (or its `with_timeout` expires) while it
/// waits, it unwinds at once; `f` still runs to completion on its pool
/// thread and its value is dropped there.
///
/// # Panics
///
/// A panic in `f` is caught on the pool thread and resumed in the caller,
/// with the same payload. Panics also if no pool thread can be started.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// let ticker = greenlet::spawn(move || {
///     let mut ticks = 0;
///     while start.elapsed() < Duration::from_millis(100) {
///         greenlet::sleep(Duration::from_millis(10));
///         ticks += 1;
///     }
///     ticks
/// });
/// // A call that blocks its OS thread for 100 ms...
/// let v = greenlet::threadpool::spawn_blocking(|| {
///     std::thread::sleep(Duration::from_millis(100));
///     7
/// });
/// assert_eq!(v, 7);
/// // ...while the ticker kept running on this thread.
/// assert!(ticker.join().unwrap() >= 5);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    pool().execute(Box::new(move || {
        tx.send(catch_unwind(AssertUnwindSafe(f)));
    }));
    match rx.recv(crate::hub::WaitReason::Blocking) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => crate::hub::resume_unwind_marked(payload),
        Err(oneshot::Closed) => unreachable!("a pool job always sends its result"),
    }
}

/// Runs `f` on the pool while the calling task parks, without unwinding on
/// a kill or an expired `with_timeout` (it keeps waiting: `f` may borrow
/// the caller's memory). For the monkey-patching hooks, which are called
/// through the C ABI and cannot unwind, and for `process::Command::spawn`,
/// whose result (a running child) must not be lost.
pub(crate) fn run_blocking_uninterruptible<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    pool().execute(Box::new(move || tx.send(f())));
    rx.recv_uninterruptible(crate::hub::WaitReason::Blocking)
        .expect("a pool job always sends its result")
}

/// Sets the largest number of pool threads. Raising it starts threads for
/// the jobs already queued, up to the new limit; lowering it lets surplus
/// threads exit once they finish their current job.
///
/// # Panics
///
/// Panics if `n` is 0.
///
/// # Examples
///
/// ```
/// greenlet::threadpool::set_max_threads(4);
/// assert_eq!(greenlet::threadpool::max_threads(), 4);
/// ```
pub fn set_max_threads(n: usize) {
    assert!(
        n > 0,
        "greenlet::threadpool::set_max_threads: the pool needs at least one thread"
    );
    let p = pool();
    let mut st = p.lock();
    p.max.store(n, Ordering::Relaxed);
    // Jobs queued while the pool was full get threads now. If none can be
    // started, the running threads still take them in turn.
    let _ = p.start_threads(&mut st);
    drop(st);
    p.work.notify_all();
}

/// The largest number of pool threads.
///
/// # Examples
///
/// ```
/// assert!(greenlet::threadpool::max_threads() >= 1);
/// ```
pub fn max_threads() -> usize {
    pool().max.load(Ordering::Relaxed)
}
