//! Files without stalling the hub: std's `fs` functions and a [`File`]
//! whose calls run on the blocking pool ([`threadpool`](crate::threadpool))
//! while the calling greenlet parks (gevent's `FileObjectThread`,
//! `tokio::fs`).
//!
//! epoll cannot wait for disk IO (regular files always count as ready, and
//! then a read blocks on the disk), so the only way to keep other greenlets
//! running during file IO is another thread. Each call costs one pool trip
//! (a few microseconds of hand-off); the work that pays for it is batched:
//! [`read`], [`File::read_to_end`] and [`File::write_all`] move the whole
//! buffer in one trip, not one per chunk.
//!
//! A kill or [`with_timeout`](crate::with_timeout) unwinds the waiting
//! greenlet at once; the operation itself still finishes on its pool
//! thread (a write still lands, a read's data is dropped), as with
//! [`spawn_blocking`].
//!
//! # Examples
//!
//! ```
//! let path = std::env::temp_dir().join(format!("greenlet-fs-doc-{}", std::process::id()));
//! greenlet::fs::write(&path, b"hello")?;
//! assert_eq!(greenlet::fs::read_to_string(&path)?, "hello");
//! greenlet::fs::remove_file(&path)?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod file;

use std::io;
use std::path::{Path, PathBuf};

pub use std::fs::{DirEntry, FileType, Metadata, Permissions};

pub use file::{File, OpenOptions};

use crate::threadpool::spawn_blocking;

#[cfg(doc)]
use std::io::{Read, Write};

/// Runs `f(path)` on the blocking pool.
fn on_pool<T, F>(path: &Path, f: F) -> io::Result<T>
where
    F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let path = path.to_owned();
    spawn_blocking(move || f(&path))
}

/// Reads a whole file in one pool trip ([`std::fs::read`]).
///
/// # Errors
///
/// As [`std::fs::read`].
///
/// # Examples
///
/// ```
/// let bytes = greenlet::fs::read("/proc/self/stat")?;
/// assert!(!bytes.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    on_pool(path.as_ref(), |p| std::fs::read(p))
}

/// Reads a whole file as UTF-8 in one pool trip
/// ([`std::fs::read_to_string`]).
///
/// # Errors
///
/// As [`std::fs::read_to_string`].
///
/// # Examples
///
/// ```
/// let s = greenlet::fs::read_to_string("/proc/self/status")?;
/// assert!(s.contains("Name:"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    on_pool(path.as_ref(), |p| std::fs::read_to_string(p))
}

/// Writes a whole file, creating or truncating it, in one pool trip
/// ([`std::fs::write`]).
///
/// # Errors
///
/// As [`std::fs::write`].
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("greenlet-fs-write-{}", std::process::id()));
/// greenlet::fs::write(&path, "contents")?;
/// assert_eq!(greenlet::fs::read(&path)?, b"contents");
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let contents = contents.as_ref().to_vec();
    on_pool(path.as_ref(), move |p| std::fs::write(p, contents))
}

/// A file's metadata, following symlinks ([`std::fs::metadata`]).
///
/// # Errors
///
/// As [`std::fs::metadata`].
///
/// # Examples
///
/// ```
/// assert!(greenlet::fs::metadata("/")?.is_dir());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_pool(path.as_ref(), |p| std::fs::metadata(p))
}

/// A file's metadata, not following symlinks
/// ([`std::fs::symlink_metadata`]).
///
/// # Errors
///
/// As [`std::fs::symlink_metadata`].
///
/// # Examples
///
/// ```
/// assert!(greenlet::fs::symlink_metadata("/proc/self")?.file_type().is_symlink());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_pool(path.as_ref(), |p| std::fs::symlink_metadata(p))
}

/// Whether a path exists, with errors other than "not found" reported
/// ([`std::fs::exists`]).
///
/// # Errors
///
/// As [`std::fs::exists`].
///
/// # Examples
///
/// ```
/// assert!(greenlet::fs::exists("/")?);
/// assert!(!greenlet::fs::exists("/no/such/path")?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    on_pool(path.as_ref(), |p| std::fs::exists(p))
}

/// The absolute, symlink-free form of a path ([`std::fs::canonicalize`]).
///
/// # Errors
///
/// As [`std::fs::canonicalize`].
///
/// # Examples
///
/// ```
/// assert_eq!(greenlet::fs::canonicalize("/usr/../")?, std::path::Path::new("/"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_pool(path.as_ref(), |p| std::fs::canonicalize(p))
}

/// Where a symlink points ([`std::fs::read_link`]).
///
/// # Errors
///
/// As [`std::fs::read_link`].
///
/// # Examples
///
/// ```
/// let exe = greenlet::fs::read_link("/proc/self/exe")?;
/// assert!(exe.is_absolute());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_pool(path.as_ref(), |p| std::fs::read_link(p))
}

