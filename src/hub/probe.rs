//! The hub's side of the [monitor](crate::monitor): what each hub shares
//! with the watchdog thread (its switch count, what runs, whether it sleeps
//! on sync waits only), kept here so the hub does not depend on the
//! monitor. While the monitor is off, the hub pays one relaxed load as each
//! greenlet is switched in and one as it leaves.
//!
//! The one call up is `HubProbe::new` starting the monitor when the
//! `GREENLET_MONITOR` variable asks for it: the first hub is the earliest
//! point at which the runtime runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::task::Header;

/// Whether the monitor runs (set once, by `monitor::start_with`).
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);

/// Every hub's probe, made at the hub's first switch after the monitor
/// started; the watchdog reads them.
static PROBES: Mutex<Vec<Weak<Probe>>> = Mutex::new(Vec::new());

/// The probes of the hubs alive now (dropping those of hubs that ended).
pub(crate) fn live_probes() -> Vec<Arc<Probe>> {
    let mut list = PROBES.lock().unwrap();
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
}

/// What one hub shares with the watchdog.
pub(crate) struct Probe {
    pub(crate) thread: Option<String>,
    pub(crate) switches: AtomicU64,
    /// Id of the running greenlet; 0 when none runs (the hub loop runs or
    /// sleeps); [`ROOT`] while root-context code runs.
    pub(crate) running: AtomicU64,
    /// The hub sleeps with only sync waits that could wake it.
    pub(crate) idle_on_sync: AtomicBool,
    /// The hub's remote queue, to take its dump on its own thread.
    pub(crate) remote: Option<Weak<super::remote::Remote>>,
    pub(crate) names: Mutex<HashMap<u64, String>>,
}

/// `Probe::running` while root-context code runs.
pub(crate) const ROOT: u64 = u64::MAX;

/// The hub's side of the monitor: costs one relaxed load per switch while
/// the monitor is off.
pub(crate) struct HubProbe {
    probe: OnceLock<Arc<Probe>>,
    switches: std::cell::Cell<u64>,
}

impl HubProbe {
    pub(crate) fn new() -> HubProbe {
        if std::env::var_os("GREENLET_MONITOR").is_some() && !ENABLED.load(Ordering::Relaxed) {
            crate::monitor::start_from_env();
        }
        HubProbe {
            probe: OnceLock::new(),
            switches: std::cell::Cell::new(0),
        }
    }

    #[cold]
    fn probe(&self) -> &Arc<Probe> {
        self.probe.get_or_init(|| {
            let p = Arc::new(Probe {
                thread: std::thread::current().name().map(str::to_owned),
                switches: AtomicU64::new(0),
                running: AtomicU64::new(0),
                idle_on_sync: AtomicBool::new(false),
                remote: super::Hub::try_current().map(|h| Arc::downgrade(h.remote())),
                names: Mutex::new(HashMap::new()),
            });
            PROBES.lock().unwrap().push(Arc::downgrade(&p));
            p
        })
    }

    /// A greenlet is being switched in.
    #[inline]
    pub(crate) fn switched(&self, hdr: &Header) {
        if ENABLED.load(Ordering::Relaxed) {
            self.switched_slow(hdr);
        }
    }

    #[cold]
    fn switched_slow(&self, hdr: &Header) {
        let p = self.probe();
        let n = self.switches.get() + 1;
        self.switches.set(n);
        p.switches.store(n, Ordering::Relaxed);
        p.running.store(hdr.id, Ordering::Relaxed);
    }

    /// No greenlet runs: the loop ended a pass (between two runs of one
    /// pass the last greenlet stays the running one: the loop only queues
    /// or finishes it there), or a run ended abnormally.
    #[inline]
    pub(crate) fn left(&self) {
        if ENABLED.load(Ordering::Relaxed) {
            self.probe().running.store(0, Ordering::Relaxed);
        }
    }

    /// The root left the hub loop: root-context code runs now.
    #[inline]
    pub(crate) fn root_running(&self) {
        if ENABLED.load(Ordering::Relaxed) {
            self.root_running_slow();
        }
    }

    #[cold]
    fn root_running_slow(&self) {
        let p = self.probe();
        let n = self.switches.get() + 1;
        self.switches.set(n);
        p.switches.store(n, Ordering::Relaxed);
        p.running.store(ROOT, Ordering::Relaxed);
    }

    /// The hub is about to sleep with only sync waits that could wake it
    /// (`true`), or woke up (`false`).
    #[inline]
    pub(crate) fn idle_on_sync(&self, on: bool) {
        if ENABLED.load(Ordering::Relaxed) {
            self.probe().idle_on_sync.store(on, Ordering::Relaxed);
        }
    }

    /// A named greenlet was spawned.
    pub(crate) fn spawned(&self, id: u64, name: Option<&str>) {
        if let (true, Some(n)) = (ENABLED.load(Ordering::Relaxed), name) {
            self.probe().names.lock().unwrap().insert(id, n.to_owned());
        }
    }

    /// A greenlet finished.
    pub(crate) fn finished(&self, hdr: &Header) {
        if ENABLED.load(Ordering::Relaxed) && hdr.name().is_some() {
            self.probe().names.lock().unwrap().remove(&hdr.id);
        }
    }
}
