//! The child's ends of its pipes: std's pipe types in non-blocking mode,
//! registered with the hub, whose reads and writes park.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::io::FdIo;

macro_rules! child_pipe {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            io: FdIo<$std>,
        }

        impl $name {
            pub(crate) fn new(inner: $std) -> io::Result<$name> {
                Ok($name { io: FdIo::new(inner)? })
            }

            /// The std pipe end, back in blocking mode (for handing to
            /// another `Command` as its stdio, or to another thread).
            ///
            /// # Examples
            ///
            /// ```
            /// use greenlet::process::{Command, Stdio};
            ///
            /// let mut child = Command::new("true").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
            /// let _std_in = child.stdin.take().unwrap().into_std();
            /// let _std_out = child.stdout.take().unwrap().into_std();
            /// let _std_err = child.stderr.take().unwrap().into_std();
            /// child.wait()?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn into_std(self) -> $std {
                self.io.into_inner()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.io.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.io.as_raw_fd()
            }
        }

        /// The pipe's fd, back in blocking mode.
        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                p.into_std().into()
            }
        }

        /// The std pipe end, back in blocking mode.
        impl From<$name> for $std {
            fn from(p: $name) -> $std {
                p.into_std()
            }
        }

        /// The std pipe end as another child's stdio, back in blocking mode.
        impl From<$name> for std::process::Stdio {
            fn from(p: $name) -> std::process::Stdio {
                p.into_std().into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("fd", &self.as_raw_fd()).finish()
            }
        }
    };
}

child_pipe!(
    /// The write end of a child's standard input: [`Write`] that parks
    /// while the pipe is full. Dropping it closes the pipe (the child sees
    /// end of file).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let mut stdin = child.stdin.take().unwrap();
    /// // 1 MiB is far more than a pipe holds: the write parks while wc reads.
    /// stdin.write_all(&vec![b'x'; 1 << 20])?;
    /// drop(stdin);
    /// let out = child.wait_with_output()?;
    /// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1048576");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStdin,
    std::process::ChildStdin
);

child_pipe!(
    /// The read end of a child's standard output: [`Read`] that parks
    /// while the pipe is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn()?;
    /// let mut s = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut s)?;
    /// assert_eq!(s, "hi\n");
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStdout,
    std::process::ChildStdout
);

child_pipe!(
    /// The read end of a child's standard error: [`Read`] that parks while
    /// the pipe is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use greenlet::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("sh").args(["-c", "echo bad >&2"]).stderr(Stdio::piped()).spawn()?;
    /// let mut s = String::new();
    /// child.stderr.take().unwrap().read_to_string(&mut s)?;
    /// assert_eq!(s, "bad\n");
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ChildStderr,
    std::process::ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.io).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.io).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.io).read(buf)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.io).read(buf)
    }
}
