//! Greenlet-local storage: `greenlet::local!` and `greenlet::Local`.

mod util;

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

/// Records whether it was dropped inside a greenlet.
struct RecordsWhereDropped(Rc<Cell<Option<bool>>>);

impl Drop for RecordsWhereDropped {
    fn drop(&mut self) {
        self.0.set(Some(greenlet::current().is_some()));
    }
}

/// Makes another greenlet-local value, then panics, when dropped.
struct PanicsAfterMakingALocal(Rc<Cell<Option<bool>>>);

impl Drop for PanicsAfterMakingALocal {
    fn drop(&mut self) {
        MADE_IN_DROP.set(Some(RecordsWhereDropped(self.0.clone())));
        panic!("a local's destructor panicked");
    }
}

greenlet::local! {
    static PANICS_IN_DROP: RefCell<Option<PanicsAfterMakingALocal>> = RefCell::new(None);
    static MADE_IN_DROP: RefCell<Option<RecordsWhereDropped>> = RefCell::new(None);
}

/// A panic in one local's destructor does not leave the locals made
/// meanwhile to be dropped later, outside the greenlet (where the docs'
/// "its destructor may still park" would no longer hold).
#[test]
fn locals_made_by_a_panicking_local_destructor_still_drop_in_the_greenlet() {
    // Under a deadline: the clean-up repeats until the locals are gone.
    util::within(Duration::from_secs(10), || {
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let g = greenlet::spawn(move || PANICS_IN_DROP.set(Some(PanicsAfterMakingALocal(s))));
        g.join().unwrap();
        assert_eq!(seen.get(), Some(true));
    });
}
