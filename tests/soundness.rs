//! Regression tests for soundness defects reachable from safe code: each one
//! is the program that broke (issue 9), bounded in time. Scenarios that used
//! to crash the process run in a child process (`util::run_child_within`),
//! so a regression fails one test instead of the whole binary.

mod util;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use greenlet::pool::Group;
use greenlet::sync::{Barrier, Event, Mutex, Queue};
use greenlet::{sleep, spawn, with_timeout, yield_now};
use util::{assert_child_passed, assert_killed, child_mode, run_child_within, within};

const LIMIT: Duration = Duration::from_secs(20);

// ---- 1. closures of any size ----

#[test]
fn closure_of_2_kib_runs_and_returns() {
    if child_mode().as_deref() == Some("big_closure") {
        let big = [7u8; 2048];
        let sum = spawn(move || big.iter().map(|&b| b as u32).sum::<u32>())
            .join()
            .unwrap();
        assert_eq!(sum, 7 * 2048);
        // Far over the 1 KiB corosensei moves across a switch, and a large
        // result too (the stack still has to hold a few copies in debug
        // builds).
        let moved = [3u8; 16 << 10];
        let r = spawn(move || {
            let mut out = [0u8; 4096];
            out[0] = moved[1];
            (moved.len(), out)
        })
        .join()
        .unwrap();
        assert_eq!((r.0, r.1[0]), (16 << 10, 3));
        assert!(greenlet::current().is_none());
        return;
    }
    let out = run_child_within(
        "closure_of_2_kib_runs_and_returns",
        "big_closure",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

// ---- 2. stacks stay mapped under greenlets leaked at thread exit ----

/// An intrusive waiter, like a pinned `tokio::sync::Notify` future: a node
/// on a parked greenlet's stack whose address another thread keeps.
#[test]
fn node_on_the_stack_of_a_greenlet_parked_at_thread_exit_stays_valid() {
    if child_mode().as_deref() == Some("pinned_node") {
        let addr = Arc::new(AtomicUsize::new(0));
        let a = addr.clone();
        std::thread::spawn(move || {
            let _g = spawn(move || {
                let node = [0u64; 8];
                a.store(&node as *const _ as usize, Ordering::SeqCst);
                std::hint::black_box(&node);
                sleep(Duration::from_secs(3600));
                std::hint::black_box(&node);
            });
            yield_now(); // the greenlet parks; then the thread exits
        })
        .join()
        .unwrap();
        let p = addr.load(Ordering::SeqCst) as *mut u64;
        assert!(!p.is_null());
        // What `notify_waiters()` does to a registered waiter: write through
        // the pointer. The stack must still be mapped.
        // SAFETY (test): the greenlet is leaked, never resumed; its stack
        // stays mapped (the property under test), and nothing else uses
        // the node.
        unsafe {
            std::ptr::write_volatile(p, 42);
            assert_eq!(std::ptr::read_volatile(p), 42);
        }
        return;
    }
    let out = run_child_within(
        "node_on_the_stack_of_a_greenlet_parked_at_thread_exit_stays_valid",
        "pinned_node",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

#[test]
fn process_exit_inside_a_greenlet_keeps_its_status() {
    if child_mode().as_deref() == Some("exit7") {
        let _other = spawn(|| sleep(Duration::from_secs(3600)));
        spawn(|| std::process::exit(7)).join().unwrap();
        unreachable!("exit returned");
    }
    let out = run_child_within(
        "process_exit_inside_a_greenlet_keeps_its_status",
        "exit7",
        &[],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(7), "{}", util::describe(&out));
}

// ---- 3. waiters leaked at thread exit do not swallow hand-offs ----

#[test]
fn item_put_after_a_getters_thread_exited_is_not_lost() {
    within(LIMIT, || {
        let q: Queue<u32> = Queue::new();
        let q2 = q.clone();
        std::thread::spawn(move || {
            let _g = spawn(move || q2.get());
            yield_now(); // parked in get; the thread exits with it parked
        })
        .join()
        .unwrap();
        q.put(42).unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(5)).ok(), Some(42));
    });
}

#[test]
fn item_handed_to_a_getter_whose_thread_is_exiting_goes_back() {
    // Race the hand-off against the exit, many times: whichever wins, the
    // item is never lost. It was either taken by the getter before its
    // thread exited (recorded below), or it is back in the queue.
    within(LIMIT, || {
        let mut back = 0;
        for i in 0..300 {
            let q: Queue<u32> = Queue::new();
            let q2 = q.clone();
            let got = Arc::new(StdMutex::new(None));
            let got2 = got.clone();
            let ready = Arc::new(AtomicBool::new(false));
            let r2 = ready.clone();
            let t = std::thread::spawn(move || {
                let _g = spawn(move || {
                    let v = q2.get();
                    *got2.lock().unwrap() = Some(v);
                });
                yield_now();
                r2.store(true, Ordering::SeqCst);
                // Give the put a chance to land before the exit, sometimes.
                if i % 2 == 0 {
                    yield_now();
                }
            });
            while !ready.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            q.put(i).unwrap();
            t.join().unwrap();
            let taken = *got.lock().unwrap();
            match taken {
                Some(v) => assert_eq!(v, Ok(i)),
                None => {
                    let v = q.get_timeout(Duration::from_secs(5));
                    assert_eq!(v.ok(), Some(i), "item {i} was lost to a dead getter");
                    back += 1;
                }
            }
        }
        assert!(back > 0, "the race never left an item with the dead getter");
    });
}

#[test]
fn mutex_released_after_a_waiters_thread_exited_can_be_locked() {
    within(LIMIT, || {
        let m = Arc::new(Mutex::new(0u32));
        let guard = m.lock();
        let m2 = m.clone();
        std::thread::spawn(move || {
            let _g = spawn(move || {
                *m2.lock() += 1;
            });
            yield_now(); // parked in lock; the thread exits with it parked
        })
        .join()
        .unwrap();
        drop(guard);
        let g = m.lock_timeout(Duration::from_secs(5));
        assert!(g.is_ok(), "the mutex stayed locked by a dead waiter");
    });
}

/// A `Barrier` waiter whose thread exits while it is parked (its hub
/// cancels the wait) no longer counts as arrived: the round still needs
/// `n` live arrivals. Before, the dead arrival stayed counted and the next
/// `n - 1` arrivals completed the round one short.
#[test]
fn barrier_arrival_of_a_waiter_whose_thread_exited_is_withdrawn() {
    within(LIMIT, || {
        let b = Arc::new(Barrier::new(2));
        let b2 = b.clone();
        std::thread::spawn(move || {
            let _g = spawn(move || b2.wait().is_leader());
            yield_now(); // parked in wait; the thread exits with it parked
        })
        .join()
        .unwrap();
        assert!(
            format!("{b:?}").contains("arrived: 0"),
            "the dead waiter still counts as arrived: {b:?}"
        );
        // One live arrival does not complete the round...
        let first = spawn({
            let b = b.clone();
            move || b.wait().is_leader()
        });
        sleep(Duration::from_millis(100));
        assert!(
            !first.is_finished(),
            "one live arrival completed a round of two"
        );
        // ...the second does, and the round after that works as usual.
        assert!(b.wait().is_leader());
        assert_eq!(first.join().ok(), Some(false));
        let again = spawn({
            let b = b.clone();
            move || b.wait().is_leader()
        });
        assert!(b.wait().is_leader() ^ again.join().unwrap());
    });
}

/// Blocks of every small size, allocated (zeroed) by [`Refill`] right after
/// a thread-local queue was freed, and checked by [`CheckBlocks`] after the
/// hub's teardown: any byte no longer zero was written through the freed
/// queue.
static BLOCKS: StdMutex<Vec<Vec<u8>>> = StdMutex::new(Vec::new());
static BLOCKS_WRITTEN: AtomicBool = AtomicBool::new(false);

struct Refill;

impl Drop for Refill {
    fn drop(&mut self) {
        let mut blocks = BLOCKS.lock().unwrap();
        for n in (16..=512).step_by(8) {
            // `with_capacity` + `resize`, not `vec![0; n]` (`calloc`): a
            // plain `malloc`, which reuses the chunk just freed.
            #[allow(clippy::slow_vector_initialization)]
            let mut v = Vec::with_capacity(n);
            v.resize(n, 0u8);
            blocks.push(v);
        }
    }
}

struct CheckBlocks;

impl Drop for CheckBlocks {
    fn drop(&mut self) {
        let blocks = BLOCKS.lock().unwrap();
        if blocks.iter().any(|b| b.iter().any(|&x| x != 0)) {
            BLOCKS_WRITTEN.store(true, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static CHECK_BLOCKS: std::cell::RefCell<Option<CheckBlocks>> =
        const { std::cell::RefCell::new(None) };
    static REFILL: std::cell::RefCell<Option<Refill>> = const { std::cell::RefCell::new(None) };
    static LOCAL_QUEUE: Queue<u32> = Queue::new();
}

#[test]
fn a_wait_on_a_thread_local_queue_destroyed_before_the_hub_is_not_cancelled_through_it() {
    // A greenlet parks inside `LOCAL_QUEUE.with`; the thread exits. Its
    // thread-locals are destroyed in reverse order of first use: the queue
    // (used after the hub was made) first, then `REFILL`, which takes the
    // freed memory, then the hub, whose teardown cancelled the wait through
    // the freed queue (unlinking it there: a write into `REFILL`'s blocks,
    // and an overflow of the freed list's length), then `CHECK_BLOCKS`. In a
    // child: the overflow aborts the process in a debug build.
    if child_mode().as_deref() == Some("tls_queue") {
        BLOCKS.lock().unwrap().reserve(128);
        std::thread::spawn(|| {
            CHECK_BLOCKS.with(|c| *c.borrow_mut() = Some(CheckBlocks));
            yield_now(); // this thread's hub
            REFILL.with(|r| *r.borrow_mut() = Some(Refill));
            LOCAL_QUEUE.with(|_| {});
            let _parked = spawn(|| LOCAL_QUEUE.with(|q| q.get().unwrap()));
            yield_now(); // the greenlet parks in `get`; the thread exits
        })
        .join()
        .expect("the thread must exit cleanly");
        assert!(
            !BLOCKS_WRITTEN.load(Ordering::SeqCst),
            "the hub's teardown wrote into the freed thread-local queue"
        );
        return;
    }
    let out = run_child_within(
        "a_wait_on_a_thread_local_queue_destroyed_before_the_hub_is_not_cancelled_through_it",
        "tls_queue",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

/// Signals the test's main thread to drop its clone of [`SHARED_QUEUE`]
/// (the last one) when destroyed, and waits until it did.
struct DropShared;

impl Drop for DropShared {
    fn drop(&mut self) {
        let (tx, done) = SHARED_DROP.lock().unwrap().take().unwrap();
        tx.send(()).unwrap();
        done.recv().unwrap();
    }
}

type DropHandshake = (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>);

static SHARED_DROP: StdMutex<Option<DropHandshake>> = StdMutex::new(None);

thread_local! {
    static DROP_SHARED: std::cell::RefCell<Option<DropShared>> =
        const { std::cell::RefCell::new(None) };
    static SHARED_QUEUE: std::cell::OnceCell<Arc<Queue<u32>>> =
        const { std::cell::OnceCell::new() };
}

#[test]
fn a_wait_on_a_queue_whose_last_clone_another_thread_drops_at_teardown_is_not_cancelled_through_it()
{
    // As above, but the thread-local holds one of two `Arc`s to the queue:
    // its destruction frees nothing, and the main thread drops the last
    // clone (signalled by `DROP_SHARED`, destroyed next) while the exiting
    // thread's hub still has the wait registered: the primitive is freed on
    // another thread, whose hub knows nothing of the wait. That thread
    // takes the freed memory back at once.
    if child_mode().as_deref() == Some("tls_shared_queue") {
        BLOCKS.lock().unwrap().reserve(128);
        let queue = Arc::new(Queue::new());
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        *SHARED_DROP.lock().unwrap() = Some((go_tx, done_rx));
        let theirs = queue.clone();
        let exiting = std::thread::spawn(move || {
            CHECK_BLOCKS.with(|c| *c.borrow_mut() = Some(CheckBlocks));
            yield_now(); // this thread's hub
            DROP_SHARED.with(|d| *d.borrow_mut() = Some(DropShared));
            SHARED_QUEUE.with(|q| q.set(theirs).unwrap());
            let _parked = spawn(|| SHARED_QUEUE.with(|q| q.get().unwrap().get().unwrap()));
            yield_now(); // the greenlet parks in `get`; the thread exits
        });
        go_rx.recv().expect("the exiting thread signals");
        drop(queue);
        drop(Refill); // on this thread, whose allocator cache has the queue's memory
        done_tx.send(()).unwrap();
        exiting.join().expect("the thread must exit cleanly");
        assert!(
            !BLOCKS_WRITTEN.load(Ordering::SeqCst),
            "the hub's teardown wrote into the queue freed by another thread"
        );
        return;
    }
    let out = run_child_within(
        "a_wait_on_a_queue_whose_last_clone_another_thread_drops_at_teardown_is_not_cancelled_through_it",
        "tls_shared_queue",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

/// Set when [`BORROWED`] is destroyed at thread exit.
static BORROWED_GONE: AtomicBool = AtomicBool::new(false);
/// Set by a greenlet resumed inside `BORROWED.with` after that.
static RESUMED_ON_GONE: AtomicBool = AtomicBool::new(false);

struct Borrowed;

impl Drop for Borrowed {
    fn drop(&mut self) {
        BORROWED_GONE.store(true, Ordering::SeqCst);
    }
}

/// Runs the hub from a thread-local destructor.
struct SleepsOnDrop;

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        sleep(Duration::from_millis(50));
    }
}

thread_local! {
    static SLEEPS_ON_DROP: std::cell::RefCell<Option<SleepsOnDrop>> =
        const { std::cell::RefCell::new(None) };
    static BORROWED: Borrowed = const { Borrowed };
}

#[test]
fn a_greenlet_parked_inside_a_destroyed_thread_local_is_never_resumed() {
    // Thread-locals are destroyed in reverse order of first use: `BORROWED`
    // first, then `SLEEPS_ON_DROP`, whose destructor runs the hub for
    // 50 ms. A greenlet sleeping 10 ms inside `BORROWED.with` must not be
    // resumed then: its borrow dangles.
    within(LIMIT, || {
        std::thread::spawn(|| {
            yield_now(); // this thread's hub
            SLEEPS_ON_DROP.with(|s| *s.borrow_mut() = Some(SleepsOnDrop));
            BORROWED.with(|_| {});
            let _parked = spawn(|| {
                BORROWED.with(|_borrowed| {
                    sleep(Duration::from_millis(10));
                    if BORROWED_GONE.load(Ordering::SeqCst) {
                        RESUMED_ON_GONE.store(true, Ordering::SeqCst);
                    }
                })
            });
            yield_now(); // it parks in `sleep`; the thread exits
        })
        .join()
        .expect("the thread must exit cleanly");
        assert!(BORROWED_GONE.load(Ordering::SeqCst));
        assert!(
            !RESUMED_ON_GONE.load(Ordering::SeqCst),
            "a greenlet ran on with a borrow of a destroyed thread-local"
        );
    });
}

/// What [`JoinsOnDrop`] saw: the join's outcome and the time it took.
static JOINED_AT_EXIT: StdMutex<Option<(bool, Duration)>> = StdMutex::new(None);
/// Set by the link of the greenlet [`JoinsOnDrop`] joins.
static LINK_SAW_KILLED: AtomicBool = AtomicBool::new(false);

/// Joins a greenlet from a thread-local destructor (as a thread-local
/// `Group` or pool that waits for its members does).
struct JoinsOnDrop(Option<greenlet::Greenlet<()>>);

impl Drop for JoinsOnDrop {
    fn drop(&mut self) {
        let g = self.0.take().unwrap();
        let t0 = Instant::now();
        let killed = g.join().is_err_and(|e| e.is_killed());
        *JOINED_AT_EXIT.lock().unwrap() = Some((killed, t0.elapsed()));
    }
}

thread_local! {
    static JOINS_ON_DROP: std::cell::RefCell<Option<JoinsOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_greenlet_parked_at_thread_exit_is_joined_as_killed_from_a_later_destructor() {
    // The greenlet sleeps for a minute when its thread exits. It never runs
    // again (it may hold a borrow of a destroyed thread-local), so a join
    // from a thread-local destructor reports it killed at once instead of
    // waiting, and its link sees it killed.
    within(LIMIT, || {
        std::thread::spawn(|| {
            let g = spawn(|| sleep(Duration::from_secs(60)));
            g.link(|r| LINK_SAW_KILLED.store(r.is_err_and(|e| e.is_killed()), Ordering::SeqCst));
            JOINS_ON_DROP.with(|j| *j.borrow_mut() = Some(JoinsOnDrop(Some(g))));
            yield_now(); // it parks in `sleep`; the thread exits
        })
        .join()
        .expect("the thread must exit cleanly");
        let (killed, took) = JOINED_AT_EXIT
            .lock()
            .unwrap()
            .expect("the destructor joined");
        assert!(killed, "the join reports the greenlet killed");
        assert!(took < Duration::from_secs(10), "the join waited {took:?}");
        assert!(
            LINK_SAW_KILLED.load(Ordering::SeqCst),
            "its link ran and saw it killed"
        );
    });
}

/// What [`UsesTheHubOnDrop`] saw: whether the parked greenlet was already
/// ended by the freeze, the unstarted greenlet's result, and the result of
/// a greenlet spawned from the destructor.
static USED_AT_EXIT: StdMutex<Option<(bool, u32, u32)>> = StdMutex::new(None);

/// Uses the hub from a thread-local destructor that runs after the freeze.
#[derive(Default)]
struct UsesTheHubOnDrop {
    parked: Option<greenlet::Greenlet<()>>,
    unstarted: Option<greenlet::Greenlet<u32>>,
}

impl Drop for UsesTheHubOnDrop {
    fn drop(&mut self) {
        let frozen = self.parked.take().unwrap().is_finished();
        let unstarted = self.unstarted.take().unwrap().join().unwrap();
        let fresh = spawn(|| {
            sleep(Duration::from_millis(1));
            7
        })
        .join()
        .unwrap();
        *USED_AT_EXIT.lock().unwrap() = Some((frozen, unstarted, fresh));
    }
}

thread_local! {
    static USES_THE_HUB_ON_DROP: std::cell::RefCell<UsesTheHubOnDrop> =
        std::cell::RefCell::new(UsesTheHubOnDrop::default());
}

#[test]
fn a_later_destructor_still_runs_unstarted_greenlets_and_new_ones() {
    // The freeze ends the greenlets that have started; one that never
    // started borrows nothing, and a destructor that runs after the freeze
    // can still run it, and spawn, sleep and join.
    within(LIMIT, || {
        std::thread::spawn(|| {
            yield_now(); // this thread's hub, destroyed last
            USES_THE_HUB_ON_DROP.with(|_| {}); // destroyed after the freeze
            let parked = spawn(|| sleep(Duration::from_secs(60)));
            yield_now(); // it parks: the freeze is registered
            let unstarted = spawn(|| 5);
            USES_THE_HUB_ON_DROP.with(|u| {
                let mut u = u.borrow_mut();
                u.parked = Some(parked);
                u.unstarted = Some(unstarted);
            });
            // The thread exits with `unstarted` never run.
        })
        .join()
        .expect("the thread must exit cleanly");
        assert_eq!(*USED_AT_EXIT.lock().unwrap(), Some((true, 5, 7)));
    });
}

/// Set when [`LATE_BORROWED`] is destroyed.
static LATE_BORROWED_GONE: AtomicBool = AtomicBool::new(false);
/// Set by a greenlet that ran on inside `LATE_BORROWED.with` after that.
static LATE_RAN_ON_GONE: AtomicBool = AtomicBool::new(false);

struct LateBorrowed;

impl Drop for LateBorrowed {
    fn drop(&mut self) {
        LATE_BORROWED_GONE.store(true, Ordering::SeqCst);
    }
}

/// Parks a new greenlet inside `LATE_BORROWED.with` from a thread-local
/// destructor, after the freeze ran.
struct ParksOneOnDrop;

impl Drop for ParksOneOnDrop {
    fn drop(&mut self) {
        drop(spawn(|| {
            LATE_BORROWED.with(|_| {
                sleep(Duration::from_millis(10));
                if LATE_BORROWED_GONE.load(Ordering::SeqCst) {
                    LATE_RAN_ON_GONE.store(true, Ordering::SeqCst);
                }
            })
        }));
        yield_now(); // it parks in `sleep`
    }
}

thread_local! {
    static LATE_SLEEPS: std::cell::RefCell<Option<SleepsOnDrop>> =
        const { std::cell::RefCell::new(None) };
    static LATE_BORROWED: LateBorrowed = const { LateBorrowed };
    static PARKS_ONE: std::cell::RefCell<Option<ParksOneOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_greenlet_parked_by_a_destructor_after_the_freeze_is_frozen_before_its_borrow_dies() {
    // Destroyed in this order: the freeze (registered last, as the root
    // resumed with a greenlet parked), `PARKS_ONE` (parks a new greenlet
    // inside `LATE_BORROWED.with`), `LATE_BORROWED`, then `LATE_SLEEPS`,
    // which runs the hub for 50 ms. The greenlet parked during the
    // destructors needs a second freeze, between `PARKS_ONE` and
    // `LATE_BORROWED`, or it runs on with a dangling borrow.
    within(LIMIT, || {
        std::thread::spawn(|| {
            yield_now(); // this thread's hub
            LATE_SLEEPS.with(|s| *s.borrow_mut() = Some(SleepsOnDrop));
            LATE_BORROWED.with(|_| {});
            PARKS_ONE.with(|p| *p.borrow_mut() = Some(ParksOneOnDrop));
            let _parked = spawn(|| sleep(Duration::from_secs(60)));
            yield_now(); // it parks: the first freeze is registered
        })
        .join()
        .expect("the thread must exit cleanly");
        assert!(LATE_BORROWED_GONE.load(Ordering::SeqCst));
        assert!(
            !LATE_RAN_ON_GONE.load(Ordering::SeqCst),
            "a greenlet parked after the freeze ran on with a borrow of a destroyed thread-local"
        );
    });
}

/// Calls into the runtime when dropped, and records that its drop ran to
/// the end or unwound.
struct CallsTheHubOnDrop(Arc<AtomicUsize>);

impl Drop for CallsTheHubOnDrop {
    fn drop(&mut self) {
        // Counts first: the call below panics once the hub is gone.
        self.0.fetch_add(1, Ordering::SeqCst);
        yield_now();
    }
}

#[test]
fn a_closure_whose_drop_calls_the_hub_is_dropped_at_thread_exit_without_aborting() {
    // The thread exits with two greenlets that never started: the hub's
    // teardown drops their closures, whose `Drop` calls `yield_now` on a
    // hub already torn down. That call panics; the panic must not escape
    // the thread-local destructor (which aborts the process), and the
    // other closure must still be dropped.
    if child_mode().as_deref() == Some("drop_calls_hub") {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        std::thread::spawn(move || {
            let first = CallsTheHubOnDrop(d.clone());
            drop(spawn(move || drop(first)));
            let second = CallsTheHubOnDrop(d);
            let _held = spawn(move || drop(second));
            // The thread exits without running either.
        })
        .join()
        .expect("the thread must exit cleanly");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "every closure is dropped"
        );
        return;
    }
    let out = run_child_within(
        "a_closure_whose_drop_calls_the_hub_is_dropped_at_thread_exit_without_aborting",
        "drop_calls_hub",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("planned: a detached greenlet's result panics in its drop");
    }
}

/// Joins its greenlet when dropped (a scope guard).
struct JoinsWhenDropped(Option<greenlet::Greenlet<()>>);

impl Drop for JoinsWhenDropped {
    fn drop(&mut self) {
        let _ = self.0.take().unwrap().join();
    }
}

#[test]
fn a_result_drop_that_panics_while_the_root_unwinds_does_not_abort() {
    // The root panics; a guard on its stack joins a greenlet as it unwinds,
    // which runs the loop, which finishes a detached greenlet whose result
    // panics as the loop drops it. That second panic must not reach the
    // unwinding root (a panic out of a destructor during unwinding aborts
    // the process): the root's own panic is the one that comes out.
    if child_mode().as_deref() == Some("result_drop_unwinding") {
        let r = catch_unwind(AssertUnwindSafe(|| {
            drop(spawn(|| PanicsOnDrop)); // detached: the loop drops its result
            let _guard = JoinsWhenDropped(Some(spawn(|| sleep(Duration::from_millis(5)))));
            panic!("planned: the root's own panic");
        }));
        let payload = r.expect_err("the root's panic comes out");
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("planned: the root's own panic")
        );
        // The hub still works.
        assert_eq!(spawn(|| 3).join().unwrap(), 3);
        // Outside an unwinding, that panic comes out of the call that ran
        // the loop, as documented.
        drop(spawn(|| PanicsOnDrop));
        let r = catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_millis(1))));
        let payload = r.expect_err("the result's panic comes out of the sleep");
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("planned: a detached greenlet's result panics in its drop")
        );
        assert_eq!(spawn(|| 4).join().unwrap(), 4);
        return;
    }
    let out = run_child_within(
        "a_result_drop_that_panics_while_the_root_unwinds_does_not_abort",
        "result_drop_unwinding",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}

// ---- 4. unwinding is tracked per greenlet ----

/// Kills its helper greenlet when dropped.
struct KillOnDrop(greenlet::Greenlet<()>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

#[test]
fn guard_that_kills_a_helper_from_drop_works_when_its_owner_panics() {
    within(LIMIT, || {
        let owner = spawn(|| {
            let helper = spawn(|| sleep(Duration::from_secs(3600)));
            let _guard = KillOnDrop(helper);
            yield_now();
            panic!("owner fails");
        });
        let err = owner.join().unwrap_err();
        assert_eq!(err.panic_message(), Some("owner fails"));
    });
}

#[test]
fn guard_that_kills_a_helper_from_drop_works_when_its_owner_is_killed() {
    within(LIMIT, || {
        let helper_done = Rc::new(Cell::new(false));
        let hd = helper_done.clone();
        let owner = spawn(move || {
            let helper = spawn(move || {
                let _flag = util::drop_flag();
                struct Set(Rc<Cell<bool>>);
                impl Drop for Set {
                    fn drop(&mut self) {
                        self.0.set(true);
                    }
                }
                let _s = Set(hd);
                sleep(Duration::from_secs(3600));
            });
            let _guard = KillOnDrop(helper);
            sleep(Duration::from_secs(3600));
        });
        yield_now();
        yield_now();
        owner.kill();
        assert!(helper_done.get(), "the helper was not killed");
        assert_killed(owner.join());
    });
}

/// Parks in its destructor for `ms`.
struct SlowDrop(u64);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        sleep(Duration::from_millis(self.0));
    }
}

#[test]
fn timeout_in_one_greenlet_fires_while_another_is_parked_mid_unwind() {
    within(LIMIT, || {
        let a = spawn(|| {
            let _d = SlowDrop(400);
            yield_now();
            panic!("a unwinds");
        });
        let b = spawn(|| {
            yield_now();
            yield_now(); // A is now parked inside its destructor
            let start = Instant::now();
            let r = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(1)));
            (r, start.elapsed())
        });
        let (r, took) = b.join().unwrap();
        assert!(r.is_err(), "with_timeout returned Ok");
        assert!(took < Duration::from_millis(300), "took {took:?}");
        assert!(a.join().is_err());
    });
}

/// Yields `n` times in its destructor, counting the yields that returned.
struct YieldingDrop(u32, Rc<Cell<u32>>);

impl Drop for YieldingDrop {
    fn drop(&mut self) {
        for _ in 0..self.0 {
            yield_now();
            self.1.set(self.1.get() + 1);
        }
    }
}

#[test]
fn a_kill_while_a_destructor_yields_mid_unwind_waits_for_the_unwind() {
    // A yield made while unwinding ends its suspension's bookkeeping and
    // then checks for an interrupt in one step (`resume_slow`): the kill
    // must not be delivered there (a second unwind out of a destructor
    // aborts the process), and the destructor must run to its end.
    within(LIMIT, || {
        let returned = Rc::new(Cell::new(0));
        let r = returned.clone();
        let a = spawn(move || {
            let _d = YieldingDrop(3, r);
            yield_now();
            panic!("a unwinds");
        });
        yield_now(); // A yields once
        yield_now(); // A panics and yields in its destructor
        assert_eq!(returned.get(), 0, "A is suspended in its first yield");
        a.kill();
        let res = a.join();
        assert_eq!(returned.get(), 3, "every yield of the destructor returned");
        let e = res.expect_err("A panicked");
        assert_eq!(e.panic_message(), Some("a unwinds"));
        // A kill of a greenlet that is not unwinding is delivered at its
        // yield, as before.
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        let b = spawn(move || {
            loop {
                yield_now();
                n2.set(n2.get() + 1);
            }
        });
        yield_now();
        b.kill();
        assert_killed(b.join());
        assert_eq!(n.get(), 0, "the kill was delivered at B's first yield");
    });
}

#[test]
fn kill_of_an_event_waiter_returns_while_another_greenlet_is_parked_mid_unwind() {
    within(LIMIT, || {
        let a = spawn(|| {
            let _d = SlowDrop(300);
            yield_now();
            panic!("a unwinds");
        });
        let ev = Event::new();
        let e2 = ev.clone();
        let waiter = spawn(move || e2.wait());
        yield_now();
        yield_now();
        let start = Instant::now();
        waiter.kill();
        assert!(start.elapsed() < Duration::from_millis(250));
        assert_killed(waiter.join());
        assert!(a.join().is_err());
    });
}

#[test]
fn group_kill_from_a_members_drop_during_unwinding_returns() {
    within(LIMIT, || {
        struct KillGroup(Group);
        impl Drop for KillGroup {
            fn drop(&mut self) {
                self.0.kill();
            }
        }
        let group = Group::new();
        let g2 = group.clone();
        let _sleeper = group.spawn(|| sleep(Duration::from_secs(3600)));
        let member = group.spawn(move || {
            let _k = KillGroup(g2);
            yield_now();
            panic!("member fails");
        });
        assert!(member.join().unwrap_err().is_panic());
        group.join();
        assert_eq!(group.len(), 0);
    });
}

#[test]
fn unrelated_timeouts_fire_while_queue_waits_are_cleaned_up_mid_unwind() {
    // `with_timeout` around `q.get()` expiring just as another thread hands
    // the item over makes the getter park in its cleanup while unwinding;
    // other greenlets' timeouts must still fire on time.
    within(LIMIT * 2, || {
        let q: Queue<u64> = Queue::new();
        let stop = Arc::new(AtomicBool::new(false));
        let putters: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        q.put(i).unwrap();
                        i += 1;
                        std::thread::sleep(Duration::from_micros(50));
                    }
                })
            })
            .collect();
        let getters: Vec<_> = (0..20)
            .map(|_| {
                let q = q.clone();
                spawn(move || {
                    let end = Instant::now() + Duration::from_millis(800);
                    while Instant::now() < end {
                        let _ = with_timeout(Duration::from_micros(200), || q.get());
                    }
                })
            })
            .collect();
        let late = Rc::new(Cell::new(0u32));
        let runs = Rc::new(Cell::new(0u32));
        let sleepers: Vec<_> = (0..10)
            .map(|_| {
                let (late, runs) = (late.clone(), runs.clone());
                spawn(move || {
                    let end = Instant::now() + Duration::from_millis(800);
                    while Instant::now() < end {
                        let t = Instant::now();
                        let r = with_timeout(Duration::from_millis(2), || {
                            sleep(Duration::from_millis(200))
                        });
                        assert!(r.is_err());
                        runs.set(runs.get() + 1);
                        if t.elapsed() >= Duration::from_millis(150) {
                            late.set(late.get() + 1);
                        }
                    }
                })
            })
            .collect();
        for g in getters.into_iter().chain(sleepers) {
            g.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for p in putters {
            p.join().unwrap();
        }
        assert!(runs.get() > 100, "only {} timeouts ran", runs.get());
        assert_eq!(
            late.get(),
            0,
            "{} of {} timeouts ran late",
            late.get(),
            runs.get()
        );
    });
}

