//! `current()` and greenlet names.

use std::time::Duration;

use greenlet::Builder;

#[test]
fn current_is_none_in_root() {
    assert!(greenlet::current().is_none());
    // Still none after the hub has run greenlets.
    greenlet::spawn(|| greenlet::sleep(Duration::from_millis(1)))
        .join()
        .unwrap();
    assert!(greenlet::current().is_none());
}

#[test]
fn current_in_a_greenlet_has_its_id() {
    let g = greenlet::spawn(|| {
        let me = greenlet::current().expect("current() inside a greenlet");
        (me.id(), me.name().map(str::to_owned))
    });
    let id = g.id();
    let (seen, name) = g.join().unwrap();
    assert_eq!(seen, id);
    assert_eq!(name, None, "an unnamed greenlet has no name");
    assert!(id.as_u64() > 0, "0 is reserved for the root");
}

#[test]
fn current_survives_parks_and_switches() {
    let gs: Vec<_> = (0..5)
        .map(|_| {
            greenlet::spawn(|| {
                let before = greenlet::current().unwrap().id();
                greenlet::sleep(Duration::from_millis(2));
                greenlet::yield_now();
                let after = greenlet::current().unwrap().id();
                assert_eq!(before, after);
                after
            })
        })
        .collect();
    let ids: Vec<_> = gs.iter().map(|g| g.id()).collect();
    let seen: Vec<_> = greenlet::joinall(gs)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seen, ids);
}

#[test]
fn current_in_a_nested_spawn_is_the_child() {
    let outer = greenlet::spawn(|| {
        let outer_id = greenlet::current().unwrap().id();
        let inner = greenlet::spawn(|| greenlet::current().unwrap().id());
        let inner_handle_id = inner.id();
        let inner_seen = inner.join().unwrap();
        assert_eq!(inner_seen, inner_handle_id);
        // Back in the outer greenlet after the join.
        assert_eq!(greenlet::current().unwrap().id(), outer_id);
        (outer_id, inner_seen)
    });
    let outer_id = outer.id();
    let (seen_outer, inner) = outer.join().unwrap();
    assert_eq!(seen_outer, outer_id);
    assert_ne!(inner, outer_id);
}

#[test]
fn builder_name_is_visible_everywhere() {
    let g = Builder::new()
        .name("worker-7")
        .spawn(|| {
            let me = greenlet::current().unwrap();
            (
                me.name().map(str::to_owned),
                me.to_string(),
                format!("{me:?}"),
            )
        })
        .unwrap();
    assert_eq!(g.name(), Some("worker-7"));
    assert!(format!("{g:?}").contains("worker-7"), "{g:?}");
    let (name, display, debug) = g.join().unwrap();
    assert_eq!(name.as_deref(), Some("worker-7"));
    assert!(display.contains("worker-7"), "{display}");
    assert!(debug.contains("worker-7"), "{debug}");
}

#[test]
fn builder_name_accepts_a_string() {
    let n = 3;
    let g = Builder::new()
        .name(format!("job-{n}"))
        .spawn(|| greenlet::current().unwrap().name().unwrap().to_owned())
        .unwrap();
    assert_eq!(g.join().unwrap(), "job-3");
}

#[test]
fn builder_defaults_are_unnamed() {
    let g = Builder::new()
        .spawn(|| greenlet::current().unwrap().name().is_none())
        .unwrap();
    assert_eq!(g.name(), None);
    assert!(g.join().unwrap());
}

#[test]
fn builder_is_reusable_by_clone() {
    let b = Builder::new().name("twin").stack_size(64 * 1024);
    let g1 = b
        .clone()
        .spawn(|| greenlet::current().unwrap().id())
        .unwrap();
    let g2 = b.spawn(|| greenlet::current().unwrap().id()).unwrap();
    assert_eq!(g1.name(), g2.name());
    let (id1, id2) = (g1.id(), g2.id());
    assert_ne!(id1, id2);
    assert_eq!(g1.join().unwrap(), id1);
    assert_eq!(g2.join().unwrap(), id2);
}

#[test]
fn greenlet_ids_display_and_order() {
    let a = greenlet::spawn(|| ());
    let b = greenlet::spawn(|| ());
    assert!(a.id() < b.id(), "ids increase with spawn order");
    assert_eq!(a.id().to_string(), format!("#{}", a.id().as_u64()));
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn each_thread_has_its_own_hub_and_ids() {
    let here = greenlet::spawn(|| greenlet::current().unwrap().id().as_u64())
        .join()
        .unwrap();
    let there = std::thread::spawn(|| {
        assert!(greenlet::current().is_none());
        let g = greenlet::Builder::new()
            .name("other thread")
            .spawn(|| {
                let me = greenlet::current().unwrap();
                (me.id().as_u64(), me.name().unwrap().to_owned())
            })
            .unwrap();
        g.join().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(there.1, "other thread");
    assert!(here > 0 && there.0 > 0);
}
