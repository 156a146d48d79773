//! [`File`], an open file whose calls run on the blocking pool, and
//! [`OpenOptions`], the options for opening one.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use super::{Metadata, Permissions, on_pool};
use crate::threadpool::spawn_blocking;

/// The largest read or write one pool trip makes for [`File`]'s `read` and
/// `write` (the batched calls have no limit). Bounds the copy a small read
/// asks for when the caller's buffer is huge.
const MAX_CHUNK: usize = 2 << 20;

/// An open file whose calls run on the blocking pool while the calling
/// greenlet parks (std's [`std::fs::File`] API). `Read`, `Write` and
/// `Seek` are implemented for `File` and `&File`.
///
/// Each call is one pool trip; `read` and `write` move at most 2 MiB per
/// trip, while `read_to_end`, `read_to_string` and `write_all` move the
/// whole buffer in one. Wrap it in a `BufReader`/`BufWriter` for many small
/// calls.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// use greenlet::fs::File;
///
/// let path = std::env::temp_dir().join(format!("greenlet-file-doc-{}", std::process::id()));
/// let mut f = File::create(&path)?;
/// f.write_all(b"hello world")?;
/// f.seek(SeekFrom::Start(6))?;
/// drop(f);
/// let mut s = String::new();
/// File::open(&path)?.read_to_string(&mut s)?;
/// assert_eq!(s, "hello world");
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct File {
    /// Shared with the pool jobs in flight, so a greenlet unwinding from a
    /// wait never frees the file under a running job.
    inner: Arc<std::fs::File>,
}

impl File {
    /// Opens a file read-only ([`std::fs::File::open`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _f = greenlet::fs::File::open("/proc/self/status")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        on_pool(path.as_ref(), |p| std::fs::File::open(p)).map(File::from_std)
    }

    /// Opens a file write-only, creating or truncating it
    /// ([`std::fs::File::create`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::create`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-file-create-{}", std::process::id()));
    /// let _f = greenlet::fs::File::create(&path)?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        on_pool(path.as_ref(), |p| std::fs::File::create(p)).map(File::from_std)
    }

    /// Options for opening a file ([`std::fs::File::options`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-file-opts-{}", std::process::id()));
    /// let _f = greenlet::fs::File::options().append(true).create(true).open(&path)?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file.
    ///
    /// # Examples
    ///
    /// ```
    /// let _f = greenlet::fs::File::from_std(std::fs::File::open("/")?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File {
            inner: Arc::new(file),
        }
    }

    /// The std file back, for blocking use; `Err(self)` while a clone of
    /// this `File`, or a pool job of a greenlet that was killed while
    /// waiting for it, still uses it.
    ///
    /// # Errors
    ///
    /// Gives `self` back when the file is shared.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = greenlet::fs::File::open("/")?;
    /// let _std: std::fs::File = f.into_std().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> Result<std::fs::File, File> {
        Arc::try_unwrap(self.inner).map_err(|inner| File { inner })
    }

    /// Runs `f` on the file, on the pool.
    fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let file = self.inner.clone();
        spawn_blocking(move || f(&file))
    }

    /// The file's metadata ([`std::fs::File::metadata`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::metadata`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(greenlet::fs::File::open("/")?.metadata()?.is_dir());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.run(|f| f.metadata())
    }

    /// Flushes data and metadata to the disk ([`std::fs::File::sync_all`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::sync_all`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-file-sync-{}", std::process::id()));
    /// greenlet::fs::File::create(&path)?.sync_all()?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        self.run(|f| f.sync_all())
    }

    /// Flushes data to the disk ([`std::fs::File::sync_data`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::sync_data`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-file-syncd-{}", std::process::id()));
    /// greenlet::fs::File::create(&path)?.sync_data()?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        self.run(|f| f.sync_data())
    }

    /// Truncates or extends the file ([`std::fs::File::set_len`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::set_len`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-file-len-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// f.set_len(100)?;
    /// assert_eq!(f.metadata()?.len(), 100);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.run(move |f| f.set_len(size))
    }

    /// Sets the file's permissions ([`std::fs::File::set_permissions`]).
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::set_permissions`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let path = std::env::temp_dir().join(format!("greenlet-file-perm-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.run(move |f| f.set_permissions(perm))
    }

    /// A new fd for the same open file ([`std::fs::File::try_clone`]);
    /// the two share the file offset.
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::try_clone`].
    ///
    /// # Examples
    ///
    /// ```
    /// let f = greenlet::fs::File::open("/")?;
    /// let _g = f.try_clone()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        self.inner.try_clone().map(File::from_std)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_CHUNK);
        let (n, data) = self.run(move |mut f| {
            let mut data = vec![0; len];
            let n = f.read(&mut data)?;
            Ok((n, data))
        })?;
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// The whole rest of the file in one pool trip.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let data = self.run(|mut f| {
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            Ok(data)
        })?;
        let n = data.len();
        if buf.is_empty() {
            *buf = data;
        } else {
            buf.extend_from_slice(&data);
        }
        Ok(n)
    }

    /// The whole rest of the file in one pool trip.
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let data = self.run(|mut f| {
            let mut data = String::new();
            f.read_to_string(&mut data)?;
            Ok(data)
        })?;
        let n = data.len();
        if buf.is_empty() {
            *buf = data;
        } else {
            buf.push_str(&data);
        }
        Ok(n)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        self.run(move |mut f| f.write(&data))
    }

    /// All of `buf` in one pool trip.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let data = buf.to_vec();
        self.run(move |mut f| f.write_all(&data))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run(move |mut f| f.seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl std::os::fd::AsFd for File {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl std::os::fd::AsRawFd for File {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.as_raw_fd()
    }
}

/// Wraps a std file ([`File::from_std`]).
impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> File {
        File::from_std(file)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Options for opening a [`File`], as [`std::fs::OpenOptions`]; `open` runs
/// on the blocking pool.
///
/// # Examples
///
/// ```
/// use greenlet::fs::OpenOptions;
///
/// let path = std::env::temp_dir().join(format!("greenlet-openopts-{}", std::process::id()));
/// let _f = OpenOptions::new().write(true).create_new(true).open(&path)?;
/// assert!(OpenOptions::new().write(true).create_new(true).open(&path).is_err());
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

macro_rules! open_flag {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, on: bool) -> &mut OpenOptions {
                self.0.$name(on);
                self
            }
        )*
    };
}