/// The entries of a directory, all listed in one pool trip
/// ([`std::fs::read_dir`], collected).
///
/// # Errors
///
/// As [`std::fs::read_dir`] and its iterator.
///
/// # Examples
///
/// ```
/// let entries = greenlet::fs::read_dir("/")?;
/// assert!(entries.iter().any(|e| e.file_name() == "proc"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<DirEntry>> {
    on_pool(path.as_ref(), |p| std::fs::read_dir(p)?.collect())
}

/// Creates a directory ([`std::fs::create_dir`]).
///
/// # Errors
///
/// As [`std::fs::create_dir`].
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("greenlet-fs-mkdir-{}", std::process::id()));
/// greenlet::fs::create_dir(&dir)?;
/// greenlet::fs::remove_dir(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), |p| std::fs::create_dir(p))
}

/// Creates a directory and its missing parents
/// ([`std::fs::create_dir_all`]).
///
/// # Errors
///
/// As [`std::fs::create_dir_all`].
///
/// # Examples
///
/// ```
/// let top = std::env::temp_dir().join(format!("greenlet-fs-mkdirs-{}", std::process::id()));
/// greenlet::fs::create_dir_all(top.join("a/b"))?;
/// greenlet::fs::remove_dir_all(&top)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), |p| std::fs::create_dir_all(p))
}

/// Removes an empty directory ([`std::fs::remove_dir`]).
///
/// # Errors
///
/// As [`std::fs::remove_dir`].
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("greenlet-fs-rmdir-{}", std::process::id()));
/// greenlet::fs::create_dir(&dir)?;
/// greenlet::fs::remove_dir(&dir)?;
/// assert!(!greenlet::fs::exists(&dir)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), |p| std::fs::remove_dir(p))
}

/// Removes a directory and everything in it, in one pool trip
/// ([`std::fs::remove_dir_all`]).
///
/// # Errors
///
/// As [`std::fs::remove_dir_all`].
///
/// # Examples
///
/// ```
/// let top = std::env::temp_dir().join(format!("greenlet-fs-rmall-{}", std::process::id()));
/// greenlet::fs::create_dir_all(top.join("x"))?;
/// greenlet::fs::write(top.join("x/f"), "f")?;
/// greenlet::fs::remove_dir_all(&top)?;
/// assert!(!greenlet::fs::exists(&top)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), |p| std::fs::remove_dir_all(p))
}

/// Removes a file ([`std::fs::remove_file`]).
///
/// # Errors
///
/// As [`std::fs::remove_file`].
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("greenlet-fs-rm-{}", std::process::id()));
/// greenlet::fs::write(&path, "x")?;
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), |p| std::fs::remove_file(p))
}

/// Renames a file or directory ([`std::fs::rename`]).
///
/// # Errors
///
/// As [`std::fs::rename`].
///
/// # Examples
///
/// ```
/// let from = std::env::temp_dir().join(format!("greenlet-fs-mv1-{}", std::process::id()));
/// let to = from.with_extension("moved");
/// greenlet::fs::write(&from, "x")?;
/// greenlet::fs::rename(&from, &to)?;
/// greenlet::fs::remove_file(&to)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let to = to.as_ref().to_owned();
    on_pool(from.as_ref(), move |p| std::fs::rename(p, to))
}

/// Copies a file's contents and permissions, in one pool trip
/// ([`std::fs::copy`]); returns the bytes copied.
///
/// # Errors
///
/// As [`std::fs::copy`].
///
/// # Examples
///
/// ```
/// let from = std::env::temp_dir().join(format!("greenlet-fs-cp-{}", std::process::id()));
/// let to = from.with_extension("copy");
/// greenlet::fs::write(&from, "12345")?;
/// assert_eq!(greenlet::fs::copy(&from, &to)?, 5);
/// greenlet::fs::remove_file(&from)?;
/// greenlet::fs::remove_file(&to)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let to = to.as_ref().to_owned();
    on_pool(from.as_ref(), move |p| std::fs::copy(p, to))
}

/// Creates a hard link ([`std::fs::hard_link`]).
///
/// # Errors
///
/// As [`std::fs::hard_link`].
///
/// # Examples
///
/// ```
/// let orig = std::env::temp_dir().join(format!("greenlet-fs-ln-{}", std::process::id()));
/// let link = orig.with_extension("link");
/// greenlet::fs::write(&orig, "x")?;
/// greenlet::fs::hard_link(&orig, &link)?;
/// greenlet::fs::remove_file(&orig)?;
/// assert_eq!(greenlet::fs::read(&link)?, b"x");
/// greenlet::fs::remove_file(&link)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let link = link.as_ref().to_owned();
    on_pool(original.as_ref(), move |p| std::fs::hard_link(p, link))
}

/// Sets a file's permissions ([`std::fs::set_permissions`]).
///
/// # Errors
///
/// As [`std::fs::set_permissions`].
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
///
/// let path = std::env::temp_dir().join(format!("greenlet-fs-chmod-{}", std::process::id()));
/// greenlet::fs::write(&path, "x")?;
/// greenlet::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
/// assert_eq!(greenlet::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    on_pool(path.as_ref(), move |p| std::fs::set_permissions(p, perm))
}
