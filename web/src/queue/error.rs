//! What a queue call can fail with.

use crate::backend::StoreError;

/// A [`Queue`](super::Queue) or [`Job`](super::Job) call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// The backend failed.
    Store(StoreError),
    /// The job's data could not be written as JSON.
    Encode(serde_json::Error),
    /// The job's lease is no longer this worker's (it ran past its lease and another worker
    /// may have it now): what it reports is ignored.
    LeaseLost {
        /// The job's id.
        id: String,
    },
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Store(error) => write!(f, "queue store: {error}"),
            QueueError::Encode(error) => write!(f, "cannot write the job's data as JSON: {error}"),
            QueueError::LeaseLost { id } => {
                write!(f, "job `{id}` is no longer leased to this worker")
            }
        }
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueueError::Store(error) => Some(error),
            QueueError::Encode(error) => Some(error),
            QueueError::LeaseLost { .. } => None,
        }
    }
}

impl From<StoreError> for QueueError {
    fn from(error: StoreError) -> Self {
        QueueError::Store(error)
    }
}
