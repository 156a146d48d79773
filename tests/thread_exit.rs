//! Threads that exit with greenlets parked inside `LocalKey::with`, at
//! random moments against another thread that feeds, signals and drops
//! the primitives they wait on: no greenlet runs on after a thread-local
//! it borrows was destroyed, no item put is lost, and (under the ASan job)
//! nothing is touched after it was freed. See `hub::exit`.

mod util;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use greenlet::sync::{Barrier, Event, Mutex, Queue, Semaphore};
use greenlet::{Greenlet, sleep, spawn, yield_now};
use util::{assert_child_passed, child_mode, run_child_within, within};

const LIMIT: Duration = Duration::from_secs(20);

/// xorshift64*, seeded per round.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What the exiting thread's greenlets wait on, shared with the feeder.
#[derive(Clone)]
struct Prims {
    queue: Queue<u32>,
    event: Event,
    sem: Arc<Semaphore>,
    mutex: Arc<Mutex<u32>>,
}

/// Set when the exiting thread's `DATA` is destroyed.
static DATA_GONE: AtomicBool = AtomicBool::new(false);
/// Set by a greenlet that ran on inside `DATA.with` after that.
static RAN_ON_GONE: AtomicBool = AtomicBool::new(false);
/// The tests share the statics above: one at a time.
static SERIAL: StdMutex<()> = StdMutex::new(());
/// Items the exiting thread's greenlets took from the queue.
static TAKEN: StdMutex<Vec<u32>> = StdMutex::new(Vec::new());

