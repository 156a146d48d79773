//! Shared helpers: statistics, /proc readings, process limits, result lines.

use std::fmt::Write as _;
use std::time::Duration;

/// Summary of several timed runs of the same benchmark, in ns per operation.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Per-run ns/op, in run order (the first run is the cold one).
    pub runs: Vec<f64>,
}

impl Stats {
    pub fn from_durations(ds: &[Duration], ops: u64) -> Stats {
        Stats {
            runs: ds
                .iter()
                .map(|d| d.as_nanos() as f64 / ops as f64)
                .collect(),
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.runs.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted()[0]
    }

    pub fn max(&self) -> f64 {
        *self.sorted().last().unwrap()
    }

    pub fn first(&self) -> f64 {
        self.runs[0]
    }

    /// `ns=<median> ns_min=.. ns_max=.. ns_first=.. runs=..` for a RESULT line.
    pub fn fields(&self) -> String {
        format!(
            "ns={:.1} ns_min={:.1} ns_max={:.1} ns_first={:.1} runs={}",
            self.median(),
            self.min(),
            self.max(),
            self.first(),
            self.runs.len()
        )
    }
}

/// Prints one machine-readable result line.
pub fn result(bench: &str, peer: &str, fields: &str) {
    println!("RESULT {bench} {peer} {fields}");
}

/// Prints a failure/skip result line. `reason` is free text to the end of the line.
pub fn result_status(bench: &str, peer: &str, status: &str, extra: &str, reason: &str) {
    let mut s = format!("status={status}");
    if !extra.is_empty() {
        let _ = write!(s, " {extra}");
    }
    let reason = reason.replace('\n', " ");
    let _ = write!(s, " reason={reason}");
    result(bench, peer, &s);
}

/// A `kB` field (KiB, as the kernel writes it) of /proc/self/status.
pub fn proc_status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let num = rest.trim().trim_end_matches("kB").trim();
            return num.parse().expect("parse /proc/self/status");
        }
    }
    panic!("no {field} in /proc/self/status");
}

pub fn vm_rss_kib() -> u64 {
    proc_status_kib("VmRSS")
}

pub fn vm_hwm_kib() -> u64 {
    proc_status_kib("VmHWM")
}

/// Number of memory mappings (VMAs) of this process.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Raises this process's soft resource limits that can bound how many
/// stacks/tasks it holds (open files, address space, data segment) to their
/// hard limits. Process-local only: no sysctl is touched. `vm.max_map_count`
/// is a system-wide sysctl and cannot be raised from inside a process.
pub fn raise_limits() {
    for res in [libc::RLIMIT_NOFILE, libc::RLIMIT_AS, libc::RLIMIT_DATA] {
        // SAFETY: plain getrlimit/setrlimit on a local struct.
        unsafe {
            let mut lim = std::mem::zeroed::<libc::rlimit>();
            if libc::getrlimit(res, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(res, &lim);
            }
        }
    }
}

/// Text of a panic payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Outcome of a "spawn N sleepers, join them all" run in a fresh process.
pub struct SleepOutcome {
    pub wall: Duration,
    /// Process CPU time over the same span as `wall` (every thread of the
    /// process): on a shared machine it leaves out the time the pinned
    /// child sat preempted, the 1 s of sleep included.
    pub cpu: Duration,
    /// Time spent in the spawn loop alone.
    pub spawn: Duration,
    pub rss_before_kib: u64,
    pub hwm_after_kib: u64,
}

impl SleepOutcome {
    pub fn report(&self, bench: &str, peer: &str, n: u64) {
        let growth = self.hwm_after_kib.saturating_sub(self.rss_before_kib);
        let bytes_per = growth as f64 * 1024.0 / n as f64;
        result(
            bench,
            peer,
            &format!(
                "n={n} wall_s={:.3} cpu_s={:.3} spawn_s={:.3} rss_before_kib={} hwm_after_kib={} \
                 kib_per={:.2} bytes_per={:.0}",
                self.wall.as_secs_f64(),
                self.cpu.as_secs_f64(),
                self.spawn.as_secs_f64(),
                self.rss_before_kib,
                self.hwm_after_kib,
                bytes_per / 1024.0,
                bytes_per
            ),
        );
    }
}

/// Environment calibration: ns per first touch of a fresh anonymous 4 KiB
/// page (page fault + zeroing), over 256 MiB. Every new greenlet/may stack
/// pays at least one of these, so it explains most of the cold-start cost.
pub fn first_touch_ns_per_page() -> f64 {
    const SIZE: usize = 256 << 20;
    let el = touch_fresh(SIZE).expect("mmap failed");
    el.as_nanos() as f64 / (SIZE / 4096) as f64
}

/// Maps `size` bytes of fresh anonymous memory, writes one byte in each
/// 4 KiB page, and unmaps it. Returns how long the writes took (`None`
/// when the mapping fails).
fn touch_fresh(size: usize) -> Option<std::time::Duration> {
    // SAFETY: a private anonymous mapping we own and unmap before returning;
    // writes stay inside it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = p as *mut u8;
        let t = std::time::Instant::now();
        for off in (0..size).step_by(4096) {
            std::ptr::write_volatile(base.add(off), 1);
        }
        let el = t.elapsed();
        libc::munmap(p, size);
        Some(el)
    }
}

/// Touches `mib` MiB of fresh anonymous memory, then gives it back.
///
/// In a virtual machine whose host backs guest memory lazily, the first
/// touch of a guest page the host has not backed yet costs a second fault
/// in the host (1.5-13 us per 4 KiB page on this machine, against 1.3-1.4
/// us in runs where the probe got pages just freed). Which pages a fresh
/// child gets then depends on what ran before it, and decided cold
/// results: a child that ran right after one that freed 250 MB got pages
/// the host had backed. Touching and freeing enough memory before every
/// child hands each one host-backed pages, so "cold" measures the
/// process's own faults, as on a machine without a hypervisor.
pub fn warm_host(mib: usize) {
    if mib > 0 {
        let _ = touch_fresh(mib << 20);
    }
}

/// Pins the calling thread to one core. Called first thing in a child, before
/// any runtime starts a thread, so every thread of the child inherits it.
pub fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within
    // it; sched_setaffinity only reads it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set)
    };
    assert_eq!(
        r,
        0,
        "sched_setaffinity(core {core}): {}",
        std::io::Error::last_os_error()
    );
}

/// Which cargo profile built this binary (the name of the directory it sits
/// in under `target/`), and what that profile is.
pub fn build_profile() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let what = match dir.as_str() {
        "release" => {
            "cargo's default release profile: opt-level 3, thin-local LTO, 16 codegen units"
        }
        "fat" => "profile `fat`: release + lto = \"fat\", codegen-units = 1",
        _ => "not one of the two stated profiles (release, fat)",
    };
    format!("build profile: {dir} ({what}); greenlet and every peer are in this one binary")
}

/// Median, min and max of a non-empty sample.
pub fn median_min_max(v: &[f64]) -> (f64, f64, f64) {
    let s = Stats { runs: v.to_vec() };
    (s.median(), s.min(), s.max())
}

/// CPU time (user + system) of this process, all threads.
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the one timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
