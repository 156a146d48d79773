//! Downloads many URLs concurrently on one thread: gevent's concurrent
//! download example, with a pool, timeouts, redirects and a summary.
//!
//! ```text
//! cargo run --release --example download                  # offline: embedded server, 300 pages
//! cargo run --release --example download -- http://example.com/ http://127.0.0.1:8080/a
//! cargo run --release --example download -- --file urls.txt --concurrency 50 --timeout 10 --out pages/
//! cargo run --release --example download --features tls -- https://www.rust-lang.org/
//! ```
//!
//! Options:
//!
//! - `--concurrency N`: at most N downloads at once (a `greenlet::pool::Pool`;
//!   default 100).
//! - `--timeout SECS`: per URL, redirects included (`greenlet::with_timeout`;
//!   default 30, fractions allowed).
//! - `--out DIR`: write each body to `DIR/NNNN-NAME`, NNNN being the URL's
//!   index in the input (from 0), NAME the last path segment (`index.html`
//!   for `/`). Files are written on the blocking thread pool; a download
//!   that fails leaves no file.
//! - `--no-reuse`: a new connection for every request (by default
//!   keep-alive connections are reused, see below).
//! - `--file FILE`: read URLs from FILE, one a line (`#` starts a comment).
//! - `--quiet`: no line per download and no progress, only errors and the
//!   summary. `--progress`: a live progress line on stderr instead of a line
//!   per download (the default above 50 URLs).
//!
//! Every download is a greenlet running plain blocking-style code on
//! `greenlet::net::TcpStream` (the HTTP/1.1 client is in `common/http.rs`,
//! shared with `download_patched`). A failure (bad URL, DNS, refused,
//! timeout, bad response, HTTP error status) is reported for its URL only;
//! the exit status is 1 if any download failed, 2 on a usage error.
//!
//! Connections are kept open and reused: a download from a server that
//! keeps its connections alive (HTTP/1.1 without `Connection: close`)
//! sends its request on the connection an earlier download from that
//! server finished with, as curl and browsers do; one the server has
//! closed meanwhile is dropped and the request made on a new one.
//!
//! Bodies are streamed, never held whole: each download reads its body
//! into one 256 KiB buffer (the socket reads go straight into it; buffers
//! are reused by later downloads) and, with `--out`, hands each full
//! buffer to the blocking pool, which creates the file on the first trip
//! and appends to it. So memory does not grow with the size of a body: a
//! 4 GB file at `--concurrency 50` needs 50 buffers, not 200 GB, and 8
//! files of 200 MB from a local nginx peak at under 10 MB resident, less
//! than `curl --parallel` (`benches/compare/download`, `nginx.sh`, has the
//! figures).
//!
//! With no URLs it starts an embedded HTTP server (`common/server.rs`) and
//! fetches 300 pages of 0 B to 1 MiB from it, some chunked, some slow (200
//! to 500 ms), two behind redirects, and checks every body's size.
//! `https://` URLs need the `tls` feature (rustls with ring over
//! `greenlet::net::TcpStream`).

#[path = "common/http.rs"]
mod http;
#[path = "common/server.rs"]
mod server;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use greenlet::net::{TcpStream, ToSocketAddrs};
use greenlet::pool::Pool;

use http::{Error, Scheme, Url};

const USAGE: &str = "usage: download [--concurrency N] [--timeout SECS] [--out DIR] [--quiet] [--progress] [--no-reuse] [--file FILE] [URL...]";
/// Pages in the offline default set.
const DEFAULT_PAGES: usize = 300;
/// Above this many URLs the progress line replaces the per-URL lines.
const PROGRESS_ABOVE: usize = 50;
const MAX_REDIRECTS: usize = 5;