#[test]
fn kills_return_under_a_stress_of_timed_waits_and_cross_thread_hand_offs() {
    within(LIMIT * 2, || {
        let q: Queue<u64> = Queue::new();
        let sem = Arc::new(greenlet::sync::Semaphore::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let feeders: Vec<_> = (0..2)
            .map(|_| {
                let (q, sem, stop) = (q.clone(), sem.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = q.put(1);
                        sem.add_permits(1);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let worker = |q: Queue<u64>, sem: Arc<greenlet::sync::Semaphore>| {
            spawn(move || {
                loop {
                    if let Ok(p) = sem.acquire_timeout(Duration::from_micros(100)) {
                        p.forget();
                    }
                    let _ = q.get_timeout(Duration::from_micros(100));
                    let _ = with_timeout(Duration::from_micros(100), || q.get());
                    // Items and permits may always be there: let the others
                    // (and the root) run.
                    yield_now();
                }
            })
        };
        let mut workers: Vec<_> = (0..200).map(|_| worker(q.clone(), sem.clone())).collect();
        let end = Instant::now() + Duration::from_millis(1500);
        let mut kills = 0;
        let mut i = 0;
        while Instant::now() < end {
            sleep(Duration::from_millis(2));
            let w = std::mem::replace(&mut workers[i % 200], worker(q.clone(), sem.clone()));
            w.kill();
            assert_killed(w.join());
            kills += 1;
            i += 7;
        }
        for w in &workers {
            w.kill();
        }
        stop.store(true, Ordering::Relaxed);
        for f in feeders {
            f.join().unwrap();
        }
        assert!(kills > 50, "only {kills} kills");
    });
}

// ---- 5. a caught kill is not consumed ----

#[test]
fn kill_caught_with_catch_unwind_still_kills_at_the_next_park() {
    within(LIMIT, || {
        let caught = Rc::new(Cell::new(0));
        let c = caught.clone();
        let g = spawn(move || {
            for _ in 0..3 {
                if catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_secs(3600)))).is_err() {
                    c.set(c.get() + 1);
                }
            }
            "survived"
        });
        yield_now();
        g.kill(); // must return
        assert_killed(g.join());
        // Each catch ended at the next park; the loop's parks kept killing.
        assert_eq!(caught.get(), 3);
    });
}

#[test]
fn kill_caught_and_then_returning_reports_killed() {
    within(LIMIT, || {
        let g = spawn(|| {
            let r = catch_unwind(|| sleep(Duration::from_secs(3600)));
            assert!(r.is_err());
            5
        });
        yield_now();
        g.kill();
        assert_killed(g.join());
    });
}

// ---- 6. smaller correctness bugs ----

/// A value whose destructor blocks; the hub loop drops it (the last
/// reference to a detached greenlet's result goes away inside the loop).
struct BlocksInDrop(Arc<StdMutex<Option<String>>>);

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let r = catch_unwind(|| sleep(Duration::from_millis(1)));
        if let Err(p) = r {
            *self.0.lock().unwrap() = Some(util::payload_message(&*p));
        }
    }
}

