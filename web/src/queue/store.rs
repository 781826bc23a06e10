//! What a queue keeps its jobs in: the [`QueueStore`] trait that every
//! [backend](crate::backend) implements, and the records it stores.
//!
//! The store is where the delivery guarantees live, so each call is one atomic step (one
//! transaction, one Lua script, one lock):
//! - a job is handed to one worker at a time, under a **lease** (`reserve` gives a token;
//!   `complete`, `fail`, `set_progress` and `extend_lease` with a stale token do nothing and
//!   answer `false`);
//! - a lease that ends before the job does (the worker died or stalled) makes the job due
//!   again (`recover_stalled`): delivery is **at least once**;
//! - a job id is unique in its store while the job is waiting, delayed, running or dead:
//!   adding it again is a [`Added::Duplicate`], not a second job. Completed jobs are removed.

use serde::{Deserialize, Serialize};

pub use crate::backend::{StoreError, UnixMillis};

/// Which waiting jobs run first: urgent before normal before low; within a priority, the
/// earliest due, then the earliest added.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum Priority {
    /// Ahead of every other job.
    Urgent = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// After every other job.
    Low = 2,
}

/// How long a failed job waits before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed {
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
    /// `base × 2^(attempt − 1)`, at most `max`; with `jitter`, a random part of it (full
    /// jitter), so that jobs failing together do not retry together.
    Exponential {
        /// The first delay, in milliseconds.
        base_ms: u64,
        /// The longest delay, in milliseconds.
        max_ms: u64,
        /// Whether to take a random delay between zero and the computed one.
        jitter: bool,
    },
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential {
            base_ms: 1_000,
            max_ms: 60_000,
            jitter: true,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a worker; "delayed" while its `run_at` is in the future.
    Waiting,
    /// Held by a worker under a lease.
    Active,
    /// Out of attempts: in the dead-letter queue until re-queued.
    Dead,
}

/// How far a running job has got, as its handler reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// What the job is doing.
    pub message: String,
}

/// A job to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Unique in the store: given by the producer to de-duplicate, or generated.
    pub id: String,
    /// The queue it belongs to.
    pub queue: String,
    /// Its kind within the queue: which handler runs it.
    pub name: String,
    /// The payload (JSON written by the queue).
    pub data: Vec<u8>,
    /// Its priority.
    pub priority: Priority,
    /// When it may run first.
    pub run_at: UnixMillis,
    /// Attempts before it goes to the dead-letter queue (at least 1).
    pub max_attempts: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub name: String,
    /// Its payload.
    pub data: Vec<u8>,
    /// Its priority.
    pub priority: Priority,
    /// Where it is.
    pub state: JobState,
    /// When it is due (waiting), or when its lease ends (active).
    pub run_at: UnixMillis,
    /// When it was added.
    pub created_at: UnixMillis,
    /// Attempts started so far (a stalled attempt counts).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// The last progress its handler reported.
    pub progress: Option<Progress>,
    /// Why its last attempt failed.
    pub last_error: Option<String>,
}

/// What [`QueueStore::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new job, with this id.
    New(String),
    /// A job with this id is already in the store: nothing was added.
    Duplicate(String),
}

/// A job handed to a worker, with the lease token its later calls must show.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    /// The job, with `attempts` counting this one.
    pub job: JobRecord,
    /// The lease's token.
    pub token: String,
}

/// A job whose lease ended while it ran ([`QueueStore::recover_stalled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// The job's id.
    pub id: String,
    /// Where it went: waiting again, or dead (no attempt left).
    pub state: JobState,
}

/// How many jobs a queue holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Due now.
    pub waiting: u64,
    /// Waiting for a later time.
    pub delayed: u64,
    /// Held by workers.
    pub active: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

