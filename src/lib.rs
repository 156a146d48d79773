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
//! - Some waits that can never end are reported instead of hanging (see
//!   [Deadlocks and dumps](#deadlocks-and-dumps) for exactly which), and
//!   [`dump`] shows what every greenlet waits for.
//! - A panic in a greenlet is caught at its boundary and returned by
//!   [`Greenlet::join`]; [`Greenlet::kill`] and [`with_timeout`] unwind the
//!   target from its park point, so destructors run.
//!
//! Greenlets never move between threads, so closures need no `Send` bound
//! and `Rc`/`RefCell` work as in single-threaded code.
//!
//! std's `Mutex`, `Condvar`, `mpsc` and `thread::park` block the whole OS
//! thread, and with it every greenlet of its hub. Use [`sync`] (queues,
//! events, locks, condition variables, barriers) and [`channel`] (std's
//! mpsc shape) inside greenlets instead; their types also work across
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
//! | `Greenlet(f)`, `start()`, `start_later(s)`, `started` | [`Greenlet::new`], [`Greenlet::start`], [`Greenlet::start_later`], [`Greenlet::is_started`] |
//! | `g.join(timeout)`, `g.value`, `g.exception` | [`Greenlet::join_timeout`], [`Greenlet::result`], [`Greenlet::try_join`] |
//! | `g.kill(block=False)`, `g.kill(timeout=)` | [`Greenlet::kill_nowait`], [`Greenlet::kill_timeout`] |
//! | `gevent.killall` | [`killall`], [`killall_nowait`], [`killall_timeout`] |
//! | `joinall(raise_error=True)` | [`try_joinall`] |
//! | `g.link`, `link_value`, `link_exception` | [`Greenlet::link`], [`Greenlet::link_value`], [`Greenlet::link_exception`] |
//! | `gevent.wait(objects, timeout, count)`, `iwait(objects)` | [`select::wait`], [`select::iwait`] over [`select::Waitable`] |
//! | Go's `select` | [`select::Select`] |
//! | `std::thread::scope` | [`scope()`], [`Builder::spawn_scoped`] |
//! | `gevent.sleep(s)` | [`sleep`] |
//! | `gevent.sleep(0)` | [`yield_now`] |
//! | `gevent.getcurrent()` | [`current`] |
//! | `gevent.Timeout`, `with_timeout` | [`with_timeout`], [`Timeout`] |
//! | `time.sleep` to a deadline, a ticker | [`sleep_until`], [`interval`] |
//! | `gevent.event.Event`, `AsyncResult` | [`sync::Event`], [`sync::AsyncResult`] |
//! | `gevent.queue.Queue`, `JoinableQueue` | [`sync::Queue`] ([`peek`](sync::Queue::peek), [`is_full`](sync::Queue::is_full), [`unfinished_tasks`](sync::Queue::unfinished_tasks)) |
//! | `gevent.queue.Channel` | [`sync::Queue::bounded`]`(0)` |
//! | `gevent.queue.LifoQueue`, `PriorityQueue` | [`sync::LifoQueue`], [`sync::PriorityQueue`] |
//! | `std::sync::mpsc` (under monkey patching) | [`channel`]: [`channel::channel`], [`channel::sync_channel`] |
//! | `gevent.lock.Semaphore`, `BoundedSemaphore` | [`sync::Semaphore`], [`sync::BoundedSemaphore`] |
//! | `gevent.lock.RLock` | [`sync::RLock`] |
//! | `Semaphore(1)` as a lock, `threading.Lock` | [`sync::Mutex`] (not re-entrant) |
//! | `threading.Condition`, `threading.Barrier` | [`sync::Condvar`], [`sync::Barrier`] |
//! | readers-writer lock | [`sync::RwLock`] |
//! | `gevent.pool.Pool`, `Group` | [`pool::Pool`], [`pool::Group`] |
//! | `Pool.imap`, `apply`, `apply_async`, `add`, `wait_available`, `full` | [`pool::Pool::imap`], [`apply`](pool::Pool::apply), [`apply_async`](pool::Pool::apply_async), [`add`](pool::Pool::add), [`wait_available`](pool::Pool::wait_available), [`is_full`](pool::Pool::is_full) |
//! | `gevent.local.local` | [`local!`], [`Local`] |
//! | `gevent.server.StreamServer` | [`server::StreamServer`] |
//! | `gevent.socket` | [`net`]: `TcpStream`, `TcpListener`, `UdpSocket`, [`net::unix`] |
//! | `gevent.threadpool`, `run_in_executor` | [`threadpool::spawn_blocking`] |
//! | `hub.loop.run_callback_threadsafe` | [`HubHandle::spawn`], [`run_until_stopped`] |
//! | `gevent.subprocess` | [`process`]: `Command`, `Child` |
//! | `gevent.signal_handler` | [`signal::handler`], [`signal::Signals`] |
//! | `gevent.socket.wait_read`, `wait_write` | [`io::wait_readable`], [`io::wait_writable`] |
//! | `FileObjectPosix` (pipes, ttys) | [`io::FdIo`] |
//! | `FileObjectThread` | [`fs`] |
//! | `monkey.patch_all()` | `monkey::patch_all()` (feature `monkey`) |
//! | `gevent.fork()`, `os.fork` then `gevent.reinit()` | `libc::fork()`: the child's hub makes its own epoll by itself (see "A process that forks" below) |
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
//! - `GREENLET_DUMP_SIGNAL`: a signal (`USR1`, `USR2`, or a number) that
//!   makes every hub print its [`dump`] to stderr ([`dump::request_all`]).
//! - `GREENLET_THREADPOOL_SIZE`: the blocking pool's largest number of
//!   threads ([`threadpool`]).
//! - `GREENLET_DEADLOCK`: `process` turns on the process-wide deadlock rule
//!   ([`dump::process_wide`]; see "Deadlocks and dumps"); `hub` (the
//!   default) leaves it off.
//! - `GREENLET_STACK_PROVISIONER`: `0` keeps the process from starting
//!   the `greenlet-stacks` thread, which otherwise (on two CPUs or more)
//!   prepares fresh stacks on another core when many greenlets wait to
//!   start ([`stack`]).
//!
//! # Deadlocks and dumps
//!
//! Every park records what the greenlet waits for (an fd and direction, a
//! sleep and its deadline, a sync primitive's kind and id, a join or kill
//! target, a blocking-pool job, a result from another thread, a
//! monkey-patched libc call by name and fd), since when, and each greenlet keeps
//! its name and spawn site. [`dump::dump`] returns that snapshot of the
//! calling thread's hub, printable like Go's goroutine dump; a wait on a
//! socket also shows the socket (`IO read on fd 7 (tcp 127.0.0.1:5432)`),
//! looked up when the dump is taken, so parking pays nothing for it.
//!
//! Reported at once, as a panic at the wait that cannot end:
//!
//! - **"this operation would block forever"** (gevent's `LoopExit`), with
//!   the dump: a root-context wait while no greenlet of the thread is ready,
//!   no timer is pending, no fd is registered, no blocking-pool job or
//!   cross-thread result is awaited, no [`HubHandle`] is alive, and every
//!   sync-primitive wait of the thread is provably unreachable from other
//!   threads: its primitive ([`sync::Queue`] and its variants,
//!   [`sync::Event`], [`sync::AsyncResult`]) has no handle left but its
//!   waiter's own; it is a [`sync::Mutex`] or [`sync::RLock`] held by a
//!   greenlet (or the root) of this same thread (only the holder unlocks,
//!   and guards are not `Send`); it is an [`sync::RwLock`] whose holders
//!   and other waiters are all of this thread (a waiter that gives up may
//!   let the ones behind it in); or it is one arm of a [`select`] (the
//!   select counts only if every arm does). A `Queue::new().get()` alone in
//!   root context, or a consumer whose producers have all dropped their
//!   handles, ends this way.
//! - **"deadlock: ... already holds this Mutex"**: an untimed
//!   [`sync::Mutex::lock`] by the greenlet (or root) that holds it.
//! - **"deadlock: 'a' waits for Mutex #3 held by 'b', 'b' joins 'a'"**: an
//!   untimed lock, join or kill that closes a wait-for cycle of `Mutex`
//!   holders and join/kill targets among the greenlets of one thread. The
//!   wait that closes the cycle panics; the others then go on.
//!
//! Not reported by default, because one thread cannot prove them (another
//! thread may still end them): waits on primitives a handle of which lives
//! elsewhere (another thread, a `static`, a greenlet that is itself
//! stuck); waits on [`sync::Semaphore`], [`sync::BoundedSemaphore`],
//! [`sync::Condvar`] and [`sync::Barrier`], which are shared by reference
//! (a `static`, an `Arc`, a scoped borrow): any thread that can reach one
//! may add a permit, notify or arrive, and references cannot be counted;
//! [`channel`] waits while a peer handle lives (handles are `Send` and may
//! be anywhere; once every sender, or the receiver, is gone the wait
//! returns an error instead); a `select` with any such arm; cycles that go
//! through another thread; timed waits (`*_timeout`, inside
//! [`with_timeout`]); greenlets stuck while the root is not waiting; and
//! hangs in code the hub cannot see (std's `Mutex`, a blocking syscall
//! outside the hooks).
//!
//! **Process-wide rule (opt-in).** With `GREENLET_DEADLOCK=process` or
//! [`dump::process_wide`]`(true)`, a root wait also panics with "would
//! block forever" (and its hub's dump) when every OS thread of the process
//! is a hub asleep with nothing but sync waits (no timer, no fd, no pool
//! job or cross-thread result awaited, no message queued) or one of the
//! runtime's idle threads (blocking pool with no job, monitor, dump-signal
//! thread, stack provisioner): then no thread can ever release anything, so the waits above
//! (a `Semaphore` with no permit, a `Condvar` nobody notifies, two hubs
//! each waiting on a queue only the other's stuck greenlets hold) are
//! reported on every such hub: at once when the last thread gets stuck, or
//! within about 400 ms when the last obstacle was a thread that exited. A
//! thread the runtime does not know (spawned by the
//! program or a library, not running a hub loop, or a hub thread busy
//! outside its loop) keeps the rule quiet while it lives. It is off by
//! default because it costs, while a hub sleeps on sync waits only, a
//! `/proc/self/stat` read per sleep and a re-check every 25-400 ms; when
//! off, the only cost is one relaxed load on that sleep path (never on a
//! switch, spawn or park).
//!
//! For what is not reported, the [`monitor`] reports a hub asleep past its
//! threshold with only sync waits pending (with the dump), and code that
//! blocks the thread without yielding, in a greenlet or in root context;
//! `GREENLET_DUMP_SIGNAL` prints every hub's dump on demand.
//!
//! # Stack overflow
//!
//! A greenlet that overflows its stack hits a guard page. The process then
//! prints `greenlet 'name' overflowed its 256 KiB stack; raise it with
//! Builder::stack_size or GREENLET_STACK_SIZE` and aborts: like a thread's
//! stack overflow in std, it cannot be recovered from.
//!
//! # Soundness: what the runtime guarantees at the edges
//!
//! - **Closures and results of any size.** A greenlet's closure stays in
//!   its heap-allocated task until its first run moves it onto the new
//!   stack; nothing large crosses a stack switch.
//! - **Threads that exit with greenlets parked.** Greenlets that have
//!   started and not finished when their thread exits are never resumed and
//!   never unwound (the thread's other thread-locals may already be gone,
//!   and their destructors could block on a hub that no longer exists):
//!   they are leaked, like `std::mem::forget`, and their stacks stay mapped
//!   for the life of the process. A value pinned on such a stack (an
//!   intrusive waiter of another library, a buffer the blocking pool is
//!   still filling) is never invalidated, as `Pin` requires; that memory is
//!   the price. The same holds when a greenlet calls
//!   `std::process::exit`: the thread's destructors then run on that
//!   greenlet's stack, which stays mapped. Greenlets that never started are
//!   dropped with their closures, after the hub is gone: a `Drop` that
//!   calls into the runtime there panics (the hub of an exiting thread
//!   cannot run again), and the teardown catches that panic and goes on
//!   dropping the rest, where a panic out of a thread-local destructor
//!   would abort the process.
//!
//!
//!   A greenlet may be parked inside `LocalKey::with`, borrowing a
//!   thread-local, and the thread's other thread-local destructors may run
//!   the hub (a `sleep`, a `join`, green I/O). So the hub stops before the
//!   first thread-local such a greenlet may borrow is destroyed: it
//!   registers a destructor of its own after every thread-local
//!   registration a parked greenlet may depend on (it counts them by
//!   interposing glibc's `__cxa_thread_atexit_impl`, through which std
//!   registers every `thread_local!` destructor). That destructor runs
//!   first and ends every started greenlet where it is parked, without
//!   resuming it: a join reports it killed, its links run. Destructors
//!   that run later may still spawn, sleep and join; greenlets that never
//!   started still run. This needs Linux with glibc, dynamically linked;
//!   elsewhere the hub stops in its own destructor, which can run after a
//!   borrowed thread-local was destroyed: do not leave a greenlet parked
//!   inside `LocalKey::with` when its thread exits there.
//! - **Cross-thread waiters of an exiting thread.** A greenlet parked in a
//!   [`sync`] primitive when its thread exits leaves that primitive's
//!   waiter list: an item, permit or lock already handed to it goes on to
//!   the next waiter or back to the primitive, so nothing is lost to a dead
//!   waiter.
//! - **A process that forks.** `fork` copies the calling thread only, and
//!   the child shares its parent's epoll instances (an epoll's interest
//!   list belongs to the open file, which both processes now hold). A
//!   child that goes on using greenlet gets what gevent's `os.fork` gives
//!   (libev's `ev_loop_fork`): before the forking thread's hub polls or
//!   registers an fd in the child, it makes an epoll of its own and
//!   registers its doorbell and every fd it had registered there, under
//!   the same tokens; every greenlet waiting on one of them retries its
//!   syscall once. So the child never takes an event meant for the parent
//!   nor adds its fds to the parent's list, and the greenlets copied from
//!   the parent go on in the child (both copies of a socket then see the
//!   same bytes: let one process use it). Until the child polls or
//!   registers, in particular between `fork` and `exec`, the hub leaves the
//!   inherited epoll alone, so an fd the child closes is not removed from
//!   the parent's list. The child's first [`threadpool`] job starts a pool
//!   of its own; jobs queued or running at the fork stay the parent's, and
//!   a greenlet of the child waiting for one waits on. The hubs of the
//!   parent's other threads have no thread in the child: a greenlet of the
//!   child handed something by them (or handing them something through a
//!   shared [`sync`] primitive) waits on, as with any thread that exits.
//!   The monitor, the stack provisioner and the dump-signal thread are not
//!   running in the child, and the opt-in process-wide deadlock rule (see
//!   "Deadlocks and dumps") may stay silent there: it still counts the
//!   runtime threads the parent had at the fork. As in any program with
//!   threads, a lock another thread held at the fork stays held in the
//!   child (the runtime's own are held only briefly, for instance while a
//!   hub is made), so fork while the other threads are quiet. `vfork` and
//!   `posix_spawn` (std's `Command` without `pre_exec`) run no hub code in
//!   the child.
//! - **Kills are level-triggered.** Once killed, a greenlet unwinds at every
//!   park until it is dead; catching the unwind with `catch_unwind` lasts
//!   only until its next park (see [`Greenlet::kill`]).
//! - **Unwinding greenlets are not interrupted.** A kill or an expired
//!   [`with_timeout`] is never delivered to a greenlet that is unwinding
//!   (a second unwind out of a destructor would abort the process); it
//!   takes effect once that unwind has been caught. The runtime tracks
//!   unwinding per greenlet, not per thread: a greenlet parked in a
//!   destructor during its own unwind does not hold up other greenlets'
//!   kills and timeouts. To tell which greenlet of a thread is unwinding,
//!   the first hub installs a panic hook that records it and then calls the
//!   hook it replaced; a hook installed later with `std::panic::set_hook`
//!   replaces it, and then a greenlet that panics while another one is
//!   parked mid-unwind is seen as unwinding only from its next park on.
//!
//! ## Limitations
//!
//! - **std's panic count is per OS thread.** `std::thread::panicking()`
//!   inside a greenlet is true while *any* greenlet of the thread is
//!   unwinding (for example parked in a destructor during its unwind). Code
//!   that consults it sees other greenlets' unwinds: a `std::sync::Mutex`
//!   guard dropped by greenlet B while greenlet A is parked mid-unwind
//!   poisons that mutex. This crate's own code does not rely on it.
//! - **AddressSanitizer.** The crate's `sanitizer` feature annotates every
//!   stack switch for ASan (corosensei's `sanitizer` support), so reports
//!   on greenlet stacks are real. The ASan runtime defines its own
//!   interceptors for many libc functions, `getaddrinfo` among them; under
//!   ASan the `monkey` hooks are not supported (the project's ASan job runs
//!   without `monkey`).

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(target_os = "linux"))]
compile_error!("greenlet supports only Linux");