#[test]
fn caught_blocking_call_inside_the_loop_leaves_the_outer_join_parked() {
    within(LIMIT, || {
        let seen = Arc::new(StdMutex::new(None));
        let s2 = seen.clone();
        drop(spawn(move || BlocksInDrop(s2))); // detached
        let outer = spawn(|| {
            sleep(Duration::from_millis(30));
            "outer done"
        });
        assert_eq!(outer.join().unwrap(), "outer done");
        let msg = seen.lock().unwrap().clone().unwrap_or_default();
        assert!(msg.contains("inside the hub loop"), "{msg}");
    });
}

// ---- the panic hook the runtime installs chains to the one it replaced ----

#[test]
fn a_panic_hook_set_before_the_first_hub_still_runs() {
    if child_mode().as_deref() == Some("hook_chain") {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        std::panic::set_hook(Box::new(|_| {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }));
        // The first hub of the process installs its marker hook here.
        let r = spawn(|| panic!("in a greenlet")).join();
        assert!(r.unwrap_err().is_panic());
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        let r = catch_unwind(|| panic!("in root context"));
        assert!(r.is_err());
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        return;
    }
    let out = run_child_within(
        "a_panic_hook_set_before_the_first_hub_still_runs",
        "hook_chain",
        &[],
        LIMIT,
    );
    assert_child_passed(&out);
}
