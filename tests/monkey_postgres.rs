//! The `postgres` crate (a sync client that drives its own tokio
//! current-thread runtime) against a real PostgreSQL server that this test
//! starts and stops itself (`initdb` and `pg_ctl` from the system's
//! PostgreSQL; the test is skipped, saying so, where they are missing):
//!
//! - under `patch_all`, one greenlet's `pg_sleep(0.3)` leaves a 5 ms ticker
//!   greenlet unstalled, and `with_timeout(100 ms)` around `pg_sleep(1)`
//!   returns `Err(Elapsed)` on time (the epoll hooks);
//! - 50 `pg_sleep(0.1)` calls through the blocking pool, one greenlet each,
//!   overlap (the pattern for tokio-based clients, which cannot overlap
//!   inside the greenlets of one hub: see the `monkey` docs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod util;

/// Runs `f` on its own thread (with its own hub) and fails the test if it
/// has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

/// A PostgreSQL server in a temporary directory, stopped (and the
/// directory removed) on drop.
struct Server {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl Server {
    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// `cmd` run as the `postgres` user when this process is root
    /// (PostgreSQL refuses to run as root).
    fn as_owner(bin: &Path, prog: &str) -> Command {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(prog));
            c
        } else {
            Command::new(bin.join(prog))
        }
    }

    fn start() -> Option<Server> {
        let bin = find_bin()?;
        let dir = util::temp_dir("postgres");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "skipped: cannot hand {} to the postgres user",
                    dir.display()
                );
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server { dir, bin, port };
        let data = server.dir.join("data");
        let out = Server::as_owner(&server.bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed\n{}",
            util::describe(&out)
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=120",
            server.port,
            server.dir.display()
        );
        let out = Server::as_owner(&server.bin, "pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(server.dir.join("log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed\n{}",
            util::describe(&out)
        );
        Some(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Server::as_owner(&self.bin, "pg_ctl")
            .args(["-m", "immediate", "-w", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: `$PATH`, then Debian's
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(versions.flatten().map(|v| v.path().join("bin")));
    }
    let found = dirs
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d));
    if found.is_none() {
        eprintln!("skipped: no PostgreSQL server programs (initdb, pg_ctl) on this machine");
    }
    found
}

#[test]
fn postgres_calls_cooperate_under_patch_all_and_overlap_through_the_pool() {
    // tokio panics on purpose in part 2 (its runtime loses the I/O driver
    // when the timeout ends the call). With RUST_BACKTRACE=1 in the
    // environment the default hook would symbolize a backtrace inside the
    // timed section (about 300 ms here): print the message alone. This
    // binary has this one test, so the process-wide hook is ours to set.
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    greenlet::monkey::patch_all();
    let Some(server) = Server::start() else {
        return;
    };

    // 1. One greenlet's pg_sleep(0.3) leaves the ticker unstalled.
    let url = server.url();
    let (took, worst) = deadline(60, move || {
        let tick = util::ticker::start();
        greenlet::yield_now();
        let took = greenlet::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let t = Instant::now();
            client.batch_execute("select pg_sleep(0.3)").unwrap();
            t.elapsed()
        })
        .join()
        .unwrap();
        (took, tick.stop())
    });
    eprintln!("patched pg_sleep(0.3) in a greenlet: {took:?}; ticker's longest gap {worst:?}");
    assert!(took >= Duration::from_millis(290), "{took:?}");
    worst.assert_below(Duration::from_millis(50));

    // 2. with_timeout(100 ms) around pg_sleep(1).
    let url = server.url();
    let took = deadline(60, move || {
        greenlet::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let t = Instant::now();
            let r = greenlet::with_timeout(Duration::from_millis(100), || {
                client.batch_execute("select pg_sleep(1)")
            });
            let took = t.elapsed();
            assert!(r.is_err(), "expected Err(Elapsed), got {r:?}");
            // The client's runtime lost its I/O driver in tokio's panic: it
            // cannot even say goodbye to the server. Leak it (the server
            // sees the connection drop when this process exits).
            std::mem::forget(client);
            took
        })
        .join()
        .unwrap()
    });
    eprintln!("with_timeout(100 ms) around patched pg_sleep(1): Err(Elapsed) after {took:?}");
    assert!(took < Duration::from_millis(300), "{took:?}");

    // 3. 50 x pg_sleep(0.1), one greenlet each, through the pool.
    let url = server.url();
    let (took, worst) = deadline(60, move || {
        let tick = util::ticker::start();
        let t = Instant::now();
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let url = url.clone();
                greenlet::spawn(move || {
                    greenlet::threadpool::spawn_blocking(move || {
                        let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
                        client.batch_execute("select pg_sleep(0.1)")
                    })
                })
            })
            .collect();
        for r in greenlet::joinall(calls) {
            r.unwrap().unwrap();
        }
        let took = t.elapsed();
        (took, tick.stop())
    });
    eprintln!("50 x pg_sleep(0.1) through the pool: {took:?}; ticker's longest gap {worst:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    worst.assert_below(Duration::from_millis(50));
    drop(server);
}
