//! asyncio's `wait_for` example: an "eternity" task sleeps an hour; waiting
//! for it at most one second prints `timeout!`.
//!
//! ```text
//! $ cargo run --release --example timeout
//! timeout!
//! ```

use std::time::Duration;

fn eternity() {
    greenlet::sleep(Duration::from_secs(3600));
    println!("yay!");
}

fn main() {
    match greenlet::with_timeout(Duration::from_secs(1), eternity) {
        Ok(()) => println!("finished"),
        Err(greenlet::Elapsed { .. }) => println!("timeout!"),
    }
}
