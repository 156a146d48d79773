//! The seed's explicit switching between two greenlets (`gr1.switch()` /
//! `gr2.switch()`): A and B hand control to each other, each printing its
//! letter, for a fixed number of rounds. Each side waits on its own
//! rendezvous queue and wakes the other by putting into the other's.
//!
//! ```text
//! $ cargo run --release --example ping_pong
//! ---A--
//! ---B--
//! ---A--
//! ---B--
//! ...
//! 5 rounds of A/B switching done
//! ```

use std::time::Duration;

use greenlet::sync::Queue;

const ROUNDS: usize = 5;

fn player(name: &'static str, mine: Queue<()>, theirs: Queue<()>, starts: bool) -> usize {
    let mut turns = 0;
    if !starts {
        mine.get().expect("partner left");
    }
    for round in 0..ROUNDS {
        println!("---{name}--");
        turns += 1;
        // The seed sleeps 0.5 s between switches; a short pause keeps the
        // example quick.
        greenlet::sleep(Duration::from_millis(50));
        theirs.put(()).expect("partner left"); // switch to the other one
        let last_turn = !starts && round == ROUNDS - 1;
        if !last_turn {
            mine.get().expect("partner left"); // ... until it switches back
        }
    }
    turns
}

fn main() {
    let (to_a, to_b) = (Queue::bounded(0), Queue::bounded(0));
    let a = {
        let (mine, theirs) = (to_a.clone(), to_b.clone());
        greenlet::spawn(move || player("A", mine, theirs, true))
    };
    let b = greenlet::spawn(move || player("B", to_b, to_a, false));
    let turns = [a.join().expect("A failed"), b.join().expect("B failed")];
    assert_eq!(turns, [ROUNDS, ROUNDS]);
    println!("{ROUNDS} rounds of A/B switching done");
}