struct Options {
    concurrency: usize,
    timeout: Duration,
    out: Option<PathBuf>,
    quiet: bool,
    progress: bool,
    /// A new connection for every request.
    no_reuse: bool,
    urls: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        concurrency: 100,
        timeout: Duration::from_secs(30),
        out: None,
        quiet: false,
        progress: false,
        no_reuse: false,
        urls: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--concurrency" | "-c" => {
                let v = value("--concurrency")?;
                opts.concurrency = match v.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--concurrency: {v:?} is not a positive number")),
                };
            }
            "--timeout" | "-t" => {
                let v = value("--timeout")?;
                opts.timeout = match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                    _ => {
                        return Err(format!(
                            "--timeout: {v:?} is not a positive number of seconds"
                        ));
                    }
                };
            }
            "--out" | "-o" => opts.out = Some(PathBuf::from(value("--out")?)),
            "--file" | "-f" => {
                let path = value("--file")?;
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("--file {path}: {e}"))?;
                opts.urls.extend(
                    text.lines()
                        .map(|l| l.split('#').next().unwrap_or("").trim())
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
            "--quiet" | "-q" => opts.quiet = true,
            "--progress" => opts.progress = true,
            "--no-reuse" => opts.no_reuse = true,
            "--help" | "-h" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            url => opts.urls.push(url.to_owned()),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let mut opts = match parse_args() {
        Ok(opts) => opts,
        Err(why) if why.is_empty() => {
            println!("{USAGE}"); // --help
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("download: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // With no URLs: the embedded server and its pages, whose sizes we know.
    let mut expected: Vec<Option<usize>> = Vec::new();
    if opts.urls.is_empty() {
        let addr = match server::start() {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("download: cannot start the embedded server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let pages = server::default_pages(addr, DEFAULT_PAGES);
        println!(
            "embedded server on http://{addr}/: {} pages, {} bytes in all",
            pages.len(),
            pages.iter().map(|p| p.size).sum::<usize>()
        );
        for page in pages {
            opts.urls.push(page.url);
            expected.push(Some(page.size));
        }
    } else {
        expected = vec![None; opts.urls.len()];
    }
    if let Some(dir) = &opts.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("download: --out {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }

    let total = opts.urls.len();
    let mut report = Report::new(
        total,
        if opts.quiet {
            Mode::Quiet
        } else if opts.progress || total > PROGRESS_ABOVE {
            Mode::Progress
        } else {
            Mode::Lines
        },
    );
    let start = Instant::now();
    IDLE_COUNT.set((0, opts.concurrency));
    let pool = Pool::new(opts.concurrency);
    let (timeout, out, reuse) = (opts.timeout, opts.out.clone(), !opts.no_reuse);
    let jobs = opts.urls.iter().cloned().zip(expected).enumerate();
    for (index, url, result) in pool.imap_unordered(jobs, move |(index, (url, expected))| {
        let result = download(&url, index, expected, timeout, out.as_ref(), reuse);
        (index, url, result)
    }) {
        report.finished(index, &url, result);
    }
    report.summary(start.elapsed())
}

/// Fetches `url` within `timeout` (on an idle connection to its server if
/// `reuse` and there is one), streams the body to `out` if asked, and
/// checks the size when it is known. Returns the body's length. A
/// failed download leaves no file behind.
fn download(
    url: &str,
    index: usize,
    expected: Option<usize>,
    timeout: Duration,
    out: Option<&PathBuf>,
    reuse: bool,
) -> Result<usize, Error> {
    // The file's path, once known, so a failure can remove it.
    let written = Cell::new(None::<PathBuf>);
    let fetch = || -> Result<u64, Error> {
        let mut response = if reuse {
            http::get_reusing(url, MAX_REDIRECTS, open_reusing)?
        } else {
            http::get(url, MAX_REDIRECTS, open)?
        };
        let path = out.map(|dir| dir.join(file_name(index, &response.url)));
        written.set(path.clone());
        let len = copy_body(&mut response, path)?;
        let server = server_key(&response.url);
        if let Some(conn) = response.into_idle() {
            keep_idle(server, conn);
        }
        Ok(len)
    };
    let result = match greenlet::with_timeout(timeout, fetch) {
        Ok(Ok(len)) => match expected {
            Some(want) if want as u64 != len => Err(Error::BadResponse(format!(
                "expected {want} bytes, got {len}"
            ))),
            _ => Ok(len as usize),
        },
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Timeout(Some(timeout))),
    };
    if let (Err(_), Some(path)) = (&result, written.take()) {
        // Best effort: the error that matters is the download's.
        let _ = greenlet::fs::remove_file(path);
    }
    result
}

/// The body buffer of one download. Bodies of any size go through it, so a
/// download holds at most this much of its body in memory: a 4 GB file at
/// `--concurrency 50` needs 50 x 256 KiB, not 200 GB. Larger buffers mean
/// fewer pool trips for large bodies but more memory touched for the small
/// ones: at 1 MiB the 300-file nginx case touched twice the pages and used
/// more CPU than curl, at 256 KiB it matches curl (see the benchmark's
/// README).
const BUFFER: usize = 256 << 10;

thread_local! {
    /// Buffers of finished downloads, reused by the next ones: at most one
    /// per concurrent download, each allocated (and its pages touched) once.
    static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A [`BUFFER`]-byte buffer from [`BUFFERS`] (or a new one), given back
/// when dropped, also when a timeout unwinds the download.
struct Buffer(Vec<u8>);

impl Buffer {
    fn get() -> Buffer {
        let buf = BUFFERS.with(|b| b.borrow_mut().pop());
        Buffer(buf.unwrap_or_else(|| vec![0; BUFFER]))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        if buf.len() == BUFFER {
            BUFFERS.with(|b| b.borrow_mut().push(buf));
        }
    }
}

/// Reads the body into a [`Buffer`] and, with `path`, writes each full
/// buffer (and the last part) to that file. Opening and writing a file
/// would stall the whole hub, so both run on the blocking pool: one trip
/// per full buffer, the file created in the first one and closed in the
/// last (a body that fits in the buffer costs one trip in all). The socket reads go straight into
/// the buffer, and the buffer itself travels to the pool thread and back
/// (with the open file), so each byte is copied only by the kernel: socket
/// to buffer, buffer to page cache. Returns the body's length.
fn copy_body(response: &mut http::Response<Conn>, path: Option<PathBuf>) -> Result<u64, Error> {
    let mut buf = Buffer::get();
    let mut file = None;
    let (mut filled, mut total) = (0, 0u64);
    loop {
        let n = response.read_body(&mut buf.0[filled..])?;
        filled += n;
        total += n as u64;
        let end = n == 0;
        // A full buffer, or the end (an empty body still makes its file).
        if let Some(path) = path.as_ref().filter(|_| end || filled == BUFFER) {
            let (path, data, open) = (path.clone(), std::mem::take(&mut buf.0), file.take());
            let (data, result) = greenlet::threadpool::spawn_blocking(move || {
                let write = || -> io::Result<Option<std::fs::File>> {
                    let mut f = match open {
                        Some(f) => f,
                        None => std::fs::File::create(path)?,
                    };
                    f.write_all(&data[..filled])?;
                    // The last trip closes the file, off the hub too.
                    Ok(if end { None } else { Some(f) })
                };
                let result = write();
                (data, result)
            });
            buf.0 = data;
            file = result.map_err(Error::Io)?;
        }
        if end {
            return Ok(total);
        }
        if filled == BUFFER {
            filled = 0;
        }
    }
}

/// `NNNN-NAME` for the body of the `index`th URL.
fn file_name(index: usize, url: &Url) -> String {
    let path = url.path.split('?').next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = match name.trim_start_matches('.') {
        "" => "index.html",
        n => n,
    };
    format!("{index:04}-{name}")
}

thread_local! {
    /// Open connections whose last response has been read to its end, by
    /// server ([`server_key`]): the next download from the same server
    /// sends its request on one of them instead of connecting again, as
    /// browsers and curl do (the embedded server closes every connection,
    /// so the default run never reuses one).
    static IDLE: RefCell<HashMap<String, Vec<Conn>>> = RefCell::new(HashMap::new());
    /// How many connections [`IDLE`] holds, and the most it may hold (the
    /// concurrency: at most one idle connection per download slot, so a
    /// list of many servers cannot pile up descriptors).
    static IDLE_COUNT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The key of `url`'s server in [`IDLE`]: scheme, host and port.
fn server_key(url: &Url) -> String {
    format!("{:?} {}", url.scheme, url.authority())
}

/// Keeps `conn` in [`IDLE`] if there is room, else closes it.
fn keep_idle(server: String, conn: Conn) {
    let (count, max) = IDLE_COUNT.get();
    if count < max {
        IDLE.with(|idle| idle.borrow_mut().entry(server).or_default().push(conn));
        IDLE_COUNT.set((count + 1, max));
    }
}

/// An idle connection to `url`'s server (`true`: reused) or a new one.
fn open_reusing(url: &Url) -> Result<(Conn, bool), Error> {
    let idle = IDLE.with(|idle| idle.borrow_mut().get_mut(&server_key(url))?.pop());
    if let Some(conn) = idle {
        let (count, max) = IDLE_COUNT.get();
        IDLE_COUNT.set((count - 1, max));
        return Ok((conn, true));
    }
    Ok((open(url)?, false))
}

/// Opens a connection for `url`: TCP, and TLS on top for https.
fn open(url: &Url) -> Result<Conn, Error> {
    let tcp = http::connect(
        url,
        |host, port| (host, port).to_socket_addrs().map(Iterator::collect),
        TcpStream::connect,
    )?;
    match url.scheme {
        Scheme::Http => Ok(Conn::Plain(tcp)),
        Scheme::Https => tls::wrap(tcp, &url.host),
    }
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[cfg(feature = "tls")]
mod tls {
    //! rustls (ring provider, Mozilla's roots from `webpki-roots`) over a
    //! greenlet `TcpStream`: rustls only needs `Read + Write`, and every
    //! read and write of the socket parks just this greenlet.

    use std::sync::{Arc, OnceLock};

    use greenlet::net::TcpStream;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::{Conn, Error};

    fn config() -> Result<Arc<ClientConfig>, Error> {
        static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
        CONFIG
            .get_or_init(|| {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::Tls)
    }

    pub fn wrap(tcp: TcpStream, host: &str) -> Result<Conn, Error> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Tls(format!("{host:?} is not a valid server name: {e}")))?;
        let conn = ClientConnection::new(config()?, name).map_err(|e| Error::Tls(e.to_string()))?;
        let mut stream = StreamOwned::new(conn, tcp);
        // Handshake now, so its failures read as TLS errors.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| Error::Tls(e.to_string()))?;
        }
        Ok(Conn::Tls(Box::new(stream)))
    }
}

#[cfg(not(feature = "tls"))]
mod tls {
    use greenlet::net::TcpStream;

    use super::{Conn, Error};

    pub fn wrap(_tcp: TcpStream, _host: &str) -> Result<Conn, Error> {
        Err(Error::Unsupported(
            "https needs --features tls (cargo run --example download --features tls)".into(),
        ))
    }
}

/// How finished downloads are shown.
#[derive(PartialEq)]
enum Mode {
    /// gevent's line per download on stdout.
    Lines,
    /// One live line on stderr.
    Progress,
    Quiet,
}

/// Counts and prints finished downloads.
struct Report {
    mode: Mode,
    total: usize,
    done: usize,
    failed: usize,
    bytes: u64,
    start: Instant,
    last_drawn: Option<Instant>,
    /// Redraw in place (`\r`) on a terminal; otherwise a line now and then.
    live: bool,
}

impl Report {
    fn new(total: usize, mode: Mode) -> Report {
        Report {
            mode,
            total,
            done: 0,
            failed: 0,
            bytes: 0,
            start: Instant::now(),
            last_drawn: None,
            live: io::stderr().is_terminal(),
        }
    }

    fn finished(&mut self, index: usize, url: &str, result: Result<usize, Error>) {
        self.done += 1;
        match result {
            Ok(len) => {
                self.bytes += len as u64;
                if self.mode == Mode::Lines {
                    println!("{len} bytes received from {url}");
                }
            }
            Err(e) => {
                self.failed += 1;
                self.clear_progress();
                eprintln!("download: #{index} {url}: {e}");
            }
        }
        if self.mode == Mode::Progress {
            self.draw_progress();
        }
    }

    fn clear_progress(&mut self) {
        if self.mode == Mode::Progress && self.live && self.last_drawn.is_some() {
            eprint!("\r\x1b[K");
        }
    }

    fn draw_progress(&mut self) {
        let now = Instant::now();
        let every = if self.live {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let due = self.last_drawn.is_none_or(|t| now - t >= every);
        if !due && self.done < self.total {
            return;
        }
        self.last_drawn = Some(now);
        let line = format!(
            "[{}/{}] {} bytes, {} failed, {:.1} s",
            self.done,
            self.total,
            self.bytes,
            self.failed,
            (now - self.start).as_secs_f64()
        );
        if self.live {
            eprint!("\r\x1b[K{line}");
            if self.done == self.total {
                eprintln!();
            }
        } else {
            eprintln!("{line}");
        }
        let _ = io::stderr().flush();
    }

    fn summary(&self, wall: Duration) -> ExitCode {
        let secs = wall.as_secs_f64();
        println!(
            "{} downloads: {} ok, {} failed, {} bytes in {:.3} s ({:.0} requests/s)",
            self.total,
            self.total - self.failed,
            self.failed,
            self.bytes,
            secs,
            self.total as f64 / secs.max(1e-9)
        );
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
