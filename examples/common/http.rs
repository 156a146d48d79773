//! A small blocking HTTP/1.1 client (GET only), shared by the `download` and
//! `download_patched` examples: URL parsing, name resolution and connect
//! with errors that say what failed, the request, the response head
//! (`httparse`), `Content-Length`, chunked and read-to-close bodies,
//! bounded redirects, and (with [`get_reusing`]) persistent connections. Bodies are streamed: [`get`] returns after the head
//! and the caller reads the body into a buffer of its own, so memory does
//! not grow with the body's size.
//!
//! It is written against `Read + Write` and two small closures (resolve,
//! connect), so the same code runs over `greenlet::net::TcpStream`, a TLS
//! stream on top of it, or, once `greenlet::monkey::patch_all()` has been
//! called, a plain `std::net::TcpStream`. Inside a greenlet every read,
//! write, connect and lookup parks only that greenlet.

// Shared by two examples, each of which uses only part of it.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The most bytes a response head may take.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// The body length a message's `Content-Length` fields give, by RFC 9112
/// section 6.3: `None` without one; an error unless every field (and every
/// element of a comma-separated list) is the same run of digits. Two
/// different lengths make the framing unknowable (a request smuggling
/// vector), so the message must be refused, not guessed at.
pub fn content_length(headers: &[httparse::Header<'_>]) -> Result<Option<u64>, String> {
    let mut length = None;
    for h in headers {
        if !h.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for v in h.value.split(|&b| b == b',') {
            let v = v.trim_ascii();
            let n = std::str::from_utf8(v)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!("bad Content-Length {:?}", String::from_utf8_lossy(h.value))
                })?;
            match length {
                Some(m) if m != n => {
                    return Err(format!("conflicting Content-Length values {m} and {n}"));
                }
                _ => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// The scheme of a [`Url`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// An `http://` or `https://` URL split into what a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path][?query]` (an IPv6 host in
    /// brackets). The fragment is dropped.
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::BadUrl(format!("{url:?}: {why}"));
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if url.contains("://") {
            return Err(bad("only http:// and https:// are supported"));
        } else {
            return Err(bad("not an http:// URL"));
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        if authority.contains('@') {
            return Err(bad("user info in URLs is not supported"));
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?)
                    .ok_or_else(|| bad("bad port"))?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, p)) => (host, parse_port(p).ok_or_else(|| bad("bad port"))?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("bad character in host"));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("bad character in path (spaces must be %20)"));
        }
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// Resolves a `Location` header against this URL: absolute URLs,
    /// `//host/path`, `/path` and relative paths.
    pub fn join(&self, location: &str) -> Result<Url, Error> {
        if location.contains("://") {
            return Url::parse(location);
        }
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let dir = self.path.split('?').next().unwrap_or("/");
            let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Url::parse(&format!("{scheme}://{}{path}", self.authority()))
    }

    /// `host[:port]`, the port left out when it is the scheme's default
    /// (the form the `Host` header wants).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.scheme, self.port) {
            (Scheme::Http, 80) | (Scheme::Https, 443) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Why one download failed. Each variant's message names the cause.
