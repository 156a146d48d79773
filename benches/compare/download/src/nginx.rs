//! The main job against a real server: the `download` example (the
//! user-facing binary, `cargo build --release --example download`) against
//! `curl --parallel` (libcurl's multi interface), both fetching static files
//! from a local nginx. `nginx.sh` installs and starts nginx and calls this
//! program; see the README.
//!
//! Subcommands:
//!
//! - `gen --root DIR [--seed S]`: writes the two file sets under DIR
//!   (`small/`: 300 files of 0 to 3 MiB, log-uniform sizes from the seed;
//!   `big/`: 8 files of 200 MB), pseudo-random bytes from the seed. Kept
//!   when a stamp file says they are already there.
//! - `port`: prints a free 127.0.0.1 port.
//! - `run --port P --root DIR --out DIR --download PATH [--reps R]
//!   [--cases small,big] [--clients greenlet,greenlet-new,curl (the default)]
//!   [--client-core K]`: runs
//!   each client on each case `--reps` times, each run a fresh process
//!   pinned to core K (order alternating), measures wall time, user + system
//!   CPU and peak RSS (`wait4`'s rusage: all the child's threads), checks
//!   every file against the one nginx served (size, then every byte), and
//!   prints the medians with their spread.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SMALL_FILES: usize = 300;
const SMALL_MAX: u64 = 3 << 20;
const SMALL_CONC: usize = 50;
const BIG_FILES: usize = 8;
const BIG_SIZE: u64 = 200_000_000;
const BIG_CONC: usize = 8;
/// Bumped whenever `gen` would write different files.
const GEN_VERSION: u32 = 1;

fn die(msg: &str) -> ! {
    eprintln!("compare-nginx: {msg}");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let mut opts = std::collections::HashMap::new();
    while let Some(a) = args.next() {
        let Some(name) = a.strip_prefix("--") else {
            die(&format!("unexpected argument {a:?}"));
        };
        let v = args
            .next()
            .unwrap_or_else(|| die(&format!("{a} needs a value")));
        opts.insert(name.to_owned(), v);
    }
    let get = |name: &str| -> String {
        opts.get(name)
            .cloned()
            .unwrap_or_else(|| die(&format!("--{name} is required")))
    };
    let num = |name: &str, default: u64| -> u64 {
        opts.get(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| die(&format!("--{name}: bad number {v:?}")))
        })
    };
    match cmd.as_str() {
        "gen" => generate(Path::new(&get("root")), num("seed", 14)),
        "port" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", l.local_addr().expect("local_addr").port());
        }
        "run" => {
            let list = |name: &str, default: &str| -> Vec<String> {
                opts.get(name)
                    .map_or(default, String::as_str)
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            };
            let run = Run {
                port: num("port", 0) as u16,
                root: PathBuf::from(get("root")),
                out: PathBuf::from(get("out")),
                download: PathBuf::from(get("download")),
                reps: num("reps", 5) as usize,
                client_core: num("client-core", 0) as usize,
            };
            if run.port == 0 {
                die("--port is required");
            }
            pin_to(run.client_core);
            for case in list("cases", "small,big") {
                let case = match case.as_str() {
                    "small" => Case::small(&run.root),
                    "big" => Case::big(&run.root),
                    c => die(&format!("unknown case {c:?} (small, big)")),
                };
                run.case(&case, &list("clients", "greenlet,greenlet-new,curl"));
            }
        }
        _ => die("usage: compare-nginx gen|port|run [--option value ...] (see the README)"),
    }
}

/// xorshift64*: the sizes and the bytes of the files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The small set's sizes: file 0 empty, the rest log-uniform in
/// [256 B, 3 MiB] (most files small, a few large, about 100 MB in all).
fn small_sizes(seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (lo, hi) = (256f64.ln(), (SMALL_MAX as f64).ln());
    (0..SMALL_FILES)
        .map(|i| {
            if i == 0 {
                0
            } else {
                (lo + (hi - lo) * rng.unit()).exp().round() as u64
            }
        })
        .collect()
}

fn generate(root: &Path, seed: u64) {
    let stamp = root.join("stamp");
    let want = format!("version {GEN_VERSION} seed {seed}\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        eprintln!("files in {} are up to date", root.display());
        return;
    }
    let _ = std::fs::remove_file(&stamp);
    let mut rng = Rng(seed | 1);
    let mut write = |path: PathBuf, size: u64| {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create"));
        let mut left = size;
        while left > 0 {
            let word = rng.next().to_le_bytes();
            let n = left.min(8) as usize;
            f.write_all(&word[..n]).expect("write");
            left -= n as u64;
        }
        f.flush().expect("flush");
    };
    for (dir, sizes) in [
        ("small", small_sizes(seed)),
        ("big", vec![BIG_SIZE; BIG_FILES]),
    ] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (i, size) in sizes.into_iter().enumerate() {
            write(dir.join(format!("f{i:03}.bin")), size);
        }
    }
    std::fs::write(&stamp, want).expect("stamp");
    eprintln!("generated the files in {}", root.display());
}

