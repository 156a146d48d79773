//! asyncio's "Hello world" demos, as greenlets: two tasks print, sleep one
//! second concurrently, and print again (the seed's Demo1/Demo2).
//!
//! ```text
//! $ cargo run --release --example hello_again
//! Hello world! (<Greenlet #1>)
//! Hello world! (<Greenlet #2>)
//! (about 1 s passes once, not twice)
//! Hello again! (<Greenlet #1>)
//! Hello again! (<Greenlet #2>)
//! both tasks done in 1.0 s
//! ```

use std::time::{Duration, Instant};

fn hello() {
    let me = greenlet::current().expect("runs in a greenlet");
    println!("Hello world! ({me})");
    // A cooperative sleep: the other task runs meanwhile.
    greenlet::sleep(Duration::from_secs(1));
    println!("Hello again! ({me})");
}

fn main() {
    let start = Instant::now();
    let tasks = vec![greenlet::spawn(hello), greenlet::spawn(hello)];
    for r in greenlet::joinall(tasks) {
        r.expect("task failed");
    }
    println!("both tasks done in {:.1} s", start.elapsed().as_secs_f64());
}
