//! Stacks: many parked greenlets, sizes, guard pages and the overflow
//! reporter.
//!
//! The fatal cases (stack overflow, segfault) run in a child process: the
//! test re-runs its own binary with `GREENLET_TEST_CHILD` set and only
//! itself selected, and checks how the child died and what it printed.

mod util;

use std::cell::Cell;
use std::hint::black_box;
use std::io;
use std::panic::catch_unwind;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::Builder;
use greenlet::stack::{DEFAULT_STACK_SIZE, GuardKind, MIN_STACK_SIZE, guard_kind};
use util::{assert_child_passed, assert_died_by_signal, child_mode, describe, run_child};

const KIB: usize = 1024;

/// Recurses, 1 KiB per frame at least, until `top - (current frame)` is at
/// least `target` bytes; returns the lowest address reached. Frame sizes
/// differ between debug and release, so depth is measured, not counted.
#[inline(never)]
fn use_stack(top: usize, target: usize) -> usize {
    let buf = black_box([0xa5u8; 1024]);
    let here = buf.as_ptr() as usize;
    if top.saturating_sub(here) >= target {
        return here;
    }
    let deepest = use_stack(top, target);
    // Use `buf` after the call so the recursion is not a tail call.
    black_box(&buf);
    deepest
}

/// Uses at least `target` bytes of the current stack; returns
/// `(top, deepest)` addresses.
fn stack_use(target: usize) -> (usize, usize) {
    let marker = black_box(0u8);
    let top = &marker as *const u8 as usize;
    let deepest = use_stack(black_box(top), black_box(target));
    (top, deepest)
}

/// The guard mechanism, once a first stack has been made (it is decided on
/// first use).
fn guard_kind_in_use() -> GuardKind {
    greenlet::spawn(|| ()).join().unwrap();
    guard_kind()
}

#[test]
fn default_stack_size_is_256_kib() {
    assert_eq!(DEFAULT_STACK_SIZE, 256 * KIB);
    const { assert!(MIN_STACK_SIZE <= DEFAULT_STACK_SIZE) };
}

#[test]
fn hundred_thousand_parked_greenlets() {
    if child_mode().as_deref() == Some("map_limit") {
        map_limit_child();
        return;
    }
    if guard_kind_in_use() == GuardKind::Mprotect {
        // Every stack costs two mappings: 100,000 cannot fit under the
        // default vm.max_map_count (65,530). Hitting the limit must be a
        // clear error. It runs in a child process so that exhausting the
        // process's mappings cannot starve the tests running beside it.
        let out = run_child("hundred_thousand_parked_greenlets", "map_limit", &[]);
        assert_child_passed(&out);
        return;
    }

    const N: usize = 100_000;
    let alive = Rc::new(Cell::new(0usize));
    let max_alive = Rc::new(Cell::new(0usize));
    let t = Instant::now();
    let gs: Vec<_> = (0..N)
        .map(|i| {
            let alive = alive.clone();
            let max_alive = max_alive.clone();
            greenlet::spawn(move || {
                alive.set(alive.get() + 1);
                max_alive.set(max_alive.get().max(alive.get()));
                greenlet::sleep(Duration::from_millis(200));
                alive.set(alive.get() - 1);
                i
            })
        })
        .collect();
    let mut count = 0;
    for (i, r) in greenlet::joinall(gs).into_iter().enumerate() {
        assert_eq!(r.unwrap(), i);
        count += 1;
    }
    assert_eq!(count, N);
    assert_eq!(max_alive.get(), N, "not all greenlets were alive at once");
    assert_eq!(alive.get(), 0);
    // Spawn, park, wake and join 100,000: measured ~0.4 s in release and
    // ~0.8 s in debug on 2 cores. The bounds leave 10x for a loaded machine.
    let limit = Duration::from_secs(if cfg!(debug_assertions) { 8 } else { 4 });
    assert!(
        t.elapsed() < limit,
        "100,000 greenlets took {:?}",
        t.elapsed()
    );
}

/// Whether this process has the stack provisioner thread.
fn provisioner_thread_running() -> bool {
    std::fs::read_dir("/proc/self/task").unwrap().any(|t| {
        let comm = t.unwrap().path().join("comm");
        std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "greenlet-stacks")
    })
}

/// The child of `the_stack_provisioner_runs_only_where_it_can_help`:
/// 3,000 greenlets parked at once, so fresh stacks are taken while many
/// wait; the provisioner thread must exist exactly when `expect` says.
fn provisioner_child(expect: bool) {
    const N: usize = 3000;
    let gs: Vec<_> = (0..N)
        .map(|i| {
            greenlet::spawn(move || {
                greenlet::sleep(Duration::from_millis(50));
                i
            })
        })
        .collect();
    for (i, r) in greenlet::joinall(gs).into_iter().enumerate() {
        assert_eq!(r.unwrap(), i);
    }
    assert_eq!(provisioner_thread_running(), expect);
}

