//! How a job is added: [`JobOptions`].

use std::time::Duration;

use super::store::{Backoff, Priority};

/// Options of [`Queue::add_with`](super::Queue::add_with), built with its methods:
///
/// ```
/// use std::time::Duration;
/// use weft::queue::{Backoff, JobOptions, Priority};
///
/// let options = JobOptions::new()
///     .priority(Priority::Urgent)
///     .delay(Duration::from_secs(5))
///     .attempts(5)
///     .backoff(Backoff::Fixed { delay_ms: 1_000 })
///     .id("welcome-mail-42");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    /// Which waiting jobs run first. Default: [`Priority::Normal`].
    pub priority: Priority,
    /// How long after being added the job may run first. Default: at once.
    pub delay: Duration,
    /// Attempts before the job goes to the dead-letter queue (at least 1). Default: 3.
    pub attempts: u32,
    /// The wait between attempts. Default: exponential from 1 s to 60 s, with jitter.
    pub backoff: Backoff,
    /// The job's id: adding a job whose id is stored already adds nothing (de-duplication).
    /// Default: a new unique id.
    pub id: Option<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            priority: Priority::Normal,
            delay: Duration::ZERO,
            attempts: 3,
            backoff: Backoff::default(),
            id: None,
        }
    }
}

impl JobOptions {
    /// The defaults (see each field).
    pub fn new() -> Self {
        JobOptions::default()
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the delay before the first attempt.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the number of attempts (0 counts as 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sets the backoff between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the job's id, for de-duplication.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}
