use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Direction, Registration};

/// Several tasks waiting on one direction of one registration: the
/// first is held inline, the others in the list behind it. One that
/// leaves (its wait timed out) hands the inline place to the next, so
/// one that comes later still queues behind the others, and an event
/// wakes them all in the order they came.
#[test]
fn waiters_on_one_fd_keep_their_order_when_the_first_leaves() {
    crate::test_util::within(Duration::from_secs(30), || {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let reg = Rc::new(Registration::new(a.as_raw_fd()).unwrap());
        reg.clear_readiness(Direction::Read);
        let woke = Rc::new(RefCell::new(Vec::new()));
        let waiter = |i: u32, deadline: Option<Instant>| {
            let (reg, woke) = (reg.clone(), woke.clone());
            crate::spawn(move || {
                let r = reg.wait(Direction::Read, deadline);
                woke.borrow_mut().push(i);
                r.map_err(|e| e.kind())
            })
        };
        let soon = Some(Instant::now() + Duration::from_millis(20));
        let first = waiter(1, soon);
        let mut rest: Vec<_> = (2..=4).map(|i| waiter(i, None)).collect();
        crate::sleep(Duration::from_millis(5));
        let count = |reg: &Registration| reg.with_slot(|s| s.readers.len()).expect("slot in use");
        assert_eq!(count(&reg), 4);
        assert_eq!(first.join().unwrap(), Err(std::io::ErrorKind::TimedOut));
        assert_eq!(count(&reg), 3, "the timed-out first waiter left");
        // One more comes after them all, and is woken after them.
        rest.push(waiter(5, None));
        crate::sleep(Duration::from_millis(5));
        assert_eq!(count(&reg), 4);
        b.write_all(b"x").unwrap();
        for g in rest {
            assert_eq!(g.join().unwrap(), Ok(()));
        }
        assert_eq!(*woke.borrow(), [1, 2, 3, 4, 5]);
        assert_eq!(count(&reg), 0);
    });
}
