//! A 5 ms ticker greenlet that measures how long its hub kept it waiting,
//! next to a control thread that measures, in the same run, how late the
//! OS wakes a plain sleeping thread (a loaded machine delays both; only the
//! ticker is delayed by a hub that blocks).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use greenlet::Greenlet;
use greenlet::sync::Event;

const PERIOD: Duration = Duration::from_millis(5);

/// A running ticker; [`Ticker::stop`] ends it and reports the gaps.
pub struct Ticker {
    greenlet: Greenlet<Duration>,
    stop: Event,
    control: JoinHandle<Duration>,
    control_stop: Arc<AtomicBool>,
}

/// The longest gap between two ticks of the ticker greenlet, and of the
/// control thread.
#[derive(Debug, Clone, Copy)]
pub struct Gaps {
    pub worst: Duration,
    pub control: Duration,
}

impl Gaps {
    /// Asserts that the hub never kept the ticker waiting `limit` longer
    /// than the OS kept the control thread waiting.
    #[track_caller]
    pub fn assert_below(&self, limit: Duration) {
        assert!(
            self.worst < limit + self.control,
            "the ticker stalled {:?} (the control thread's worst gap: {:?})",
            self.worst,
            self.control
        );
    }
}

fn worst_gap(mut tick: impl FnMut(), done: impl Fn() -> bool) -> Duration {
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    while !done() {
        tick();
        let now = Instant::now();
        worst = worst.max(now - last);
        last = now;
    }
    worst
}

/// Starts the ticker greenlet (on this thread's hub) and the control
/// thread.
pub fn start() -> Ticker {
    let stop = Event::new();
    let s = stop.clone();
    let greenlet = greenlet::spawn(move || worst_gap(|| greenlet::sleep(PERIOD), || s.is_set()));
    let control_stop = Arc::new(AtomicBool::new(false));
    let cs = control_stop.clone();
    let control = std::thread::spawn(move || {
        worst_gap(|| std::thread::sleep(PERIOD), || cs.load(Ordering::Relaxed))
    });
    Ticker {
        greenlet,
        stop,
        control,
        control_stop,
    }
}

impl Ticker {
    /// Stops both and returns their worst gaps.
    pub fn stop(self) -> Gaps {
        self.stop.set();
        self.control_stop.store(true, Ordering::Relaxed);
        Gaps {
            worst: self.greenlet.join().unwrap(),
            control: self.control.join().unwrap(),
        }
    }
}
