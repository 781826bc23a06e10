//! The consumer side: a [`Worker`] runs a queue's jobs with its handlers, under leases, with
//! retries, and stops gracefully.
//!
//! A started worker runs `concurrency` *slots*, each a task on the runtime that takes the
//! next due job, runs it, records the outcome and takes the next one, without pausing while
//! jobs are waiting. An idle slot waits for the queue's in-process signal (a job added or
//! re-queued through a [`Queue`] of this process) or for the poll interval (jobs added by
//! other processes, delayed jobs coming due), whichever comes first.
//!
//! While a job runs, its lease is extended every third of the lease; each worker also
//! recovers the queue's stalled jobs (leases that ended) every half lease, so a job whose
//! worker died runs again within about one and a half leases.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use futures_lite::future::{or, poll_once};
use serde::de::DeserializeOwned;
use weft_service::runtime::{BoxFuture, RuntimeHandle};

use super::events::{JobCompleted, JobFailed, JobStalled};
use super::job::{Job, Lease};
use super::producer::Queue;
use super::signal::Signal;
use super::store::{Backoff, JobRecord, JobState, Reserved};
use crate::background::Background;
use crate::error::Error;
use crate::events::Events;

/// How an attempt ended: `Err` carries why it failed.
type Outcome = Result<(), String>;

/// A handler with its data type erased: reads the job's data, runs, and reports.
type ErasedHandler = dyn Fn(JobRecord, Arc<Lease>) -> BoxFuture<Outcome> + Send + Sync;

/// The shortest lease a worker takes: it is extended every third of it.
const MIN_LEASE: Duration = Duration::from_millis(30);

/// Runs the jobs of one [`Queue`] with a handler per job name. A
/// [`Background`] component: register it with [`App::worker`](crate::App::worker), or
/// [`start`](Background::start) it on a runtime yourself.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use weft::backend::memory::MemoryBackend;
/// use weft::queue::{Job, Queue, Worker};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Email { to: String }
///
/// let queue = Queue::new("mail", Arc::new(MemoryBackend::new()));
/// let worker = Worker::new(queue.clone())
///     .concurrency(4)
///     .lease(Duration::from_secs(30))
///     .handle("welcome", |job: Job<Email>| async move {
///         job.progress(50, "rendering").await?;
///         println!("sending to {}", job.data().to);
///         Ok::<(), weft::queue::QueueError>(())
///     })
///     .handle_blocking("archive", |job: Job<Email>| {
///         // Blocking work runs on the runtime's blocking pool.
///         std::fs::write(std::env::temp_dir().join("last-mail"), &job.data().to)
///     });
/// # let _ = worker;
/// ```
///
/// Handlers answer `Result<(), E>` with any `E: Display` (a boxed error, a string, your own
/// type); an error or a panic fails the attempt, which is retried after the job's
/// [`Backoff`] or, after the last attempt, moves the job to the dead-letter queue. A job
/// whose name has no handler fails the same way.
pub struct Worker {
    queue: Queue,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    handlers: HashMap<String, Arc<ErasedHandler>>,
    control: Arc<Control>,
    label: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue.name())
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker of `queue`: one job at a time, a 30 s lease, polling every 200 ms when idle,
    /// and no handler yet.
    pub fn new(queue: Queue) -> Self {
        let label = format!("queue worker `{}`", queue.name());
        Worker {
            queue,
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            handlers: HashMap::new(),
            control: Arc::new(Control::default()),
            label,
        }
    }

    /// Runs up to `jobs` jobs at once (at least 1).
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// How long a job is held without news from its worker before another may run it (at
    /// least 30 ms). Running jobs extend it every third of it, so it only needs to outlast
    /// a stalled process, not a long job.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(MIN_LEASE);
        self
    }

    /// How often an idle worker looks at the store for jobs it was not told about (added by
    /// another process, or delayed and now due). Default 200 ms.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Runs jobs named `name` with `handler`, an async function of the job, as a task on the
    /// runtime. The job's data is read from JSON as `T`; data that does not read fails the
    /// attempt.
    pub fn handle<T, F, Fut, E>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Job<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
    {
        let handler = Arc::new(handler);
        let erased = move |record: JobRecord, lease: Arc<Lease>| -> BoxFuture<Outcome> {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let job = Job::new(decode::<T>(&record)?, lease);
                // The call is inside the caught future too: a handler may panic before its
                // first await.
                let attempt = AssertUnwindSafe(async move { handler(job).await });
                match attempt.catch_unwind().await {
                    Ok(result) => result.map_err(|error| error.to_string()),
                    Err(panic) => Err(panic_message(panic.as_ref())),
                }
            })
        };
        self.handlers.insert(name.to_owned(), Arc::new(erased));
        self
    }

    /// Runs jobs named `name` with `handler`, a blocking function of the job, on the
    /// runtime's blocking pool: file or CPU work, a synchronous client. Report progress with
    /// [`Job::progress_blocking`].
    pub fn handle_blocking<T, F, E>(mut self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Job<T>) -> Result<(), E> + Send + Sync + 'static,
        E: Display + 'static,
    {
        let handler = Arc::new(handler);
        let erased = move |record: JobRecord, lease: Arc<Lease>| -> BoxFuture<Outcome> {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let job = Job::new(decode::<T>(&record)?, lease);
                weft_service::runtime::spawn_blocking_or_inline(move || {
                    match std::panic::catch_unwind(AssertUnwindSafe(|| handler(job))) {
                        Ok(result) => result.map_err(|error| error.to_string()),
                        Err(panic) => Err(panic_message(panic.as_ref())),
                    }
                })
                .await
            })
        };
        self.handlers.insert(name.to_owned(), Arc::new(erased));
        self
    }

    /// The queue it works on.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Emits through `events` unless its queue has an emitter already.
    pub(super) fn default_events(&mut self, events: impl FnOnce() -> Events) {
        if self.queue.events.is_none() {
            self.queue.events = Some(events());
        }
    }
}

