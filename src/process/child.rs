//! A running or exited child process, watched through a pidfd.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use crate::Greenlet;
use crate::hub::reactor::Direction;
use crate::io::Watched;
use crate::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};

/// How long the pidfd-less fallback sleeps between checks, at most.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A child process, as [`std::process::Child`], whose waits park the
/// calling greenlet.
///
/// The exit is watched through a pidfd in the hub's epoll; the exit status
/// is collected with `waitpid` on this child's pid only, so no other code's
/// children are ever reaped. As with std, dropping a `Child` neither kills
/// nor waits for it; a child never waited for stays a zombie until this
/// process exits.
///
/// Not `Send`: its pidfd and pipes are registered with the hub of the
/// thread that spawned it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use greenlet::process::Command;
///
/// let mut child = Command::new("sleep").arg("10").spawn()?;
/// // A wait that takes too long, ended by with_timeout...
/// assert!(greenlet::with_timeout(Duration::from_millis(50), || child.wait()).is_err());
/// // ...then the child killed and reaped.
/// child.kill()?;
/// assert!(!child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Child {
    /// `None` where `pidfd_open` is not available: waits poll instead.
    watch: Option<Watched>,
    inner: std::process::Child,
    /// The child's stdin, if piped ([`std::process::Child::stdin`]).
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// Makes a std child green: its pipes become non-blocking and its exit
    /// is watched by this thread's hub. The child must not have been
    /// waited for yet.
    ///
    /// # Errors
    ///
    /// The error of `fcntl`, `dup` or `epoll_ctl` on its pipes. A missing
    /// `pidfd_open` is not an error (waits poll instead).
    ///
    /// # Examples
    ///
    /// ```
    /// let std_child = std::process::Command::new("true").spawn()?;
    /// let mut child = greenlet::process::Child::from_std(std_child)?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(mut inner: std::process::Child) -> io::Result<Child> {
        // Opened before the child can be reaped, so the pid cannot have been
        // reused: the pidfd is this child's.
        let watch = match crate::sys::pidfd_open(inner.id()) {
            Ok(fd) => Some(Watched::own(fd)?),
            Err(_) => None,
        };
        Ok(Child {
            stdin: inner.stdin.take().map(ChildStdin::new).transpose()?,
            stdout: inner.stdout.take().map(ChildStdout::new).transpose()?,
            stderr: inner.stderr.take().map(ChildStderr::new).transpose()?,
            watch,
            inner,
        })
    }

    /// The child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut child = greenlet::process::Command::new("true").spawn()?;
    /// assert!(child.id() > 0);
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` to the child, unless it has already been waited for
    /// (as [`std::process::Child::kill`]). Does not wait.
    ///
    /// # Errors
    ///
    /// As std: the error of `kill(2)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// let mut child = greenlet::process::Command::new("sleep").arg("10").spawn()?;
    /// child.kill()?;
    /// assert_eq!(child.wait()?.signal(), Some(libc::SIGKILL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Parks the calling greenlet until the child exits and returns its
    /// status (at once if it was already collected). Closes the child's
    /// stdin first, as std does, so a child reading it is not left waiting.
    ///
    /// # Errors
    ///
    /// As [`std::process::Child::wait`]. A kill or an expired
    /// [`with_timeout`](crate::with_timeout) unwinds out of the wait; the
    /// child is still running then and can be waited for again.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut child = greenlet::process::Command::new("sh").args(["-c", "exit 2"]).spawn()?;
    /// assert_eq!(child.wait()?.code(), Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let mut interval = Duration::from_millis(1);
        loop {
            if let Some(status) = self.inner.try_wait()? {
                return Ok(status);
            }
            match &self.watch {
                Some(w) => {
                    // The pidfd turns readable when the child exits. The
                    // `try_wait` above and this wait have no park in
                    // between, so an exit in that window is seen by the
                    // next poll and not lost.
                    let reg = w.registration();
                    reg.clear_readiness(Direction::Read);
                    reg.wait(Direction::Read, None)?;
                }
                None => {
                    crate::sleep(interval);
                    interval = (interval * 2).min(MAX_POLL_INTERVAL);
                }
            }
        }
    }

    /// The child's exit status if it has exited, without waiting
    /// (as [`std::process::Child::try_wait`]).
    ///
    /// # Errors
    ///
    /// The error of `waitpid`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut child = greenlet::process::Command::new("sleep").arg("10").spawn()?;
    /// assert_eq!(child.try_wait()?, None);
    /// child.kill()?;
    /// child.wait()?;
    /// assert!(child.try_wait()?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes stdin, reads all of stdout and stderr concurrently (a helper
    /// greenlet takes stderr, so a child filling both pipes never
    /// deadlocks), then waits for the child.
    ///
    /// # Errors
    ///
    /// A read error, or as [`Child::wait`]. A kill or timeout unwinds, and
    /// the helper greenlet is killed with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let child = Command::new("sh")
    ///     .args(["-c", "echo to-out; echo to-err >&2"])
    ///     .stdout(Stdio::piped())
    ///     .stderr(Stdio::piped())
    ///     .spawn()?;
    /// let out = child.wait_with_output()?;
    /// assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"to-out\n"[..], &b"to-err\n"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read2(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// The std child (its pipes are in the `stdin`/`stdout`/`stderr`
    /// fields of this `Child` instead), for the platform extensions.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut child = greenlet::process::Command::new("true").spawn()?;
    /// assert_eq!(child.as_std().id(), child.id());
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_std(&self) -> &std::process::Child {
        &self.inner
    }
}

/// Kills a helper greenlet if its owner unwinds before joining it.
struct KillOnDrop<T: 'static>(Option<Greenlet<T>>);

impl<T: 'static> Drop for KillOnDrop<T> {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.kill();
        }
    }
}

fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

/// Reads two pipes to the end at the same time.
fn read2(out: Option<ChildStdout>, err: Option<ChildStderr>) -> io::Result<(Vec<u8>, Vec<u8>)> {
    match (out, err) {
        (None, None) => Ok((Vec::new(), Vec::new())),
        (Some(o), None) => Ok((read_all(o)?, Vec::new())),
        (None, Some(e)) => Ok((Vec::new(), read_all(e)?)),
        (Some(o), Some(e)) => {
            let mut helper = KillOnDrop(Some(crate::spawn(move || read_all(e))));
            let stdout = read_all(o)?;
            let joined = helper.0.take().map(Greenlet::join);
            let stderr = match joined {
                Some(Ok(r)) => r?,
                Some(Err(e)) => return Err(io::Error::other(format!("reading stderr: {e}"))),
                None => Vec::new(),
            };
            Ok((stdout, stderr))
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
