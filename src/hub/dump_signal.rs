//! Dumps on request: every hub of the process prints its [`Dump`] to
//! stderr at its next loop turn, without stopping the program, also a hub
//! asleep in epoll (the request wakes it through its remote queue).
//!
//! Requested by [`request_all`], or by a signal chosen with the
//! environment variable `GREENLET_DUMP_SIGNAL` (`USR1`, `USR2`, or a
//! number), read when the first hub starts. The signal handler only writes
//! a byte to a pipe; a runtime thread (`greenlet-dump`) reads it and sends
//! the request to every hub.
//!
//! [`Dump`]: super::dump::Dump

use std::sync::{Arc, Mutex, Once, OnceLock, Weak};

use super::Hub;
use super::remote::{Remote, RemoteMsg};

/// The remote queues of every hub started in the process (dead ones are
/// pruned as new hubs register).
static HUBS: Mutex<Vec<Weak<Remote>>> = Mutex::new(Vec::new());

/// The write end of the signal pipe (set once the handler is installed).
static PIPE: OnceLock<i32> = OnceLock::new();

/// Registers a new hub; installs the dump signal on the first call if
/// `GREENLET_DUMP_SIGNAL` asks for one.
pub(super) fn register(remote: &Arc<Remote>) {
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|w| w.strong_count() > 0);
    hubs.push(Arc::downgrade(remote));
    drop(hubs);
    static ENV: Once = Once::new();
    ENV.call_once(install_from_env);
}

fn install_from_env() {
    let Some(v) = std::env::var_os("GREENLET_DUMP_SIGNAL") else {
        return;
    };
    let v = v.to_string_lossy();
    let Some(sig) = crate::sys::signal_number(&v) else {
        panic!("greenlet: GREENLET_DUMP_SIGNAL={v:?} is not a signal (USR1, USR2, or a number)");
    };
    let (rd, wr) = crate::sys::pipe_cloexec()
        .unwrap_or_else(|e| panic!("greenlet: GREENLET_DUMP_SIGNAL: cannot make a pipe: {e}"));
    let _ = PIPE.set(wr);
    std::thread::Builder::new()
        .name("greenlet-dump".into())
        .spawn(move || {
            let _counted = super::process_deadlock::RuntimeThread::enter();
            let mut buf = [0u8; 64];
            while let Ok(n) = crate::sys::read_blocking(rd, &mut buf) {
                if n == 0 {
                    return;
                }
                request_all();
            }
        })
        .expect("greenlet: GREENLET_DUMP_SIGNAL: cannot start the dump thread");
    crate::sys::install_plain_handler(sig, on_signal)
        .unwrap_or_else(|e| panic!("greenlet: GREENLET_DUMP_SIGNAL: cannot install: {e}"));
}

/// The signal handler: one `write` (async-signal-safe).
extern "C" fn on_signal(_: std::ffi::c_int) {
    if let Some(&fd) = PIPE.get() {
        crate::sys::write_byte_in_signal_handler(fd);
    }
}

/// Asks every hub of the process to print its dump to stderr at its next
/// loop turn (a hub asleep in epoll wakes up for it). Returns how many
/// hubs were asked. The dumps are printed by the hubs' own threads, whole,
/// one `eprint!` each.
///
/// # Examples
///
/// ```
/// let _ = greenlet::dump::dump(); // this thread has a hub now
/// assert!(greenlet::dump::request_all() >= 1);
/// greenlet::yield_now(); // our hub prints its dump here
/// ```
pub fn request_all() -> usize {
    let hubs: Vec<Arc<Remote>> = {
        let hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
        hubs.iter().filter_map(Weak::upgrade).collect()
    };
    for r in &hubs {
        r.send(RemoteMsg::Run(Box::new(|| {
            if let Some(hub) = Hub::try_current() {
                eprint!("{}", hub.dump());
            }
        })));
    }
    hubs.len()
}
