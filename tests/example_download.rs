//! Runs the `download` example (built by `cargo test`) against its
//! embedded server and against a small std-thread HTTP server of the test's
//! own that also misbehaves: garbage, a response that never comes, a
//! redirect loop, a 404. Only 127.0.0.1.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Output;
use std::time::{Duration, Instant};

use util::{describe, example, temp_dir};

/// A thread-per-connection HTTP server on 127.0.0.1 with fixed routes:
///
/// - `/ok/N`: N bytes with `Content-Length`; `/chunked/N`: N bytes chunked;
/// - `/close/N`: N bytes, no length, ended by closing the connection;
/// - `/big/N`, `/bigchunked/N` (104 KiB chunks), `/bigclose/N`: the same
///   three framings, the body streamed from a [`BLOCK`] instead of built
///   whole, for bodies of many MiB;
/// - `/short/N`: claims N bytes, sends N/2 (streamed) and closes;
/// - `/redirect/N`: 302 to `/ok/N`; `/loop`: 302 to itself;
/// - `/garbage`: not HTTP; `/hang`: never answers (until the client goes);
/// - anything else: 404.
///
/// Threads are detached; they end when their connection does.
fn test_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(stream);
            });
        }
    });
    addr
}

/// The body the test server sends for a page of `n` bytes.
fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A whole number of `body`'s 26-byte periods: sent again and again, it
/// streams `body(n)` for any `n`.
const BLOCK: usize = 26 * 4096;

/// Writes `body(n)` to `s` a [`BLOCK`] at a time, each piece through
/// `piece` (which frames it).
fn stream_body(
    s: &mut TcpStream,
    n: usize,
    mut piece: impl FnMut(&mut TcpStream, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let block = body(BLOCK);
    let mut left = n;
    while left > 0 {
        let len = left.min(BLOCK);
        piece(s, &block[..len])?;
        left -= len;
    }
    Ok(())
}

fn serve(mut s: TcpStream) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let req = String::from_utf8_lossy(&req);
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let num = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
    };
    if let Some(n) = num("/ok/") {
        write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
        s.write_all(&body(n))
    } else if let Some(n) = num("/chunked/") {
        write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        for piece in body(n).chunks(1000) {
            write!(s, "{:X};ext=1\r\n", piece.len())?;
            s.write_all(piece)?;
            s.write_all(b"\r\n")?;
        }
        s.write_all(b"0\r\nX-Trailer: yes\r\n\r\n")
    } else if let Some(n) = num("/close/") {
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\n")?;
        s.write_all(&body(n))
    } else if let Some(n) = num("/big/") {
        write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
        stream_body(&mut s, n, |s, piece| s.write_all(piece))
    } else if let Some(n) = num("/bigchunked/") {
        write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        stream_body(&mut s, n, |s, piece| {
            write!(s, "{:x}\r\n", piece.len())?;
            s.write_all(piece)?;
            s.write_all(b"\r\n")
        })?;
        s.write_all(b"0\r\n\r\n")
    } else if let Some(n) = num("/bigclose/") {
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\n")?;
        stream_body(&mut s, n, |s, piece| s.write_all(piece))
    } else if let Some(n) = num("/short/") {
        write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
        stream_body(&mut s, n / 2, |s, piece| s.write_all(piece))
    } else if let Some(n) = num("/redirect/") {
        write!(
            s,
            "HTTP/1.1 302 Found\r\nLocation: /ok/{n}\r\nContent-Length: 0\r\n\r\n"
        )
    } else if path == "/loop" {
        s.write_all(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n")
    } else if path == "/garbage" {
        s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    } else if path == "/hang" {
        // Read until the client gives up and closes.
        while s.read(&mut buf)? > 0 {}
        Ok(())
    } else {
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }
}