impl OpenOptions {
    /// No access at all, as [`std::fs::OpenOptions::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _f = greenlet::fs::OpenOptions::new().read(true).open("/")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    open_flag! {
        /// Read access.
        ///
        /// # Examples
        ///
        /// ```
        /// greenlet::fs::OpenOptions::new().read(true).open("/proc/self/status")?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        read;
        /// Write access.
        ///
        /// # Examples
        ///
        /// ```
        /// greenlet::fs::OpenOptions::new().write(true).open("/dev/null")?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        write;
        /// Append mode (writes go to the end).
        ///
        /// # Examples
        ///
        /// ```
        /// greenlet::fs::OpenOptions::new().append(true).open("/dev/null")?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        append;
        /// Truncate on open.
        ///
        /// # Examples
        ///
        /// ```
        /// greenlet::fs::OpenOptions::new().write(true).truncate(true).open("/dev/null")?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        truncate;
        /// Create the file if it is missing.
        ///
        /// # Examples
        ///
        /// ```
        /// greenlet::fs::OpenOptions::new().write(true).create(true).open("/dev/null")?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        create;
        /// Create the file, failing if it exists.
        ///
        /// # Examples
        ///
        /// ```
        /// let err = greenlet::fs::OpenOptions::new().write(true).create_new(true).open("/dev/null");
        /// assert!(err.is_err());
        /// ```
        create_new;
    }

    /// Opens `path` with these options, on the pool.
    ///
    /// # Errors
    ///
    /// As [`std::fs::OpenOptions::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _f = greenlet::fs::OpenOptions::new().read(true).open("/proc/self/status")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let opts = self.0.clone();
        on_pool(path.as_ref(), move |p| opts.open(p)).map(File::from_std)
    }

    /// The std options, for the platform extensions (`OpenOptionsExt`:
    /// `mode`, `custom_flags`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::OpenOptionsExt;
    ///
    /// let mut opts = greenlet::fs::OpenOptions::new();
    /// opts.read(true).as_std_mut().custom_flags(libc::O_NOFOLLOW);
    /// opts.open("/proc/self/status")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_std_mut(&mut self) -> &mut std::fs::OpenOptions {
        &mut self.0
    }
}
