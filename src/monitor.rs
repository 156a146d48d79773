//! A watchdog that reports hubs blocked by code that does not yield, and
//! hubs stuck waiting on sync primitives.
//!
//! Green threads only take turns at park points. A greenlet that computes
//! for a long time, or calls something that blocks the OS thread (std's
//! `Mutex`, a blocking syscall the hub does not know about), stalls every
//! other greenlet of its thread; so does root-context code (the thread's
//! own code outside any greenlet) that runs long between two greenlet
//! calls. The monitor is a background thread that samples each hub's
//! switch counter; when a hub has been running the same greenlet, or its
//! root, for longer than the threshold (default 100 ms), it reports that
//! once per episode, naming the greenlet ([`ReportKind::Running`],
//! [`ReportKind::Root`]). A destructor the hub runs as a greenlet finishes
//! (of a result nobody joins) counts as that greenlet's: it is reported by
//! id, its name already gone.
//!
//! It also reports, once per episode and with the hub's
//! [dump](crate::dump), a hub that has slept in epoll for longer than the
//! threshold with greenlets (or its root) parked on sync primitives and
//! nothing else that could wake it: no timer, no fd, no blocking-pool job
//! ([`ReportKind::IdleOnSync`]). Such a wait is ended only by another
//! thread that holds a handle to the primitive; when no such thread
//! exists the program hangs, and the runtime cannot prove it (the
//! "would block forever" panic covers the waits it can prove). A consumer
//! that legitimately waits longer than the threshold for another thread's
//! next item is reported too: pick the threshold accordingly.
//!
//! Opt in with the environment variable `GREENLET_MONITOR=1` (or a threshold
//! in milliseconds, e.g. `GREENLET_MONITOR=250`), read when the first hub
//! starts, or call [`start`] / [`start_with`]. The default reporter prints
//! one line to stderr; [`start_with`] takes your own.
//!
//! Names are known for greenlets spawned with [`Builder::name`] while the
//! monitor runs; others are reported by id.
//!
//! # Examples
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! let reports = Arc::new(Mutex::new(Vec::new()));
//! let r = reports.clone();
//! greenlet::monitor::start_with(Duration::from_millis(20), move |rep| {
//!     r.lock().unwrap().push(rep.greenlet_name.clone());
//! });
//! greenlet::Builder::new()
//!     .name("hog")
//!     .spawn(|| std::thread::sleep(Duration::from_millis(200))) // blocks the hub!
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! assert!(reports.lock().unwrap().contains(&Some("hog".to_string())));
//! ```
//!
//! [`Builder::name`]: crate::Builder::name

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::hub::probe::{self, ENABLED, Probe, ROOT};

/// Default threshold: a hub that has not switched for this long is reported.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// What a [`Report`] is about.
///
/// # Examples
///
/// ```
/// use greenlet::monitor::{Report, ReportKind};
/// fn on_report(r: &Report) {
///     if r.kind == ReportKind::IdleOnSync {
///         eprintln!("{}", r.dump.as_deref().unwrap_or(""));
///     }
/// }
/// # let _ = on_report;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportKind {
    /// A greenlet has been running without yielding past the threshold.
    Running,
    /// Root-context code has been running without entering the hub past
    /// the threshold (`greenlet_id` is 0).
    Root,
    /// The hub has slept past the threshold with only sync-primitive waits
    /// that could wake it (`greenlet_id` is 0; `dump` says who waits).
    IdleOnSync,
}

/// One blocked-hub episode.
#[derive(Clone, Debug)]
pub struct Report {
    /// What is reported.
    pub kind: ReportKind,
    /// For [`ReportKind::IdleOnSync`]: the hub's [dump](crate::dump).
    pub dump: Option<String>,
    /// The name of the hub's OS thread, if it has one.
    pub thread: Option<String>,
    /// The id of the greenlet that was running.
    pub greenlet_id: u64,
    /// Its name, if known.
    pub greenlet_name: Option<String>,
    /// How long the hub had gone without switching when this was noticed.
    pub blocked_for: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "greenlet monitor: the hub of thread ")?;
        match &self.thread {
            Some(t) => write!(f, "'{t}'")?,
            None => write!(f, "<unnamed>")?,
        }
        match self.kind {
            ReportKind::Running => {}
            ReportKind::Root => {
                return write!(
                    f,
                    " has not switched for {} ms: root-context code is running without \
                     entering the hub (CPU-bound work, or a call that blocks the OS thread)",
                    self.blocked_for.as_millis()
                );
            }
            ReportKind::IdleOnSync => {
                write!(
                    f,
                    " has slept for {} ms with greenlets waiting on sync primitives and \
                     nothing else that could wake it (a deadlock, unless another thread still \
                     sets them)",
                    self.blocked_for.as_millis()
                )?;
                if let Some(d) = &self.dump {
                    write!(f, "\n{d}")?;
                }
                return Ok(());
            }
        }
        write!(
            f,
            " has not switched for {} ms; greenlet ",
            self.blocked_for.as_millis()
        )?;
        match &self.greenlet_name {
            Some(n) => write!(f, "'{n}' (#{})", self.greenlet_id)?,
            None => write!(f, "#{}", self.greenlet_id)?,
        }
        write!(
            f,
            " is running without yielding (CPU-bound work, or a call that blocks the OS thread)"
        )
    }
}

