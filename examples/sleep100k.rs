use std::time::{Duration, Instant};
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    for _ in 0..2 {
    let t = Instant::now();
    let gs: Vec<_> = (0..n).map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(1)))).collect();
    let spawned = t.elapsed();
    greenlet::joinall(gs);
    println!("{n} sleep 1s: {:?} (spawn {:?})", t.elapsed(), spawned);
    }
}
