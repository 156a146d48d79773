//! What every greenlet of a hub is doing: [`dump`] takes a snapshot of the
//! calling thread's hub (each greenlet's id, name, state, what it waits for
//! and for how long, where it was spawned), printable like Go's goroutine
//! dump. The same text ends every "would block forever" panic.
//!
//! [`request_all`] (or the signal named by `GREENLET_DUMP_SIGNAL`, e.g.
//! `GREENLET_DUMP_SIGNAL=USR1`, read when the first hub starts) makes every
//! hub of the process print its dump to stderr at its next loop turn,
//! without stopping the program; a hub asleep in epoll is woken for it.
//!
//! Wait reasons are recorded at every park (one store, no allocation);
//! durations come from the hub's loop clock, which advances at every epoll
//! poll and timer check, so they are exact to within one loop turn.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let q: greenlet::sync::Queue<u32> = greenlet::sync::Queue::new();
//! let q2 = q.clone();
//! let consumer = greenlet::Builder::new()
//!     .name("consumer")
//!     .spawn(move || q2.get().unwrap())
//!     .unwrap();
//! greenlet::sleep(Duration::from_millis(5));
//! let d = greenlet::dump::dump();
//! let text = d.to_string();
//! assert!(text.contains("'consumer'"), "{text}");
//! assert!(text.contains("Queue #"), "{text}");
//! q.put(1).unwrap();
//! assert_eq!(consumer.join().unwrap(), 1);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use super::Hub;
pub use super::dump_signal::request_all;
pub use super::process_deadlock::process_wide;
use super::task::{Header, State};
pub use super::wait_reason::{IoDirection, SyncKind, WaitReason};

/// A snapshot of one hub: the root and every greenlet that has not
/// finished. See the [module docs](self).
///
/// # Examples
///
/// ```
/// let g = greenlet::Builder::new().name("worker").spawn(|| ()).unwrap();
/// let d = greenlet::dump::dump();
/// assert_eq!(d.root().id(), 0);
/// assert_eq!(d.greenlets().len(), 1);
/// assert!(d.to_string().contains("'worker' [not started]"), "{d}");
/// g.join().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Dump {
    thread: Option<String>,
    root: GreenletInfo,
    greenlets: Vec<GreenletInfo>,
}

/// Where a greenlet is in its life, in a [`Dump`].
///
/// # Examples
///
/// ```
/// use greenlet::dump::GreenletState;
/// let g = greenlet::spawn(greenlet::yield_now);
/// let state = |d: &greenlet::dump::Dump| d.greenlets()[0].state();
/// assert_eq!(state(&greenlet::dump::dump()), GreenletState::NotStarted);
/// greenlet::yield_now(); // it runs and yields: ready again
/// assert_eq!(state(&greenlet::dump::dump()), GreenletState::Ready);
/// g.join().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreenletState {
    /// Spawned, not started yet (ready, or waiting for its `spawn_later`
    /// delay).
    NotStarted,
    /// In the ready queue.
    Ready,
    /// Running now (the one that took the dump, or the root driving the
    /// loop).
    Running,
    /// Parked: see [`GreenletInfo::wait_reason`].
    Parked,
}

/// One greenlet (or the root) in a [`Dump`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(10)));
/// greenlet::sleep(Duration::from_millis(5));
/// let d = greenlet::dump::dump();
/// let info = &d.greenlets()[0];
/// assert_eq!(info.id(), g.id().as_u64());
/// assert!(info.waiting_for().unwrap() < Duration::from_secs(10));
/// assert!(info.deadline().unwrap() > Duration::from_secs(5));
/// assert!(info.spawned_at().unwrap().file().ends_with(".rs"));
/// g.kill();
/// ```
#[derive(Clone, Debug)]
pub struct GreenletInfo {
    id: u64,
    name: Option<String>,
    state: GreenletState,
    reason: Option<WaitReason>,
    waiting_for: Option<Duration>,
    deadline: Option<Duration>,
    spawned_at: Option<&'static Location<'static>>,
    socket: Option<String>,
}

