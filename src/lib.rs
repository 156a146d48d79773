//! gevent's programming model for Rust: plain blocking-style code running as
//! stackful green threads ("greenlets") on a per-thread hub that waits in one
//! epoll loop.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let greenlets: Vec<_> = (1..=3)
//!     .map(|i| {
//!         greenlet::spawn(move || {
//!             greenlet::sleep(Duration::from_millis(100 * i));
//!             format!("task {i} done")
//!         })
//!     })
//!     .collect();
//! for result in greenlet::joinall(greenlets) {
//!     println!("{}", result.unwrap());
//! }
//! // The three sleeps overlapped: about 300 ms in all, not 600 ms.
//! assert!(start.elapsed() < Duration::from_millis(550));
//! ```
//!
//! Output:
//!
//! ```text
//! task 1 done
//! task 2 done
//! task 3 done
//! ```
//!
//! # The model
//!
//! - Each OS thread has a **hub**, created on first use. It owns a ready
//!   queue, timers, a `mio::Poll` and a cross-thread wake-up queue.
//! - [`spawn`] creates a **greenlet**: a closure running on its own small
//!   stack (256 KiB of address space by default, committed lazily). It
//!   starts when the hub gets control.
//! - Blocking calls ([`sleep`], [`Greenlet::join`], ...) **park** the calling
//!   greenlet and switch to the next ready one. Called from ordinary code
//!   outside any greenlet (the *root context*), they run the hub loop until
//!   their condition holds, so no `run(main)` wrapper is needed, exactly as
//!   in gevent.
//! - A root wait that nothing can ever end panics with "this operation would
//!   block forever" instead of hanging (gevent's `LoopExit`).
//! - A panic in a greenlet is caught at its boundary and returned by
//!   [`Greenlet::join`]; [`Greenlet::kill`] and [`with_timeout`] unwind the
//!   target from its park point, so destructors run.
//!
//! Greenlets never move between threads, so closures need no `Send` bound
//! and `Rc`/`RefCell` work as in single-threaded code.
//!
//! std's `Mutex`, `Condvar`, `mpsc` and `thread::park` block the whole OS
//! thread, and with it every greenlet of its hub. Use [`sync`] (queues,
//! events, locks) inside greenlets instead; its types also work across
//! threads. Thread-locals are shared by all greenlets of a thread: for
//! per-greenlet state use [`local!`].
//!
//! # gevent to greenlet
//!
//! | gevent | greenlet |
//! |---|---|
//! | `gevent.spawn(f)` | [`spawn`] |
//! | `gevent.spawn_later(s, f)` | [`spawn_later`] |
//! | `Greenlet(...)` with a name | [`Builder`] |
//! | `g.join()`, `g.get()` | [`Greenlet::join`] |
//! | `g.ready()`, `g.dead` | [`Greenlet::is_finished`] |
//! | `g.kill()` | [`Greenlet::kill`] |
//! | `gevent.joinall(gs)` | [`joinall`] |
//! | `gevent.iwait(gs)` | [`iwait`] |
//! | `gevent.sleep(s)` | [`sleep`] |
//! | `gevent.sleep(0)` | [`yield_now`] |
//! | `gevent.getcurrent()` | [`current`] |
//! | `gevent.Timeout`, `with_timeout` | [`with_timeout`] |
//! | `gevent.event.Event`, `AsyncResult` | [`sync::Event`], [`sync::AsyncResult`] |
//! | `gevent.queue.Queue`, `JoinableQueue`, `Channel` | [`sync::Queue`] |
//! | `gevent.lock.Semaphore`, `RLock` | [`sync::Semaphore`], [`sync::Mutex`] |
//! | `gevent.pool.Pool`, `Group` | [`pool::Pool`], [`pool::Group`] |
//! | `gevent.local.local` | [`local!`], [`Local`] |
//! | `gevent.server.StreamServer` | [`server::StreamServer`] |
//! | `gevent.socket` | [`net`]: `TcpStream`, `TcpListener`, `UdpSocket`, [`net::unix`] |
//! | `gevent.threadpool`, `run_in_executor` | [`threadpool::spawn_blocking`] |
//! | `hub.loop.run_callback_threadsafe` | [`HubHandle::spawn`], [`run_until_stopped`] |
//! | `monkey.patch_all()` | `monkey::patch_all()` (feature `monkey`) |
//! | monitor thread | [`monitor`] |
//!
//! # Cargo features
//!
//! - `monkey`: libc hooks that make unmodified `std::net`,
//!   `std::thread::sleep` and blocking C libraries cooperate inside
//!   greenlets after `monkey::patch_all()` (glibc, dynamic linking).
//! - `tls`: https in the `download` example (rustls); the library itself
//!   does not use it.
//!
//! # Platform
//!
//! | | |
//! |---|---|
//! | OS | Linux only (epoll; a build error elsewhere) |
//! | Guard pages | `MADV_GUARD_INSTALL` on Linux 6.13+, `mprotect` before ([`stack::guard_kind`]) |
//! | Panics | needs `panic = "unwind"` (the default); under `panic = "abort"`, kill and timeouts abort |
//!
//! # Environment
//!
//! - `GREENLET_STACK_SIZE`: default stack size (bytes, or `512K`, `1M`).
//! - `GREENLET_MONITOR`: `1` (or a threshold in ms) starts the [`monitor`].
//! - `GREENLET_THREADPOOL_SIZE`: the blocking pool's largest number of
//!   threads ([`threadpool`]).
//!
//! # Stack overflow
//!
//! A greenlet that overflows its stack hits a guard page. The process then
//! prints `greenlet 'name' overflowed its 256 KiB stack; raise it with
//! Builder::stack_size or GREENLET_STACK_SIZE` and aborts: like a thread's
//! stack overflow in std, it cannot be recovered from.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(target_os = "linux"))]
compile_error!("greenlet supports only Linux");

mod fiber;
mod greenlet;
mod hub;
mod local;
pub mod monitor;
#[cfg(feature = "monkey")]
pub mod monkey;
pub mod net;
pub mod pool;
pub mod server;
pub mod sync;
mod sys;
pub mod threadpool;
mod time;

pub use crate::greenlet::{
    Builder, Current, Greenlet, GreenletId, Iwait, JoinError, current, iwait, joinall, spawn,
    spawn_later,
};
pub use crate::hub::handle::{HubHandle, JoinHandle, hub_handle, run_until_stopped};
pub use crate::local::Local;
pub use crate::time::{Elapsed, sleep, with_timeout, yield_now};

/// Stacks: sizes, the guard-page mechanism in use, and what the pool holds.
pub mod stack {
    pub use crate::fiber::stack::{
        DEFAULT_STACK_SIZE, GuardKind, MIN_STACK_SIZE, StackStats, guard_kind, stats,
    };
}
