//! The generator producer/consumer from the seed article, with greenlets: the
//! producer hands each item to the consumer and waits for its reply, like
//! `c.send(n)`; two rendezvous queues (`Queue::bounded(0)`) carry the items
//! and the replies, and closing the item queue plays `c.close()`.
//!
//! ```text
//! $ cargo run --release --example producer_consumer
//! [PRODUCER] Producing 1...
//! [CONSUMER] Consuming 1...
//! [PRODUCER] Consumer return: 200 OK
//! ...
//! [PRODUCER] Producing 5...
//! [CONSUMER] Consuming 5...
//! [PRODUCER] Consumer return: 200 OK
//! [CONSUMER] closed, consumed 5 items
//! ```

use greenlet::sync::Queue;

fn main() {
    let items: Queue<u32> = Queue::bounded(0);
    let replies: Queue<&'static str> = Queue::bounded(0);

    let consumer = {
        let (items, replies) = (items.clone(), replies.clone());
        greenlet::spawn(move || {
            let mut consumed = 0;
            // The iterator ends when the producer closes the queue.
            for n in &items {
                println!("[CONSUMER] Consuming {n}...");
                consumed += 1;
                replies.put("200 OK").expect("producer went away");
            }
            println!("[CONSUMER] closed, consumed {consumed} items");
            consumed
        })
    };

    for n in 1..=5 {
        println!("[PRODUCER] Producing {n}...");
        items.put(n).expect("consumer went away");
        let r = replies.get().expect("consumer went away");
        println!("[PRODUCER] Consumer return: {r}");
    }
    items.close();
    assert_eq!(consumer.join().expect("consumer failed"), 5);
}
