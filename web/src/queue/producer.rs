//! The producer side: [`Queue`] adds jobs and looks after them.

use std::sync::Arc;

use serde::Serialize;

use super::error::QueueError;
use super::options::JobOptions;
use super::signal::{self, Signal};
use super::store::{Added, JobRecord, NewJob, QueueCounts, QueueStore, StoreError, UnixMillis};
use crate::clock::{Clock, SystemClock, unix_millis};
use crate::events::Events;

/// A job's id: given in [`JobOptions::id`] or generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A named queue in a store: adds jobs, lists and re-queues dead ones, counts. Cheap to
/// clone; clones (and other `Queue`s of this process with the same store and name) share a
/// wake-up signal, so a job added here starts at once on an idle [`Worker`](super::Worker)
/// of this process instead of at its next poll.
///
/// ```
/// use std::sync::Arc;
/// use weft::backend::memory::MemoryBackend;
/// use weft::queue::{JobOptions, Priority, Queue};
///
/// # futures_lite::future::block_on(async {
/// let queue = Queue::new("mail", Arc::new(MemoryBackend::new()));
/// let id = queue.add("welcome", &"ada@example.com").await?;
/// queue
///     .add_with("digest", &"bob@example.com", JobOptions::new().priority(Priority::Low))
///     .await?;
/// assert_eq!(queue.counts().await?.waiting, 2);
/// assert_eq!(queue.get(id.as_str()).await?.unwrap().name, "welcome");
/// # Ok::<(), weft::queue::QueueError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Queue {
    name: Arc<str>,
    store: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
    pub(super) events: Option<Events>,
    pub(super) signal: Arc<Signal>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// The queue `name` of `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn QueueStore>) -> Self {
        let name: String = name.into();
        let signal = signal::for_queue(&store, &name);
        Queue {
            name: name.into(),
            store,
            clock: Arc::new(SystemClock),
            events: None,
            signal,
        }
    }

    /// Reads time from `clock` (job delays, leases, retries) instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Emits the [queue's events](super::events) through `events`.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store it keeps its jobs in.
    pub fn store(&self) -> &Arc<dyn QueueStore> {
        &self.store
    }

    /// The clock it reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The events it emits through, if any.
    pub fn events(&self) -> Option<&Events> {
        self.events.as_ref()
    }

    /// Adds a job named `name` (which handler runs it) with `data`, with the default
    /// [`JobOptions`].
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<JobId, QueueError> {
        self.add_with(name, data, JobOptions::default()).await
    }

    /// Adds a job named `name` with `data` and `options`. When a job with the options' id is
    /// stored already (waiting, running or dead), nothing is added and its id is answered.
    pub async fn add_with<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        options: JobOptions,
    ) -> Result<JobId, QueueError> {
        let data = serde_json::to_vec(data).map_err(QueueError::Encode)?;
        let now = self.now();
        let delay_ms = i64::try_from(options.delay.as_millis()).unwrap_or(i64::MAX);
        let run_at = now.saturating_add(delay_ms);
        let job = NewJob {
            id: options
                .id
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            queue: self.name.to_string(),
            name: name.to_owned(),
            data,
            priority: options.priority,
            run_at,
            max_attempts: options.attempts.max(1),
            backoff: options.backoff,
        };
        let added = self.call(move |store| store.add(job, now)).await?;
        match added {
            Added::New(id) => {
                if run_at <= now {
                    self.signal.notify();
                }
                Ok(JobId(id))
            }
            Added::Duplicate(id) => Ok(JobId(id)),
        }
    }

    /// The job with this id, waiting, running or dead (completed jobs are not kept).
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let id = id.to_owned();
        self.call(move |store| store.get(&id)).await
    }

    /// Up to `limit` jobs of the dead-letter queue, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<JobRecord>, QueueError> {
        let queue = self.name.to_string();
        self.call(move |store| store.dead_letters(&queue, limit))
            .await
    }

    /// Moves a dead job back to the queue, due now, with its attempts reset; `false` if no
    /// dead job has this id.
    pub async fn requeue(&self, id: &str) -> Result<bool, QueueError> {
        let id = id.to_owned();
        let now = self.now();
        let requeued = self.call(move |store| store.requeue_dead(&id, now)).await?;
        if requeued {
            self.signal.notify();
        }
        Ok(requeued)
    }

    /// How many jobs the queue holds, by state.
    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let queue = self.name.to_string();
        let now = self.now();
        self.call(move |store| store.counts(&queue, now)).await
    }

    /// Now, on the queue's clock.
    pub(super) fn now(&self) -> UnixMillis {
        unix_millis(self.clock.now())
    }

    /// Runs `call` on the store: in place when the store answers at once, else on the
    /// runtime's blocking pool (in place outside a runtime).
    pub(super) async fn call<T, F>(&self, call: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn QueueStore) -> Result<T, StoreError> + Send + 'static,
    {
        if self.store.runs_inline() {
            return call(&*self.store).map_err(QueueError::Store);
        }
        let store = Arc::clone(&self.store);
        weft_service::runtime::spawn_blocking_or_inline(move || call(&*store))
            .await
            .map_err(QueueError::Store)
    }
}
