//! gevent's concurrent download program, in Rust: `monkey::patch_all()`,
//! then plain `std::net::TcpStream` code, one greenlet per URL, `joinall`.
//!
//! ```text
//! cargo run --example download_patched --features monkey
//! cargo run --example download_patched --features monkey -- http://127.0.0.1:8080/a http://example.com/
//! ```
//!
//! The Python original (from the seed article):
//!
//! ```python
//! from gevent import monkey
//! import gevent
//! import urllib.request
//!
//! monkey.patch_all()
//!
//! def my_downLoad(url):
//!     print('GET: %s' % url)
//!     resp = urllib.request.urlopen(url)
//!     data = resp.read()
//!     print('%d bytes received from %s.' % (len(data), url))
//!
//! gevent.joinall([
//!         gevent.spawn(my_downLoad, 'http://www.baidu.com/'),
//!         gevent.spawn(my_downLoad, 'http://www.itcast.cn/'),
//!         gevent.spawn(my_downLoad, 'http://www.itheima.com/'),
//! ])
//! ```
//!
//! `my_download` below uses no greenlet API at all: `std::net::TcpStream`,
//! `ToSocketAddrs` and the shared HTTP client in `common/http.rs`. Because
//! `patch_all()` made libc's `connect`, `recv`, `send` and `getaddrinfo`
//! cooperate inside greenlets, the downloads still overlap.
//!
//! With no URLs it fetches the same 300 pages from the same embedded server
//! as the `download` example (some slow, some chunked, two redirected),
//! which together would take over 10 s one after the other. Exit status 1
//! if any download failed.

#[path = "common/http.rs"]
mod http;
#[path = "common/server.rs"]
mod server;

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Instant;

/// gevent's `my_downLoad`, with std only.
fn my_download(url: &str) -> Result<usize, http::Error> {
    println!("GET: {url}");
    let mut resp = http::get(url, 5, |url| {
        if url.scheme == http::Scheme::Https {
            return Err(http::Error::Unsupported(
                "https is not supported by this example (see the download example)".into(),
            ));
        }
        http::connect(
            url,
            |host, port| (host, port).to_socket_addrs().map(Iterator::collect),
            TcpStream::connect,
        )
    })?;
    let data = resp.body_to_end()?;
    println!("{} bytes received from {url}.", data.len());
    Ok(data.len())
}

fn main() -> ExitCode {
    greenlet::monkey::patch_all();

    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    let mut expected = Vec::new();
    if urls.is_empty() {
        let addr = match server::start() {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("download_patched: cannot start the embedded server: {e}");
                return ExitCode::FAILURE;
            }
        };
        for page in server::default_pages(addr, 300) {
            urls.push(page.url);
            expected.push(page.size);
        }
    }

    let start = Instant::now();
    let downloads: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| greenlet::spawn(move || my_download(&url)))
        .collect();
    let results = greenlet::joinall(downloads);

    let (mut failed, mut bytes) = (0, 0);
    for (i, (url, result)) in urls.iter().zip(results).enumerate() {
        match result.expect("a download greenlet panicked") {
            Ok(len) if expected.get(i).is_none_or(|&want| want == len) => bytes += len,
            Ok(len) => {
                failed += 1;
                eprintln!("{url}: expected {} bytes, got {len}", expected[i]);
            }
            Err(e) => {
                failed += 1;
                eprintln!("{url}: {e}");
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} downloads: {} ok, {failed} failed, {bytes} bytes in {secs:.3} s ({:.0} requests/s)",
        urls.len(),
        urls.len() - failed,
        urls.len() as f64 / secs.max(1e-9)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
