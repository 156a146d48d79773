//! A small HTTP/1.1 server on `greenlet::server::StreamServer`, ported from
//! gevent's `examples/webserver.py` (a WSGI app with the same two routes):
//!
//! - `/` answers `<h1>Index</h1>`;
//! - `/hello/{name}` answers `<h1>hello, {name}!</h1>`;
//! - anything else is a 404.
//!
//! Connections are kept alive (HTTP/1.1, or HTTP/1.0 with
//! `Connection: keep-alive`) and pipelined requests are answered in order.
//! Malformed requests get 400 (so do two different `Content-Length`
//! values, RFC 9112 section 6.3), header sections over 8 KiB 431, bodies
//! over 1 MiB 413 (without reading them: `Expect: 100-continue` gets its
//! `100 Continue` only for a body within the limit), chunked request bodies
//! 501; each of those closes the connection. Nothing a client sends can
//! crash the server.
//!
//! Slow and idle clients are bounded (slowloris): a kept-alive connection
//! may idle 60 s between requests, but once a request's first byte has
//! come its whole head must arrive within `--head-timeout-ms` (10 s; else
//! 408 and close), and its body within `--body-timeout-ms` (30 s; else the
//! connection closes). At most `--max-connections` (1,000) are served at
//! once per worker; clients past that get a 503 at once and are closed.
//! Keep the limit under the fd limit (`ulimit -n`).
//!
//! ```text
//! cargo run --release --example http_server -- [--port 8000] [--host 127.0.0.1]
//!     [--workers 1] [--delay-ms 0] [--max-connections 1000]
//!     [--head-timeout-ms 10000] [--body-timeout-ms 30000]
//! ```
//!
//! `--delay-ms N` sleeps N ms (a greenlet sleep) before each answer, as the
//! Python example's handler does (it sleeps 0.5 s), to show that slow
//! requests overlap. `--workers N` serves on N threads, one hub each. The
//! first line printed is `Serving on http://ADDR`, with the bound port (so
//! `--port 0` can be used).
//!
//! SIGTERM or SIGINT (Ctrl-C) stops it gracefully: it stops accepting,
//! lets the requests in progress finish (up to the server's stop timeout),
//! then exits 0.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::TcpStream;
use greenlet::server::{Overflow, StreamServer};

#[path = "common/http.rs"]
mod http;

/// The largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// The largest request body accepted (it is read and ignored).
const MAX_BODY: u64 = 1024 * 1024;
/// The most headers in one request.
const MAX_HEADERS: usize = 64;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The answer to a client past `--max-connections`.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n\
Content-Length: 28\r\nRetry-After: 1\r\nConnection: close\r\n\r\n<h1>Service Unavailable</h1>";

struct Options {
    host: String,
    port: u16,
    workers: usize,
    delay: Duration,
    max_connections: usize,
    limits: Limits,
}

/// How long a request may take to arrive, once it has started.
#[derive(Clone, Copy)]
struct Limits {
    head: Duration,
    body: Duration,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        host: "127.0.0.1".to_owned(),
        port: 8000,
        workers: 1,
        delay: Duration::ZERO,
        max_connections: 1000,
        limits: Limits {
            head: Duration::from_secs(10),
            body: Duration::from_secs(30),
        },
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => opts.host = value()?,
            "--port" => opts.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--workers" => {
                opts.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if opts.workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--delay-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--delay-ms: {e}"))?;
                opts.delay = Duration::from_millis(ms);
            }
            "--max-connections" => {
                opts.max_connections = value()?
                    .parse()
                    .map_err(|e| format!("--max-connections: {e}"))?;
                if opts.max_connections == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
            }
            "--head-timeout-ms" | "--body-timeout-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
                if ms == 0 {
                    return Err(format!("{flag} must be at least 1"));
                }
                let d = Duration::from_millis(ms);
                if flag == "--head-timeout-ms" {
                    opts.limits.head = d;
                } else {
                    opts.limits.body = d;
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: http_server [--host H] [--port N] [--workers N] [--delay-ms N] \
                     [--max-connections N] [--head-timeout-ms N] [--body-timeout-ms N]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(opts)
}

