//! Downloads several URLs concurrently, one greenlet each, with plain
//! blocking-style code on `greenlet::net::TcpStream` and `httparse`.
//!
//! ```text
//! cargo run --example download                      # offline: own local server
//! cargo run --example download -- http://host/a http://host:8080/b ...
//! ```
//!
//! With no arguments it starts an HTTP server of its own on 127.0.0.1 (in a
//! greenlet on the same thread) whose pages each answer after 100 ms, and
//! fetches 20 of them: done one after the other that takes 2 s, here about
//! 100 ms. Only `http://` URLs are supported (no TLS). Host names are
//! resolved on the blocking pool while the other downloads go on.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};

/// How long each page of the embedded server takes to answer.
const PAGE_DELAY: Duration = Duration::from_millis(100);
const LOCAL_PAGES: usize = 20;

fn main() {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        let addr = start_local_server().expect("start the local server");
        println!(
            "serving {LOCAL_PAGES} pages on http://{addr}/ (each answers after {PAGE_DELAY:?})"
        );
        urls = (0..LOCAL_PAGES)
            .map(|i| format!("http://{addr}/page/{i}"))
            .collect();
    }
    let start = Instant::now();
    let downloads: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| greenlet::spawn(move || fetch(&url)))
        .collect();
    let mut ok = 0;
    let mut bytes = 0;
    for (url, result) in urls.iter().zip(greenlet::joinall(downloads)) {
        match result.expect("a download greenlet panicked") {
            Ok(page) => {
                ok += 1;
                bytes += page.body.len();
                println!(
                    "{url}: {} {}, {} bytes in {:?}",
                    page.status,
                    page.reason,
                    page.body.len(),
                    page.took
                );
            }
            Err(e) => println!("{url}: error: {e}"),
        }
    }
    println!(
        "{ok} of {} downloads done, {bytes} bytes, in {:?} (concurrently)",
        urls.len(),
        start.elapsed()
    );
}

struct Page {
    status: u16,
    reason: String,
    body: Vec<u8>,
    took: Duration,
}

/// `http://host[:port][/path]` split into its parts.
fn parse_url(url: &str) -> io::Result<(String, u16, String)> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse().map_err(|_| invalid("bad port"))?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Fetches one URL with HTTP/1.0 (no chunked bodies to decode).
fn fetch(url: &str) -> io::Result<Page> {
    let start = Instant::now();
    let (host, port, path) = parse_url(url)?;
    let mut stream = TcpStream::connect((host.as_str(), port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: greenlet-download\r\nAccept: */*\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response head ended",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let status = resp
            .parse(&buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let httparse::Status::Complete(head_len) = status else {
            continue;
        };
        let code = resp.code.unwrap_or(0);
        let reason = resp.reason.unwrap_or("").to_string();
        let length = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            });
        let mut body = buf.split_off(head_len);
        match length {
            Some(len) => {
                while body.len() < len {
                    let n = stream.read(&mut chunk)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(len);
            }
            None => {
                stream.read_to_end(&mut body)?;
            }
        }
        return Ok(Page {
            status: code,
            reason,
            body,
            took: start.elapsed(),
        });
    }
}

/// Starts the embedded server in a greenlet and returns its address.
fn start_local_server() -> io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    greenlet::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    greenlet::spawn(move || {
                        if let Err(e) = serve_page(stream) {
                            eprintln!("local server: {e}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("local server: accept: {e}");
                    greenlet::sleep(Duration::from_millis(10));
                }
            }
        }
    });
    Ok(addr)
}

/// Answers one request: `/page/N` is N KiB of text, after `PAGE_DELAY`.
fn serve_page(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let path = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(_) = req
            .parse(&buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            break req.path.unwrap_or("/").to_string();
        }
    };
    greenlet::sleep(PAGE_DELAY);
    let (status, body) = match path
        .strip_prefix("/page/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => (
            "200 OK",
            format!("page {n}\n{}", "greenlet ".repeat(n * 1024 / 9)),
        ),
        None => ("404 Not Found", "no such page\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
