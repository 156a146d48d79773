//! What a parked greenlet waits for: recorded at every park with one store
//! of a small `Copy` value, read only by dumps and deadlock reports.

use std::fmt;

/// What a parked greenlet (or the root) waits for, as recorded where it
/// parked.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::dump::WaitReason;
///
/// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(1)));
/// greenlet::yield_now(); // it starts and parks
/// let d = greenlet::dump::dump();
/// let info = d.greenlets().iter().find(|i| i.id() == g.id().as_u64()).unwrap();
/// assert_eq!(info.wait_reason(), Some(WaitReason::Sleep));
/// g.kill();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// Parked by code that records no reason.
    Unknown,
    /// `sleep` (its deadline is in [`GreenletInfo::deadline`]).
    ///
    /// [`GreenletInfo::deadline`]: crate::dump::GreenletInfo::deadline
    Sleep,
    /// A file descriptor to become ready (a socket read, write, accept or
    /// connect, also under the monkey hooks).
    Io {
        /// The file descriptor.
        fd: i32,
        /// Which readiness.
        direction: IoDirection,
    },
    /// A synchronisation primitive of [`crate::sync`] or [`crate::channel`]
    /// (the pool waits on these too).
    Sync {
        /// Which primitive.
        kind: SyncKind,
        /// The primitive's id: stable for its life, unique in the process,
        /// given at its first wait.
        id: u32,
    },
    /// `join` on a greenlet, by id.
    Join {
        /// The id of the greenlet waited for.
        target: u64,
    },
    /// `kill`, waiting for its target (by id) to die.
    Kill {
        /// The id of the greenlet being killed.
        target: u64,
    },
    /// `iwait` on a set of greenlets (also a scope waiting for its
    /// members).
    Iwait,
    /// `select`: several waits at once.
    Select,
    /// A job of the blocking thread pool (`spawn_blocking`, DNS
    /// resolution).
    Blocking,
    /// A result from another thread (joining a `HubHandle::spawn` job).
    Remote,
    /// `run_until_stopped`: serving work sent by other threads.
    Serving,
    /// A monkey-patched libc call (feature `monkey`).
    Hook {
        /// The libc function's name (`recv`, `connect`, `poll`, ...).
        call: &'static str,
        /// The fd it waits on; -1 for none or several (`poll`, sleeps).
        fd: i32,
    },
}

/// Which readiness a [`WaitReason::Io`] wait needs.
///
/// # Examples
///
/// ```
/// use greenlet::dump::{IoDirection, WaitReason};
/// let r = WaitReason::Io { fd: 7, direction: IoDirection::Write };
/// assert_eq!(r.to_string(), "IO write on fd 7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoDirection {
    /// Readable (a read, an accept).
    Read,
    /// Writable (a write, a connect).
    Write,
}

/// The kind of primitive a [`WaitReason::Sync`] wait is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncKind {
    /// `sync::Mutex`.
    Mutex,
    /// `sync::RLock`.
    RLock,
    /// `sync::RwLock`.
    RwLock,
    /// `sync::Semaphore` / `BoundedSemaphore`.
    Semaphore,
    /// `sync::Event`.
    Event,
    /// `sync::AsyncResult`.
    AsyncResult,
    /// `sync::Queue` (and its variants): a `get`.
    QueueGet,
    /// `sync::Queue`: a `put` on a full queue.
    QueuePut,
    /// `sync::Queue`: a `peek`.
    QueuePeek,
    /// `JoinableQueue::join`.
    QueueJoin,
    /// `sync::Condvar`.
    Condvar,
    /// `sync::Barrier`.
    Barrier,
    /// A `channel` receiver.
    ChannelRecv,
    /// A `channel` sender (a full `sync_channel`).
    ChannelSend,
}

impl SyncKind {
    /// The primitive's type name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(greenlet::dump::SyncKind::QueueGet.name(), "Queue");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            SyncKind::Mutex => "Mutex",
            SyncKind::RLock => "RLock",
            SyncKind::RwLock => "RwLock",
            SyncKind::Semaphore => "Semaphore",
            SyncKind::Event => "Event",
            SyncKind::AsyncResult => "AsyncResult",
            SyncKind::QueueGet | SyncKind::QueuePut | SyncKind::QueuePeek | SyncKind::QueueJoin => {
                "Queue"
            }
            SyncKind::Condvar => "Condvar",
            SyncKind::Barrier => "Barrier",
            SyncKind::ChannelRecv | SyncKind::ChannelSend => "channel",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            SyncKind::Mutex | SyncKind::RLock | SyncKind::RwLock => "lock",
            SyncKind::Semaphore => "acquire",
            SyncKind::Event | SyncKind::AsyncResult | SyncKind::Condvar | SyncKind::Barrier => {
                "wait"
            }
            SyncKind::QueueGet => "get",
            SyncKind::QueuePut => "put",
            SyncKind::QueuePeek => "peek",
            SyncKind::QueueJoin => "join",
            SyncKind::ChannelRecv => "recv",
            SyncKind::ChannelSend => "send",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitReason::Unknown => f.write_str("unknown"),
            WaitReason::Sleep => f.write_str("sleep"),
            WaitReason::Io { fd, direction } => {
                let d = match direction {
                    IoDirection::Read => "read",
                    IoDirection::Write => "write",
                };
                write!(f, "IO {d} on fd {fd}")
            }
            WaitReason::Sync { kind, id } => write!(f, "{} #{id} {}", kind.name(), kind.verb()),
            WaitReason::Join { target } => write!(f, "join greenlet #{target}"),
            WaitReason::Kill { target } => write!(f, "kill greenlet #{target}"),
            WaitReason::Iwait => f.write_str("iwait"),
            WaitReason::Select => f.write_str("select"),
            WaitReason::Blocking => f.write_str("blocking-pool job"),
            WaitReason::Remote => f.write_str("result from another thread"),
            WaitReason::Serving => f.write_str("run_until_stopped"),
            WaitReason::Hook { call, fd } if fd >= 0 => {
                write!(f, "monkey-patched {call}() on fd {fd}")
            }
            WaitReason::Hook { call, .. } => write!(f, "monkey-patched {call}()"),
        }
    }
}
