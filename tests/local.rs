//! Greenlet-local storage: `greenlet::local!` and `greenlet::Local`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

greenlet::local! {
    static COUNTER: Cell<u32> = Cell::new(0);
    static NAME: RefCell<String> = RefCell::new(String::from("unset"));
}

#[test]
fn each_greenlet_sees_its_own_value() {
    let gs: Vec<_> = (0..50)
        .map(|i| {
            greenlet::spawn(move || {
                assert_eq!(
                    COUNTER.get(),
                    0,
                    "a fresh greenlet starts from the initializer"
                );
                COUNTER.set(i);
                greenlet::sleep(Duration::from_millis(1));
                COUNTER.set(COUNTER.get() * 2);
                greenlet::yield_now();
                COUNTER.get()
            })
        })
        .collect();
    let got: Vec<u32> = greenlet::joinall(gs)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn root_context_has_a_per_thread_value() {
    NAME.set(String::from("root"));
    let in_greenlet = greenlet::spawn(|| NAME.with_borrow(|n| n.clone()))
        .join()
        .unwrap();
    assert_eq!(in_greenlet, "unset");
    assert_eq!(NAME.with_borrow(|n| n.clone()), "root");
    let other_thread = std::thread::spawn(|| NAME.take()).join().unwrap();
    assert_eq!(other_thread, "unset");
    assert_eq!(NAME.replace(String::from("x")), "root");
}

#[test]
fn borrow_held_across_a_park_is_private() {
    // The pattern that breaks with a plain `thread_local!` RefCell.
    let gs: Vec<_> = (0..10)
        .map(|i| {
            greenlet::spawn(move || {
                NAME.with_borrow_mut(|n| {
                    n.clear();
                    n.push_str("greenlet ");
                    greenlet::yield_now(); // the others borrow theirs meanwhile
                    n.push_str(&i.to_string());
                });
                NAME.with_borrow(|n| n.clone())
            })
        })
        .collect();
    for (i, r) in greenlet::joinall(gs).into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("greenlet {i}"));
    }
}

struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

greenlet::local! {
    static FLAG: RefCell<Option<DropFlag>> = RefCell::new(None);
}

#[test]
fn values_are_dropped_when_the_greenlet_finishes_or_is_killed() {
    let dropped = Rc::new(Cell::new(false));
    let g = greenlet::spawn({
        let dropped = dropped.clone();
        move || FLAG.set(Some(DropFlag(dropped)))
    });
    g.join().unwrap();
    assert!(dropped.get());

    let dropped = Rc::new(Cell::new(false));
    let g = greenlet::spawn({
        let dropped = dropped.clone();
        move || {
            FLAG.set(Some(DropFlag(dropped)));
            greenlet::sleep(Duration::from_secs(60));
        }
    });
    greenlet::yield_now();
    assert!(!dropped.get());
    g.kill();
    assert!(dropped.get());
}

#[test]
fn local_new_in_a_static() {
    static HITS: greenlet::Local<Cell<u8>> = greenlet::Local::new(|| Cell::new(1));
    HITS.set(HITS.get() + 1);
    assert_eq!(HITS.get(), 2);
    assert_eq!(greenlet::spawn(|| HITS.get()).join().unwrap(), 1);
}
