//! Runs the example programs (which `cargo test` builds) and checks their
//! documented output: the seed programs ported from the gevent and asyncio
//! articles.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The built example `name`, next to this test binary's directory.
#[track_caller]
fn example(name: &str) -> Command {
    let mut dir: PathBuf = std::env::current_exe().expect("test binary path");
    dir.pop(); // deps/
    dir.pop(); // target/<profile>/
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    Command::new(path)
}

#[track_caller]
fn run(name: &str) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = example(name).output().expect("run example");
    let took = start.elapsed();
    assert!(
        status.success(),
        "example {name} failed: {status}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    let lines = String::from_utf8(stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect();
    (lines, took)
}

#[test]
fn hello_three_greenlets_take_turns() {
    let (lines, took) = run("hello");
    let mut expected = Vec::new();
    for i in 0..5 {
        for (id, name) in [(1, "g1"), (2, "g2"), (3, "g3")] {
            expected.push(format!("<Greenlet \"{name}\" #{id}> {i}"));
        }
    }
    assert_eq!(lines[..15], expected[..]);
    assert!(lines[15].starts_with("results: [5, 5, 5]"), "{}", lines[15]);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn hello_again_two_tasks_sleep_concurrently() {
    let (lines, took) = run("hello_again");
    assert_eq!(
        lines[..4],
        [
            "Hello world! (<Greenlet #1>)",
            "Hello world! (<Greenlet #2>)",
            "Hello again! (<Greenlet #1>)",
            "Hello again! (<Greenlet #2>)",
        ]
    );
    // Two one-second sleeps, overlapped.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_millis(1900), "{took:?}");
}

#[test]
fn gather_three_tasks_of_one_two_three_seconds_take_about_three() {
    let (lines, took) = run("gather");
    assert_eq!(
        lines[..9],
        [
            "Task A: Compute factorial(2)...",
            "Task B: Compute factorial(2)...",
            "Task C: Compute factorial(2)...",
            "Task A: factorial(2) = 2",
            "Task B: Compute factorial(3)...",
            "Task C: Compute factorial(3)...",
            "Task B: factorial(3) = 6",
            "Task C: Compute factorial(4)...",
            "Task C: factorial(4) = 24",
        ]
    );
    assert!(
        lines[9].starts_with("results: [2, 6, 24] in "),
        "{}",
        lines[9]
    );
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(took < Duration::from_millis(4500), "{took:?}");
}

#[test]
fn producer_consumer_hands_over_each_item_and_reply() {
    let (lines, _) = run("producer_consumer");
    let mut expected = Vec::new();
    for n in 1..=5 {
        expected.push(format!("[PRODUCER] Producing {n}..."));
        expected.push(format!("[CONSUMER] Consuming {n}..."));
        expected.push("[PRODUCER] Consumer return: 200 OK".to_owned());
    }
    expected.push("[CONSUMER] closed, consumed 5 items".to_owned());
    assert_eq!(lines, expected);
}

#[test]
fn ping_pong_alternates_a_and_b() {
    let (lines, _) = run("ping_pong");
    let mut expected: Vec<String> = (0..10)
        .map(|i| if i % 2 == 0 { "---A--" } else { "---B--" }.to_owned())
        .collect();
    expected.push("5 rounds of A/B switching done".to_owned());
    assert_eq!(lines, expected);
}

#[test]
fn cpu_bound_sum_lets_the_ticker_tick() {
    let (lines, _) = run("cpu_bound");
    let last = lines.last().expect("output");
    assert!(
        last.starts_with("1+...+19999999 = 199999990000000"),
        "{last}"
    );
    let ticks = lines.iter().filter(|l| l.starts_with("tick ")).count();
    // The ticker ran between the sum's yields, not only before or after.
    assert!(ticks >= 2, "the ticker ticked {ticks} times");
    assert!(last.contains(&format!("ticked {ticks} times")), "{last}");
}

#[test]
fn timeout_prints_timeout_after_about_a_second() {
    let (lines, took) = run("timeout");
    assert_eq!(lines, ["timeout!"]);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