/// A queue backend. Every method is one atomic step; see the [module docs](self). The
/// combined methods (`complete_and_reserve`, `fail_and_reserve`, `reserve_many`) are, by
/// default, their plain steps one after the other, each atomic; a backend may override them
/// to save round trips.
pub trait QueueStore: Send + Sync + 'static {
    /// Adds `job` unless a job with its id is stored.
    fn add(&self, job: NewJob, now: UnixMillis) -> Result<Added, StoreError>;

    /// Takes the next due job of `queue` (by [`Priority`], then due time, then order added),
    /// counts the attempt, and leases it until `lease_until`.
    fn reserve(
        &self,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<Option<Reserved>, StoreError>;

    /// Moves the lease's end; `false` if the lease is no longer `token`'s.
    fn extend_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// The job succeeded: it is removed. `false` if the lease is no longer `token`'s.
    fn complete(&self, id: &str, token: &str) -> Result<bool, StoreError>;

    /// The attempt failed with `error`: the job waits until `retry_at`, or, with `None`, goes
    /// to the dead-letter queue. `false` if the lease is no longer `token`'s.
    fn fail(
        &self,
        id: &str,
        token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> Result<bool, StoreError>;

    /// Records the running job's progress. `false` if the lease is no longer `token`'s.
    fn set_progress(&self, id: &str, token: &str, progress: &Progress) -> Result<bool, StoreError>;

    /// Jobs of `queue` whose lease ended before `now`: due again at once if they have
    /// attempts left, dead otherwise.
    fn recover_stalled(&self, queue: &str, now: UnixMillis) -> Result<Vec<Stalled>, StoreError>;

    /// The job with this id, in any state but completed.
    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Up to `limit` jobs of `queue`'s dead-letter queue, oldest first (by `created_at`, then
    /// the order they were added).
    fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError>;

    /// Moves a dead job back to waiting, due at `now`, with its attempts reset. `false` if no
    /// dead job has this id.
    fn requeue_dead(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError>;

    /// How many jobs `queue` holds, by state (delayed: waiting with `run_at > now`).
    fn counts(&self, queue: &str, now: UnixMillis) -> Result<QueueCounts, StoreError>;

    /// [`complete`](Self::complete) job `id`, then [`reserve`](Self::reserve) the next due job
    /// of `queue`: what a worker does between two jobs, in one call so that a backend across
    /// the network can make it one round trip (Redis: one script). The next job is reserved
    /// whether or not the lease was still `token`'s. The default makes the two calls; an
    /// error from `complete` skips the reservation.
    fn complete_and_reserve(
        &self,
        id: &str,
        token: &str,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<(bool, Option<Reserved>), StoreError> {
        let completed = self.complete(id, token)?;
        Ok((completed, self.reserve(queue, now, lease_until)?))
    }

    /// [`fail`](Self::fail) job `id`, then [`reserve`](Self::reserve) the next due job of
    /// `queue`, in one call, as [`complete_and_reserve`](Self::complete_and_reserve) does for
    /// a success. A job failed with a `retry_at` not after `now` may be the one reserved.
    #[allow(clippy::too_many_arguments)]
    fn fail_and_reserve(
        &self,
        id: &str,
        token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<(bool, Option<Reserved>), StoreError> {
        let failed = self.fail(id, token, error, retry_at)?;
        Ok((failed, self.reserve(queue, now, lease_until)?))
    }

    /// Up to `max` due jobs of `queue`, each reserved as [`reserve`](Self::reserve) does, in
    /// the order `reserve` would hand them out, each with a lease of its own. The default
    /// calls `reserve` until it finds nothing or has `max` jobs; a backend across the network
    /// does it in one round trip. A caller takes no more jobs than it can start at once:
    /// each lease runs from now.
    fn reserve_many(
        &self,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        max: usize,
    ) -> Result<Vec<Reserved>, StoreError> {
        let mut jobs = Vec::new();
        while jobs.len() < max {
            match self.reserve(queue, now, lease_until)? {
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        Ok(jobs)
    }

    /// Whether calls answer at once (in memory), so that the queue need not move them to the
    /// blocking pool. Backends doing I/O answer `false`.
    fn runs_inline(&self) -> bool {
        false
    }
}