/// Sets its flag when dropped: a thread-local that records its destruction.
struct SetsOnDrop(&'static AtomicBool);

impl Drop for SetsOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs the hub from a thread-local destructor: sleeps, then joins.
struct Runner(Vec<Greenlet<()>>);

impl Drop for Runner {
    fn drop(&mut self) {
        sleep(Duration::from_millis(1));
        for g in self.0.drain(..) {
            let _ = g.join();
        }
    }
}

thread_local! {
    static DATA: SetsOnDrop = const { SetsOnDrop(&DATA_GONE) };
    static PRIMS: RefCell<Option<Prims>> = const { RefCell::new(None) };
    static RUNNER: RefCell<Option<Runner>> = const { RefCell::new(None) };
}

/// Waits on one of the primitives inside both thread-local borrows, then
/// checks that `DATA` is still alive.
fn waiter(kind: u64) {
    DATA.with(|_data| {
        PRIMS.with(|p| {
            let p = p.borrow();
            let p = p.as_ref().unwrap();
            match kind {
                0 => {
                    if let Ok(v) = p.queue.get() {
                        TAKEN.lock().unwrap().push(v);
                    }
                }
                1 => p.event.wait(),
                2 => drop(p.sem.acquire()),
                3 => drop(p.mutex.lock()),
                _ => sleep(Duration::from_micros(200)),
            }
        });
        if DATA_GONE.load(Ordering::SeqCst) {
            RAN_ON_GONE.store(true, Ordering::SeqCst);
        }
    });
}

fn round(seed: u64) {
    let mut rng = Rng::new(seed);
    DATA_GONE.store(false, Ordering::SeqCst);
    TAKEN.lock().unwrap().clear();
    let prims = Prims {
        queue: Queue::new(),
        event: Event::new(),
        sem: Arc::new(Semaphore::new(0)),
        mutex: Arc::new(Mutex::new(0)),
    };
    let theirs = prims.clone();
    let plan: Vec<u64> = (0..1 + rng.below(6)).map(|_| rng.below(5)).collect();
    let runner_first = rng.below(2) == 0;
    let with_runner = rng.below(3) != 0;
    let holds_mutex = rng.below(2) == 0;
    // The mutex is held by this thread for a while: its waiters park.
    let guard = holds_mutex.then(|| prims.mutex.try_lock().unwrap());
    let exiting = std::thread::spawn(move || {
        yield_now(); // this thread's hub: destroyed last
        if with_runner && runner_first {
            RUNNER.with(|r| *r.borrow_mut() = Some(Runner(Vec::new())));
        }
        DATA.with(|_| {});
        PRIMS.with(|p| *p.borrow_mut() = Some(theirs));
        let mut handles: Vec<Greenlet<()>> =
            plan.into_iter().map(|k| spawn(move || waiter(k))).collect();
        if with_runner && !runner_first {
            RUNNER.with(|r| *r.borrow_mut() = Some(Runner(Vec::new())));
        }
        yield_now(); // they park
        if with_runner {
            let keep: Vec<_> = handles.drain(..handles.len() / 2).collect();
            RUNNER.with(|r| r.borrow_mut().as_mut().unwrap().0.extend(keep));
        }
        drop(handles); // detached; the thread exits with them parked
    });
    // Meanwhile: feed and signal, at random moments.
    let mut put = BTreeSet::new();
    for i in 0..rng.below(5) {
        std::thread::sleep(Duration::from_micros(rng.below(300)));
        match rng.below(4) {
            0 => {
                prims.queue.put(i as u32).unwrap();
                put.insert(i as u32);
            }
            1 => prims.event.set(),
            2 => prims.sem.add_permits(1),
            _ => {}
        }
    }
    drop(guard);
    exiting.join().expect("the exiting thread must end cleanly");
    assert!(
        !RAN_ON_GONE.load(Ordering::SeqCst),
        "round {seed}: a greenlet ran on with a borrow of a destroyed thread-local"
    );
    // Every item put was taken by a greenlet or is still in the queue.
    let mut have: BTreeSet<u32> = TAKEN.lock().unwrap().iter().copied().collect();
    while let Ok(v) = prims.queue.try_get() {
        assert!(have.insert(v), "round {seed}: item {v} twice");
    }
    assert_eq!(have, put, "round {seed}: items lost");
    // The primitives still work for the living.
    prims.sem.add_permits(1);
    drop(prims.sem.acquire());
    drop(prims.mutex.lock());
}

#[test]
fn threads_exiting_with_greenlets_parked_in_thread_local_borrows_stay_sound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(Duration::from_secs(60), || {
        let rounds = std::env::var("GREENLET_THREAD_EXIT_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(150u64);
        for seed in 0..rounds {
            round(seed);
        }
    });
}

#[test]
fn a_thread_local_primitive_freed_by_another_thread_during_exit_is_not_touched() {
    // The exiting thread's thread-local holds the only other clone of the
    // queue its greenlet waits on; the main thread drops its own clone at
    // a random moment around the exit, so the queue is freed on either
    // thread, before or after the exiting hub lets go of it. Whatever the
    // order, nothing touches it once freed (the ASan job checks). Random
    // timing rarely hits the narrowest order (freed by the main thread
    // between the thread-local's destruction and the hub's); the
    // deterministic reproducer of that one is in `tests/soundness.rs`.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(Duration::from_secs(60), || {
        for seed in 0..100u64 {
            let mut rng = Rng::new(seed ^ 0x5151);
            DATA_GONE.store(false, Ordering::SeqCst);
            let queue: Queue<u32> = Queue::new();
            let theirs = queue.clone();
            let exiting = std::thread::spawn(move || {
                yield_now();
                DATA.with(|_| {});
                PRIMS.with(|p| {
                    *p.borrow_mut() = Some(Prims {
                        queue: theirs,
                        event: Event::new(),
                        sem: Arc::new(Semaphore::new(0)),
                        mutex: Arc::new(Mutex::new(0)),
                    })
                });
                let _parked = spawn(|| waiter(0));
                yield_now();
            });
            std::thread::sleep(Duration::from_micros(rng.below(200)));
            if rng.below(2) == 0 {
                let _ = queue.put(1);
            }
            drop(queue);
            exiting.join().expect("the exiting thread must end cleanly");
            assert!(!RAN_ON_GONE.load(Ordering::SeqCst), "round {seed}");
        }
    });
}

// ---- regressions (moved from tests/soundness.rs): each one the program that broke ----

// ---- stacks stay mapped under greenlets leaked at thread exit ----

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

// ---- waiters leaked at thread exit do not swallow hand-offs; the freeze ----

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
    static BORROWED: SetsOnDrop = const { SetsOnDrop(&BORROWED_GONE) };
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
    static LATE_BORROWED: SetsOnDrop = const { SetsOnDrop(&LATE_BORROWED_GONE) };
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