#[derive(Debug)]
pub enum Error {
    /// The URL could not be parsed or is not supported.
    BadUrl(String),
    /// The scheme is known but not built in (https without feature `tls`).
    Unsupported(String),
    /// The host name did not resolve.
    Dns { host: String, source: io::Error },
    /// No address of the host accepted the connection (the last error).
    Connect { addr: SocketAddr, source: io::Error },
    /// The request took longer than allowed.
    Timeout(Option<Duration>),
    /// The TLS handshake or session failed.
    Tls(String),
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// The peer did not answer with valid HTTP.
    BadResponse(String),
    /// The server answered with an error status.
    Status(u16, String),
    /// More redirects than allowed.
    TooManyRedirects(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUrl(why) => write!(f, "bad URL {why}"),
            Error::Unsupported(why) => write!(f, "{why}"),
            Error::Dns { host, source } => write!(f, "DNS lookup of {host:?} failed: {source}"),
            Error::Connect { addr, source } => match source.kind() {
                io::ErrorKind::ConnectionRefused => write!(f, "connection to {addr} refused"),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    write!(f, "connection to {addr} timed out")
                }
                _ => write!(f, "cannot connect to {addr}: {source}"),
            },
            Error::Timeout(Some(d)) => write!(f, "timed out after {d:?}"),
            Error::Timeout(None) => write!(f, "timed out"),
            Error::Tls(why) => write!(f, "TLS error: {why}"),
            Error::Io(e) => write!(f, "connection error: {e}"),
            Error::BadResponse(why) => write!(f, "bad response: {why}"),
            Error::Status(code, reason) => write!(f, "HTTP {code} {reason}"),
            Error::TooManyRedirects(n) => write!(f, "too many redirects (more than {n})"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.kind() {
            // Socket timeouts surface as WouldBlock (std on Unix) or TimedOut
            // (a timed-out patched call).
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(None),
            _ => Error::Io(e),
        }
    }
}

/// A response whose head has been read; its body is still on the
/// connection and is read with [`Response::read_body`] (into the caller's
/// buffer, so a body of any size goes through a bounded amount of memory)
/// or [`Response::body_to_end`].
pub struct Response<S> {
    pub status: u16,
    pub reason: String,
    /// The URL the body comes from (after redirects).
    pub url: Url,
    pub redirects: usize,
    body: Body<S>,
}

impl<S> fmt::Debug for Response<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("url", &self.url)
            .field("redirects", &self.redirects)
            .finish_non_exhaustive()
    }
}