/// A loopback port with nothing listening on it.
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs the example with `args`; returns its output and the wall time.
#[track_caller]
fn download(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = example("download")
        .args(args)
        .output()
        .expect("run example");
    (out, start.elapsed())
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// The summary line's numbers: (total, ok, failed, bytes).
#[track_caller]
fn summary(out: &Output) -> (usize, usize, usize, u64) {
    let text = stdout(out);
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {}", describe(out)));
    // "<total> downloads: <ok> ok, <failed> failed, <bytes> bytes in ..."
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() > 7 && words[1] == "downloads:" && words[7] == "bytes",
        "not a summary line: {line:?}\n{}",
        describe(out)
    );
    let n = |i: usize| words[i].trim_end_matches(',').parse::<u64>().unwrap();
    (n(0) as usize, n(2) as usize, n(4) as usize, n(6))
}

#[test]
fn embedded_server_all_pages_arrive_with_their_sizes() {
    let (out, took) = download(&[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    // "embedded server on http://...: 300 pages, <bytes> bytes in all"
    let first = text.lines().next().unwrap();
    let served: u64 = first
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in {first:?}"));
    assert!(first.contains(": 300 pages, "), "{first}");
    assert_eq!(summary(&out), (300, 300, 0, served));
    assert!(served > 1_000_000, "{served}");
    // 300 URLs: a progress line on stderr instead of a line per URL.
    assert!(stderr(&out).contains("[300/300] "), "{}", describe(&out));
    assert!(!text.contains("bytes received from"), "{text}");
    // 30 pages take 200-500 ms each: over 10 s one after the other.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn url_list_failures_are_reported_per_url_and_the_rest_succeed() {
    let addr = test_server();
    let refused = refused_port();
    let good = [
        (format!("http://{addr}/ok/1234"), 1234),
        (format!("http://{addr}/chunked/5000"), 5000),
        (format!("http://{addr}/close/777"), 777),
        (format!("http://{addr}/redirect/42"), 42),
        (format!("http://{addr}/ok/0"), 0),
    ];
    let bad = [
        (format!("http://127.0.0.1:{refused}/"), "refused"),
        ("htp://nowhere/".to_owned(), "bad URL"),
        ("http://:80/".to_owned(), "bad URL"),
        (format!("http://{addr}/garbage"), "bad response: not HTTP"),
        (format!("http://{addr}/hang"), "timed out after 1s"),
        (format!("http://{addr}/loop"), "too many redirects"),
        (format!("http://{addr}/missing"), "HTTP 404 Not Found"),
    ];
    // Half on the command line, half from --file.
    let dir = temp_dir("download-list");
    let list = dir.join("urls.txt");
    let mut file = String::from("# test URLs\n\n");
    for (url, _) in &bad[3..] {
        file.push_str(url);
        file.push('\n');
    }
    std::fs::write(&list, file).unwrap();
    let mut args: Vec<String> = vec!["--timeout".into(), "1".into()];
    args.extend(good.iter().map(|(u, _)| u.clone()));
    args.extend(bad[..3].iter().map(|(u, _)| u.clone()));
    args.extend(["--file".into(), list.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let (out, took) = download(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (text, errors) = (stdout(&out), stderr(&out));
    for (url, len) in &good {
        let line = format!("{len} bytes received from {url}");
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    for (url, why) in &bad {
        let line = errors
            .lines()
            .find(|l| l.contains(&format!(" {url}: ")))
            .unwrap_or_else(|| panic!("no error for {url} in\n{errors}"));
        assert!(line.contains(why), "{url}: expected {why:?}, got {line:?}");
    }
    let bytes: u64 = good.iter().map(|(_, n)| *n as u64).sum();
    assert_eq!(summary(&out), (12, 5, 7, bytes));
    // The hanging URL costs its 1 s timeout, concurrently with the rest.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn out_writes_each_body_to_a_numbered_file() {
    let addr = test_server();
    let dir = temp_dir("download-out");
    let out_dir = dir.join("pages");
    let urls = [
        format!("http://{addr}/ok/100000"),
        format!("http://{addr}/chunked/33333"),
        format!("http://{addr}/redirect/5"),
    ];
    let mut args = vec!["--quiet", "--out", out_dir.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert!(out.status.success(), "{}", describe(&out));
    // Quiet: only the summary.
    assert_eq!(stdout(&out).lines().count(), 1, "{}", describe(&out));
    assert_eq!(summary(&out), (3, 3, 0, 100_000 + 33_333 + 5));
    // Named after the index and the final URL's last segment.
    for (name, len) in [
        ("0000-100000", 100_000),
        ("0001-33333", 33_333),
        ("0002-5", 5),
    ] {
        let data = std::fs::read(out_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; {}", describe(&out)));
        assert_eq!(data, body(len), "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn out_keeps_no_file_of_a_failed_download() {
    let addr = test_server();
    let dir = temp_dir("download-out-failed");
    let out_dir = dir.join("pages");
    // Cut off after 1.5 MiB of 3 MiB (several full buffers written), a
    // 404, and one good page.
    let urls = [
        format!("http://{addr}/short/3145728"),
        format!("http://{addr}/missing"),
        format!("http://{addr}/ok/1000"),
    ];
    let mut args = vec!["--quiet", "--out", out_dir.to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(summary(&out), (3, 1, 2, 1000));
    assert!(
        stderr(&out).contains("connection closed after 1572864 of 3145728 body bytes"),
        "{}",
        describe(&out)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0002-1000"], "{}", describe(&out));
    let _ = std::fs::remove_dir_all(dir);
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1: `/ka/N` answers N bytes with
/// `Content-Length` and waits for the next request on the same connection;
/// `/kachunked/N` the same chunked; `/kaclose/N` answers and closes. Counts
/// the connections it accepts.
fn keep_alive_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut buf)?;
                        if n == 0 {
                            return Ok(());
                        }
                        req.extend_from_slice(&buf[..n]);
                    }
                    let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&req[..end]).into_owned();
                    req.drain(..end);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (route, n) = path.rsplit_once('/').unwrap();
                    let n: usize = n.parse().unwrap_or(0);
                    match route {
                        "/ka" => {
                            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
                            s.write_all(&body(n))?;
                        }
                        "/kachunked" => {
                            write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                            write!(s, "{n:x}\r\n")?;
                            s.write_all(&body(n))?;
                            s.write_all(b"\r\n0\r\n\r\n")?;
                        }
                        _ => {
                            write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                            )?;
                            return s.write_all(&body(n));
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[test]
fn downloads_from_one_server_reuse_its_keep_alive_connections() {
    use std::sync::atomic::Ordering;
    let (addr, accepted) = keep_alive_server();
    let dir = temp_dir("download-keep-alive");
    let out_dir = dir.join("pages");
    // One at a time: every request after the first goes on the first
    // connection, whatever the framing.
    let urls: Vec<String> = (1..=20)
        .map(|i| {
            let route = if i % 2 == 0 { "ka" } else { "kachunked" };
            format!("http://{addr}/{route}/{}", i * 1000)
        })
        .collect();
    let mut args = vec![
        "--quiet",
        "--concurrency",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert!(out.status.success(), "{}", describe(&out));
    let bytes = (1..=20).map(|i| i * 1000).sum::<u64>();
    assert_eq!(summary(&out), (20, 20, 0, bytes));
    for i in 1..=20usize {
        let name = format!("{:04}-{}", i - 1, i * 1000);
        let data = std::fs::read(out_dir.join(&name)).unwrap();
        assert_eq!(data, body(i * 1000), "{name}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "connections accepted");

    // With --no-reuse, a new connection for each request.
    let (addr, accepted) = keep_alive_server();
    let urls: Vec<String> = (0..10).map(|_| format!("http://{addr}/ka/10")).collect();
    let mut args = vec!["--quiet", "--no-reuse", "--concurrency", "1"];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert_eq!(summary(&out), (10, 10, 0, 100), "{}", describe(&out));
    assert_eq!(accepted.load(Ordering::SeqCst), 10, "connections accepted");

    // A server that says `Connection: close` gets a new connection each
    // time, and 4 at a time need at most 4 connections.
    let (addr, accepted) = keep_alive_server();
    let urls: Vec<String> = (0..10)
        .map(|_| format!("http://{addr}/kaclose/10"))
        .collect();
    let mut args = vec!["--quiet"];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert_eq!(summary(&out), (10, 10, 0, 100), "{}", describe(&out));
    assert_eq!(accepted.load(Ordering::SeqCst), 10, "connections accepted");
    let (addr, accepted) = keep_alive_server();
    let urls: Vec<String> = (0..40).map(|_| format!("http://{addr}/ka/10")).collect();
    let mut args = vec!["--quiet", "--concurrency", "4"];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert_eq!(summary(&out), (40, 40, 0, 400), "{}", describe(&out));
    let n = accepted.load(Ordering::SeqCst);
    assert!((1..=4).contains(&n), "{n} connections for 4 at a time");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn concurrency_one_with_progress_line_finishes_all() {
    let addr = test_server();
    let urls: Vec<String> = (1..=20).map(|i| format!("http://{addr}/ok/{i}")).collect();
    let mut args = vec!["--concurrency", "1", "--progress"];
    args.extend(urls.iter().map(String::as_str));
    let (out, _) = download(&args);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(summary(&out), (20, 20, 0, 210));
    assert!(
        stderr(&out).contains("[20/20] 210 bytes, 0 failed"),
        "{}",
        describe(&out)
    );
}

#[test]
fn usage_errors_exit_with_status_2_and_help_with_0() {
    for args in [
        &["--concurrency", "0"][..],
        &["--timeout", "soon"],
        &["--bogus"],
        &["--file", "/nonexistent/urls.txt"],
    ] {
        let (out, _) = download(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(
            stderr(&out).contains("usage: download"),
            "{}",
            describe(&out)
        );
    }
    let (out, _) = download(&["--help"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("usage: download"),
        "{}",
        describe(&out)
    );
}

/// Runs the example with `args`, stdout and stderr to files in `dir`, and
/// returns its output and its peak resident set size in bytes
/// (`ru_maxrss` from `wait4`, the kernel's VmHWM of the child).
fn download_with_peak_rss(dir: &std::path::Path, args: &[&str]) -> (Output, u64) {
    use std::fs::File;
    use std::os::unix::process::ExitStatusExt;

    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    // Reaped by the wait4 below, which also gives its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = example("download")
        .args(args)
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("run example");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our unwaited child; both pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: std::fs::read(out_path).unwrap(),
        stderr: std::fs::read(err_path).unwrap(),
    };
    (out, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn bodies_much_larger_than_the_buffer_stream_to_exact_files_in_bounded_memory() {
    // 64 MiB in each framing, 256 times the example's 256 KiB body buffer.
    const BIG: usize = 64 << 20;
    const SMALL: usize = 1 << 20;
    let addr = test_server();
    let dir = temp_dir("download-big");
    let run = |n: usize| {
        let out_dir = dir.join(format!("out-{n}"));
        let urls: Vec<String> = ["big", "bigchunked", "bigclose"]
            .iter()
            .map(|route| format!("http://{addr}/{route}/{n}"))
            .collect();
        // The example's own timeout bounds the run (no test can hang).
        let mut args = vec![
            "--quiet",
            "--timeout",
            "60",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend(urls.iter().map(String::as_str));
        let (out, peak) = download_with_peak_rss(&dir, &args);
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(summary(&out), (3, 3, 0, 3 * n as u64), "{}", describe(&out));
        let block = body(BLOCK);
        for (i, route) in ["big", "bigchunked", "bigclose"].iter().enumerate() {
            let name = format!("{i:04}-{n}");
            let data = std::fs::read(out_dir.join(&name))
                .unwrap_or_else(|e| panic!("{route}: {name}: {e}"));
            assert_eq!(data.len(), n, "{route}");
            for (k, piece) in data.chunks(BLOCK).enumerate() {
                assert!(
                    piece == &block[..piece.len()],
                    "{route}: wrong bytes in block {k}"
                );
            }
        }
        peak
    };
    let small = run(SMALL);
    let big = run(BIG);
    eprintln!(
        "peak RSS: {} KiB (3 x 1 MiB), {} KiB (3 x 64 MiB)",
        small >> 10,
        big >> 10
    );
    // Buffering even one body whole would add 64 MiB; streaming adds
    // nothing that grows with the body. A loose bound: a quarter of it.
    assert!(
        big < small + BIG as u64 / 4,
        "peak RSS {} MiB for 3 x 64 MiB bodies, {} MiB for 3 x 1 MiB",
        big >> 20,
        small >> 20
    );
    let _ = std::fs::remove_dir_all(dir);
}