#[test]
fn the_stack_provisioner_runs_only_where_it_can_help() {
    match child_mode().as_deref() {
        Some("provisioner_off") => return provisioner_child(false),
        Some("provisioner_on") => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let expect = cpus >= 2 && guard_kind_in_use() == GuardKind::MadviseGuard;
            return provisioner_child(expect);
        }
        _ => {}
    }
    let name = "the_stack_provisioner_runs_only_where_it_can_help";
    let limit = Duration::from_secs(60);
    let on = util::run_child_within(
        name,
        "provisioner_on",
        &[("GREENLET_STACK_PROVISIONER", "1")],
        limit,
    );
    assert_child_passed(&on);
    let off = util::run_child_within(
        name,
        "provisioner_off",
        &[("GREENLET_STACK_PROVISIONER", "0")],
        limit,
    );
    assert_child_passed(&off);
}

/// Child of `hundred_thousand_parked_greenlets` under the `mprotect` guard:
/// spawn until the mapping limit is hit.
fn map_limit_child() {
    assert_eq!(guard_kind_in_use(), GuardKind::Mprotect);
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530);
    // On a separate thread, so the hub (and all its mappings) is gone when
    // the thread ends and the assertions below have memory to work with.
    let (msg, kind, spawned, reused) = std::thread::spawn(move || {
        // Allocate up front: near the limit even malloc can fail.
        let mut gs = Vec::with_capacity(limit + 1);
        let err: io::Error = loop {
            match Builder::new().spawn(|| ()) {
                Ok(g) => gs.push(g),
                Err(e) => break e,
            }
            assert!(
                gs.len() <= limit,
                "{} guarded stacks under vm.max_map_count = {limit}?",
                gs.len()
            );
        };
        let spawned = gs.len();
        let msg = err.to_string();
        let kind = err.kind();
        drop(err);
        // Not a crash: stacks of killed (never started) greenlets go back
        // to the pool and serve new greenlets.
        for g in gs.drain(..) {
            g.kill();
        }
        let reused = greenlet::spawn(|| 7).join().unwrap();
        (msg, kind, spawned, reused)
    })
    .join()
    .unwrap();
    assert!(
        msg.contains("vm.max_map_count"),
        "the error must name vm.max_map_count: {msg}"
    );
    assert_eq!(kind, io::ErrorKind::OutOfMemory, "{msg}");
    assert!(spawned > 1000 && spawned < 100_000, "spawned {spawned}");
    assert_eq!(reused, 7);
}

#[test]
fn builder_stack_size_gives_room_for_deep_calls() {
    let g = Builder::new()
        .stack_size(512 * KIB)
        .spawn(|| {
            let (top, deepest) = stack_use(100 * KIB);
            top - deepest
        })
        .unwrap();
    let used = g.join().unwrap();
    assert!((100 * KIB..512 * KIB).contains(&used), "used {used} bytes");
}

#[test]
fn the_default_stack_holds_a_deep_call() {
    let used = greenlet::spawn(|| {
        let (top, deepest) = stack_use(128 * KIB);
        top - deepest
    })
    .join()
    .unwrap();
    assert!(used >= 128 * KIB, "used {used} bytes");
}

#[test]
fn tiny_stack_sizes_are_rounded_up() {
    for size in [0, 1, 4096, MIN_STACK_SIZE - 1, MIN_STACK_SIZE] {
        let g = Builder::new().stack_size(size).spawn(move || size).unwrap();
        assert_eq!(g.join().unwrap(), size);
    }
}