pub mod channel;
mod fiber;
pub mod fs;
mod greenlet;
mod hub;
mod hub_handle;
pub mod io;
mod local;
pub mod monitor;
#[cfg(feature = "monkey")]
pub mod monkey;
pub mod net;
pub mod pool;
pub mod process;
mod scope;
pub mod select;
pub mod server;
pub mod signal;
pub mod sync;
mod sys;
#[cfg(test)]
mod test_util;
pub mod threadpool;
mod time;

pub use crate::greenlet::{
    Builder, Current, Greenlet, GreenletId, Iwait, JoinError, current, iwait, joinall, killall,
    killall_nowait, killall_timeout, spawn, spawn_later, try_joinall,
};
pub use crate::hub::dump;
pub use crate::hub_handle::{HubHandle, JoinHandle, hub_handle, run_until_stopped};
pub use crate::local::Local;
pub use crate::scope::{Scope, ScopedGreenlet, scope};
pub use crate::time::{
    Elapsed, Interval, Timeout, interval, sleep, sleep_until, with_timeout, yield_now,
};

/// Stacks: sizes, the guard-page mechanism in use, and what the pool holds.
pub mod stack {
    pub use crate::fiber::stack::{
        DEFAULT_STACK_SIZE, GuardKind, MIN_STACK_SIZE, StackStats, guard_kind, stats,
    };
}
