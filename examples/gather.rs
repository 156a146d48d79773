//! asyncio's `gather` example: three factorials computed concurrently, one
//! step per second, so tasks of 1, 2 and 3 s finish in about 3 s in all;
//! `joinall` returns the results in input order.
//!
//! ```text
//! $ cargo run --release --example gather
//! Task A: Compute factorial(2)...
//! Task B: Compute factorial(2)...
//! Task C: Compute factorial(2)...
//! Task A: factorial(2) = 2
//! Task B: Compute factorial(3)...
//! Task C: Compute factorial(3)...
//! Task B: factorial(3) = 6
//! Task C: Compute factorial(4)...
//! Task C: factorial(4) = 24
//! results: [2, 6, 24] in 3.0 s
//! ```

use std::time::{Duration, Instant};

fn factorial(name: &str, number: u64) -> u64 {
    let mut f = 1;
    for i in 2..=number {
        println!("Task {name}: Compute factorial({i})...");
        greenlet::sleep(Duration::from_secs(1));
        f *= i;
    }
    println!("Task {name}: factorial({number}) = {f}");
    f
}

fn main() {
    let start = Instant::now();
    let tasks = vec![
        greenlet::spawn(|| factorial("A", 2)),
        greenlet::spawn(|| factorial("B", 3)),
        greenlet::spawn(|| factorial("C", 4)),
    ];
    let results: Vec<u64> = greenlet::joinall(tasks)
        .into_iter()
        .map(|r| r.expect("task failed"))
        .collect();
    println!(
        "results: {results:?} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