/// One workload: files under `root/dir`, fetched `conc` at a time.
struct Case {
    name: &'static str,
    dir: PathBuf,
    files: Vec<String>,
    total: u64,
    conc: usize,
}

impl Case {
    fn new(name: &'static str, root: &Path, n: usize, conc: usize) -> Case {
        let dir = root.join(name);
        let files: Vec<String> = (0..n).map(|i| format!("f{i:03}.bin")).collect();
        let total = files
            .iter()
            .map(|f| {
                std::fs::metadata(dir.join(f))
                    .unwrap_or_else(|e| die(&format!("{}: {e} (run gen first)", dir.display())))
                    .len()
            })
            .sum();
        Case {
            name,
            dir,
            files,
            total,
            conc,
        }
    }

    fn small(root: &Path) -> Case {
        Case::new("small", root, SMALL_FILES, SMALL_CONC)
    }

    fn big(root: &Path) -> Case {
        Case::new("big", root, BIG_FILES, BIG_CONC)
    }
}

struct Run {
    port: u16,
    root: PathBuf,
    out: PathBuf,
    download: PathBuf,
    reps: usize,
    client_core: usize,
}

/// What one client run cost.
struct Sample {
    wall: Duration,
    cpu: Duration,
    user: Duration,
    sys: Duration,
    maxrss: u64,
}

impl Run {
    fn url(&self, case: &Case, file: &str) -> String {
        format!("http://127.0.0.1:{}/{}/{file}", self.port, case.name)
    }

    /// The command that fetches every file of `case` into `out`: file i
    /// lands in `out/NNNN-fIII.bin` for both clients (the example's naming).
    fn command(&self, client: &str, case: &Case, out: &Path) -> Command {
        let list = self.out.join(format!("{}-{client}.list", case.name));
        match client {
            "greenlet" | "greenlet-new" => {
                let urls: String = case
                    .files
                    .iter()
                    .map(|f| self.url(case, f) + "\n")
                    .collect();
                std::fs::write(&list, urls).expect("write URL list");
                let mut c = Command::new(&self.download);
                c.arg("--quiet")
                    .args(["--concurrency", &case.conc.to_string()])
                    .args(["--timeout", "600"])
                    .arg("--out")
                    .arg(out)
                    .arg("--file")
                    .arg(&list);
                if client == "greenlet-new" {
                    c.arg("--no-reuse");
                }
                c
            }
            "curl" => {
                let mut config = String::new();
                for (i, f) in case.files.iter().enumerate() {
                    config += &format!(
                        "url = \"{}\"\noutput = \"{}\"\n",
                        self.url(case, f),
                        out.join(format!("{i:04}-{f}")).display()
                    );
                }
                std::fs::write(&list, config).expect("write curl config");
                let mut c = Command::new("curl");
                c.args(["--parallel", "--parallel-max", &case.conc.to_string()])
                    // `--silent` leaves `--parallel`'s progress meter on
                    // in curl 7.88; this turns it off and keeps errors.
                    .args(["--no-progress-meter", "--fail"])
                    .arg("--config")
                    .arg(&list);
                c
            }
            other => die(&format!(
                "unknown client {other:?} (greenlet, greenlet-new, curl)"
            )),
        }
    }

