//! The scheduler: cron jobs in time zones, one-shot and interval tasks, on the runtime's
//! timers, cluster-safe with a shared [backend](crate::backend).
//!
//! - [`CronSchedule`] parses a cron expression (5 or 6 fields, `@hourly`-style aliases) in a
//!   time zone by IANA name, and finds its ticks; its module, [`mod@cron`], says what happens
//!   in daylight-saving gaps and overlaps.
//! - [`Scheduler`] runs named jobs: cron jobs ([`Scheduler::add_cron`]), one-shots
//!   ([`Scheduler::run_after`]) and intervals ([`Scheduler::run_every`], at a fixed rate or a
//!   fixed delay). Each job can be stopped, started, paused, resumed, and asked for its
//!   [`JobStatus`]. A tick that comes while the previous run still runs is skipped or queued
//!   ([`Overlap`]); ticks missed while the process stalled or the clock jumped are skipped or
//!   caught up once ([`Missed`]; see [below](#missed-ticks-and-clock-jumps)).
//! - With a shared [`TickLease`] ([`Scheduler::with_lease`]), each cron tick
//!   runs on one instance only.
//! - The scheduler emits [`CronStarted`], [`CronFinished`] and [`CronSkipped`] events.
//! - In an app: `App::cron("report", "0 */5 * * *", job)`, or `#[weft::cron(..)]` on an async
//!   fn and `App::schedule(report)`; handlers take the app's scheduler as
//!   `Inject<Scheduler>`. The scheduler starts when the app is served and stops when it
//!   drains, waiting for its running jobs up to the drain deadline.
//!
//! ```
//! use weft::prelude::*;
//!
//! async fn report() -> Result<(), std::io::Error> {
//!     Ok(())
//! }
//!
//! let app = App::new()
//!     .cron("report", "0 */5 * * *", report)
//!     .cron_in("paris-noon", "0 12 * * *", "Europe/Paris", || async {});
//! let service = app.build().expect("valid schedules");
//! # let _ = service;
//! ```
//!
//! # Missed ticks and clock jumps
//!
//! When a job's loop wakes at `now`, every tick at or before `now` since the last one handled is
//! *due*. Only the latest due tick may run; the ones before it are *missed*. The latest runs
//! when it is on time (at most the [tolerance](Scheduler::with_tolerance) before
//! `now`); when it is older, the process stalled or the wall clock jumped forward, and the
//! job's [`Missed`] policy decides: [`Missed::Skip`] runs nothing and waits for the next future
//! tick, [`Missed::RunOnce`] runs one catch-up now.
//!
//! A cron job's next tick is always searched after the last tick handled, so a wall clock
//! that jumps back never runs a tick twice: the job waits until the clock passes its last
//! tick again. Interval jobs count durations, not wall-clock times: after a jump back they
//! start their period again from `now`.

mod app;
pub mod cron;
mod event;
mod job;
pub mod lease;
mod nudge;
mod scheduler;
mod timing;

pub use app::{CronTask, IntoCronTask};
pub use cron::{CronError, CronSchedule};
pub use event::{CronFinished, CronSkipped, CronStarted, SkipReason};
pub use job::{Interval, IntoJob, Job, JobError, JobOutput, JobSpec, JobStatus, Missed, Overlap};
pub use lease::{LocalLease, TickLease};
pub use scheduler::{ScheduleError, Scheduler};
