//! The scheduler: named jobs, each with a loop on the runtime that sleeps until its next tick,
//! and the control of those jobs.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use weft_service::runtime::RuntimeHandle;

use super::cron::{CronError, CronSchedule};
use super::event::{CronFinished, CronSkipped, CronStarted, SkipReason};
use super::job::{Interval, IntoJob, Job, JobError, JobSpec, JobStatus, Overlap};
use super::lease::TickLease;
use super::nudge::Nudge;
use super::timing::{Due, Timing, Wake};
use crate::clock::{Clock, SystemClock};
use crate::events::Events;

/// How late a tick may be seen and still count as on time, by default.
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(60);
/// The longest a loop sleeps before it reads the wall clock again, by default: sleeps count
/// steady time, so this bounds how long a wall-clock jump goes unnoticed.
const DEFAULT_RECHECK: Duration = Duration::from_secs(60);
/// How long a claimed tick is kept in the shared lease: every instance has tried by then.
const LEASE_KEEP: Duration = Duration::from_secs(3600);

/// A hook the scheduler runs when it starts or stops.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// Runs named jobs on their ticks: cron jobs in time zones, one-shot and interval tasks.
///
/// Cheap to clone: clones share the jobs. Jobs added before the scheduler starts wait for it;
/// it starts on a runtime with [`Scheduler::run_on`], or as an app's
/// [background](crate::background) component (`App::cron` and `App::schedule` make and
/// register the app's scheduler). Time comes from a [`Clock`], the system's by default.
///
/// Each tick of a cron job runs on one instance only when the instances share a
/// [`TickLease`] ([`Scheduler::with_lease`]); interval and one-shot jobs are each instance's
/// own.
///
/// ```
/// use std::time::Duration;
/// use weft::schedule::{Interval, Scheduler};
///
/// let scheduler = Scheduler::new();
/// scheduler.add_cron("report", "0 */5 * * *", || async { /* build the report */ })?;
/// scheduler.run_every("heartbeat", Interval::FixedRate(Duration::from_secs(30)), || async {
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(scheduler.list().len(), 2);
/// # Ok::<(), weft::schedule::ScheduleError>(())
/// ```
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    config: RwLock<Config>,
    state: Mutex<State>,
    /// Signalled when the last run in flight ends.
    idle: Condvar,
    /// Wakes the loops on a control change.
    nudge: Nudge,
}

struct Config {
    clock: Arc<dyn Clock>,
    lease: Option<Arc<dyn TickLease>>,
    events: Option<Events>,
    instance: String,
    tolerance: Duration,
    recheck: Duration,
    on_start: Vec<Hook>,
    on_shutdown: Vec<Hook>,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<String, Entry>,
    runtime: Option<RuntimeHandle>,
    stopping: bool,
    shut_down: bool,
    /// Runs going on, all jobs together.
    in_flight: usize,
    /// Registrations refused where no error could be returned (the app's builder): they fail
    /// the app's build.
    refused: Vec<ScheduleError>,
    unnamed: u64,
}

struct Entry {
    job: Job,
    timing: Timing,
    overlap: Overlap,
    /// Bumped when the job's loop must end (stop, restart): a loop of an older generation
    /// ends when it sees it.
    generation: u64,
    looping: bool,
    running: bool,
    queued: Option<SystemTime>,
    paused: bool,
    stopped: bool,
    last_run: Option<SystemTime>,
    last_error: Option<JobError>,
    runs: u64,
    skipped: u64,
    missed: u64,
}

/// Why the scheduler refused a job or a control call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression or its time zone was refused.
    Cron(CronError),
    /// A job of that name exists already.
    Duplicate(String),
    /// No job has that name.
    UnknownJob(String),
    /// An interval or a delay of zero.
    ZeroPeriod(String),
    /// The scheduler runs already ([`Scheduler::run_on`] was called before).
    AlreadyRunning,
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleError::Cron(error) => error.fmt(f),
            ScheduleError::Duplicate(name) => write!(f, "a job named `{name}` exists already"),
            ScheduleError::UnknownJob(name) => write!(f, "no job is named `{name}`"),
            ScheduleError::ZeroPeriod(name) => {
                write!(f, "job `{name}`: an interval must be longer than zero")
            }
            ScheduleError::AlreadyRunning => f.write_str("the scheduler runs already"),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScheduleError::Cron(error) => Some(error),
            _ => None,
        }
    }
}

