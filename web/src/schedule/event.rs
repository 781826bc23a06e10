//! The events a scheduler emits through its [`Events`](crate::events::Events) emitter
//! ([`Scheduler::with_events`](super::Scheduler::with_events); an app's scheduler uses the
//! app's emitter, so `App::on::<CronFinished>(..)` listens). They concern every job of the
//! scheduler, cron or not; `tick` is the time the run was planned for.

use std::time::SystemTime;

use super::job::JobError;

/// A run of a job begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronStarted {
    /// The job's name.
    pub job: String,
    /// The tick it runs for.
    pub tick: SystemTime,
}

/// A run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronFinished {
    /// The job's name.
    pub job: String,
    /// The tick it ran for.
    pub tick: SystemTime,
    /// How it ended.
    pub outcome: Result<(), JobError>,
}

/// A tick of a job did not run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSkipped {
    /// The job's name.
    pub job: String,
    /// The tick (for [`SkipReason::Missed`], the latest of the missed ticks).
    pub tick: SystemTime,
    /// Why.
    pub reason: SkipReason,
}

/// Why a tick did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The previous run still ran ([`Overlap::Skip`](super::Overlap::Skip), or a tick was
    /// queued already).
    Overlap,
    /// The job is paused.
    Paused,
    /// Ticks came while the process stalled or before the clock jumped forward, and the
    /// [`Missed`](super::Missed) policy skipped them: how many.
    Missed(u64),
    /// Another instance claimed the tick through the shared lease.
    OtherInstance,
    /// The lease could not be asked (the backend failed): the tick is skipped rather than
    /// risk running it twice. The backend's message.
    LeaseError(String),
}
