//! Hook for `listen`: the accept queue at the system maximum.
//!
//! std's `TcpListener::bind` listens with a backlog of 128. A server in a
//! greenlet accepts between other work, and a burst of more than 128
//! connects then overflows the queue: Linux drops the extra SYNs and each
//! of those clients retries after a full second. After
//! [`patch_all`](crate::monkey::patch_all), every `listen` (in or out of a
//! greenlet: listeners are usually bound in `main`) asks for the system
//! maximum, `net.core.somaxconn` (4096 by default since Linux 5.4), as
//! `greenlet::net` does.

use libc::c_int;

use crate::monkey::real;

/// Hook: `listen(2)`.
///
/// # Safety
/// As libc's `listen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    // Linux caps any larger backlog, -1 included (as unsigned), to
    // somaxconn.
    let backlog = if crate::monkey::is_patched() {
        -1
    } else {
        backlog
    };
    // SAFETY: forwarding the caller's fd.
    unsafe { real::listen(fd, backlog) }
}
