//! Child processes whose waits park the greenlet: std's `Command`, `Child`,
//! `ChildStdin`/`ChildStdout`/`ChildStderr` API (gevent's `subprocess`).
//!
//! [`Command`] builds on [`std::process::Command`] to spawn, then watches
//! the child through a pidfd (`pidfd_open`, Linux 5.3+) registered in the
//! hub's epoll: [`Child::wait`], [`Command::status`], [`Command::output`]
//! and [`Child::wait_with_output`] park the calling greenlet until the
//! child exits, while the others keep running. No `SIGCHLD` handler is
//! installed, so no exit status is ever taken from other code that waits
//! for its own children. The child's pipes are non-blocking and park too,
//! so reading a child's output never stalls the hub.
//!
//! Timeouts come from [`with_timeout`](crate::with_timeout), kills from
//! [`Greenlet::kill`](crate::Greenlet::kill): either unwinds the wait; the
//! child keeps running (as with std, dropping a [`Child`] neither kills
//! nor reaps it: call [`Child::kill`] and [`Child::wait`]).
//!
//! On kernels without `pidfd_open` the wait polls the child every few
//! milliseconds instead (still without blocking the hub).
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//! use greenlet::process::Command;
//!
//! let start = Instant::now();
//! let children: Vec<_> = (0..10)
//!     .map(|_| greenlet::spawn(|| Command::new("sleep").arg("0.2").status()))
//!     .collect();
//! for status in greenlet::joinall(children) {
//!     assert!(status.unwrap()?.success());
//! }
//! // Ten 200 ms children waited for concurrently on one thread.
//! assert!(start.elapsed() < Duration::from_millis(1500));
//! # Ok::<(), std::io::Error>(())
//! ```

mod child;
mod stdio;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;

pub use child::Child;
pub use std::process::{ExitStatus, Output, Stdio};
pub use stdio::{ChildStderr, ChildStdin, ChildStdout};

/// A process builder, as [`std::process::Command`], whose
/// [`spawn`](Command::spawn), [`status`](Command::status) and
/// [`output`](Command::output) give green children.
///
/// Every std builder method is here with its std signature; for the
/// platform extensions (`CommandExt`: `uid`, `process_group`, `pre_exec`,
/// ...) use [`as_std_mut`](Command::as_std_mut).
///
/// # Examples
///
/// ```
/// use greenlet::process::Command;
///
/// let output = Command::new("echo").arg("hello").output()?;
/// assert_eq!(output.stdout, b"hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin, stdout, stderr the caller configured (the defaults
    /// of `output` differ from those of `spawn`, as in std).
    set: [bool; 3],
}

