//! `Builder`: a greenlet's name and stack size, and the default size.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use super::Greenlet;
use crate::fiber::stack::{DEFAULT_STACK_SIZE, normalize_size};
use crate::hub::Hub;

/// The default stack size, normalized: `GREENLET_STACK_SIZE` (bytes, or
/// with a `K`/`M` suffix) if set, else 256 KiB. Read once.
///
/// # Panics
/// When `GREENLET_STACK_SIZE` is not a usable size.
pub(crate) fn default_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let requested = match std::env::var("GREENLET_STACK_SIZE") {
            Ok(v) => parse_size(&v).unwrap_or_else(|| {
                panic!(
                    "greenlet: GREENLET_STACK_SIZE={v:?} is not a size (bytes, or a number with \
                     a K or M suffix, e.g. 512K)"
                )
            }),
            Err(_) => DEFAULT_STACK_SIZE,
        };
        normalize_size(requested).unwrap_or_else(|e| panic!("greenlet: GREENLET_STACK_SIZE: {e}"))
    })
}

fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<usize>().ok()?.checked_mul(mul)
}

/// Configures a greenlet before spawning it: name and stack size.
///
/// # Examples
///
/// ```
/// let g = greenlet::Builder::new()
///     .name("worker")
///     .stack_size(64 * 1024)
///     .spawn(|| greenlet::current().unwrap().name().unwrap().to_string())
///     .unwrap();
/// assert_eq!(g.join().unwrap(), "worker");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: no name, the default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown by [`current`](crate::current), the monitor and the
    /// stack-overflow report).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes of address space, guard page included
    /// (rounded up to whole pages, at least 16 KiB). The default is 256 KiB
    /// or `GREENLET_STACK_SIZE`. Pages are committed only when touched.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the greenlet; it runs when the hub next gets control.
    ///
    /// # Errors
    /// Fails when no stack can be had: a size larger than the address space
    /// (`InvalidInput`), address space exhausted, or, on kernels without
    /// `MADV_GUARD_INSTALL`, `vm.max_map_count` reached (the message names
    /// the limit).
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_inner(f, None)
    }

    /// Spawns the greenlet to start after `delay`.
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_inner(f, Some(delay))
    }

    /// Creates the greenlet without starting it (see [`Greenlet::new`]);
    /// start it with [`Greenlet::start`] or [`Greenlet::start_later`].
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let g = greenlet::Builder::new().name("later").build(|| 3).unwrap();
    /// assert!(!g.is_started());
    /// g.start();
    /// assert_eq!(g.join().unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn build<F, T>(self, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_inner(f, Some(crate::hub::UNSCHEDULED))
    }

    /// Spawns the greenlet in a [`scope`](crate::scope()), where it may borrow
    /// from the scope's caller (std's `Builder::spawn_scoped`).
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let greeting = String::from("hi");
    /// greenlet::scope(|s| {
    ///     let g = greenlet::Builder::new()
    ///         .name("scoped")
    ///         .spawn_scoped(s, || format!("{greeting} from {}", greenlet::current().unwrap()))
    ///         .unwrap();
    ///     assert!(g.join().unwrap().starts_with("hi from <Greenlet \"scoped\""));
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope crate::Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<crate::ScopedGreenlet<'scope, T>>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let size = match self.stack_size {
            Some(bytes) => normalize_size(bytes)?,
            None => default_stack_size(),
        };
        scope.spawn_with(self.name.map(String::into_boxed_str), size, f)
    }

    #[track_caller]
    fn spawn_inner<F, T>(self, f: F, delay: Option<Duration>) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let size = match self.stack_size {
            Some(bytes) => normalize_size(bytes)?,
            None => default_stack_size(),
        };
        let name = self.name.map(String::into_boxed_str);
        Ok(Greenlet::from_parts(Hub::current().spawn(
            f,
            name,
            size,
            delay,
            std::panic::Location::caller(),
        )?))
    }
}
