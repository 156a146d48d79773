//! `JoinError`: why a greenlet has no value.

use std::any::Any;
use std::fmt;

use super::KillSignal;

/// Why [`Greenlet::join`](crate::Greenlet::join) has no value: the greenlet panicked or was killed.
///
/// `Send + Sync`, so it converts into `Box<dyn Error + Send + Sync>`.
pub struct JoinError {
    /// `None`: killed. One word, so every greenlet's result slot stays
    /// small (it is part of the task's allocation).
    panic: Option<Box<Panic>>,
}

struct Panic {
    payload: SyncPayload,
    /// The message of a `&str`/`String` payload, read at creation.
    message: Option<String>,
}

/// A panic payload that can be shared between threads because nothing
/// reads it through a shared reference.
struct SyncPayload(Box<dyn Any + Send + 'static>);

// SAFETY: the payload is only reachable by value (`into_panic`,
// `try_into_panic`), never through `&SyncPayload`, so a `&JoinError` on
// another thread gives no access to the non-`Sync` payload.
unsafe impl Sync for SyncPayload {}

impl JoinError {
    pub(crate) fn from_payload(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        if payload.is::<KillSignal>() {
            return JoinError::killed();
        }
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError {
            panic: Some(Box::new(Panic {
                payload: SyncPayload(payload),
                message,
            })),
        }
    }

    pub(crate) const fn killed() -> JoinError {
        JoinError { panic: None }
    }

    /// Whether the greenlet panicked.
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// Whether the greenlet was killed.
    pub fn is_killed(&self) -> bool {
        self.panic.is_none()
    }

    /// The panic message, when the payload is a string (as `panic!` makes).
    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_ref().and_then(|p| p.message.as_deref())
    }

    /// The panic payload, or the error back if the greenlet was killed.
    ///
    /// # Errors
    /// Returns `Err(self)` when the greenlet was killed.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.panic {
            Some(p) => Ok(p.payload.0),
            None => Err(self),
        }
    }

    /// The panic payload, to re-raise it with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// Panics if the greenlet was killed rather than panicking.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic: the greenlet was killed, it did not panic")
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            Some(_) => match self.panic_message() {
                Some(m) => f.debug_tuple("JoinError::Panic").field(&m).finish(),
                None => f.write_str("JoinError::Panic(..)"),
            },
            None => f.write_str("JoinError::Killed"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            Some(_) => match self.panic_message() {
                Some(m) => write!(f, "greenlet panicked: {m}"),
                None => f.write_str("greenlet panicked"),
            },
            None => f.write_str("greenlet was killed"),
        }
    }
}

impl std::error::Error for JoinError {}
