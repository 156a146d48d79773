//! The stack-overflow reporter.
//!
//! A greenlet that overflows its stack touches the guard page below it and
//! takes a `SIGSEGV` (or `SIGBUS`). This module's handler runs on the
//! thread's alternate signal stack (each hub makes sure one exists), looks up
//! the running greenlet through a plain thread-local pointer, and if the
//! fault address is inside that greenlet's guard page prints one line
//!
//! ```text
//! greenlet 'name' overflowed its 256 KiB stack; raise it with Builder::stack_size or GREENLET_STACK_SIZE
//! ```
//!
//! with the raw `write` syscall and aborts (`SIGABRT`): this is the one place
//! the library prints and exits, because the greenlet's stack is gone and no
//! unwinding is possible. Any other fault goes to the handler that was
//! installed before (normally std's own overflow reporter), or to the default
//! action.

use std::sync::{Once, OnceLock};

use crate::hub::current_header;
use crate::sys::{self, SavedAction};

/// Size of the alternate signal stack each hub thread gets if it has none.
pub(crate) const ALTSTACK_SIZE: usize = 64 * 1024;

static INSTALL: Once = Once::new();
static PREV_SEGV: OnceLock<SavedAction> = OnceLock::new();
static PREV_BUS: OnceLock<SavedAction> = OnceLock::new();

/// Installs the reporter for the whole process (once).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // Touch the cached page size now: the handler must not call sysconf.
        let _ = sys::page_size();
        if let Ok(prev) = sys::install_fault_handler(libc::SIGSEGV, handler) {
            let _ = PREV_SEGV.set(prev);
        }
        if let Ok(prev) = sys::install_fault_handler(libc::SIGBUS, handler) {
            let _ = PREV_BUS.set(prev);
        }
    });
}

/// A fixed buffer for formatting without allocating.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

unsafe extern "C" fn handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let addr = unsafe { sys::fault_address(info) };
    let hdr = current_header();
    if !hdr.is_null() {
        // SAFETY: CURRENT points at the running greenlet's header, which
        // stays alive while it runs; the fields read here are immutable.
        let (lo, size, id, name) = unsafe {
            let h = &*hdr;
            (h.stack_lo.get(), h.stack_size(), h.id, h.name())
        };
        let page = sys::page_size();
        if size != 0 && addr >= lo && addr < lo + page {
            let mut line = Line {
                buf: [0; 512],
                len: 0,
            };
            line.push(b"greenlet ");
            match name {
                Some(n) => {
                    line.push(b"'");
                    line.push(n.as_bytes());
                    line.push(b"'");
                }
                None => {
                    line.push(b"#");
                    line.push_u64(id);
                }
            }
            line.push(b" overflowed its ");
            line.push_u64((size / 1024) as u64);
            line.push(b" KiB stack; raise it with Builder::stack_size or GREENLET_STACK_SIZE\n");
            sys::write_stderr_raw(&line.buf[..line.len]);
            sys::abort();
        }
    }
    let prev = if signum == libc::SIGBUS {
        PREV_BUS.get()
    } else {
        PREV_SEGV.get()
    };
    match prev {
        // SAFETY: forwarding this handler's own arguments.
        Some(prev) => unsafe { sys::chain_fault(prev, signum, info, ctx) },
        None => {
            // Not installed completely yet: fall back to the default action.
            // SAFETY: a zeroed sigaction is SIG_DFL.
            let dfl: SavedAction = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { sys::chain_fault(&dfl, signum, info, ctx) };
        }
    }
}
