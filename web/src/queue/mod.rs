//! Job queues: producers add jobs, workers run them with retries, backoff, a dead-letter
//! queue, progress and events, on any [backend](crate::backend).
//!
//! ```
//! use std::sync::Arc;
//! use weft::backend::memory::MemoryBackend;
//! use weft::prelude::*;
//! use weft::queue::{Backoff, Job, JobOptions, Queue, Worker};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Email { to: String }
//!
//! let queue = Queue::new("mail", Arc::new(MemoryBackend::new()));
//! let worker = Worker::new(queue.clone())
//!     .concurrency(8)
//!     .handle("welcome", |job: Job<Email>| async move {
//!         println!("mail to {}", job.data().to);
//!         Ok::<(), String>(())
//!     });
//! let app = App::new().queue(queue).worker(worker);
//! # let _ = app.build().unwrap();
//! ```
//!
//! - A [`Queue`] adds jobs ([`Queue::add`], [`Queue::add_with`] and [`JobOptions`]: priority,
//!   delay, attempts, [`Backoff`], an id that de-duplicates), and looks after them: `get`,
//!   `counts`, the dead-letter queue ([`Queue::dead_letters`], [`Queue::requeue`]).
//! - A [`Worker`] runs them: handlers by job name, async ([`Worker::handle`]) or blocking
//!   ([`Worker::handle_blocking`]), up to a concurrency limit. A failed attempt (an error, a
//!   panic, a name without handler) is retried after the job's backoff; after the last one
//!   the job is **dead**: kept in the dead-letter queue until re-queued.
//! - Workers emit [events] ([`JobCompleted`], [`JobFailed`], [`JobStalled`],
//!   [`JobProgress`]) through the queue's [`Events`](crate::events::Events), the app's when
//!   served with [`App::worker`](crate::App::worker).
//! - The jobs live in a [`QueueStore`](store::QueueStore): in memory
//!   ([`MemoryBackend`](crate::backend::memory::MemoryBackend)), or a backend shared by
//!   processes (see [`crate::backend`]).
//!
//! # Delivery is at least once
//! A worker holds a job under a **lease**, which it extends while the job runs. When a worker
//! dies or stalls mid-job (a crash, a kill, a machine lost, a handler blocking its thread so
//! the lease is not extended), its lease ends, the next recovery of any worker of the queue
//! makes the job due again (counting the lost attempt), and it runs again, possibly on another
//! instance. A job can therefore run more than once, and can be running twice when a stalled
//! worker wakes up after its lease was taken over (its late outcome is then refused by the
//! store). Make handlers **idempotent** (use the job's id as an idempotency key), and choose a
//! lease well above a stall you can tolerate. A job never gets lost: it completes, is retried
//! per its policy, or ends in the dead-letter queue.
//!
//! # Stopping
//! [`Background::begin_stop`](crate::background::Background::begin_stop) (called when an app
//! drains) stops taking jobs; `wait_stopped` waits for the running ones. A job still running at
//! the deadline is abandoned: its lease ends and it runs again.

mod app;
mod backoff;
mod error;
pub mod events;
mod job;
mod options;
mod producer;
mod signal;
pub mod store;
mod worker;

pub use app::Queues;
pub use error::QueueError;
pub use events::{JobCompleted, JobFailed, JobProgress, JobStalled};
pub use job::Job;
pub use options::JobOptions;
pub use producer::{JobId, Queue};
pub use store::{Backoff, JobRecord, JobState, Priority, Progress, QueueCounts};
pub use worker::Worker;
