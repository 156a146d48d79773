//! The seed's CPU-bound task: summing 0..20,000,000 without blocking the
//! others. It yields every 1,000,000 additions (`yield_now`, gevent's
//! `sleep(0)`), so a ticker greenlet keeps ticking while it computes.
//!
//! ```text
//! $ cargo run --release --example cpu_bound
//! tick 1
//! ...
//! 1+...+19999999 = 199999990000000 (the ticker ticked N times meanwhile)
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

fn main() {
    let done = Rc::new(Cell::new(false));
    let ticker = {
        let done = done.clone();
        greenlet::spawn(move || {
            let mut ticks = 0u32;
            while !done.get() {
                ticks += 1;
                println!("tick {ticks}");
                greenlet::sleep(Duration::from_millis(1));
            }
            ticks
        })
    };
    let summer = greenlet::spawn(move || {
        let mut sum: u64 = 0;
        for (count, a) in (0..20_000_000u64).enumerate() {
            // black_box: keep the compiler from folding the loop away, so
            // the work (and the yields) are real.
            sum += std::hint::black_box(a);
            if count % 1_000_000 == 999_999 {
                greenlet::yield_now(); // let the ticker run
            }
        }
        done.set(true);
        sum
    });
    let sum = summer.join().expect("summer failed");
    let ticks = ticker.join().expect("ticker failed");
    assert_eq!(sum, (0..20_000_000u64).sum::<u64>());
    println!("1+...+19999999 = {sum} (the ticker ticked {ticks} times meanwhile)");
}