fn main() {
    // Before any thread starts (workers inherit the mask): SIGTERM and
    // SIGINT now wait for the greenlet below instead of killing us.
    greenlet::signal::block(&[greenlet::signal::SIGTERM, greenlet::signal::SIGINT])
        .expect("block SIGTERM and SIGINT");
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("http_server: {e}");
            std::process::exit(2);
        }
    };
    let (delay, limits) = (opts.delay, opts.limits);
    let server = match StreamServer::bind((opts.host.as_str(), opts.port), move |stream, peer| {
        // A client that goes away mid-request is not an error worth more
        // than closing its connection.
        let _ = serve_connection(stream, peer, delay, limits);
    }) {
        Ok(s) => s
            .workers(opts.workers)
            .max_connections(opts.max_connections)
            .overflow(Overflow::Reply(BUSY)),
        Err(e) => {
            eprintln!("http_server: cannot bind {}:{}: {e}", opts.host, opts.port);
            std::process::exit(1);
        }
    };
    let addr = server
        .local_addr()
        .expect("a bound listener has an address");
    println!("Serving on http://{addr}");
    let _ = io::stdout().flush();
    let handle = server.handle();
    greenlet::spawn(move || {
        use greenlet::signal::{SIGINT, SIGTERM};
        if let Ok(sig) = greenlet::signal::wait(&[SIGTERM, SIGINT]) {
            eprintln!("http_server: signal {sig}, stopping");
            handle.stop();
        }
    });
    if let Err(e) = server.serve_forever() {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    }
}

/// What one parsed request asks for.
struct Request {
    head_len: usize,
    path: String,
    head_only: bool,
    keep_alive: bool,
    body_len: u64,
    /// The client sent `Expect: 100-continue` and waits for a go-ahead
    /// before it sends the body.
    expects_continue: bool,
}

/// The ways a request can be refused; each ends the connection.
enum Refusal {
    BadRequest,
    /// The head did not arrive within `--head-timeout-ms`.
    Timeout,
    HeadTooLarge,
    BodyTooLarge,
    NotImplemented,
}

/// What waiting for the next request head ended with.
enum Head {
    Request(Request),
    /// The client closed the connection.
    Closed,
    Refused(Refusal),
}

