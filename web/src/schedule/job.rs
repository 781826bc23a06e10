//! A scheduled job: the work it runs, the policies it runs under, and its status.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_lite::FutureExt as _;
use weft_service::runtime::BoxFuture;

use super::cron::CronSchedule;
use super::timing::Trigger;

/// What happens to a tick that comes while the job's previous run still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overlap {
    /// The tick is skipped (counted in [`JobStatus::skipped`], emitted as
    /// [`CronSkipped`](super::CronSkipped)): a job never runs twice at once. The default.
    #[default]
    Skip,
    /// The tick runs as soon as the previous run ends; at most one tick waits so, the others
    /// are skipped.
    Queue,
}

/// What happens to ticks that came while the process stalled or before the wall clock jumped
/// forward: ticks the scheduler saw only later than its
/// [tolerance](super::Scheduler::with_tolerance). See the [scheduler module](super#missed-ticks-and-clock-jumps) for the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Missed {
    /// They are skipped (and counted in [`JobStatus::missed`]): the job runs at its next future
    /// tick. The default.
    #[default]
    Skip,
    /// One catch-up run, at once, for all of them; the job then goes on with its next tick.
    RunOnce,
}

/// How an interval job ([`Scheduler::run_every`](super::Scheduler::run_every)) ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// A tick every period from the start, whatever the runs last (a run still going at the
    /// next tick meets the job's [`Overlap`] policy).
    FixedRate(Duration),
    /// A tick one period after each run ends: runs never overlap.
    FixedDelay(Duration),
}

impl Interval {
    /// The period.
    pub fn period(&self) -> Duration {
        match self {
            Interval::FixedRate(period) | Interval::FixedDelay(period) => *period,
        }
    }
}

/// When a job ticks and the policies it runs under: what [`Scheduler::add`](super::Scheduler::add)
/// takes.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub(crate) trigger: Trigger,
    pub(crate) overlap: Overlap,
    pub(crate) missed: Missed,
}

impl JobSpec {
    /// The ticks of a cron schedule.
    pub fn cron(schedule: CronSchedule) -> Self {
        JobSpec::with(Trigger::Cron(Box::new(schedule)))
    }

    /// One tick, `delay` after the scheduler starts (or after the job is added, if the
    /// scheduler runs already). A one-shot that is late still runs: its [`Missed`] policy does
    /// not apply.
    pub fn after(delay: Duration) -> Self {
        JobSpec::with(Trigger::Once(delay))
    }

    /// Ticks at an interval.
    pub fn every(interval: Interval) -> Self {
        JobSpec::with(Trigger::Every(interval))
    }

    /// The policy for a tick that comes while the previous run still runs.
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// The policy for ticks seen late (a stall, a clock jump).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    fn with(trigger: Trigger) -> Self {
        JobSpec {
            trigger,
            overlap: Overlap::default(),
            missed: Missed::default(),
        }
    }
}

/// Why a run of a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The job returned an error: its message.
    Failed(String),
    /// The job panicked: the panic's message.
    Panicked(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Failed(message) => write!(f, "job failed: {message}"),
            JobError::Panicked(message) => write!(f, "job panicked: {message}"),
        }
    }
}

impl std::error::Error for JobError {}

/// What a job may return: `()`, or a `Result<(), E>` whose error displays.
pub trait JobOutput: Send + 'static {
    /// The run's outcome.
    fn into_outcome(self) -> Result<(), JobError>;
}

impl JobOutput for () {
    fn into_outcome(self) -> Result<(), JobError> {
        Ok(())
    }
}

impl<E: fmt::Display + Send + 'static> JobOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), JobError> {
        self.map_err(|error| JobError::Failed(error.to_string()))
    }
}

type AsyncWork = Arc<dyn Fn() -> BoxFuture<Result<(), JobError>> + Send + Sync>;
type BlockingFn = Arc<dyn Fn() -> Result<(), JobError> + Send + Sync>;

/// The work of a job: an async closure run as a task on the runtime, or a blocking closure
/// run on the runtime's blocking pool. Cheap to clone.
#[derive(Clone)]
pub struct Job(JobWork);

#[derive(Clone)]
enum JobWork {
    Async(AsyncWork),
    Blocking(BlockingFn),
}

impl Job {
    /// An async job: `|| async { ... }` returning `()` or `Result<(), E>`.
    pub fn new<F, Fut>(work: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: JobOutput,
    {
        Job(JobWork::Async(Arc::new(move || {
            let run = work();
            Box::pin(async move { run.await.into_outcome() })
        })))
    }

    /// A blocking job, run on the runtime's blocking pool (never on a thread that serves).
    pub fn blocking<F, R>(work: F) -> Self
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: JobOutput,
    {
        Job(JobWork::Blocking(Arc::new(move || work().into_outcome())))
    }

    /// Runs the job once; a panic is caught and becomes [`JobError::Panicked`].
    pub(crate) async fn run(&self) -> Result<(), JobError> {
        match &self.0 {
            JobWork::Async(work) => {
                let work = Arc::clone(work);
                let run = AssertUnwindSafe(async move { work().await }).catch_unwind();
                run.await
                    .unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
            }
            JobWork::Blocking(work) => {
                let work = Arc::clone(work);
                weft_service::runtime::spawn_blocking_or_inline(move || {
                    catch_unwind(AssertUnwindSafe(|| work()))
                        .unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
                })
                .await
            }
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            JobWork::Async(_) => "Job(async)",
            JobWork::Blocking(_) => "Job(blocking)",
        })
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> JobError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".to_owned());
    JobError::Panicked(message)
}

/// Anything a job can be made of: a [`Job`], or an async closure (`|| async { ... }`).
pub trait IntoJob<Marker>: Send + 'static {
    /// The job.
    fn into_job(self) -> Job;
}

impl IntoJob<Job> for Job {
    fn into_job(self) -> Job {
        self
    }
}

impl<F, Fut> IntoJob<fn() -> Fut> for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: JobOutput,
{
    fn into_job(self) -> Job {
        Job::new(self)
    }
}

/// A job's state: what [`Scheduler::status`](super::Scheduler::status) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobStatus {
    /// The job's name.
    pub name: String,
    /// When it ticks (the cron expression and zone, or the interval).
    pub schedule: String,
    /// When its last run started (on the scheduler's clock).
    pub last_run: Option<SystemTime>,
    /// Its next tick, if one is planned.
    pub next_run: Option<SystemTime>,
    /// Whether a run is going on.
    pub running: bool,
    /// Why its last run failed, if it did (cleared by a run that succeeds).
    pub last_error: Option<JobError>,
    /// How many runs ended (failed or not).
    pub runs: u64,
    /// Ticks skipped: overlapping a run, paused, or won by another instance.
    pub skipped: u64,
    /// Ticks missed (seen late, after a stall or a clock jump) and not run.
    pub missed: u64,
    /// Whether it is paused ([`Scheduler::pause`](super::Scheduler::pause)).
    pub paused: bool,
    /// Whether it is stopped ([`Scheduler::stop`](super::Scheduler::stop)).
    pub stopped: bool,
}
