//! Third-party blocking clients under `monkey::patch_all()`: `ureq` (pure
//! Rust over std::net) and a C library calling connect/send/recv/usleep.
//! Each is driven by many greenlets on one thread against a local server
//! whose every response is delayed: they finish in about one delay, not
//! the sum.

use std::ffi::{CStr, CString, c_char, c_int};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Patches once, and runs this file's tests one at a time: the C test runs
/// the C compiler, which would otherwise compete for the CPU with the
/// timed `ureq` test.
fn patch() -> std::sync::MutexGuard<'static, ()> {
    static ONCE: Once = Once::new();
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONCE.call_once(greenlet::monkey::patch_all);
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loopback listener with a backlog of 1,024: std's `bind` listens with
/// 128, and 200 clients connecting in the same instant would overflow it
/// (the extra SYNs are retried only after a second).
fn listener_with_backlog() -> TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket set-up on a fresh fd, checked at each step.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let one: c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const c_int).cast(),
            4,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 1024), 0);
        TcpListener::from_raw_fd(fd)
    }
}

/// A greenlet HTTP server written with plain std::net (cooperative thanks to
/// the patch): each request is answered after `delay` with `body`.
fn delayed_http_server(delay: Duration, connections: usize) -> SocketAddr {
    let listener = listener_with_backlog();
    let addr = listener.local_addr().unwrap();
    greenlet::spawn(move || {
        for _ in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            greenlet::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                // Request line and headers, up to the blank line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                std::thread::sleep(delay);
                let body = "hello from a delayed server";
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    addr
}

/// The behaviour under test is overlap, so the bound is relative to the
/// sequential time (200 x 200 ms = 40 s), not an absolute wall time: a
/// loaded machine (other builds on the same cores) slows every GET but
/// cannot make overlapping waits add up.
#[test]
fn two_hundred_ureq_gets_against_a_200ms_server_overlap() {
    let _serial = patch();
    let n = 200;
    let delay = Duration::from_millis(200);
    let sequential = delay * n as u32;
    let addr = delayed_http_server(delay, n);
    let start = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|_| {
            greenlet::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                let mut resp = agent.get(&format!("http://{addr}/")).call().unwrap();
                resp.body_mut().read_to_string().unwrap()
            })
        })
        .collect();
    for r in greenlet::joinall(clients) {
        assert_eq!(r.unwrap(), "hello from a delayed server");
    }
    let took = start.elapsed();
    assert!(took >= delay, "{took:?}");
    assert!(
        took < sequential / 4,
        "200 delayed GETs took {took:?}, not under a quarter of the sequential {sequential:?}"
    );
}

/// Compiles tests/c/client.c into a shared object and loads it.
fn load_c_client() -> unsafe extern "C" fn(c_int, *const c_char, *mut c_char, c_int) -> c_int {
    let out = std::env::temp_dir().join(format!("greenlet-c-client-{}.so", std::process::id()));
    let compiler = cc::Build::new()
        .opt_level(2)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .cargo_metadata(false)
        .get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-D_FORTIFY_SOURCE=2", "-o"])
        .arg(&out)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/client.c"))
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "C compiler failed");
    let path = CString::new(out.to_str().unwrap()).unwrap();
    // SAFETY: loading a library we just built; its initialisers are trivial.
    let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!lib.is_null(), "dlopen failed");
    // SAFETY: the symbol exists with this signature (tests/c/client.c).
    unsafe {
        let sym = libc::dlsym(lib, c"c_exchange".as_ptr());
        assert!(!sym.is_null());
        std::mem::transmute(sym)
    }
}

#[test]
fn a_blocking_c_library_cooperates() {
    let _serial = patch();
    let c_exchange = load_c_client();
    // An echo server greenlet that answers after 100 ms.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = 20;
    greenlet::spawn(move || {
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            greenlet::spawn(move || {
                let mut msg = Vec::new();
                s.read_to_end(&mut msg).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                s.write_all(&msg).unwrap();
            });
        }
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            greenlet::spawn(move || {
                let msg = CString::new(format!("message {i}")).unwrap();
                let mut out = vec![0 as c_char; 256];
                // SAFETY: valid C strings and a buffer of the stated length.
                let got = unsafe { c_exchange(port as c_int, msg.as_ptr(), out.as_mut_ptr(), 256) };
                assert!(got > 0, "c_exchange failed: {got}");
                // SAFETY: the C side NUL-terminated it.
                unsafe { CStr::from_ptr(out.as_ptr()) }
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    for (i, r) in greenlet::joinall(clients).into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("message {i}"));
    }
    let took = start.elapsed();
    // Sequentially: 20 x (100 ms server delay + 50 ms usleep) = 3 s.
    assert!(
        took < Duration::from_millis(1000),
        "20 C clients took {took:?}"
    );
}

#[test]
fn without_greenlets_patched_std_behaves_like_std() {
    let _serial = patch();
    // Root context: every hook is the real call.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"plain").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"plain");
    t.join().unwrap();
}
