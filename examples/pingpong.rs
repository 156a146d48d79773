use std::time::Instant;
fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5_000_000);
    let a = greenlet::spawn(move || for _ in 0..n { greenlet::yield_now() });
    let b = greenlet::spawn(move || for _ in 0..n { greenlet::yield_now() });
    let t = Instant::now();
    a.join().unwrap(); b.join().unwrap();
    println!("switch: {:.2} ns", t.elapsed().as_nanos() as f64 / (2 * n) as f64);
}