impl From<CronError> for ScheduleError {
    fn from(error: CronError) -> Self {
        ScheduleError::Cron(error)
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().jobs.keys().cloned().collect();
        f.debug_struct("Scheduler")
            .field("instance", &self.config().instance)
            .field("jobs", &names)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler with no job, on the system clock, with no lease and no event emitter.
    pub fn new() -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                config: RwLock::new(Config {
                    clock: Arc::new(SystemClock),
                    lease: None,
                    events: None,
                    instance: uuid::Uuid::new_v4().to_string(),
                    tolerance: DEFAULT_TOLERANCE,
                    recheck: DEFAULT_RECHECK,
                    on_start: Vec::new(),
                    on_shutdown: Vec::new(),
                }),
                state: Mutex::new(State::default()),
                idle: Condvar::new(),
                nudge: Nudge::default(),
            }),
        }
    }

    /// Reads time from `clock` (a [`VirtualClock`](crate::clock::VirtualClock) in tests).
    /// Set it before the scheduler runs.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.config_mut().clock = clock;
        self
    }

    /// Claims each cron tick in `lease` before running it: with a lease shared by several
    /// instances (a Redis or SQLite backend), each tick runs on one instance only.
    pub fn with_lease(self, lease: Arc<dyn TickLease>) -> Self {
        self.config_mut().lease = Some(lease);
        self
    }

    /// Emits [`CronStarted`], [`CronFinished`] and [`CronSkipped`] through `events`.
    pub fn with_events(self, events: Events) -> Self {
        self.config_mut().events = Some(events);
        self
    }

    /// How late a tick may be seen and still run as on time (one minute by default); a later
    /// one is missed and meets its job's [`Missed`](super::Missed) policy.
    pub fn with_tolerance(self, tolerance: Duration) -> Self {
        self.config_mut().tolerance = tolerance;
        self
    }

    /// The longest a job's loop sleeps before it reads the wall clock again (one minute by
    /// default): a jump of the wall clock is noticed within it.
    pub fn with_recheck(self, recheck: Duration) -> Self {
        self.config_mut().recheck = recheck.max(Duration::from_millis(1));
        self
    }

    /// The id this instance claims cron ticks with (a random UUID by default).
    pub fn with_instance_id(self, id: impl Into<String>) -> Self {
        self.config_mut().instance = id.into();
        self
    }

    /// This instance's id in the lease.
    pub fn instance_id(&self) -> String {
        self.config().instance.clone()
    }

    /// Runs `hook` when the scheduler starts, before its first tick.
    pub fn on_start(self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.config_mut().on_start.push(Arc::new(hook));
        self
    }

    /// Runs `hook` once the scheduler has stopped: after its running jobs ended, or the
    /// deadline of [`wait_stopped`](Self::wait_stopped) passed.
    pub fn on_shutdown(self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.config_mut().on_shutdown.push(Arc::new(hook));
        self
    }

    /// Adds a cron job ticking on `expression` in UTC; see [`Scheduler::add`] for a time zone
    /// and the policies.
    pub fn add_cron<M>(
        &self,
        name: &str,
        expression: &str,
        job: impl IntoJob<M>,
    ) -> Result<(), ScheduleError> {
        let schedule = CronSchedule::parse(expression)?;
        self.add(name, JobSpec::cron(schedule), job)
    }

    /// Runs `job` once, `delay` from now (or from the scheduler's start, if it is not running
    /// yet). Without a name, one is made (`after-1`, `after-2`...); the name is returned.
    pub fn run_after<M>(
        &self,
        name: Option<&str>,
        delay: Duration,
        job: impl IntoJob<M>,
    ) -> Result<String, ScheduleError> {
        let name = match name {
            Some(name) => name.to_owned(),
            None => {
                let mut state = self.lock();
                state.unnamed += 1;
                format!("after-{}", state.unnamed)
            }
        };
        self.add(&name, JobSpec::after(delay), job)?;
        Ok(name)
    }

    /// Runs `job` at an interval: a fixed rate, or a fixed delay after each run.
    pub fn run_every<M>(
        &self,
        name: &str,
        interval: Interval,
        job: impl IntoJob<M>,
    ) -> Result<(), ScheduleError> {
        self.add(name, JobSpec::every(interval), job)
    }

    /// Adds a job: when it ticks and its policies (`spec`), and its work.
    pub fn add<M>(
        &self,
        name: &str,
        spec: JobSpec,
        job: impl IntoJob<M>,
    ) -> Result<(), ScheduleError> {
        let zero = match &spec.trigger {
            super::timing::Trigger::Every(interval) => interval.period().is_zero(),
            _ => false,
        };
        if zero {
            return Err(ScheduleError::ZeroPeriod(name.to_owned()));
        }
        let (clock, tolerance) = {
            let config = self.config();
            (Arc::clone(&config.clock), config.tolerance)
        };
        let mut state = self.lock();
        if state.jobs.contains_key(name) {
            return Err(ScheduleError::Duplicate(name.to_owned()));
        }
        let mut entry = Entry::new(
            job.into_job(),
            Timing::new(spec.trigger, spec.missed, tolerance),
        );
        entry.overlap = spec.overlap;
        state.jobs.insert(name.to_owned(), entry);
        if state.runtime.is_some() && !state.stopping {
            self.launch(&mut state, name, clock.now());
        }
        Ok(())
    }

    /// Records a registration that failed where it could not be returned (an app's builder):
    /// [`Scheduler::check`] reports it.
    pub(crate) fn refuse(&self, error: ScheduleError) {
        self.lock().refused.push(error);
    }

    /// The first registration [refused](Self::refuse), if any: fails an app's build.
    pub(crate) fn check(&self) -> Result<(), ScheduleError> {
        match self.lock().refused.first() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Starts the scheduler on `runtime`: runs the start hooks, then every job's loop. An
    /// app does this when it is served.
    pub fn run_on(&self, runtime: &RuntimeHandle) -> Result<(), ScheduleError> {
        let (hooks, clock) = {
            let config = self.config();
            (config.on_start.clone(), Arc::clone(&config.clock))
        };
        {
            let mut state = self.lock();
            if state.runtime.is_some() {
                return Err(ScheduleError::AlreadyRunning);
            }
            state.runtime = Some(runtime.clone());
        }
        for hook in hooks {
            hook();
        }
        let now = clock.now();
        let mut state = self.lock();
        let names: Vec<String> = state.jobs.keys().cloned().collect();
        for name in names {
            self.launch(&mut state, &name, now);
        }
        Ok(())
    }

    /// Starts a stopped job again: it ticks from now on (a cron job never runs a tick it
    /// handled before). Starting a running job changes nothing.
    pub fn start(&self, name: &str) -> Result<(), ScheduleError> {
        let now = self.config().clock.now();
        let mut state = self.lock();
        let entry = state.jobs.get_mut(name).ok_or_else(|| unknown(name))?;
        entry.stopped = false;
        if state.runtime.is_some() && !state.stopping {
            self.launch(&mut state, name, now);
        }
        Ok(())
    }

    /// Stops a job: it no longer ticks until [started](Self::start) again; a run going on
    /// ends on its own.
    pub fn stop(&self, name: &str) -> Result<(), ScheduleError> {
        self.update(name, |entry| {
            entry.stopped = true;
            entry.generation += 1;
            entry.looping = false;
            entry.queued = None;
        })
    }

    /// Pauses a job: it keeps its ticks but skips them (counted, emitted as
    /// [`SkipReason::Paused`]) until [resumed](Self::resume); the ticks skipped are not
    /// caught up.
    pub fn pause(&self, name: &str) -> Result<(), ScheduleError> {
        self.update(name, |entry| entry.paused = true)
    }

    /// Resumes a paused job: its next tick runs.
    pub fn resume(&self, name: &str) -> Result<(), ScheduleError> {
        self.update(name, |entry| entry.paused = false)
    }

    /// Removes a job; a run going on ends on its own.
    pub fn remove(&self, name: &str) -> Result<(), ScheduleError> {
        let removed = self.lock().jobs.remove(name);
        self.inner.nudge.wake_all();
        removed.map(drop).ok_or_else(|| unknown(name))
    }

    /// A job's state.
    pub fn status(&self, name: &str) -> Option<JobStatus> {
        self.lock().jobs.get(name).map(|entry| entry.status(name))
    }

    /// Every job's state, by name.
    pub fn list(&self) -> Vec<JobStatus> {
        self.lock()
            .jobs
            .iter()
            .map(|(name, entry)| entry.status(name))
            .collect()
    }

    /// Stops ticking: no new run starts (a queued tick is dropped); runs going on go on.
    pub fn begin_stop(&self) {
        {
            let mut state = self.lock();
            state.stopping = true;
            for entry in state.jobs.values_mut() {
                entry.queued = None;
            }
        }
        self.inner.nudge.wake_all();
    }

    /// Blocks until the runs going on have ended or `deadline` has passed; `true` if they
    /// ended. Then runs the shutdown hooks (once).
    pub fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while state.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .inner
                .idle
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let ended = state.in_flight == 0;
        let first = !std::mem::replace(&mut state.shut_down, true);
        drop(state);
        if first {
            let hooks = self.config().on_shutdown.clone();
            for hook in hooks {
                hook();
            }
        }
        ended
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut Entry)) -> Result<(), ScheduleError> {
        {
            let mut state = self.lock();
            change(state.jobs.get_mut(name).ok_or_else(|| unknown(name))?);
        }
        self.inner.nudge.wake_all();
        Ok(())
    }

    /// Plans `name`'s first tick and spawns its loop, unless it is stopped or loops already.
    fn launch(&self, state: &mut State, name: &str, now: SystemTime) {
        let Some(runtime) = state.runtime.clone() else {
            return;
        };
        let Some(entry) = state.jobs.get_mut(name) else {
            return;
        };
        if entry.stopped || entry.looping {
            return;
        }
        entry.looping = true;
        entry.generation += 1;
        entry.timing.start(now);
        let generation = entry.generation;
        let scheduler = self.clone();
        let name = name.to_owned();
        runtime.spawn(async move { scheduler.job_loop(name, generation).await });
        self.inner.nudge.wake_all();
    }

    /// A job's loop: sleep until the next tick, re-read the clock, handle what is due.
    async fn job_loop(self, name: String, generation: u64) {
        loop {
            let seen = self.inner.nudge.generation();
            let (clock, recheck) = {
                let config = self.config();
                (Arc::clone(&config.clock), config.recheck)
            };
            let now = clock.now();
            let wake = {
                let mut state = self.lock();
                let stopping = state.stopping;
                match state.jobs.get_mut(&name) {
                    Some(entry) if entry.generation == generation && !stopping => {
                        entry.timing.poll(now)
                    }
                    Some(entry) if entry.generation == generation => {
                        entry.looping = false;
                        return;
                    }
                    _ => return,
                }
            };
            match wake {
                Wake::Sleep(wait) => {
                    let sleep = clock.sleep(wait.min(recheck));
                    futures_lite::future::or(sleep, self.inner.nudge.changed(seen)).await;
                }
                Wake::Idle => self.inner.nudge.changed(seen).await,
                Wake::Due(due) => self.handle_due(&name, generation, due).await,
            }
        }
    }

    /// Runs, queues or skips the tick `due` of `name`.
    async fn handle_due(&self, name: &str, generation: u64, due: Due) {
        if due.missed > 0 {
            self.skip(name, due.tick, SkipReason::Missed(due.missed));
        }
        if due.run && !self.start_run(name, generation, due.tick).await {
            // A fixed-delay job plans its next tick when a run ends: this one will not.
            let now = self.config().clock.now();
            self.update_quietly(name, |entry| entry.timing.run_ended(now));
        }
    }

    /// Starts a run of `name` for `tick`, or queues or skips the tick; `true` if it started
    /// or was queued.
    async fn start_run(&self, name: &str, generation: u64, tick: SystemTime) -> bool {
        let (refused, is_cron) = {
            let state = self.lock();
            let Some(entry) = state.jobs.get(name) else {
                return false;
            };
            let refused = if entry.paused {
                Some(SkipReason::Paused)
            } else if entry.running && (entry.overlap == Overlap::Skip || entry.queued.is_some()) {
                Some(SkipReason::Overlap)
            } else {
                None
            };
            (refused, entry.timing.is_cron())
        };
        if let Some(reason) = refused {
            self.skip(name, tick, reason);
            return false;
        }
        // A queued tick is claimed too: the lease decides every tick that runs.
        if is_cron && !self.claim(name, tick).await {
            return false;
        }
        let (job, waits, runtime) = {
            let mut state = self.lock();
            if state.stopping {
                return false;
            }
            let Some(entry) = state.jobs.get_mut(name) else {
                return false;
            };
            if entry.generation != generation {
                return false;
            }
            if entry.running {
                // Still running (the claim took a while): queue the tick, or skip it if one
                // waits already.
                if entry.queued.is_none() && entry.overlap == Overlap::Queue {
                    entry.queued = Some(tick);
                    return true;
                }
                drop(state);
                self.skip(name, tick, SkipReason::Overlap);
                return false;
            }
            entry.running = true;
            let job = entry.job.clone();
            let waits = entry.timing.waits_for_runs();
            state.in_flight += 1;
            (job, waits, state.runtime.clone())
        };
        let runs = self.clone().runs(name.to_owned(), job, tick);
        match runtime {
            Some(runtime) if !waits => runtime.spawn(runs),
            _ => runs.await,
        }
        true
    }

    /// Asks the lease, if any, whether this instance runs `tick` of `name`.
    async fn claim(&self, name: &str, tick: SystemTime) -> bool {
        let (lease, holder) = {
            let config = self.config();
            (config.lease.clone(), config.instance.clone())
        };
        let Some(lease) = lease else {
            return true;
        };
        let tick_millis = crate::clock::unix_millis(tick);
        let job = name.to_owned();
        let claimed = if lease.runs_inline() {
            lease.claim_tick(&job, tick_millis, &holder, LEASE_KEEP)
        } else {
            weft_service::runtime::spawn_blocking_or_inline(move || {
                lease.claim_tick(&job, tick_millis, &holder, LEASE_KEEP)
            })
            .await
        };
        match claimed {
            Ok(true) => true,
            Ok(false) => {
                self.skip(name, tick, SkipReason::OtherInstance);
                false
            }
            Err(error) => {
                tracing::error!(job = name, %error, "cron lease failed: the tick is skipped");
                self.skip(name, tick, SkipReason::LeaseError(error.to_string()));
                false
            }
        }
    }

    /// Runs `job` for `tick`, then for the tick queued meanwhile, if any.
    async fn runs(self, name: String, job: Job, mut tick: SystemTime) {
        loop {
            let (clock, events) = {
                let config = self.config();
                (Arc::clone(&config.clock), config.events.clone())
            };
            self.update_quietly(&name, |entry| entry.last_run = Some(clock.now()));
            if let Some(events) = &events {
                events.emit(CronStarted {
                    job: name.clone(),
                    tick,
                });
            }
            let outcome = job.run().await;
            if let Err(error) = &outcome {
                tracing::warn!(job = %name, %error, "scheduled job failed");
            }
            let now = clock.now();
            let next = {
                let mut state = self.lock();
                let queued = state.jobs.get_mut(&name).and_then(|entry| {
                    entry.runs += 1;
                    entry.last_error = outcome.clone().err();
                    entry.timing.run_ended(now);
                    let queued = entry.queued.take();
                    entry.running = queued.is_some();
                    queued
                });
                if queued.is_none() {
                    state.in_flight -= 1;
                }
                queued
            };
            if let Some(events) = &events {
                events.emit(CronFinished {
                    job: name.clone(),
                    tick,
                    outcome,
                });
            }
            match next {
                Some(queued) => tick = queued,
                None => break,
            }
        }
        self.inner.idle.notify_all();
    }

    /// Counts and emits a skipped tick.
    fn skip(&self, name: &str, tick: SystemTime, reason: SkipReason) {
        self.update_quietly(name, |entry| match reason {
            SkipReason::Missed(count) => entry.missed += count,
            _ => entry.skipped += 1,
        });
        tracing::debug!(job = name, ?reason, "tick skipped");
        if let Some(events) = self.config().events.clone() {
            events.emit(CronSkipped {
                job: name.to_owned(),
                tick,
                reason,
            });
        }
    }

    fn update_quietly(&self, name: &str, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.lock().jobs.get_mut(name) {
            change(entry);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn config_mut(&self) -> std::sync::RwLockWriteGuard<'_, Config> {
        self.inner
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn unknown(name: &str) -> ScheduleError {
    ScheduleError::UnknownJob(name.to_owned())
}

impl Entry {
    fn new(job: Job, timing: Timing) -> Self {
        Entry {
            job,
            timing,
            overlap: Overlap::default(),
            generation: 0,
            looping: false,
            running: false,
            queued: None,
            paused: false,
            stopped: false,
            last_run: None,
            last_error: None,
            runs: 0,
            skipped: 0,
            missed: 0,
        }
    }

    fn status(&self, name: &str) -> JobStatus {
        JobStatus {
            name: name.to_owned(),
            schedule: self.timing.describe(),
            last_run: self.last_run,
            next_run: if self.stopped {
                None
            } else {
                self.timing.next()
            },
            running: self.running,
            last_error: self.last_error.clone(),
            runs: self.runs,
            skipped: self.skipped,
            missed: self.missed,
            paused: self.paused,
            stopped: self.stopped,
        }
    }
}

impl crate::background::Background for Scheduler {
    fn name(&self) -> &str {
        "scheduler"
    }

    fn start(&self, runtime: &RuntimeHandle) -> Result<(), crate::error::Error> {
        self.run_on(runtime).map_err(crate::error::Error::from)
    }

    fn begin_stop(&self) {
        Scheduler::begin_stop(self);
    }

    fn wait_stopped(&self, deadline: Instant) -> bool {
        Scheduler::wait_stopped(self, deadline)
    }
}