impl Background for Worker {
    fn name(&self) -> &str {
        &self.label
    }

    /// Spawns the worker's slots and its stalled-job recovery on `runtime`. A second call
    /// does nothing.
    fn start(&self, runtime: &RuntimeHandle) -> Result<(), Error> {
        if self.control.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let run = Arc::new(Run {
            queue: self.queue.clone(),
            lease: self.lease,
            poll_interval: self.poll_interval,
            handlers: self.handlers.clone(),
            control: Arc::clone(&self.control),
        });
        for _ in 0..self.concurrency {
            let slot = SlotGuard::enter(&self.control);
            runtime.spawn(Arc::clone(&run).slot(slot));
        }
        runtime.spawn(run.recovery());
        Ok(())
    }

    fn begin_stop(&self) {
        self.control.stopping.store(true, Ordering::SeqCst);
        self.control.stop.notify();
        // Idle slots wait on the queue's signal: wake them so that they see the stop.
        self.queue.signal.notify();
    }

    /// Blocks the calling thread (not a runtime thread) until every slot has finished its
    /// job and exited, or `deadline` has passed.
    fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut slots = self
            .control
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *slots > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            slots = self
                .control
                .exited
                .wait_timeout(slots, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Start and stop state shared by a worker and its tasks.
#[derive(Default)]
struct Control {
    started: AtomicBool,
    stopping: AtomicBool,
    /// Fired by `begin_stop`, for the recovery task's wait.
    stop: Arc<Signal>,
    /// Slots alive.
    slots: Mutex<usize>,
    /// Notified when a slot exits.
    exited: Condvar,
}

impl Control {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Counts a slot alive until dropped: when its task ends, or is dropped unrun by a runtime
/// that stopped.
struct SlotGuard(Arc<Control>);

impl SlotGuard {
    fn enter(control: &Arc<Control>) -> Self {
        *control.slots.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        SlotGuard(Arc::clone(control))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut slots = self.0.slots.lock().unwrap_or_else(PoisonError::into_inner);
        *slots = slots.saturating_sub(1);
        self.0.exited.notify_all();
    }
}

/// A started worker, shared by its tasks.
struct Run {
    queue: Queue,
    lease: Duration,
    poll_interval: Duration,
    handlers: HashMap<String, Arc<ErasedHandler>>,
    control: Arc<Control>,
}

impl Run {
    /// One slot: takes jobs and runs them one after another until the worker stops. While
    /// jobs are due, recording one job's outcome reserves the next in the same store call.
    async fn slot(self: Arc<Self>, _alive: SlotGuard) {
        let mut next = Next::Look;
        loop {
            next = match next {
                // Reserved with the last outcome: a reservation made before a stop was seen
                // runs, as one in flight when the stop came would.
                Next::Run(reserved) => self.process(*reserved).await,
                Next::Wait(seen) => {
                    if self.control.stopping() {
                        return;
                    }
                    let poll = self.queue.clock().sleep(self.poll_interval);
                    or(self.queue.signal.changed(seen), poll).await;
                    Next::Look
                }
                Next::Look => {
                    // Read before looking for work, so a job added meanwhile ends the wait.
                    let seen = self.queue.signal.generation();
                    if self.control.stopping() {
                        return;
                    }
                    match self.reserve().await {
                        Ok(Some(reserved)) => Next::Run(Box::new(reserved)),
                        Ok(None) => Next::Wait(seen),
                        Err(error) => {
                            tracing::warn!(queue = self.queue.name(), %error, "cannot reserve a job");
                            self.queue.clock().sleep(self.poll_interval).await;
                            Next::Look
                        }
                    }
                }
            };
        }
    }

    async fn reserve(&self) -> Result<Option<Reserved>, super::QueueError> {
        let queue = self.queue.name().to_owned();
        let now = self.queue.now();
        let lease_until = now.saturating_add(millis(self.lease));
        self.queue
            .call(move |store| store.reserve(&queue, now, lease_until))
            .await
    }

    /// Runs one reserved job and records how it ended; what the slot does next.
    async fn process(&self, reserved: Reserved) -> Next {
        let Reserved { job: record, token } = reserved;
        let backoff = record.backoff;
        let lease = Arc::new(Lease::new(self.queue.clone(), &record, token));
        let outcome = match self.handlers.get(&record.name) {
            Some(handler) => {
                let attempt = (handler.as_ref())(record, Arc::clone(&lease));
                self.supervise(&lease, attempt).await
            }
            None => Err(format!(
                "no handler for jobs named `{}` in queue `{}`",
                record.name,
                self.queue.name()
            )),
        };
        self.finish(&lease, backoff, outcome).await
    }

    /// Awaits `attempt`, extending its lease every third of the lease while it runs.
    async fn supervise(&self, lease: &Lease, attempt: BoxFuture<Outcome>) -> Outcome {
        let mut attempt = pin!(attempt);
        // Most jobs are quick: no timer for one that finishes on its first poll.
        if let Some(outcome) = poll_once(attempt.as_mut()).await {
            return outcome;
        }
        loop {
            let tick = async {
                self.queue.clock().sleep(self.lease / 3).await;
                None
            };
            if let Some(outcome) = or(async { Some(attempt.as_mut().await) }, tick).await {
                return outcome;
            }
            if !self.extend(lease).await {
                // Another worker may hold it now: let this attempt end, its outcome will be
                // refused by the store.
                return attempt.await;
            }
        }
    }

    /// Extends `lease`; `false` once it is lost.
    async fn extend(&self, lease: &Lease) -> bool {
        let (id, token) = (lease.id.clone(), lease.token.clone());
        let until = self.queue.now().saturating_add(millis(self.lease));
        match self
            .queue
            .call(move |store| store.extend_lease(&id, &token, until))
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    queue = self.queue.name(),
                    id = lease.id,
                    "job's lease was lost while it ran"
                );
                false
            }
            Err(error) => {
                // The lease may still be ours: try again at the next tick.
                tracing::warn!(queue = self.queue.name(), id = lease.id, %error, "cannot extend a job's lease");
                true
            }
        }
    }

