use std::time::{Duration, Instant};
fn main() {
    let t = Instant::now();
    let gs: Vec<_> = (0..5).map(|i| greenlet::spawn(move || { for j in 0..3 { println!("{i} {j} {:?}", greenlet::current()); greenlet::sleep(Duration::from_millis(10)); } i })).collect();
    println!("{:?}", greenlet::joinall(gs).into_iter().map(|r| r.unwrap()).collect::<Vec<_>>());
    let g = greenlet::spawn(|| panic!("boom"));
    println!("{:?}", g.join());
    let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(10)));
    greenlet::sleep(Duration::from_millis(5));
    g.kill();
    println!("killed: {:?} {:?}", g.is_finished(), g.join());
    println!("{:?}", greenlet::with_timeout(Duration::from_millis(20), || greenlet::sleep(Duration::from_secs(5))));
    println!("{:?}", greenlet::with_timeout(Duration::from_millis(50), || greenlet::with_timeout(Duration::from_millis(10), || greenlet::sleep(Duration::from_secs(5)))));
    println!("{:?}", t.elapsed());
    let t = Instant::now();
    let gs: Vec<_> = (0..100_000).map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(1)))).collect();
    greenlet::joinall(gs);
    println!("100k sleep 1s: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..1_000_000 { greenlet::spawn(|| ()).join().unwrap(); }
    println!("spawn+join: {:?}/each", t.elapsed() / 1_000_000);
    let a = greenlet::spawn(|| for _ in 0..1_000_000 { greenlet::yield_now() });
    let b = greenlet::spawn(|| for _ in 0..1_000_000 { greenlet::yield_now() });
    let t = Instant::now();
    a.join().unwrap(); b.join().unwrap();
    println!("switch: {:?}", t.elapsed() / 2_000_000);
}
