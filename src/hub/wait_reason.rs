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

/// A [`WaitReason`] as two words, the form a task header stores at every
/// park.
///
/// Storing the enum itself made the compiler build it in memory with byte
/// stores and copy it with one 16-byte load, which the CPU cannot forward
/// from the smaller stores: a stall of a dozen cycles on every park (a
/// third of a `Queue` hand-off's time in `wait`). Packing computes both
/// words in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedReason {
    /// Tag (bits 0..8; 0 is `Unknown`), kind or direction (8..16), a `&'static str`'s
    /// length (16..32), fd or id (32..64).
    a: u64,
    /// A join or kill target, or a `&'static str`'s address.
    b: u64,
}

const TAG_SLEEP: u64 = 1;
const TAG_IO: u64 = 2;
const TAG_SYNC: u64 = 3;
const TAG_JOIN: u64 = 4;
const TAG_KILL: u64 = 5;
const TAG_IWAIT: u64 = 6;
const TAG_SELECT: u64 = 7;
const TAG_BLOCKING: u64 = 8;
const TAG_REMOTE: u64 = 9;
const TAG_SERVING: u64 = 10;
const TAG_HOOK: u64 = 11;

/// Every `SyncKind`, in declaration order (`kind as u8` indexes it).
/// `listed` (a test helper) fails to compile when a kind is added: add it
/// here too.
const SYNC_KINDS: [SyncKind; 14] = [
    SyncKind::Mutex,
    SyncKind::RLock,
    SyncKind::RwLock,
    SyncKind::Semaphore,
    SyncKind::Event,
    SyncKind::AsyncResult,
    SyncKind::QueueGet,
    SyncKind::QueuePut,
    SyncKind::QueuePeek,
    SyncKind::QueueJoin,
    SyncKind::Condvar,
    SyncKind::Barrier,
    SyncKind::ChannelRecv,
    SyncKind::ChannelSend,
];

/// Exhaustive on purpose (no wildcard): a new `SyncKind` must be added to
/// [`SYNC_KINDS`] as well.
#[cfg(test)]
fn listed(k: SyncKind) -> bool {
    match k {
        SyncKind::Mutex
        | SyncKind::RLock
        | SyncKind::RwLock
        | SyncKind::Semaphore
        | SyncKind::Event
        | SyncKind::AsyncResult
        | SyncKind::QueueGet
        | SyncKind::QueuePut
        | SyncKind::QueuePeek
        | SyncKind::QueueJoin
        | SyncKind::Condvar
        | SyncKind::Barrier
        | SyncKind::ChannelRecv
        | SyncKind::ChannelSend => SYNC_KINDS.contains(&k),
    }
}

impl PackedReason {
    pub(crate) const UNKNOWN: PackedReason = PackedReason { a: 0, b: 0 };

    #[inline(always)]
    const fn small(tag: u64, sub: u64, low: u32) -> PackedReason {
        PackedReason {
            a: tag | (sub << 8) | ((low as u64) << 32),
            b: 0,
        }
    }

    /// Packs `r`. Inlined: with a constant variant it folds to two
    /// register moves.
    #[inline(always)]
    pub(crate) fn pack(r: WaitReason) -> PackedReason {
        match r {
            WaitReason::Unknown => PackedReason::UNKNOWN,
            WaitReason::Sleep => PackedReason::small(TAG_SLEEP, 0, 0),
            WaitReason::Io { fd, direction } => {
                PackedReason::small(TAG_IO, direction as u64, fd as u32)
            }
            WaitReason::Sync { kind, id } => PackedReason::small(TAG_SYNC, kind as u64, id),
            WaitReason::Join { target } => PackedReason {
                a: TAG_JOIN,
                b: target,
            },
            WaitReason::Kill { target } => PackedReason {
                a: TAG_KILL,
                b: target,
            },
            WaitReason::Iwait => PackedReason::small(TAG_IWAIT, 0, 0),
            WaitReason::Select => PackedReason::small(TAG_SELECT, 0, 0),
            WaitReason::Blocking => PackedReason::small(TAG_BLOCKING, 0, 0),
            WaitReason::Remote => PackedReason::small(TAG_REMOTE, 0, 0),
            WaitReason::Serving => PackedReason::small(TAG_SERVING, 0, 0),
            WaitReason::Hook { call, fd } => {
                // Names of libc functions: far below 64 KiB.
                let len = call.len().min(u16::MAX as usize) as u64;
                PackedReason {
                    a: TAG_HOOK | (len << 16) | ((fd as u32 as u64) << 32),
                    b: call.as_ptr() as u64,
                }
            }
        }
    }

    /// The reason this packs.
    pub(crate) fn unpack(self) -> WaitReason {
        let tag = self.a & 0xff;
        let sub = ((self.a >> 8) & 0xff) as usize;
        let low = (self.a >> 32) as u32;
        match tag {
            TAG_SLEEP => WaitReason::Sleep,
            TAG_IO => WaitReason::Io {
                fd: low as i32,
                direction: if sub == IoDirection::Read as usize {
                    IoDirection::Read
                } else {
                    IoDirection::Write
                },
            },
            TAG_SYNC => WaitReason::Sync {
                kind: SYNC_KINDS[sub],
                id: low,
            },
            TAG_JOIN => WaitReason::Join { target: self.b },
            TAG_KILL => WaitReason::Kill { target: self.b },
            TAG_IWAIT => WaitReason::Iwait,
            TAG_SELECT => WaitReason::Select,
            TAG_BLOCKING => WaitReason::Blocking,
            TAG_REMOTE => WaitReason::Remote,
            TAG_SERVING => WaitReason::Serving,
            TAG_HOOK => {
                let len = ((self.a >> 16) & 0xffff) as usize;
                // SAFETY: `pack` took address and length from a
                // `&'static str` (its length fits 16 bits: `min` above
                // only ever shortens to a prefix, and libc names are
                // ASCII, so a prefix is still UTF-8).
                let call = unsafe {
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                        self.b as usize as *const u8,
                        len,
                    ))
                };
                WaitReason::Hook {
                    call,
                    fd: low as i32,
                }
            }
            _ => WaitReason::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_survives_packing() {
        let mut all = vec![
            WaitReason::Unknown,
            WaitReason::Sleep,
            WaitReason::Io {
                fd: 0,
                direction: IoDirection::Read,
            },
            WaitReason::Io {
                fd: i32::MAX,
                direction: IoDirection::Write,
            },
            WaitReason::Io {
                fd: -1,
                direction: IoDirection::Read,
            },
            WaitReason::Join { target: u64::MAX },
            WaitReason::Kill { target: 7 },
            WaitReason::Iwait,
            WaitReason::Select,
            WaitReason::Blocking,
            WaitReason::Remote,
            WaitReason::Serving,
            WaitReason::Hook {
                call: "recv",
                fd: 9,
            },
            WaitReason::Hook {
                call: "clock_nanosleep",
                fd: -1,
            },
            WaitReason::Hook { call: "", fd: -1 },
        ];
        for (i, kind) in SYNC_KINDS.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "SYNC_KINDS is out of declaration order");
            assert!(listed(kind));
            all.push(WaitReason::Sync {
                kind,
                id: u32::MAX - i as u32,
            });
        }
        for r in all {
            assert_eq!(PackedReason::pack(r).unpack(), r);
        }
    }
}