impl Command {
    /// A command to run `program`, as [`std::process::Command::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cmd = greenlet::process::Command::new("true");
    /// assert_eq!(cmd.get_program(), "true");
    /// ```
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            inner: std::process::Command::new(program),
            set: [false; 3],
        }
    }

    /// Adds an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("ls");
    /// cmd.arg("-l");
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-l"]);
    /// ```
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("sh");
    /// cmd.args(["-c", "exit 0"]);
    /// assert_eq!(cmd.get_args().count(), 2);
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "echo $GREETING"]).env("GREETING", "hi").output()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn env<K, V>(&mut self, key: K, val: V) -> &mut Command
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("env");
    /// cmd.envs([("A", "1"), ("B", "2")]);
    /// assert_eq!(cmd.get_envs().count(), 2);
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("env");
    /// cmd.env_remove("PATH_TO_NOWHERE");
    /// ```
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let out = Command::new("/usr/bin/env").env_clear().output()?;
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let out = Command::new("pwd").current_dir("/").output()?;
    /// assert_eq!(out.stdout, b"/\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's standard input (default: inherited, or null for
    /// [`output`](Command::output)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// child.stdin.take().unwrap().write_all(b"meow")?;
    /// assert_eq!(child.wait_with_output()?.stdout, b"meow");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.set[0] = true;
        self.inner.stdin(cfg);
        self
    }

    /// Sets the child's standard output (default: inherited, or piped for
    /// [`output`](Command::output)).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let out = Command::new("echo").arg("quiet").stdout(Stdio::null()).output()?;
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.set[1] = true;
        self.inner.stdout(cfg);
        self
    }

    /// Sets the child's standard error (default: inherited, or piped for
    /// [`output`](Command::output)).
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let out = Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()).output()?;
    /// assert_eq!(out.stderr, b"oops\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.set[2] = true;
        self.inner.stderr(cfg);
        self
    }

    /// Starts the child and returns a green handle to it.
    ///
    /// The spawn itself (`posix_spawn`, or `fork` and `exec`) holds its
    /// thread until the child has called `exec`, a millisecond or more, so
    /// it runs on the blocking pool ([`threadpool`](crate::threadpool))
    /// while the calling greenlet parks: twenty greenlets spawning at once
    /// do not stall the others for twenty spawns. A kill or
    /// [`with_timeout`](crate::with_timeout) that comes meanwhile is
    /// delivered at the next park after the spawn, so the child is never
    /// lost.
    ///
    /// A `pre_exec` hook that ties the child to the spawning *thread*
    /// (`prctl(PR_SET_PDEATHSIG)`) would tie it to a pool thread, which
    /// exits when idle: spawn such children with std's `Command` on the
    /// calling thread and make them green with [`Child::from_std`].
    ///
    /// # Errors
    ///
    /// As [`std::process::Command::spawn`] (for instance `NotFound`), or
    /// the error of making the pipes non-blocking or registering them.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let mut child = Command::new("true").spawn()?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        // The std builder travels to the pool thread and back (it is `Send`);
        // the wait cannot unwind, so it always comes back.
        let mut cmd = std::mem::replace(&mut self.inner, std::process::Command::new(""));
        let (cmd, child) = crate::threadpool::run_blocking_uninterruptible(move || {
            let child = cmd.spawn();
            (cmd, child)
        });
        self.inner = cmd;
        Child::from_std(child?)
    }

    /// Runs the command to completion with its output collected, parking
    /// the calling greenlet meanwhile. stdout and stderr are piped and read
    /// concurrently (no deadlock however much the child writes to both);
    /// stdin is null unless set.
    ///
    /// # Errors
    ///
    /// As [`std::process::Command::output`].
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output()?;
    /// assert_eq!(out.stdout, b"out\n");
    /// assert_eq!(out.stderr, b"err\n");
    /// assert_eq!(out.status.code(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn output(&mut self) -> io::Result<Output> {
        if !self.set[0] {
            self.inner.stdin(Stdio::null());
        }
        if !self.set[1] {
            self.inner.stdout(Stdio::piped());
        }
        if !self.set[2] {
            self.inner.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // Later calls see the defaults again, as in std.
        if !self.set[0] {
            self.inner.stdin(Stdio::inherit());
        }
        if !self.set[1] {
            self.inner.stdout(Stdio::inherit());
        }
        if !self.set[2] {
            self.inner.stderr(Stdio::inherit());
        }
        child?.wait_with_output()
    }

    /// Runs the command to completion (stdio inherited unless set) and
    /// returns its exit status, parking the calling greenlet meanwhile.
    ///
    /// # Errors
    ///
    /// As [`std::process::Command::status`].
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::Command;
    ///
    /// let status = Command::new("sh").args(["-c", "exit 7"]).status()?;
    /// assert_eq!(status.code(), Some(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The program, as given to [`Command::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(greenlet::process::Command::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("ls");
    /// cmd.args(["-a", "-l"]);
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-a", "-l"]);
    /// ```
    pub fn get_args(&self) -> std::process::CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes made with [`env`](Command::env) and friends.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("ls");
    /// cmd.env("TZ", "UTC");
    /// assert_eq!(cmd.get_envs().count(), 1);
    /// ```
    pub fn get_envs(&self) -> std::process::CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set with [`current_dir`](Command::current_dir).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cmd = greenlet::process::Command::new("ls");
    /// assert_eq!(cmd.get_current_dir(), None);
    /// cmd.current_dir("/tmp");
    /// assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/tmp")));
    /// ```
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The std builder, for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let cmd = greenlet::process::Command::new("ls");
    /// assert_eq!(cmd.as_std().get_program(), "ls");
    /// ```
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// The std builder, for the platform extensions (`CommandExt`). Stdio
    /// set through it is not seen by [`output`](Command::output)'s
    /// defaults: set stdio through this `Command`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// use greenlet::process::Command;
    ///
    /// let mut cmd = Command::new("true");
    /// cmd.as_std_mut().process_group(0);
    /// assert!(cmd.status()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }
}

/// Wraps a std builder (its stdio counts as not set: see
/// [`Command::as_std_mut`]).
impl From<std::process::Command> for Command {
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            set: [false; 3],
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