    /// Records the outcome: completed, retried after the backoff, or dead. Unless the worker
    /// is stopping, the same store call reserves the slot's next job.
    async fn finish(&self, lease: &Lease, backoff: Backoff, outcome: Outcome) -> Next {
        let retry_in = match &outcome {
            Ok(()) => None,
            Err(_) => (lease.attempt < lease.max_attempts).then(|| backoff.delay(lease.attempt)),
        };
        // Read before the store call looks for work, as in `slot`: when it finds none, the
        // slot can wait at once, without another look.
        let seen = self.queue.signal.generation();
        let and_reserve = !self.control.stopping();
        let (recorded, next) = match self.record(lease, &outcome, retry_in, and_reserve).await {
            Ok((recorded, Some(reserved))) => (Ok(recorded), Next::Run(Box::new(reserved))),
            Ok((recorded, None)) if and_reserve => (Ok(recorded), Next::Wait(seen)),
            Ok((recorded, None)) => (Ok(recorded), Next::Look),
            Err(error) => (Err(error), Next::Look),
        };
        match (recorded, &outcome) {
            (Ok(true), Ok(())) => self.emit(JobCompleted {
                queue: self.queue.name().to_owned(),
                id: lease.id.clone(),
                name: lease.name.clone(),
                attempt: lease.attempt,
            }),
            (Ok(true), Err(error)) => {
                tracing::debug!(
                    queue = self.queue.name(),
                    id = lease.id,
                    error,
                    "job failed"
                );
                self.emit(JobFailed {
                    queue: self.queue.name().to_owned(),
                    id: lease.id.clone(),
                    name: lease.name.clone(),
                    attempt: lease.attempt,
                    error: error.clone(),
                    will_retry: retry_in.is_some(),
                    retry_in,
                    dead: retry_in.is_none(),
                });
            }
            (Ok(false), _) => tracing::warn!(
                queue = self.queue.name(),
                id = lease.id,
                "job ended after its lease was lost: its outcome is ignored (it runs again)"
            ),
            (Err(error), _) => tracing::error!(
                queue = self.queue.name(),
                id = lease.id,
                %error,
                "cannot record a job's outcome: it runs again when its lease ends"
            ),
        }
        next
    }

