//! The embedded HTTP server the download examples fetch from when given no
//! URLs, so they run offline, and the default set of pages they fetch.
//!
//! It runs on an OS thread of its own, with that thread's hub: the server
//! gets the second core instead of competing with the client for one hub,
//! the client's timings (and its progress line) show only the client's
//! work, and the patched example's `std::net` client stays the only code
//! on the main thread's hub. A greenlet per connection, on
//! `greenlet::net`.
//!
//! Routes (sizes in bytes, delays in ms):
//!
//! | path | answer |
//! |---|---|
//! | `/page/ID/SIZE` | SIZE bytes with `Content-Length` |
//! | `/page/ID/SIZE?chunked` | the same, chunked |
//! | `...?delay=MS` | the head after MS/2, the second half of the body after MS |
//! | `/redirect/N/REST` | 302 to `/redirect/N-1/REST`; the last hop is an absolute 301 to `/REST` |
//! | anything else | 404 |

// Shared by two examples, each of which uses only part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::{TcpListener, TcpStream};

/// Starts the server on 127.0.0.1 (a free port) on its own OS thread and
/// returns its address.
pub fn start() -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("embedded-http".into())
        .spawn(move || {
            let listener = match TcpListener::bind("127.0.0.1:0") {
                Ok(l) => l,
                Err(e) => return tx.send(Err(e)).unwrap_or(()),
            };
            let addr = match listener.local_addr() {
                Ok(a) => a,
                Err(e) => return tx.send(Err(e)).unwrap_or(()),
            };
            let _ = tx.send(Ok(addr));
            // Root context: `accept` runs this thread's hub while it waits,
            // so the connection greenlets run in between.
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        greenlet::spawn(move || {
                            if let Err(e) = serve(stream, addr) {
                                eprintln!("embedded server: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        eprintln!("embedded server: accept: {e}");
                        greenlet::sleep(Duration::from_millis(10));
                    }
                }
            }
        })?;
    // The main thread runs no greenlets yet: a plain blocking wait is fine.
    rx.recv()
        .map_err(|_| io::Error::other("embedded server thread died"))?
}

/// One page of the default set.
pub struct Page {
    pub url: String,
    /// The body size a correct download gets.
    pub size: usize,
}

/// The default set: `n` pages of 0 B to 1 MiB, every third one chunked,
/// every tenth one slow (200 to 500 ms), two behind redirects.
pub fn default_pages(addr: SocketAddr, n: usize) -> Vec<Page> {
    const SIZES: [usize; 12] = [
        0,
        100,
        1024,
        4096,
        10_000,
        16_384,
        30_000,
        50_000,
        65_536,
        100_000,
        262_144,
        1 << 20,
    ];
    (0..n)
        .map(|i| {
            // A fixed scramble of i, so sizes do not follow the other
            // properties' period.
            let mix = (i.wrapping_mul(2_654_435_761) >> 7) % 997;
            let size = match SIZES[mix % SIZES.len()] {
                // Only a few megabyte pages.
                s if s == 1 << 20 && i % 4 != 0 => 20_000 + i,
                s => s + (i % 5) * 7,
            };
            let mut query = Vec::new();
            if i % 3 == 1 {
                query.push("chunked".to_string());
            }
            if i % 10 == 3 {
                query.push(format!("delay={}", 200 + (mix * 7) % 301));
            }
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let page = format!("page/{i}/{size}{query}");
            let url = match i {
                5 => format!("http://{addr}/redirect/2/{page}"),
                150 => format!("http://{addr}/redirect/1/{page}"),
                _ => format!("http://{addr}/{page}"),
            };
            Page { url, size }
        })
        .collect()
}

/// The body of a page of `size` bytes: a line pattern, cut to size.
pub fn body(id: usize, size: usize) -> Vec<u8> {
    let line = format!("page {id}: greenlet downloads concurrently\n");
    line.bytes().cycle().take(size).collect()
}

/// Answers one request and closes the connection.
fn serve(mut stream: TcpStream, me: SocketAddr) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let target = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => break req.path.unwrap_or("/").to_string(),
            Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => {}
            _ => {
                return stream.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some("redirect"), Some(hops), Some(_)) => {
            let hops: usize = hops.parse().unwrap_or(1);
            let rest = target
                .trim_start_matches('/')
                .splitn(3, '/')
                .nth(2)
                .unwrap_or("");
            let (code, location) = if hops <= 1 {
                ("301 Moved Permanently", format!("http://{me}/{rest}"))
            } else {
                ("302 Found", format!("/redirect/{}/{rest}", hops - 1))
            };
            write!(
                stream,
                "HTTP/1.1 {code}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
        (Some("page"), Some(id), Some(size)) => {
            let (Ok(id), Ok(size)) = (id.parse::<usize>(), size.parse::<usize>()) else {
                return not_found(&mut stream);
            };
            let mut chunked = false;
            let mut delay = Duration::ZERO;
            for param in query.split('&') {
                match param.split_once('=') {
                    None if param == "chunked" => chunked = true,
                    Some(("delay", ms)) => {
                        delay = Duration::from_millis(ms.parse().unwrap_or(0));
                    }
                    _ => {}
                }
            }
            send_page(&mut stream, &body(id, size), chunked, delay)
        }
        _ => not_found(&mut stream),
    }
}

fn not_found(stream: &mut TcpStream) -> io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nno such page\n",
    )
}

/// Sends `body`: the head after half of `delay`, the first half of the
/// body, then the rest after the other half of `delay`.
fn send_page(
    stream: &mut TcpStream,
    body: &[u8],
    chunked: bool,
    delay: Duration,
) -> io::Result<()> {
    if !delay.is_zero() {
        greenlet::sleep(delay / 2);
    }
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{framing}\r\nConnection: close\r\n\r\n"
    )?;
    let (first, second) = body.split_at(body.len() / 2);
    for (i, half) in [first, second].into_iter().enumerate() {
        if i == 1 && !delay.is_zero() {
            greenlet::sleep(delay / 2);
        }
        if chunked {
            // Chunks of varied sizes, as real servers send them.
            for piece in half.chunks(7_000 + body.len() % 3_000) {
                write!(stream, "{:x}\r\n", piece.len())?;
                stream.write_all(piece)?;
                stream.write_all(b"\r\n")?;
            }
        } else {
            stream.write_all(half)?;
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}