impl GreenletInfo {
    fn of(
        hdr: &Header,
        hub: &Hub,
        now: Instant,
        coarse_now: u64,
        deadlines: &HashMap<*const Header, Instant>,
    ) -> GreenletInfo {
        let state = match hdr.state.get() {
            State::Parked => GreenletState::Parked,
            State::Running => GreenletState::Running,
            State::Delayed => GreenletState::NotStarted,
            State::Ready if !hdr.is_root() && !hub.has_started(hdr) => GreenletState::NotStarted,
            State::Ready | State::Finished => GreenletState::Ready,
        };
        let parked = state == GreenletState::Parked;
        let reason = parked.then(|| hdr.reason());
        // Looked up now, not when it parked: the park stores only the fd.
        let socket = match reason {
            Some(WaitReason::Io { fd, .. } | WaitReason::Hook { fd, .. }) if fd >= 0 => {
                crate::sys::describe_socket(fd)
            }
            _ => None,
        };
        GreenletInfo {
            id: hdr.id,
            name: hdr.name().map(str::to_owned),
            state,
            reason,
            waiting_for: if parked {
                match hdr.since.get() {
                    0 => None,
                    s => Some(Duration::from_nanos(coarse_now.saturating_sub(s))),
                }
            } else {
                None
            },
            deadline: if parked {
                deadlines
                    .get(&(hdr as *const Header))
                    .map(|d| d.saturating_duration_since(now))
            } else {
                None
            },
            spawned_at: hdr.site,
            socket,
        }
    }

    /// The greenlet's id (`Greenlet::id().as_u64()`; the root is 0).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where it is in its life.
    pub fn state(&self) -> GreenletState {
        self.state
    }

    /// What it waits for, if it is parked.
    pub fn wait_reason(&self) -> Option<WaitReason> {
        self.reason
    }

    /// How long it has been parked, if it is.
    pub fn waiting_for(&self) -> Option<Duration> {
        self.waiting_for
    }

    /// For a timed wait (a sleep, a `*_timeout` call, a socket timeout):
    /// how long until its deadline.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Where it was spawned (`None` for the root).
    pub fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.spawned_at
    }

    /// For a wait on a socket's fd (an IO wait, or a monkey-patched call on
    /// one): the socket, as read when the dump was taken. A connected
    /// socket shows its peer (`"tcp 127.0.0.1:5432"`, `"unix /run/x.sock"`),
    /// one without a peer its own address (`"tcp listening on
    /// 0.0.0.0:80"`, `"udp on 127.0.0.1:9000"`). `None` for other waits and
    /// for fds that are not sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenlet::net::TcpListener;
    ///
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let g = greenlet::spawn(move || l.accept().map(drop));
    /// greenlet::sleep(Duration::from_millis(5));
    /// let d = greenlet::dump::dump();
    /// assert_eq!(
    ///     d.greenlets()[0].socket(),
    ///     Some(format!("tcp listening on {addr}").as_str())
    /// );
    /// g.kill();
    /// ```
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    fn is_root(&self) -> bool {
        self.id == 0
    }
}

impl fmt::Display for GreenletInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("root")?;
        } else {
            write!(f, "greenlet #{}", self.id)?;
        }
        if let Some(n) = &self.name {
            write!(f, " '{n}'")?;
        }
        f.write_str(" [")?;
        match (self.state, self.reason) {
            (GreenletState::Parked, Some(r)) => {
                write!(f, "{r}")?;
                if let Some(s) = &self.socket {
                    write!(f, " ({s})")?;
                }
            }
            (GreenletState::NotStarted, _) => f.write_str("not started")?,
            (GreenletState::Ready, _) => f.write_str("ready")?,
            (GreenletState::Running, _) => f.write_str("running")?,
            (GreenletState::Parked, None) => f.write_str("parked")?,
        }
        if let Some(w) = self.waiting_for {
            write!(f, ", {:?}", round_ms(w))?;
        }
        if let Some(d) = self.deadline {
            write!(f, ", deadline in {:?}", round_ms(d))?;
        }
        f.write_str("]")?;
        if let Some(l) = self.spawned_at {
            write!(f, " spawned at {}:{}:{}", l.file(), l.line(), l.column())?;
        }
        Ok(())
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