impl<S: Read> Response<S> {
    /// Reads the next body bytes into `buf` (not empty), decoding the
    /// framing: bytes already buffered with the head first, then straight
    /// from the connection into `buf` (one `read` of up to `buf.len()`
    /// bytes, no copy in between). Returns 0 at the end of the body; a
    /// body cut short is an error.
    pub fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        assert!(!buf.is_empty(), "read_body needs room to read into");
        self.body.read(buf)
    }

    /// The connection, for another request to the same server, if the
    /// body has been read to its end, nothing follows it, and both sides
    /// keep the connection open ([`get_reusing`] only).
    pub fn into_idle(self) -> Option<S> {
        let body = self.body;
        (body.reusable && matches!(body.framing, Framing::Done) && body.reader.buf.is_empty())
            .then_some(body.reader.stream)
    }

    /// Reads the whole rest of the body into memory.
    pub fn body_to_end(&mut self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            match self.read_body(&mut chunk)? {
                0 => return Ok(body),
                n => body.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Resolves `url`'s host with `resolve`, then connects to its addresses in
/// turn with `connect`, returning the first that works. Errors say whether
/// the lookup or the connection failed.
pub fn connect<S>(
    url: &Url,
    resolve: impl FnOnce(&str, u16) -> io::Result<Vec<SocketAddr>>,
    mut connect: impl FnMut(SocketAddr) -> io::Result<S>,
) -> Result<S, Error> {
    let dns = |source| Error::Dns {
        host: url.host.clone(),
        source,
    };
    let addrs = resolve(&url.host, url.port).map_err(dns)?;
    let mut last = Err(dns(io::Error::new(
        io::ErrorKind::NotFound,
        "no addresses found",
    )));
    for addr in addrs {
        match connect(addr) {
            Ok(s) => return Ok(s),
            Err(source) => last = Err(Error::Connect { addr, source }),
        }
    }
    last
}

/// GETs `url`, following up to `max_redirects` redirects; `open` makes the
/// connection for each hop. A status of 400 or above is an error. Returns
/// once the final response's head is in; the body is read from the
/// [`Response`]. Each request asks for `Connection: close`; a redirect's
/// body is not read (dropping the connection ends it).
pub fn get<S: Read + Write>(
    url: &str,
    max_redirects: usize,
    mut open: impl FnMut(&Url) -> Result<S, Error>,
) -> Result<Response<S>, Error> {
    get_with(url, max_redirects, false, |url| Ok((open(url)?, false)))
}

/// [`get`] with persistent connections: `open` returns a connection and
/// whether it was used before (taken from the caller's idle connections);
/// requests do not ask for `Connection: close`, and once its body has been
/// read to the end, [`Response::into_idle`] gives the connection back for
/// the next request to the same server. A reused connection that the
/// server closed meanwhile (it fails before any byte of a response) is
/// dropped and the request made again on the next one `open` returns.
pub fn get_reusing<S: Read + Write>(
    url: &str,
    max_redirects: usize,
    open: impl FnMut(&Url) -> Result<(S, bool), Error>,
) -> Result<Response<S>, Error> {
    get_with(url, max_redirects, true, open)
}

fn get_with<S: Read + Write>(
    url: &str,
    max_redirects: usize,
    keep_alive: bool,
    mut open: impl FnMut(&Url) -> Result<(S, bool), Error>,
) -> Result<Response<S>, Error> {
    let mut url = Url::parse(url)?;
    let mut redirects = 0;
    loop {
        let (stream, reused) = open(&url)?;
        let Some((status, reason, location, body)) = exchange(stream, &url, keep_alive, reused)?
        else {
            continue; // A stale idle connection: again on the next one.
        };
        if let (301 | 302 | 303 | 307 | 308, Some(location)) = (status, &location) {
            if redirects == max_redirects {
                return Err(Error::TooManyRedirects(max_redirects));
            }
            redirects += 1;
            url = url.join(location)?;
            continue;
        }
        if status >= 400 {
            return Err(Error::Status(status, reason));
        }
        return Ok(Response {
            status,
            reason,
            url,
            redirects,
            body,
        });
    }
}

/// The head of a response and its body, still to read.
type Head<S> = (u16, String, Option<String>, Body<S>);

/// Sends one GET on `stream` and reads the response head: status, reason,
/// `Location`, and the body still to read. `None` when `stream` was
/// `reused` and failed before any byte of a response came back: the
/// server had closed it, and the request can be made again elsewhere.
fn exchange<S: Read + Write>(
    mut stream: S,
    url: &Url,
    keep_alive: bool,
    reused: bool,
) -> Result<Option<Head<S>>, Error> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: greenlet-download/0.1\r\nAccept: */*\r\n{}\r\n",
        url.path,
        url.authority(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    let sent = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush());
    match sent {
        Err(e) if reused && stale(&e) => return Ok(None),
        sent => sent?,
    }

    let mut reader = Buffered::new(stream);
    let (status, reason, location, framing, head_len, reusable) = loop {
        let got = match reader.fill() {
            Err(e) if reused && reader.buf.is_empty() && stale(&e) => return Ok(None),
            got => got?,
        };
        if got == 0 && reused && reader.buf.is_empty() {
            return Ok(None);
        }
        if got == 0 {
            return Err(Error::BadResponse(if reader.buf.is_empty() {
                "connection closed without a response".to_string()
            } else {
                "connection closed in the middle of the response head".to_string()
            }));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&reader.buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = resp.code.unwrap_or(0);
                if (100..200).contains(&status) {
                    // An interim response (100 Continue): skip it.
                    reader.buf.drain(..head_len);
                    continue;
                }
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                let framing = if status == 204 || status == 304 {
                    Framing::Length { len: 0, left: 0 }
                } else if header("transfer-encoding")
                    .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"))
                {
                    Framing::Chunked {
                        left: 0,
                        first: true,
                    }
                } else if let Some(len) =
                    content_length(resp.headers).map_err(Error::BadResponse)?
                {
                    Framing::Length { len, left: len }
                } else {
                    Framing::UntilClose
                };
                let reason = resp.reason.unwrap_or("").to_string();
                // HTTP/1.1 keeps the connection unless either side says close.
                let reusable = keep_alive
                    && resp.version == Some(1)
                    && !header("connection")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
                    && !matches!(framing, Framing::UntilClose);
                let location = header("location");
                break (status, reason, location, framing, head_len, reusable);
            }
            Ok(httparse::Status::Partial) if reader.buf.len() > MAX_HEAD => {
                return Err(Error::BadResponse(format!(
                    "response head larger than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => {
                return Err(Error::BadResponse(format!("not HTTP/1.x ({e})")));
            }
        }
    };
    reader.buf.drain(..head_len);
    let body = Body {
        reader,
        framing,
        reusable,
    };
    Ok(Some((status, reason, location, body)))
}

/// Whether `e` is what a request on a connection the server has closed
/// fails with.
fn stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// How the body's end is found, and how far reading it has got.
enum Framing {
    /// `Content-Length: len`, `left` bytes still to come.
    Length { len: u64, left: u64 },
    /// Chunked: `left` bytes of the current chunk still to come; a chunk
    /// header comes next when it is 0 (`first`: no chunk read yet, so no
    /// CRLF ends a previous one).
    Chunked { left: u64, first: bool },
    /// Until the server closes the connection.
    UntilClose,
    /// The whole body has been read.
    Done,
}

/// A response body still on its connection.
struct Body<S> {
    reader: Buffered<S>,
    framing: Framing,
    /// The connection may carry another request once the body is read.
    reusable: bool,
}

impl<S: Read> Body<S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            match &mut self.framing {
                Framing::Done => return Ok(0),
                Framing::Length { len, left } => {
                    let (len, want) = (*len, *left);
                    if want == 0 {
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    let n = self.reader.read(buf, want)?;
                    if n == 0 {
                        return Err(Error::BadResponse(format!(
                            "connection closed after {} of {len} body bytes",
                            len - want
                        )));
                    }
                    self.framing = Framing::Length {
                        len,
                        left: want - n as u64,
                    };
                    return Ok(n);
                }
                Framing::Chunked { left: 0, first } => {
                    if !*first && !self.reader.line()?.is_empty() {
                        return Err(Error::BadResponse("chunk longer than its size".into()));
                    }
                    let line = self.reader.line()?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| Error::BadResponse(format!("bad chunk size {size:?}")))?;
                    if size == 0 {
                        // Trailers, skipped.
                        while !self.reader.line()?.is_empty() {}
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked {
                        left: size,
                        first: false,
                    };
                }
                Framing::Chunked { left, .. } => {
                    let n = self.reader.read(buf, *left)?;
                    if n == 0 {
                        return Err(Error::BadResponse(
                            "connection closed in the middle of a chunked body".into(),
                        ));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                Framing::UntilClose => {
                    let n = self.reader.read(buf, u64::MAX)?;
                    if n == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

/// A read buffer over the stream: `buf` holds bytes read and not used yet.
struct Buffered<S> {
    stream: S,
    buf: Vec<u8>,
}

/// How much [`Buffered::fill`] reads at a time (heads and chunk headers).
const FILL: usize = 16 * 1024;

impl<S: Read> Buffered<S> {
    fn new(stream: S) -> Self {
        Buffered {
            stream,
            buf: Vec::with_capacity(FILL),
        }
    }

    /// Reads more bytes into `buf`; 0 at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        let old = self.buf.len();
        self.buf.resize(old + FILL, 0);
        let got = self.stream.read(&mut self.buf[old..]);
        self.buf.truncate(old + *got.as_ref().unwrap_or(&0));
        got
    }

    /// Up to `limit` bytes into `out`: from `buf` while it holds any, then
    /// straight from the stream. 0 only at the end of the stream.
    fn read(&mut self, out: &mut [u8], limit: u64) -> io::Result<usize> {
        let room = usize::try_from(limit).map_or(out.len(), |l| l.min(out.len()));
        let out = &mut out[..room];
        if self.buf.is_empty() {
            return self.stream.read(out);
        }
        let n = room.min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
        Ok(n)
    }

    /// One CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Error::BadResponse("chunk header line too long".into()));
            }
            if self.fill()? == 0 {
                return Err(Error::BadResponse(
                    "connection closed in the middle of a chunked body".into(),
                ));
            }
        }
    }
}
