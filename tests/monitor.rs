//! The blocked-hub monitor.
//!
//! The monitor is process-wide and starts once, so every test here shares
//! one instance (threshold [`THRESHOLD`]) and picks its own reports out by
//! greenlet name.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use greenlet::monitor::{self, Report, ReportKind};

const THRESHOLD: Duration = Duration::from_millis(50);

/// Starts the shared monitor (once) and returns its report log.
fn reports() -> &'static Mutex<Vec<Report>> {
    static REPORTS: OnceLock<&'static Mutex<Vec<Report>>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let log: &'static Mutex<Vec<Report>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        assert!(
            monitor::start_with(THRESHOLD, move |r| log.lock().unwrap().push(r.clone())),
            "the monitor was already running"
        );
        log
    })
}

/// The reports about the greenlet called `name`.
fn reports_for(name: &str) -> Vec<Report> {
    reports()
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.greenlet_name.as_deref() == Some(name))
        .cloned()
        .collect()
}

#[test]
fn a_greenlet_that_blocks_the_thread_is_reported_once_per_episode() {
    reports();
    assert!(monitor::is_running());
    let name = "hog-blocks-twice";
    let g = greenlet::Builder::new()
        .name(name)
        .spawn(|| {
            // Two episodes of blocking the OS thread, separated by a switch.
            std::thread::sleep(Duration::from_millis(300));
            greenlet::yield_now();
            std::thread::sleep(Duration::from_millis(300));
        })
        .unwrap();
    let id = g.id().as_u64();
    g.join().unwrap();
    // Let the watchdog finish its last tick.
    std::thread::sleep(THRESHOLD);
    let mine = reports_for(name);
    assert_eq!(
        mine.len(),
        2,
        "expected one report per blocked episode, got {mine:#?}"
    );
    let thread = std::thread::current().name().map(str::to_owned);
    for r in &mine {
        assert_eq!(r.greenlet_id, id);
        assert!(r.blocked_for >= THRESHOLD, "{r:?}");
        assert!(r.blocked_for < Duration::from_millis(300), "{r:?}");
        assert_eq!(r.thread, thread, "the report names the hub's thread");
        let shown = r.to_string();
        assert!(shown.contains(name), "{shown}");
    }
}

#[test]
fn a_hub_that_keeps_switching_is_not_reported() {
    reports();
    let names = ["busy-a", "busy-b"];
    let gs: Vec<_> = names
        .iter()
        .map(|&name| {
            greenlet::Builder::new()
                .name(name)
                .spawn(|| {
                    // CPU-bound, but yielding every millisecond or so.
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(300) {
                        let step = Instant::now();
                        while step.elapsed() < Duration::from_micros(500) {
                            std::hint::spin_loop();
                        }
                        greenlet::yield_now();
                    }
                })
                .unwrap()
        })
        .collect();
    greenlet::joinall(gs);
    // Also sleeping greenlets: an idle hub is not blocked either.
    greenlet::Builder::new()
        .name("sleepy")
        .spawn(|| greenlet::sleep(Duration::from_millis(200)))
        .unwrap()
        .join()
        .unwrap();
    std::thread::sleep(THRESHOLD);
    for name in names.into_iter().chain(["sleepy"]) {
        let mine = reports_for(name);
        assert!(mine.is_empty(), "{name} was reported: {mine:#?}");
    }
}

#[test]
fn the_root_blocking_is_not_blamed_on_a_greenlet() {
    reports();
    // A greenlet runs and parks; then the root blocks the thread. No
    // greenlet is running, so nobody is reported.
    let g = greenlet::Builder::new()
        .name("parked-while-root-blocks")
        .spawn(|| greenlet::sleep(Duration::from_millis(300)))
        .unwrap();
    greenlet::yield_now();
    std::thread::sleep(Duration::from_millis(200));
    g.join().unwrap();
    std::thread::sleep(THRESHOLD);
    let mine = reports_for("parked-while-root-blocks");
    assert!(mine.is_empty(), "{mine:#?}");
}

#[test]
fn a_result_whose_drop_blocks_the_hub_is_blamed_on_its_greenlet() {
    reports();
    /// Blocks the OS thread when dropped.
    struct SlowDrop;
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // Nobody joins: the loop drops the result as the greenlet finishes,
    // between two greenlet runs. The monitor reports that, not silence.
    let g = greenlet::spawn(|| SlowDrop);
    let id = g.id().as_u64();
    drop(g);
    let started = Instant::now();
    greenlet::sleep(Duration::from_millis(1));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the result was not dropped by the loop"
    );
    std::thread::sleep(THRESHOLD);
    // Ids are per hub: the test threads' hubs each have a greenlet #1.
    let thread = std::thread::current().name().map(str::to_owned);
    let mine: Vec<Report> = reports()
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.thread == thread && r.greenlet_id == id && r.kind == ReportKind::Running)
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert!(mine[0].blocked_for >= THRESHOLD, "{mine:#?}");
}

/// The reports about the hub of the thread called `thread`.
fn reports_for_thread(thread: &str, kind: ReportKind) -> Vec<Report> {
    reports()
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.thread.as_deref() == Some(thread) && r.kind == kind)
        .cloned()
        .collect()
}

#[test]
fn root_context_code_that_blocks_the_thread_for_300_ms_is_reported() {
    reports();
    let name = "root-blocker";
    std::thread::Builder::new()
        .name(name.into())
        .spawn(|| {
            greenlet::yield_now(); // the hub exists and the root left it
            std::thread::sleep(Duration::from_millis(300));
            greenlet::yield_now();
        })
        .unwrap()
        .join()
        .unwrap();
    std::thread::sleep(THRESHOLD);
    let mine = reports_for_thread(name, ReportKind::Root);
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let r = &mine[0];
    assert!(
        r.blocked_for >= THRESHOLD && r.blocked_for < Duration::from_millis(300),
        "{r:?}"
    );
    assert_eq!(r.greenlet_id, 0);
    assert!(r.to_string().contains("root-context code"), "{r}");
}

#[test]
fn a_hub_asleep_with_only_sync_waits_is_reported_once_with_its_dump() {
    reports();
    let name = "idle-on-sync";
    let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
    let q2 = q.clone();
    let t = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _waiter = greenlet::Builder::new()
                .name("idle-getter")
                .spawn({
                    let q = q2.clone();
                    move || q.get()
                })
                .unwrap();
            // The root waits too: nothing but the queue can wake the hub.
            q2.get().unwrap()
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(t.join().unwrap() > 0);
    std::thread::sleep(THRESHOLD);
    let mine = reports_for_thread(name, ReportKind::IdleOnSync);
    assert_eq!(mine.len(), 1, "once per episode: {mine:#?}");
    let dump = mine[0]
        .dump
        .as_deref()
        .expect("the report carries the dump");
    assert!(dump.contains("'idle-getter' [Queue #"), "{dump}");
    assert!(dump.contains("root [Queue #"), "{dump}");
    assert!(
        mine[0].to_string().contains("sync primitives"),
        "{}",
        mine[0]
    );
}
