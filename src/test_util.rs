//! Helpers for the crate's own unit tests.

use std::time::Duration;

/// Runs `f` on a thread of its own (with its own hub) and fails the test if
/// it has not returned within `limit`: a regression that hangs fails instead
/// of blocking the suite. A panic in `f` fails the test with it.
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?} (hang?)")
        }
    }
}
