//! `greenlet::dump`: what every greenlet of a hub waits on, for how long,
//! and where it was spawned.

mod util;

use std::io::Read;
use std::time::Duration;

use greenlet::dump::{GreenletState, IoDirection, SyncKind, WaitReason};
use greenlet::net::TcpStream;
use greenlet::sync::Queue;
use util::{listener, within};

#[test]
fn a_dump_shows_io_timer_queue_and_join_waits_with_names_sites_and_durations() {
    within(Duration::from_secs(10), || {
        let (l, addr) = listener();
        let client = TcpStream::connect(addr).unwrap();
        let (server_side, _) = l.accept().unwrap();
        let reader_line = line!();
        let reader = greenlet::Builder::new().name("reader").spawn(move || {
            let mut buf = [0u8; 16];
            let mut s = server_side;
            let _ = s.read(&mut buf);
        });
        let sleeper_line = line!();
        let sleeper = greenlet::Builder::new()
            .name("sleeper")
            .spawn(|| greenlet::sleep(Duration::from_secs(60)))
            .unwrap();
        let q: Queue<u32> = Queue::new();
        let q2 = q.clone();
        let consumer_line = line!();
        let consumer = greenlet::Builder::new()
            .name("consumer")
            .spawn(move || q2.get());
        let joiner_line = line!();
        let joiner = greenlet::Builder::new().name("joiner").spawn(|| {
            let child = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
            let _ = child.join();
        });
        let (reader, consumer, joiner) = (reader.unwrap(), consumer.unwrap(), joiner.unwrap());
        greenlet::sleep(Duration::from_millis(30));

        let d = greenlet::dump::dump();
        let text = d.to_string();
        let find = |name: &str| {
            d.greenlets()
                .iter()
                .find(|g| g.name() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing from the dump:\n{text}"))
                .clone()
        };
        let r = find("reader");
        assert!(
            matches!(
                r.wait_reason(),
                Some(WaitReason::Io {
                    direction: IoDirection::Read,
                    ..
                })
            ),
            "{text}"
        );
        let s = find("sleeper");
        assert_eq!(s.wait_reason(), Some(WaitReason::Sleep), "{text}");
        assert!(s.deadline().unwrap() > Duration::from_secs(50), "{text}");
        let c = find("consumer");
        assert!(
            matches!(
                c.wait_reason(),
                Some(WaitReason::Sync {
                    kind: SyncKind::QueueGet,
                    ..
                })
            ),
            "{text}"
        );
        let j = find("joiner");
        assert!(
            matches!(j.wait_reason(), Some(WaitReason::Join { .. })),
            "{text}"
        );
        for (g, line) in [
            (&r, reader_line),
            (&s, sleeper_line),
            (&c, consumer_line),
            (&j, joiner_line),
        ] {
            assert_eq!(g.state(), GreenletState::Parked, "{text}");
            let site = g.spawned_at().expect("spawn site");
            assert!(site.file().ends_with("dump.rs"), "{text}");
            // `line` is the line just before the spawn statement.
            assert!(
                site.line() > line && site.line() <= line + 4,
                "{line}: {text}"
            );
            let waited = g.waiting_for().expect("a duration");
            assert!(
                waited >= Duration::from_millis(10) && waited < Duration::from_secs(5),
                "{waited:?}\n{text}"
            );
            assert!(
                text.contains(&format!("dump.rs:{}:", site.line())),
                "no file:line for line {line}:\n{text}"
            );
        }
        for needle in [
            "'reader' [IO read on fd",
            "'sleeper' [sleep, ",
            "'consumer' [Queue #",
            "'joiner' [join greenlet #",
            "root [running",
        ] {
            assert!(text.contains(needle), "{needle:?} missing:\n{text}");
        }

        q.put(7).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(7));
        drop(client);
        reader.join().unwrap();
        sleeper.kill();
        joiner.kill();
        assert!(
            greenlet::dump::dump()
                .greenlets()
                .iter()
                .all(|g| g.name() != Some("consumer"))
        );
    });
}

