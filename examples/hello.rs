//! The gevent "switching" example: three greenlets run `f(5)`, each printing
//! its name and step, sleeping between steps so they take turns.
//!
//! ```text
//! $ cargo run --release --example hello
//! <Greenlet "g1" #1> 0
//! <Greenlet "g2" #2> 0
//! <Greenlet "g3" #3> 0
//! <Greenlet "g1" #1> 1
//! ...
//! results: [5, 5, 5] in 0.5 s (three greenlets slept 5 x 100 ms each, concurrently)
//! ```

use std::time::{Duration, Instant};

fn f(n: usize) -> usize {
    for i in 0..n {
        println!("{} {i}", greenlet::current().expect("runs in a greenlet"));
        // A cooperative sleep: the other greenlets run meanwhile.
        greenlet::sleep(Duration::from_millis(100));
    }
    n
}

fn main() {
    let start = Instant::now();
    let greenlets: Vec<_> = ["g1", "g2", "g3"]
        .into_iter()
        .map(|name| {
            greenlet::Builder::new()
                .name(name)
                .spawn(|| f(5))
                .expect("spawn")
        })
        .collect();
    let results: Vec<usize> = greenlet::joinall(greenlets)
        .into_iter()
        .map(|r| r.expect("greenlet failed"))
        .collect();
    println!(
        "results: {results:?} in {:.1} s (three greenlets slept 5 x 100 ms each, concurrently)",
        start.elapsed().as_secs_f64()
    );
}
