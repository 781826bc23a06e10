//! The app's scheduler: cron jobs registered on the [`App`], and the tasks
//! `#[weft::cron]` makes.

use std::sync::Arc;

use super::cron::CronSchedule;
use super::job::{IntoJob, Job, JobSpec, Missed, Overlap};
use super::scheduler::{ScheduleError, Scheduler};
use crate::App;
use crate::services::Provider;

/// A cron job with its name, expression and time zone: what `#[weft::cron]` makes of an
/// async fn, and what [`App::schedule`] takes.
#[derive(Debug, Clone)]
pub struct CronTask {
    name: String,
    expression: String,
    zone: Option<String>,
    job: Job,
    overlap: Overlap,
    missed: Missed,
}

impl CronTask {
    /// The job `name` ticking on `expression` in UTC.
    pub fn new<M>(name: &str, expression: &str, job: impl IntoJob<M>) -> Self {
        CronTask {
            name: name.to_owned(),
            expression: expression.to_owned(),
            zone: None,
            job: job.into_job(),
            overlap: Overlap::default(),
            missed: Missed::default(),
        }
    }

    /// Reads the expression on the wall clock of the IANA time zone `zone`.
    pub fn zone(mut self, zone: &str) -> Self {
        self.zone = Some(zone.to_owned());
        self
    }

    /// The policy for a tick that comes while the previous run still runs.
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }

    /// The policy for ticks seen late.
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the task to `scheduler`.
    pub fn add_to(self, scheduler: &Scheduler) -> Result<(), ScheduleError> {
        let schedule = match &self.zone {
            Some(zone) => CronSchedule::parse_in_zone(&self.expression, zone)?,
            None => CronSchedule::parse(&self.expression)?,
        };
        let spec = JobSpec::cron(schedule)
            .overlap(self.overlap)
            .missed(self.missed);
        scheduler.add(&self.name, spec, self.job)
    }
}

/// What [`App::schedule`] takes: a [`CronTask`], or the function `#[weft::cron]` makes (it
/// returns one).
pub trait IntoCronTask {
    /// The task.
    fn into_cron_task(self) -> CronTask;
}

impl IntoCronTask for CronTask {
    fn into_cron_task(self) -> CronTask {
        self
    }
}

impl<F: FnOnce() -> CronTask> IntoCronTask for F {
    fn into_cron_task(self) -> CronTask {
        self()
    }
}

/// The app's scheduler, made on first use: it emits through the app's events, handlers take
/// it as `Inject<Scheduler>`, and it runs in the background of the served app. A
/// registration it refused fails the app's build.
fn app_scheduler(app: &mut App) -> Scheduler {
    app.part(|app| {
        let events = crate::events::app_events(app);
        let scheduler = Scheduler::new().with_events(events);
        let checked = scheduler.clone();
        app.providers.push(Provider::fallible(move || {
            checked.check().map(|()| checked)
        }));
        app.background.push(Arc::new(scheduler.clone()));
        scheduler
    })
}

impl App {
    /// Runs `job` on the ticks of the cron `expression`, in UTC. The job is an async closure
    /// or fn returning `()` or `Result<(), E>` (or a [`Job`], such as [`Job::blocking`]). An
    /// invalid expression or a name used twice fails [`App::build`].
    pub fn cron<M>(self, name: &str, expression: &str, job: impl IntoJob<M>) -> Self {
        self.schedule(CronTask::new(name, expression, job))
    }

    /// [`App::cron`] on the wall clock of the IANA time zone `zone` (`"Europe/Paris"`).
    pub fn cron_in<M>(
        self,
        name: &str,
        expression: &str,
        zone: &str,
        job: impl IntoJob<M>,
    ) -> Self {
        self.schedule(CronTask::new(name, expression, job).zone(zone))
    }

    /// Adds a cron task: one built with [`CronTask::new`], or an async fn marked
    /// `#[weft::cron(..)]` (`App::new().schedule(report)`). A task refused fails
    /// [`App::build`].
    pub fn schedule(mut self, task: impl IntoCronTask) -> Self {
        let scheduler = app_scheduler(&mut self);
        if let Err(error) = task.into_cron_task().add_to(&scheduler) {
            scheduler.refuse(error);
        }
        self
    }

    /// Configures the app's scheduler (its lease, clock, hooks, tolerance) and adds jobs that
    /// are not cron tasks (`run_every`, `run_after`): `configure` gets the scheduler and
    /// returns it (the `with_*` methods configure the same scheduler and return it). An
    /// error it returns fails [`App::build`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use weft::prelude::*;
    /// use weft::schedule::{Interval, Scheduler};
    ///
    /// let app = App::new().scheduler(|scheduler| {
    ///     let scheduler = scheduler.on_start(|| tracing::info!("scheduler started"));
    ///     scheduler.run_every("sweep", Interval::FixedDelay(Duration::from_secs(60)), || async {})?;
    ///     Ok(scheduler)
    /// });
    /// # let _ = app;
    /// ```
    pub fn scheduler(
        mut self,
        configure: impl FnOnce(Scheduler) -> Result<Scheduler, ScheduleError>,
    ) -> Self {
        let scheduler = app_scheduler(&mut self);
        if let Err(error) = configure(scheduler.clone()) {
            scheduler.refuse(error);
        }
        self
    }
}
