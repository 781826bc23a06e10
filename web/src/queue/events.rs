//! The events a [`Worker`](super::Worker) emits through its queue's
//! [`Events`](crate::events::Events): listen with `events.on(|e: &JobFailed| ..)` or
//! [`App::on`](crate::App::on).

use std::time::Duration;

use super::store::Progress;

/// A job's handler succeeded; the job was removed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCompleted {
    /// The queue.
    pub queue: String,
    /// The job's id.
    pub id: String,
    /// The job's name (its kind within the queue).
    pub name: String,
    /// The attempt that succeeded (1 for the first).
    pub attempt: u32,
}

/// An attempt of a job failed: its handler answered an error or panicked, or no handler
/// knows its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailed {
    /// The queue.
    pub queue: String,
    /// The job's id.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// Why.
    pub error: String,
    /// Whether it will run again, after `retry_in`.
    pub will_retry: bool,
    /// The wait before the next attempt, when it will retry.
    pub retry_in: Option<Duration>,
    /// Whether it went to the dead-letter queue (out of attempts).
    pub dead: bool,
}

/// A job's lease ended while it ran (its worker died or stalled): it runs again, or goes to
/// the dead-letter queue when it has no attempt left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStalled {
    /// The queue.
    pub queue: String,
    /// The job's id.
    pub id: String,
    /// The job's name (empty if the job was gone by the time it was looked up).
    pub name: String,
    /// Whether it went to the dead-letter queue.
    pub dead: bool,
}

/// A running job reported its progress ([`Job::progress`](super::Job::progress)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    /// The queue.
    pub queue: String,
    /// The job's id.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// What it reported.
    pub progress: Progress,
}
