//! Runs the `download_patched` example (std::net under
//! `monkey::patch_all()`; built by `cargo test --features monkey`).

mod util;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use util::{describe, example};

#[test]
fn patched_std_downloads_of_the_embedded_pages_overlap() {
    let start = Instant::now();
    let out = example("download_patched").output().expect("run example");
    let took = start.elapsed();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let gets = text
        .lines()
        .filter(|l| l.starts_with("GET: http://"))
        .count();
    let received = text
        .lines()
        .filter(|l| l.contains(" bytes received from http://") && l.ends_with('.'))
        .count();
    assert_eq!((gets, received), (300, 300), "{}", describe(&out));
    // Every GET is printed before any slow page (200-500 ms) arrives: the
    // greenlets really wait concurrently on plain std::net sockets.
    let lines: Vec<&str> = text.lines().collect();
    let last_get = lines.iter().rposition(|l| l.starts_with("GET: ")).unwrap();
    let first_slow = lines
        .iter()
        .position(|l| l.contains("bytes received") && l.contains("delay="))
        .unwrap();
    assert!(
        last_get < first_slow,
        "GET line {last_get}, slow page line {first_slow}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("300 downloads: 300 ok, 0 failed, "),
        "{last}"
    );
    // 30 pages take 200-500 ms each: over 10 s one after the other.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn patched_failures_are_reported_and_exit_1() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("http://127.0.0.1:{port}/");
    let out = example("download_patched")
        .args([refused.as_str(), "nope"])
        .output()
        .expect("run example");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let errors = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(
        errors.contains(&format!(
            "{refused}: connection to 127.0.0.1:{port} refused"
        )),
        "{errors}"
    );
    assert!(errors.contains("nope: bad URL"), "{errors}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("2 downloads: 0 ok, 2 failed"),
        "{text}"
    );
}
