//! An echo server on `greenlet::server::StreamServer`, ported from gevent's
//! `examples/echoserver.py`: each connection gets a greenlet that writes
//! back whatever it reads, until the client closes.
//!
//! ```text
//! cargo run --release --example echo_server -- [--port 16000] [--host 127.0.0.1] [--workers 1]
//! ```
//!
//! The first line printed is `Echo server on ADDR`, with the bound port (so
//! `--port 0` can be used). Try it with `nc 127.0.0.1 16000`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

fn echo(mut stream: TcpStream, _peer: SocketAddr) {
    let mut buf = [0; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let mut host = "127.0.0.1".to_owned();
    let mut port: u16 = 16000;
    let mut workers: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        let parsed = match (flag.as_str(), value) {
            ("--host", Some(v)) => {
                host = v;
                Ok(())
            }
            ("--port", Some(v)) => v.parse().map(|p| port = p).map_err(|e| e.to_string()),
            ("--workers", Some(v)) => match v.parse() {
                Ok(n @ 1..) => {
                    workers = n;
                    Ok(())
                }
                Ok(_) => Err("must be at least 1".to_owned()),
                Err(e) => Err(e.to_string()),
            },
            (_, None) if flag.starts_with("--") => Err("needs a value".to_owned()),
            _ => Err(
                "unknown argument (usage: echo_server [--host H] [--port N] [--workers N])"
                    .to_owned(),
            ),
        };
        if let Err(e) = parsed {
            eprintln!("echo_server: {flag}: {e}");
            std::process::exit(2);
        }
    }
    let server = match StreamServer::bind((host.as_str(), port), echo) {
        Ok(s) => s.workers(workers),
        Err(e) => {
            eprintln!("echo_server: cannot bind {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    let addr = server
        .local_addr()
        .expect("a bound listener has an address");
    println!("Echo server on {addr}");
    let _ = io::stdout().flush();
    if let Err(e) = server.serve_forever() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
