//! `greenlet::fs`: file IO on the blocking pool while the hub keeps running.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenlet::fs::{self, File, OpenOptions};

mod util;

/// Runs `f` on its own thread (with its own hub) and fails the test if it
/// has not finished within `secs`: no test may hang.
#[track_caller]
fn deadline<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test did not finish in time (or panicked)")
}

#[test]
fn reading_a_64_mib_file_leaves_a_5_ms_ticker_on_cadence() {
    let dir = util::temp_dir("fs-64m");
    let path = dir.join("big");
    let data = util::pattern(64 << 20);
    std::fs::write(&path, &data).unwrap();
    let p = path.clone();
    let (n, same, worst, took) = deadline(60, move || {
        let tick = util::ticker::start();
        greenlet::sleep(Duration::from_millis(10));
        let t = Instant::now();
        let mut got = Vec::new();
        File::open(&p).unwrap().read_to_end(&mut got).unwrap();
        let took = t.elapsed();
        // Also the one-call form.
        let again = fs::read(&p).unwrap();
        let worst = tick.stop();
        (got.len(), got == data && again == data, worst, took)
    });
    eprintln!("64 MiB read_to_end: {took:?}; ticker's longest gap {worst:?}");
    assert_eq!(n, 64 << 20);
    assert!(same, "the data read back differs");
    worst.assert_below(Duration::from_millis(50));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_read_write_seek_and_metadata_mirror_std() {
    let dir = util::temp_dir("fs-file");
    deadline(30, move || {
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"hello world").unwrap();
        assert_eq!(f.write(b"!").unwrap(), 1);
        f.sync_all().unwrap();
        assert_eq!(f.metadata().unwrap().len(), 12);
        drop(f);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(f.seek(SeekFrom::Start(6)).unwrap(), 6);
        let mut five = [0; 5];
        f.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"world");
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::from(">");
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, ">hello world!");
        f.set_len(5).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello");
        // A reading greenlet and a writing greenlet overlap on the pool.
        let (a, b) = (path.clone(), dir.join("g"));
        let r = greenlet::spawn(move || fs::read(a));
        let w = greenlet::spawn(move || fs::write(b, "other"));
        assert_eq!(r.join().unwrap().unwrap(), b"hello");
        w.join().unwrap().unwrap();
        let std_file = File::open(&path).unwrap().into_std().unwrap();
        assert_eq!(std_file.metadata().unwrap().len(), 5);
        let err = File::open(dir.join("missing")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn directory_functions_mirror_std() {
    let dir = util::temp_dir("fs-dir");
    deadline(30, move || {
        let sub = dir.join("a/b");
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join("x"), "1").unwrap();
        assert_eq!(fs::copy(sub.join("x"), sub.join("y")).unwrap(), 1);
        fs::rename(sub.join("y"), sub.join("z")).unwrap();
        fs::hard_link(sub.join("z"), sub.join("w")).unwrap();
        let mut names: Vec<_> = fs::read_dir(&sub)
            .unwrap()
            .iter()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["w", "x", "z"]);
        assert!(fs::metadata(&sub).unwrap().is_dir());
        assert!(fs::exists(sub.join("x")).unwrap());
        assert!(!fs::exists(sub.join("y")).unwrap());
        assert_eq!(
            fs::canonicalize(dir.join("a/../a/b")).unwrap(),
            std::fs::canonicalize(&sub).unwrap()
        );
        fs::remove_file(sub.join("w")).unwrap();
        assert!(fs::remove_dir(dir.join("a")).is_err()); // not empty
        fs::remove_dir_all(&dir).unwrap();
        assert!(!fs::exists(&dir).unwrap());
    });
}

#[test]
fn a_greenlet_killed_during_a_pool_read_unwinds_at_once() {
    deadline(30, || {
        // A FIFO with no writer: open(O_RDONLY) blocks its pool thread
        // until a writer comes, far longer than the kill takes.
        let dir = util::temp_dir("fs-kill");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let f = fifo.clone();
        let g = greenlet::spawn(move || File::open(f).map(drop));
        greenlet::sleep(Duration::from_millis(20));
        let t = Instant::now();
        g.kill();
        assert!(g.join().unwrap_err().is_killed());
        assert!(t.elapsed() < Duration::from_millis(500));
        // Release the pool thread.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    });
}