impl Dump {
    /// The root of the thread (id 0).
    pub fn root(&self) -> &GreenletInfo {
        &self.root
    }

    /// Every greenlet that has not finished, by id.
    pub fn greenlets(&self) -> &[GreenletInfo] {
        &self.greenlets
    }

    /// The name of the hub's thread, if it has one.
    pub fn thread(&self) -> Option<&str> {
        self.thread.as_deref()
    }

    fn count(&self, state: GreenletState) -> usize {
        self.greenlets.iter().filter(|g| g.state == state).count()
    }
}

/// Groups: running, ready, not started, then the parked ones grouped by
/// what they wait for.
fn group_key(g: &GreenletInfo) -> (u8, u8) {
    let reason_rank = match g.reason {
        None => 0,
        Some(WaitReason::Sync { .. }) => 1,
        Some(WaitReason::Join { .. } | WaitReason::Kill { .. } | WaitReason::Iwait) => 2,
        Some(WaitReason::Io { .. } | WaitReason::Hook { .. }) => 3,
        Some(WaitReason::Sleep) => 4,
        Some(_) => 5,
    };
    let state_rank = match g.state {
        GreenletState::Running => 0,
        GreenletState::Ready => 1,
        GreenletState::NotStarted => 2,
        GreenletState::Parked => 3,
    };
    (state_rank, reason_rank)
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "greenlet dump of thread ")?;
        match &self.thread {
            Some(t) => write!(f, "'{t}'")?,
            None => f.write_str("<unnamed>")?,
        }
        writeln!(
            f,
            ": {} greenlets ({} running, {} ready, {} not started, {} parked)",
            self.greenlets.len(),
            self.count(GreenletState::Running),
            self.count(GreenletState::Ready),
            self.count(GreenletState::NotStarted),
            self.count(GreenletState::Parked),
        )?;
        writeln!(f, "  {}", self.root)?;
        let mut sorted: Vec<&GreenletInfo> = self.greenlets.iter().collect();
        sorted.sort_by_key(|g| (group_key(g), g.id));
        for g in sorted {
            writeln!(f, "  {g}")?;
        }
        Ok(())
    }
}

impl Hub {
    /// A snapshot of this hub (see [`Dump`]).
    pub(crate) fn dump(&self) -> Dump {
        let now = Instant::now();
        let coarse_now = crate::sys::coarse_now_ns();
        let deadlines = self.timers.borrow().wake_deadlines();
        let root = GreenletInfo::of(&self.root, self, now, coarse_now, &deadlines);
        let mut greenlets: Vec<GreenletInfo> = self
            .tasks
            .borrow()
            .iter()
            .map(|t| GreenletInfo::of(t, self, now, coarse_now, &deadlines))
            .collect();
        greenlets.sort_by_key(|g| g.id);
        Dump {
            thread: std::thread::current().name().map(str::to_owned),
            root,
            greenlets,
        }
    }
}

/// A snapshot of the calling thread's hub: the root and every greenlet
/// that has not finished, with what each waits for (see the
/// [module docs](self)).
///
/// # Examples
///
/// ```
/// use greenlet::dump::{GreenletState, WaitReason};
///
/// let ev = greenlet::sync::Event::new();
/// let e = ev.clone();
/// let g = greenlet::Builder::new().name("waiter").spawn(move || e.wait()).unwrap();
/// greenlet::yield_now();
/// let d = greenlet::dump::dump();
/// let info = d.greenlets().iter().find(|i| i.name() == Some("waiter")).unwrap();
/// assert_eq!(info.state(), GreenletState::Parked);
/// assert!(matches!(info.wait_reason(), Some(WaitReason::Sync { .. })));
/// assert!(info.spawned_at().is_some());
/// ev.set();
/// g.join().unwrap();
/// ```
pub fn dump() -> Dump {
    Hub::current().dump()
}
