//! What a handler receives: [`Job<T>`], a job's data and a way to report progress.

use std::sync::Arc;

use super::error::QueueError;
use super::events::JobProgress;
use super::producer::Queue;
use super::store::{JobRecord, Progress};

/// A running job, its data read as `T`, given to a [`Worker`](super::Worker)'s handler.
#[derive(Debug)]
pub struct Job<T> {
    data: T,
    lease: Arc<Lease>,
}

/// What identifies a running attempt: the job and its lease's token.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) queue: Queue,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) token: String,
    pub(super) attempt: u32,
    pub(super) max_attempts: u32,
}

impl Lease {
    pub(super) fn new(queue: Queue, record: &JobRecord, token: String) -> Self {
        Lease {
            queue,
            id: record.id.clone(),
            name: record.name.clone(),
            token,
            attempt: record.attempts,
            max_attempts: record.max_attempts,
        }
    }

    fn progress_event(&self, progress: Progress) -> JobProgress {
        JobProgress {
            queue: self.queue.name().to_owned(),
            id: self.id.clone(),
            name: self.name.clone(),
            progress,
        }
    }
}

impl<T> Job<T> {
    pub(super) fn new(data: T, lease: Arc<Lease>) -> Self {
        Job { data, lease }
    }

    /// The job's id.
    pub fn id(&self) -> &str {
        &self.lease.id
    }

    /// The job's name: which handler runs it.
    pub fn name(&self) -> &str {
        &self.lease.name
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        self.lease.queue.name()
    }

    /// The job's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The job's data, owned.
    pub fn into_data(self) -> T {
        self.data
    }

    /// This attempt's number: 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.lease.attempt
    }

    /// The attempts the job has in all.
    pub fn max_attempts(&self) -> u32 {
        self.lease.max_attempts
    }

    /// Whether this is the job's last attempt: if it fails, the job goes to the dead-letter
    /// queue.
    pub fn is_last_attempt(&self) -> bool {
        self.lease.attempt >= self.lease.max_attempts
    }

    /// Records how far the job has got (`percent` is capped at 100) in the store and emits a
    /// [`JobProgress`] event. Fails with [`QueueError::LeaseLost`] when the job's lease is no
    /// longer this worker's: another worker may be running it, and this one may stop.
    pub async fn progress(
        &self,
        percent: u8,
        message: impl Into<String>,
    ) -> Result<(), QueueError> {
        let progress = Progress {
            percent: percent.min(100),
            message: message.into(),
        };
        let (id, token, stored) = (
            self.lease.id.clone(),
            self.lease.token.clone(),
            progress.clone(),
        );
        let recorded = self
            .lease
            .queue
            .call(move |store| store.set_progress(&id, &token, &stored))
            .await?;
        self.recorded(recorded, progress)
    }

    /// [`progress`](Job::progress) for blocking handlers: the same, called in place.
    pub fn progress_blocking(
        &self,
        percent: u8,
        message: impl Into<String>,
    ) -> Result<(), QueueError> {
        let progress = Progress {
            percent: percent.min(100),
            message: message.into(),
        };
        let recorded =
            self.lease
                .queue
                .store()
                .set_progress(&self.lease.id, &self.lease.token, &progress)?;
        self.recorded(recorded, progress)
    }

    fn recorded(&self, recorded: bool, progress: Progress) -> Result<(), QueueError> {
        if !recorded {
            return Err(QueueError::LeaseLost {
                id: self.lease.id.clone(),
            });
        }
        if let Some(events) = self.lease.queue.events() {
            events.emit(self.lease.progress_event(progress));
        }
        Ok(())
    }
}