#[test]
fn a_dump_from_a_greenlet_shows_it_running_and_the_root_parked_on_its_join() {
    within(Duration::from_secs(10), || {
        let g = greenlet::Builder::new()
            .name("me")
            .spawn(greenlet::dump::dump)
            .unwrap();
        let id = g.id().as_u64();
        let d = g.join().unwrap();
        let me = d.greenlets().iter().find(|i| i.id() == id).unwrap();
        assert_eq!(me.state(), GreenletState::Running);
        assert_eq!(d.root().state(), GreenletState::Parked);
        assert_eq!(
            d.root().wait_reason(),
            Some(WaitReason::Join { target: id })
        );
    });
}

#[test]
fn the_dump_signal_makes_a_hub_idle_in_epoll_print_its_dump() {
    if util::child_mode().as_deref() == Some("signal") {
        let ev = greenlet::sync::Event::new();
        let e = ev.clone();
        let _g = greenlet::Builder::new()
            .name("parked-one")
            .spawn(move || e.wait())
            .unwrap();
        greenlet::yield_now();
        let setter = ev.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: signals this process; the handler was installed by
            // the first hub (GREENLET_DUMP_SIGNAL).
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
            std::thread::sleep(Duration::from_millis(300));
            setter.set();
        });
        // The root sleeps in epoll with no timeout until the event is set.
        ev.wait();
        t.join().unwrap();
        return;
    }
    let out = util::run_child_within(
        "the_dump_signal_makes_a_hub_idle_in_epoll_print_its_dump",
        "signal",
        &[("GREENLET_DUMP_SIGNAL", "USR1")],
        Duration::from_secs(10),
    );
    util::assert_child_passed(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("greenlet dump of thread"), "{err}");
    assert!(err.contains("'parked-one' [Event #"), "{err}");
    assert!(err.contains("root [Event #"), "{err}");
}

#[test]
fn greenlets_spawned_through_a_pool_show_the_callers_spawn_site() {
    within(Duration::from_secs(5), || {
        let pool = greenlet::pool::Pool::new(2);
        let g = pool.spawn(|| greenlet::sleep(Duration::from_secs(60)));
        greenlet::yield_now();
        let d = greenlet::dump::dump();
        let info = d
            .greenlets()
            .iter()
            .find(|i| i.id() == g.id().as_u64())
            .unwrap();
        assert!(
            info.spawned_at().unwrap().file().ends_with("dump.rs"),
            "{d}"
        );
        g.kill();
    });
}

#[test]
fn a_dump_shows_the_peer_address_of_a_socket_a_greenlet_reads() {
    within(Duration::from_secs(10), || {
        let (l, addr) = listener();
        let client = TcpStream::connect(addr).unwrap();
        let (server_side, peer) = l.accept().unwrap();
        let reader = greenlet::Builder::new()
            .name("peer-reader")
            .spawn(move || {
                let mut buf = [0u8; 4];
                let mut s = server_side;
                s.read(&mut buf).unwrap()
            })
            .unwrap();
        let acceptor = greenlet::Builder::new()
            .name("acceptor")
            .spawn(move || l.accept().map(drop))
            .unwrap();
        greenlet::sleep(Duration::from_millis(10));
        let d = greenlet::dump::dump();
        let find = |n: &str| d.greenlets().iter().find(|g| g.name() == Some(n)).unwrap();
        // The reader's socket is connected: its peer is the client's address.
        let want = format!("tcp {peer}");
        assert_eq!(find("peer-reader").socket(), Some(want.as_str()), "{d}");
        assert!(
            matches!(
                find("peer-reader").wait_reason(),
                Some(WaitReason::Io {
                    direction: IoDirection::Read,
                    ..
                })
            ),
            "{d}"
        );
        // The listener has no peer: its own address.
        let listening = format!("tcp listening on {addr}");
        assert_eq!(find("acceptor").socket(), Some(listening.as_str()), "{d}");
        let text = d.to_string();
        assert!(text.contains(&format!("({want})")), "{text}");
        assert!(text.contains(&format!("({listening})")), "{text}");
        // Waits on no socket describe none.
        assert_eq!(d.root().socket(), None);
        use std::io::Write;
        (&client).write_all(b"hi").unwrap();
        assert_eq!(reader.join().unwrap(), 2);
        acceptor.kill();
    });
}
