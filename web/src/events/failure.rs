//! A listener that failed: what went wrong, and the event that reports it.

use std::any::Any;
use std::fmt;

use super::listener::ListenerId;

/// How a listener failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerFailure {
    /// It returned `Err`: the error's message.
    Error(String),
    /// It panicked: the panic's message (`"Box<dyn Any>"` when the payload was not a string).
    Panic(String),
}

impl fmt::Display for ListenerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerFailure::Error(message) => write!(f, "returned an error: {message}"),
            ListenerFailure::Panic(message) => write!(f, "panicked: {message}"),
        }
    }
}

impl ListenerFailure {
    /// The failure of a listener that panicked with `payload`.
    pub(super) fn panicked(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(message) = payload.downcast_ref::<&'static str>() {
            (*message).to_owned()
        } else if let Some(message) = payload.downcast_ref::<String>() {
            message.clone()
        } else {
            "Box<dyn Any>".to_owned()
        };
        ListenerFailure::Panic(message)
    }
}

/// Emitted on the same [`Events`](super::Events) when one of its listeners returns an error or
/// panics (after the failure is logged with `tracing`). A listener of `ListenerFailed` that
/// fails is only logged, never reported again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerFailed {
    /// The failed listener's event type, by name (`std::any::type_name`).
    pub event: &'static str,
    /// The listener that failed.
    pub listener: ListenerId,
    /// What went wrong.
    pub failure: ListenerFailure,
}

impl fmt::Display for ListenerFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} {}", self.listener, self.event, self.failure)
    }
}
