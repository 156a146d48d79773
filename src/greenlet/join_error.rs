//! `JoinError`: why a greenlet has no value.

use std::any::Any;
use std::fmt;

use crate::hub::KillSignal;

/// Why [`Greenlet::join`](crate::Greenlet::join) has no value: the greenlet panicked or was killed.
///
/// `Send + Sync`, so it converts into `Box<dyn Error + Send + Sync>`.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Panic {
        payload: SyncPayload,
        /// The message of a `&str`/`String` payload, read at creation.
        message: Option<String>,
    },
    Killed,
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
        let repr = if payload.is::<KillSignal>() {
            Repr::Killed
        } else {
            let message = payload
                .downcast_ref::<&'static str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            Repr::Panic {
                payload: SyncPayload(payload),
                message,
            }
        };
        JoinError { repr }
    }

    pub(crate) const fn killed() -> JoinError {
        JoinError { repr: Repr::Killed }
    }

    /// Whether the greenlet panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic { .. })
    }

    /// Whether the greenlet was killed.
    pub fn is_killed(&self) -> bool {
        matches!(self.repr, Repr::Killed)
    }

    /// The panic message, when the payload is a string (as `panic!` makes).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic { message, .. } => message.as_deref(),
            Repr::Killed => None,
        }
    }

    /// The panic payload, or the error back if the greenlet was killed.
    ///
    /// # Errors
    /// Returns `Err(self)` when the greenlet was killed.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic { payload, .. } => Ok(payload.0),
            Repr::Killed => Err(self),
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
        match &self.repr {
            Repr::Panic { .. } => match self.panic_message() {
                Some(m) => f.debug_tuple("JoinError::Panic").field(&m).finish(),
                None => f.write_str("JoinError::Panic(..)"),
            },
            Repr::Killed => f.write_str("JoinError::Killed"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic { .. } => match self.panic_message() {
                Some(m) => write!(f, "greenlet panicked: {m}"),
                None => f.write_str("greenlet panicked"),
            },
            Repr::Killed => f.write_str("greenlet was killed"),
        }
    }
}

impl std::error::Error for JoinError {}