type Reporter = Box<dyn Fn(&Report) + Send + Sync>;

struct Monitor {
    threshold: Duration,
    reporter: Reporter,
}

static MONITOR: OnceLock<Monitor> = OnceLock::new();

/// Starts the monitor if `GREENLET_MONITOR` asks for it (called by the
/// first hub, see `hub::probe`).
pub(crate) fn start_from_env() {
    let threshold = std::env::var("GREENLET_MONITOR")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 1)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_THRESHOLD);
    start(threshold);
}

/// Starts the monitor with a threshold, reporting to stderr. Only the first
/// call in a process (or `GREENLET_MONITOR`) takes effect; returns whether
/// this call started it.
pub fn start(threshold: Duration) -> bool {
    start_with(threshold, |r| eprintln!("{r}"))
}

/// Starts the monitor with a threshold and a reporter called on the
/// watchdog thread once per blocked episode. Only the first call in a
/// process takes effect; returns whether this call started it.
pub fn start_with(threshold: Duration, reporter: impl Fn(&Report) + Send + Sync + 'static) -> bool {
    let mut started = false;
    MONITOR.get_or_init(|| {
        started = true;
        Monitor {
            threshold: threshold.max(Duration::from_millis(1)),
            reporter: Box::new(reporter),
        }
    });
    if started {
        ENABLED.store(true, Ordering::Relaxed);
        std::thread::Builder::new()
            .name("greenlet-monitor".into())
            .spawn(watchdog)
            .expect("greenlet::monitor: cannot start the watchdog thread");
    }
    started
}

/// Whether the monitor is running.
pub fn is_running() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn watchdog() {
    let m = MONITOR.get().expect("monitor set before its thread starts");
    let me = crate::hub::process_deadlock::RuntimeThread::enter();
    let tick = (m.threshold / 4).max(Duration::from_millis(1));
    // Per probe: (last switch count seen, when it changed, last reported).
    let mut seen: HashMap<usize, (u64, Instant, u64)> = HashMap::new();
    // Per probe: (switch count of the idle episode, since when, reported).
    let mut idle: HashMap<usize, (u64, Instant, bool)> = HashMap::new();
    loop {
        std::thread::sleep(tick);
        let now = Instant::now();
        let probes = probe::live_probes();
        seen.retain(|k, _| probes.iter().any(|p| Arc::as_ptr(p) as usize == *k));
        idle.retain(|k, _| probes.iter().any(|p| Arc::as_ptr(p) as usize == *k));
        for p in &probes {
            let key = Arc::as_ptr(p) as usize;
            let switches = p.switches.load(Ordering::Relaxed);
            let running = p.running.load(Ordering::Relaxed);
            check_idle(m, p, key, switches, now, &mut idle);
            let entry = seen.entry(key).or_insert((switches, now, u64::MAX));
            if entry.0 != switches || running == 0 {
                *entry = (switches, now, entry.2);
                continue;
            }
            let blocked_for = now - entry.1;
            if blocked_for >= m.threshold && entry.2 != switches {
                entry.2 = switches;
                let root = running == ROOT;
                let report = Report {
                    kind: if root {
                        ReportKind::Root
                    } else {
                        ReportKind::Running
                    },
                    dump: None,
                    thread: p.thread.clone(),
                    greenlet_id: if root { 0 } else { running },
                    greenlet_name: if root {
                        None
                    } else {
                        p.names.lock().unwrap().get(&running).cloned()
                    },
                    blocked_for,
                };
                // The reporter is user code: it might wake a hub.
                me.run_user(|| (m.reporter)(&report));
            }
        }
    }
}

/// Reports a hub asleep with only sync waits past the threshold, once per
/// episode (an episode ends when a greenlet runs: the switch count moves).
/// The report is made on the hub's own thread, which the request wakes,
/// so it can carry the hub's dump.
fn check_idle(
    m: &'static Monitor,
    p: &Arc<Probe>,
    key: usize,
    switches: u64,
    now: Instant,
    idle: &mut HashMap<usize, (u64, Instant, bool)>,
) {
    if !p.idle_on_sync.load(Ordering::Relaxed) {
        if idle.get(&key).is_some_and(|e| e.0 != switches) {
            idle.remove(&key);
        }
        return;
    }
    let e = idle.entry(key).or_insert((switches, now, false));
    if e.0 != switches {
        *e = (switches, now, false);
    }
    if e.2 || now - e.1 < m.threshold {
        return;
    }
    e.2 = true;
    let Some(remote) = p.remote.as_ref().and_then(Weak::upgrade) else {
        return;
    };
    let blocked_for = now - e.1;
    let thread = p.thread.clone();
    remote.send(crate::hub::remote::RemoteMsg::Run(Box::new(move || {
        let dump = crate::hub::Hub::try_current().map(|h| h.dump().to_string());
        (m.reporter)(&Report {
            kind: ReportKind::IdleOnSync,
            dump,
            thread,
            greenlet_id: 0,
            greenlet_name: None,
            blocked_for,
        });
    })));
}