#[test]
fn an_impossible_stack_size_is_an_error_not_a_panic() {
    // Builder::spawn documents an io::Error when no stack can be had.
    for size in [1usize << 60, usize::MAX - 100, usize::MAX] {
        let r = catch_unwind(|| Builder::new().stack_size(size).spawn(|| ()).map(drop));
        match r {
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Ok(Ok(())) => panic!("got a stack of {size} bytes"),
            Err(p) => panic!(
                "Builder::stack_size({size}).spawn panicked instead of returning an error: {}",
                util::payload_message(&*p)
            ),
        }
    }
    assert_eq!(greenlet::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn stacks_of_different_sizes_coexist_and_are_reused() {
    let sizes = [32 * KIB, 64 * KIB, 100 * KIB, 256 * KIB, KIB * KIB];
    for round in 0..3 {
        let gs: Vec<_> = sizes
            .iter()
            .map(|&s| {
                Builder::new()
                    .stack_size(s)
                    .spawn(move || {
                        let (top, deepest) = stack_use(s / 4);
                        greenlet::sleep(Duration::from_millis(1));
                        (top - deepest) >= s / 4
                    })
                    .unwrap()
            })
            .collect();
        for r in greenlet::joinall(gs) {
            assert!(r.unwrap(), "round {round}");
        }
    }
}

#[test]
fn a_deep_call_does_not_pin_stack_memory() {
    let page = 4096;
    let (top, deepest) = greenlet::spawn(|| stack_use(200 * KIB)).join().unwrap();
    assert!(top - deepest >= 200 * KIB);
    let deep_page = deepest & !(page - 1);
    assert!(
        resident(deep_page, page),
        "the deep page should still be resident right after the greenlet ends"
    );
    // Let the hub go idle: released stacks are trimmed then.
    greenlet::sleep(Duration::from_millis(5));
    assert!(
        !resident(deep_page, page),
        "a finished greenlet's deep stack pages were not given back"
    );
}

/// Whether the page at `addr` is resident (`mincore`).
fn resident(addr: usize, page: usize) -> bool {
    let mut vec = [0u8; 1];
    // SAFETY: `addr` is page-aligned and inside a mapping this process
    // owns (a pooled stack); `vec` has room for one page.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, page, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
    vec[0] & 1 == 1
}

// ---------------------------------------------------------------------------
// Fatal faults, in child processes.

/// The child scenarios; each runs in the child's test thread.
fn run_fatal_child(mode: &str) {
    match mode {
        "overflow_named" => {
            let g = Builder::new()
                .name("deep-diver")
                .stack_size(64 * KIB)
                .spawn(|| stack_use(usize::MAX))
                .unwrap();
            let _ = g.join();
        }
        "overflow_default" => {
            // Unnamed, default size from GREENLET_STACK_SIZE (set by the
            // parent).
            let _ = greenlet::spawn(|| stack_use(usize::MAX)).join();
        }
        "segv_greenlet" => {
            let _ = greenlet::spawn(|| {
                greenlet::sleep(Duration::from_millis(1));
                wild_write();
            })
            .join();
        }
        "segv_root" => {
            // A hub exists (so the reporter is installed), but the fault
            // happens in root context.
            greenlet::spawn(|| ()).join().unwrap();
            wild_write();
        }
        "root_overflow" => {
            greenlet::spawn(|| ()).join().unwrap();
            stack_use(usize::MAX);
        }
        other => panic!("unknown child mode {other}"),
    }
    panic!("child mode {mode} survived its fault");
}

/// Writes to an unmapped address that is not any stack's guard page.
fn wild_write() {
    // Non-null and aligned (so debug assertions do not catch it first),
    // but in the never-mapped first page.
    let p = std::ptr::without_provenance_mut::<u64>(black_box(64));
    // SAFETY: not safe at all: this is the fault under test.
    unsafe { std::ptr::write_volatile(p, 1) };
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stack_overflow_in_a_named_greenlet_is_reported_and_aborts() {
    if let Some(mode) = child_mode() {
        return run_fatal_child(&mode);
    }
    let out = run_child(
        "stack_overflow_in_a_named_greenlet_is_reported_and_aborts",
        "overflow_named",
        &[],
    );
    assert_died_by_signal(&out, libc::SIGABRT);
    let stderr = stderr_of(&out);
    let line = stderr
        .lines()
        .find(|l| l.contains("overflowed its"))
        .unwrap_or_else(|| panic!("no overflow report\n{}", describe(&out)));
    assert!(line.contains("'deep-diver'"), "{line}");
    assert!(line.contains("64 KiB stack"), "{line}");
    assert!(
        line.contains("Builder::stack_size") && line.contains("GREENLET_STACK_SIZE"),
        "the report should say how to fix it: {line}"
    );
}

#[test]
fn stack_overflow_in_an_unnamed_greenlet_reports_its_id_and_env_size() {
    if let Some(mode) = child_mode() {
        return run_fatal_child(&mode);
    }
    let out = run_child(
        "stack_overflow_in_an_unnamed_greenlet_reports_its_id_and_env_size",
        "overflow_default",
        &[("GREENLET_STACK_SIZE", "128K")],
    );
    assert_died_by_signal(&out, libc::SIGABRT);
    let stderr = stderr_of(&out);
    let line = stderr
        .lines()
        .find(|l| l.contains("overflowed its"))
        .unwrap_or_else(|| panic!("no overflow report\n{}", describe(&out)));
    assert!(line.contains("greenlet #"), "{line}");
    assert!(line.contains("128 KiB stack"), "{line}");
}

#[test]
fn a_segfault_elsewhere_is_not_reported_as_an_overflow() {
    if let Some(mode) = child_mode() {
        return run_fatal_child(&mode);
    }
    for mode in ["segv_greenlet", "segv_root"] {
        let out = run_child(
            "a_segfault_elsewhere_is_not_reported_as_an_overflow",
            mode,
            &[],
        );
        assert_died_by_signal(&out, libc::SIGSEGV);
        let stderr = stderr_of(&out);
        assert!(
            !stderr.contains("overflowed its"),
            "{mode}: a wild write was reported as a stack overflow\n{}",
            describe(&out)
        );
    }
}

#[test]
fn a_root_stack_overflow_still_gets_std_s_report() {
    if let Some(mode) = child_mode() {
        return run_fatal_child(&mode);
    }
    let out = run_child(
        "a_root_stack_overflow_still_gets_std_s_report",
        "root_overflow",
        &[],
    );
    assert_died_by_signal(&out, libc::SIGABRT);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("has overflowed its stack"),
        "std's own report is missing\n{}",
        describe(&out)
    );
    assert!(
        !stderr.contains("greenlet '") && !stderr.contains("greenlet #"),
        "a thread overflow was blamed on a greenlet\n{}",
        describe(&out)
    );
}