/// Serves requests on one connection until the client closes it, asks for
/// the close, or sends something refused.
fn serve_connection(
    stream: TcpStream,
    _peer: SocketAddr,
    delay: Duration,
    limits: Limits,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(256);
    loop {
        let request = match read_head(&stream, &mut buf, limits.head)? {
            Head::Request(r) => r,
            Head::Closed => return Ok(()),
            Head::Refused(refusal) => return refuse(&stream, refusal),
        };
        if request.body_len > MAX_BODY {
            return refuse(&stream, Refusal::BodyTooLarge);
        }
        let body_buffered = (buf.len() - request.head_len) as u64;
        if request.expects_continue && request.body_len > body_buffered {
            (&stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        // Drop the head and the body (read and ignored); the body must
        // come within its deadline.
        let mut to_drop = request.head_len as u64 + request.body_len;
        let body = greenlet::with_timeout(limits.body, || -> io::Result<bool> {
            while (buf.len() as u64) < to_drop {
                to_drop -= buf.len() as u64;
                buf.clear();
                if !fill(&stream, &mut buf)? {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        match body {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Err(_) => return Ok(()), // closed, or too slow
            Ok(Err(e)) => return Err(e),
        }
        buf.drain(..to_drop as usize);

        if !delay.is_zero() {
            greenlet::sleep(delay);
        }
        let (status, body) = route(&request.path);
        out.clear();
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\n{}\r\n",
            body.len(),
            if request.keep_alive {
                "Connection: keep-alive\r\n"
            } else {
                "Connection: close\r\n"
            }
        )?;
        if !request.head_only {
            out.extend_from_slice(body.as_bytes());
        }
        (&stream).write_all(&out)?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// Reads until a whole request head is at the start of `buf` (pipelined
/// requests may already be there). Waiting for the first byte of a request
/// is idling, bounded by the socket's read timeout; from that byte on, the
/// whole head must arrive within `limit`, however slowly its bytes trickle
/// in.
fn read_head(stream: &TcpStream, buf: &mut Vec<u8>, limit: Duration) -> io::Result<Head> {
    if buf.is_empty() && !fill(stream, buf)? {
        return Ok(Head::Closed);
    }
    let head = greenlet::with_timeout(limit, || {
        loop {
            match parse(buf) {
                Ok(Some(r)) => return Ok(Head::Request(r)),
                Ok(None) if buf.len() >= MAX_HEAD => {
                    return Ok(Head::Refused(Refusal::HeadTooLarge));
                }
                Ok(None) => {
                    if !fill(stream, buf)? {
                        return Ok(Head::Closed);
                    }
                }
                Err(refusal) => return Ok(Head::Refused(refusal)),
            }
        }
    });
    head.unwrap_or(Ok(Head::Refused(Refusal::Timeout)))
}

/// Reads more bytes into `buf`; `false` at end of stream.
fn fill(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let len = buf.len();
    buf.resize(len + 4096, 0);
    match (&*stream).read(&mut buf[len..]) {
        Ok(n) => {
            buf.truncate(len + n);
            Ok(n > 0)
        }
        Err(e) => {
            buf.truncate(len);
            Err(e)
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` if it is incomplete.
fn parse(buf: &[u8]) -> Result<Option<Request>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(_) => return Err(Refusal::BadRequest),
    };
    if head_len > MAX_HEAD {
        return Err(Refusal::HeadTooLarge);
    }
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Refusal::BadRequest);
    };
    let mut keep_alive = version == 1;
    let body_len = http::content_length(req.headers)
        .map_err(|_| Refusal::BadRequest)?
        .unwrap_or(0);
    let mut expects_continue = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let v = std::str::from_utf8(h.value).map_err(|_| Refusal::BadRequest)?;
            for token in v.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            expects_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::NotImplemented);
        }
    }
    Ok(Some(Request {
        head_len,
        path: path.to_owned(),
        head_only: method == "HEAD",
        keep_alive,
        body_len,
        expects_continue: expects_continue && version == 1,
    }))
}

/// The status line and page for `path` (the query string is ignored).
fn route(path: &str) -> (&'static str, String) {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path == "/" {
        return ("200 OK", "<h1>Index</h1>".to_owned());
    }
    if let Some(name) = path.strip_prefix("/hello/")
        && !name.is_empty()
        && !name.contains('/')
    {
        return (
            "200 OK",
            format!("<h1>hello, {}!</h1>", html_escape(&percent_decode(name))),
        );
    }
    ("404 Not Found", "<h1>Not Found</h1>".to_owned())
}

/// Answers with an error page and closes the connection.
fn refuse(stream: &TcpStream, refusal: Refusal) -> io::Result<()> {
    let status = match refusal {
        Refusal::BadRequest => "400 Bad Request",
        Refusal::Timeout => "408 Request Timeout",
        Refusal::HeadTooLarge => "431 Request Header Fields Too Large",
        Refusal::BodyTooLarge => "413 Content Too Large",
        Refusal::NotImplemented => "501 Not Implemented",
    };
    let body = format!("<h1>{}</h1>", &status[4..]);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    (&*stream).write_all(response.as_bytes())?;
    // Let the client read the answer before the close: a close with unread
    // request bytes would reset the connection and could discard it. At
    // most 1 s of this, however slowly the client keeps sending.
    stream.shutdown(std::net::Shutdown::Write)?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = greenlet::with_timeout(Duration::from_secs(1), || {
        let mut sink = [0; 4096];
        let mut drained = 0;
        while let Ok(n @ 1..) = (&*stream).read(&mut sink) {
            drained += n;
            if drained > 4 * MAX_BODY as usize {
                break;
            }
        }
    });
    Ok(())
}

/// Decodes `%XX` escapes; invalid ones and non-UTF-8 results are kept as
/// they are (lossily).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