    /// Writes the outcome to the store (`complete`, or `fail` with a retry time when
    /// `retry_in` is some), with the reservation of the next job when `and_reserve` (not
    /// when stopping: a stopping slot must not lease a job it will not run). Whether the
    /// lease was still this attempt's, and the next job.
    async fn record(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        retry_in: Option<Duration>,
        and_reserve: bool,
    ) -> Result<(bool, Option<Reserved>), super::QueueError> {
        let (id, token) = (lease.id.clone(), lease.token.clone());
        let queue = self.queue.name().to_owned();
        let now = self.queue.now();
        let lease_until = now.saturating_add(millis(self.lease));
        match outcome {
            Ok(()) if and_reserve => {
                self.queue
                    .call(move |store| {
                        store.complete_and_reserve(&id, &token, &queue, now, lease_until)
                    })
                    .await
            }
            Ok(()) => {
                self.queue
                    .call(move |store| Ok((store.complete(&id, &token)?, None)))
                    .await
            }
            Err(error) => {
                let retry_at = retry_in.map(|wait| now.saturating_add(millis(wait)));
                let error = error.clone();
                self.queue
                    .call(move |store| {
                        if and_reserve {
                            store.fail_and_reserve(
                                &id,
                                &token,
                                &error,
                                retry_at,
                                &queue,
                                now,
                                lease_until,
                            )
                        } else {
                            Ok((store.fail(&id, &token, &error, retry_at)?, None))
                        }
                    })
                    .await
            }
        }
    }

    /// Recovers stalled jobs every half lease until the worker stops.
    async fn recovery(self: Arc<Self>) {
        loop {
            let seen = self.control.stop.generation();
            if self.control.stopping() {
                return;
            }
            self.recover().await;
            let wait = self.queue.clock().sleep(self.lease / 2);
            or(self.control.stop.changed(seen), wait).await;
        }
    }

    async fn recover(&self) {
        let queue = self.queue.name().to_owned();
        let now = self.queue.now();
        let stalled = match self
            .queue
            .call(move |store| store.recover_stalled(&queue, now))
            .await
        {
            Ok(stalled) => stalled,
            Err(error) => {
                tracing::warn!(queue = self.queue.name(), %error, "cannot recover stalled jobs");
                return;
            }
        };
        if stalled.is_empty() {
            return;
        }
        for job in &stalled {
            tracing::warn!(queue = self.queue.name(), id = job.id, state = ?job.state, "job stalled: its lease ended while it ran");
            if self.queue.events().is_some() {
                let name = match self.queue.get(&job.id).await {
                    Ok(Some(record)) => record.name,
                    _ => String::new(),
                };
                self.emit(JobStalled {
                    queue: self.queue.name().to_owned(),
                    id: job.id.clone(),
                    name,
                    dead: job.state == JobState::Dead,
                });
            }
        }
        // Recovered jobs are due at once: wake the idle slots of this process.
        self.queue.signal.notify();
    }

    fn emit<E: Send + Sync + 'static>(&self, event: E) {
        if let Some(events) = self.queue.events() {
            events.emit(event);
        }
    }
}

/// What a slot does next.
enum Next {
    /// Run this job, reserved with the last outcome.
    Run(Box<Reserved>),
    /// Wait for a job to be added (the signal's generation was this when the store last
    /// found nothing due) or for the poll interval, then look.
    Wait(u64),
    /// Look for a job.
    Look,
}

/// Reads a job's data as `T`.
fn decode<T: DeserializeOwned>(record: &JobRecord) -> Result<T, String> {
    serde_json::from_slice(&record.data).map_err(|error| {
        format!(
            "cannot read the data of job `{}` as {}: {error}",
            record.id,
            std::any::type_name::<T>()
        )
    })
}

/// What a caught panic says.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text payload");
    format!("the handler panicked: {message}")
}

/// `duration` in whole milliseconds, for the store's times.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