    /// One fresh-process run of `client` on `case`, checked.
    fn once(&self, client: &str, case: &Case) -> Result<Sample, String> {
        let out = self.out.join(format!("{}-{client}", case.name));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let mut cmd = self.command(client, case, &out);
        let err_path = self.out.join(format!("{}-{client}.stderr", case.name));
        let err_file = File::create(&err_path).map_err(|e| format!("{e}"))?;
        cmd.stdout(Stdio::null()).stderr(err_file);
        let start = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("{client}: {e}"))?;
        let (status, usage) = wait4(child.id());
        let wall = start.elapsed();
        if !status.success() {
            let errors = std::fs::read_to_string(&err_path).unwrap_or_default();
            return Err(format!("{client} {}: {status}: {errors}", case.name));
        }
        for (i, f) in case.files.iter().enumerate() {
            same_file(&case.dir.join(f), &out.join(format!("{i:04}-{f}")))
                .map_err(|e| format!("{client} {}: file {i}: {e}", case.name))?;
        }
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let (user, sys) = (tv(usage.ru_utime), tv(usage.ru_stime));
        Ok(Sample {
            wall,
            cpu: user + sys,
            user,
            sys,
            maxrss: usage.ru_maxrss as u64 * 1024,
        })
    }

    fn case(&self, case: &Case, clients: &[String]) {
        println!(
            "\n## {}: {} files, {} bytes, {} at a time; {} runs each, fresh processes pinned to core {}",
            case.name,
            case.files.len(),
            case.total,
            case.conc,
            self.reps,
            self.client_core
        );
        let mut samples: Vec<Vec<Sample>> = clients.iter().map(|_| Vec::new()).collect();
        for rep in 0..self.reps {
            for k in 0..clients.len() {
                // Alternate the order, so neither client always goes first.
                let k = if rep % 2 == 0 {
                    k
                } else {
                    clients.len() - 1 - k
                };
                let client = &clients[k];
                match self.once(client, case) {
                    Ok(s) => {
                        println!(
                            "RESULT nginx case={} client={client} wall_s={:.3} user_s={:.3} sys_s={:.3} maxrss_kib={} files=ok",
                            case.name,
                            s.wall.as_secs_f64(),
                            s.user.as_secs_f64(),
                            s.sys.as_secs_f64(),
                            s.maxrss >> 10
                        );
                        samples[k].push(s);
                    }
                    Err(e) => println!("FAILED {e}"),
                }
            }
        }
        println!();
        println!(
            "| client | wall median (min-max) | CPU user+sys median (min-max) | peak RSS median (min-max) | wall / curl | CPU / curl |"
        );
        println!("|---|---|---|---|---|---|");
        let med = |v: &[Sample], f: fn(&Sample) -> f64| -> (f64, f64, f64) {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            x.sort_by(f64::total_cmp);
            (x[x.len() / 2], x[0], x[x.len() - 1])
        };
        let curl = clients
            .iter()
            .position(|c| c == "curl")
            .filter(|&i| !samples[i].is_empty())
            .map(|i| {
                (
                    med(&samples[i], |s| s.wall.as_secs_f64()).0,
                    med(&samples[i], |s| s.cpu.as_secs_f64()).0,
                )
            });
        for (client, s) in clients.iter().zip(&samples) {
            if s.is_empty() {
                println!("| {client} | no successful run | | | | |");
                continue;
            }
            let w = med(s, |s| s.wall.as_secs_f64());
            let c = med(s, |s| s.cpu.as_secs_f64());
            let m = med(s, |s| s.maxrss as f64 / 1e6);
            let ratio = |x: f64, y: Option<f64>| y.map_or("-".into(), |y| format!("{:.2}", x / y));
            println!(
                "| {client} | {:.3} s ({:.3}-{:.3}) | {:.3} s ({:.3}-{:.3}) | {:.1} MB ({:.1}-{:.1}) | {} | {} |",
                w.0,
                w.1,
                w.2,
                c.0,
                c.1,
                c.2,
                m.0,
                m.1,
                m.2,
                ratio(w.0, curl.map(|c| c.0)),
                ratio(c.0, curl.map(|c| c.1)),
            );
        }
    }
}

/// Waits for child `pid` and returns its status and resource usage (its
/// threads and reaped children included).
fn wait4(pid: u32) -> (ExitStatus, libc::rusage) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our unwaited child; both pointers are to live locals.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            return (ExitStatus::from_raw(status), usage);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            die(&format!("wait4: {e}"));
        }
    }
}

/// Checks that `got` has exactly `want`'s bytes.
fn same_file(want: &Path, got: &Path) -> Result<(), String> {
    let open = |p: &Path| File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut a, mut b) = (open(want)?, open(got)?);
    let (la, lb) = (
        a.metadata().map_err(|e| e.to_string())?.len(),
        b.metadata().map_err(|e| e.to_string())?.len(),
    );
    if la != lb {
        return Err(format!("{} bytes, want {la}", lb));
    }
    let (mut x, mut y) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = a.read(&mut x).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        b.read_exact(&mut y[..n]).map_err(|e| e.to_string())?;
        if x[..n] != y[..n] {
            return Err(format!("bytes differ in the MiB at offset {at}"));
        }
        at += n as u64;
    }
}

fn pin_to(core: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes bit `core` of `set`, a live local.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        die(&format!(
            "sched_setaffinity to core {core}: {}",
            std::io::Error::last_os_error()
        ));
    }
}
