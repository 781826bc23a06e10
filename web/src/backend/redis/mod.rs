//! The Redis backend: a Redis server shared by several instances.
//!
//! [`RedisBackend`] keeps the jobs of the [queues](crate::queue) and the cron leases of the
//! [scheduler](crate::schedule) in one Redis server, so every instance of an app that points
//! at it shares the queues, and each cron tick runs on one instance only.
//!
//! ```no_run
//! use std::sync::Arc;
//! use weft::backend::redis::RedisBackend;
//! use weft::queue::Queue;
//! use weft::schedule::Scheduler;
//!
//! let backend = Arc::new(RedisBackend::connect("redis://127.0.0.1:6379/")?);
//! let queue = Queue::new("mail", backend.clone());
//! let scheduler = Scheduler::new().with_lease(backend);
//! # let _ = (queue, scheduler);
//! # Ok::<(), weft::backend::StoreError>(())
//! ```
//!
//! Each [`QueueStore`] call that reads and writes is one Lua script, which Redis runs
//! atomically: two workers never reserve the same job, and a stale lease token changes
//! nothing. The keys, all under the backend's key prefix `p` (so that several apps, or
//! tests, can share a server):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `p:job:<id>` | hash | the job's fields, its lease token while active |
//! | `p:q:<queue>:wait:<0..2>` | sorted set | waiting jobs of one priority, by due time, then order added |
//! | `p:q:<queue>:active` | sorted set | ids of the running jobs, by lease end |
//! | `p:q:<queue>:dead` | sorted set | dead jobs, by time added, then order added |
//! | `p:seq` | counter | the order jobs were added in |
//! | `p:tick:<job>:<tick>` | string | the holder of a cron tick, until it expires |
//!
//! Delayed jobs sit in the waiting sets with a due time in the future: a reservation takes
//! the first job due by then, urgent before normal before low, so there is nothing to move
//! when a delay ends.
//!
//! The scripts build their keys from the prefix, so the backend needs one Redis server (or a
//! primary), not a Redis Cluster.
//!
//! Connections are kept open between calls. One that fails at the transport level is
//! dropped and the next call opens a new one, so the backend recovers when the server comes
//! back; the failed call is not retried (the server may have run it) and answers
//! [`StoreError::Backend`].

use std::time::Duration;

use redis::{Client, RedisError, Script, ScriptInvocation};

use crate::backend::{StoreError, UnixMillis};
use crate::queue::store::{
    Added, JobRecord, NewJob, Progress, QueueCounts, QueueStore, Reserved, Stalled,
};
use crate::schedule::lease::TickLease;

mod pool;
mod record;

use pool::Pool;
use record::Fields;

/// The key prefix of [`RedisBackend::connect`].
pub const DEFAULT_KEY_PREFIX: &str = "weft";

/// What [`QueueStore::recover_stalled`] records as the last error of a job whose lease ended.
const STALLED_ERROR: &str = "stalled: its lease ended while it ran";

/// The queue and cron-lease backend on a Redis server.
pub struct RedisBackend {
    pool: Pool,
    prefix: String,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's URL may carry a password: only the prefix is shown.
        f.debug_struct("RedisBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to the server at `url` (`redis://host:port/db`, with `user:password@` when
    /// it needs them), with the key prefix [`DEFAULT_KEY_PREFIX`]. Fails at once when the
    /// URL is malformed or the server does not answer, so that a wrong address shows at
    /// start-up rather than at the first job.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let backend = RedisBackend::new(Client::open(url).map_err(backend)?, DEFAULT_KEY_PREFIX);
        backend.ping()?;
        Ok(backend)
    }

    /// A backend on `client` whose keys all start with `key_prefix` and a colon, so that
    /// several apps (or tests) can share one server. It connects when first used.
    pub fn new(client: Client, key_prefix: impl Into<String>) -> Self {
        RedisBackend {
            pool: Pool::new(client),
            prefix: key_prefix.into(),
            scripts: Scripts::new(),
        }
    }

    /// The prefix of every key this backend writes.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Checks that the server answers.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.pool
            .with(|connection| redis::cmd("PING").query::<String>(connection))
            .map(drop)
            .map_err(backend)
    }

    /// Runs `script` with the prefix as its first argument, then the ones `args` adds.
    fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        args: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        args(&mut invocation);
        self.pool
            .with(|connection| invocation.invoke(connection))
            .map_err(backend)
    }

    /// Runs a script that answers 1 (done) or 0 (not done).
    fn run_flag(
        &self,
        script: &Script,
        args: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<bool, StoreError> {
        self.run::<i64>(script, args).map(|done| done == 1)
    }
}

impl QueueStore for RedisBackend {
    fn add(&self, job: NewJob, now: UnixMillis) -> Result<Added, StoreError> {
        let added = self.run_flag(&self.scripts.add, |args| {
            args.arg(&job.id)
                .arg(&job.queue)
                .arg(&job.name)
                .arg(&job.data)
                .arg(record::priority_rank(job.priority))
                .arg(job.run_at)
                .arg(now)
                .arg(job.max_attempts)
                .arg(record::backoff_json(&job.backoff));
        })?;
        Ok(if added {
            Added::New(job.id)
        } else {
            Added::Duplicate(job.id)
        })
    }

    fn reserve(
        &self,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<Option<Reserved>, StoreError> {
        let token = new_token();
        let fields: Option<Fields> = self.run(&self.scripts.reserve, |args| {
            args.arg(queue).arg(now).arg(lease_until).arg(&token);
        })?;
        reserved(fields, token)
    }

    fn complete_and_reserve(
        &self,
        id: &str,
        token: &str,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<(bool, Option<Reserved>), StoreError> {
        let next_token = new_token();
        let (completed, fields): (i64, Option<Fields>) =
            self.run(&self.scripts.complete_reserve, |args| {
                args.arg(id)
                    .arg(token)
                    .arg(queue)
                    .arg(now)
                    .arg(lease_until)
                    .arg(&next_token);
            })?;
        Ok((completed == 1, reserved(fields, next_token)?))
    }

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
        let next_token = new_token();
        let retry_at = retry_at.map(|at| at.to_string()).unwrap_or_default();
        let (failed, fields): (i64, Option<Fields>) =
            self.run(&self.scripts.fail_reserve, |args| {
                args.arg(id)
                    .arg(token)
                    .arg(error)
                    .arg(&retry_at)
                    .arg(queue)
                    .arg(now)
                    .arg(lease_until)
                    .arg(&next_token);
            })?;
        Ok((failed == 1, reserved(fields, next_token)?))
    }

    fn reserve_many(
        &self,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        max: usize,
    ) -> Result<Vec<Reserved>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // One token per job the script may reserve; it hands them out in order.
        let tokens: Vec<String> = (0..max).map(|_| new_token()).collect();
        let jobs: Vec<Fields> = self.run(&self.scripts.reserve_many, |args| {
            args.arg(queue).arg(now).arg(lease_until).arg(&tokens);
        })?;
        jobs.into_iter()
            .zip(tokens)
            .map(|(fields, token)| {
                Ok(Reserved {
                    job: record::decode(fields)?,
                    token,
                })
            })
            .collect()
    }

    fn extend_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.run_flag(&self.scripts.extend, |args| {
            args.arg(id).arg(token).arg(lease_until);
        })
    }

    fn complete(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        self.run_flag(&self.scripts.complete, |args| {
            args.arg(id).arg(token);
        })
    }

    fn fail(
        &self,
        id: &str,
        token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> Result<bool, StoreError> {
        // The script reads an empty retry time as "no retry: the job dies".
        let retry_at = retry_at.map(|at| at.to_string()).unwrap_or_default();
        self.run_flag(&self.scripts.fail, |args| {
            args.arg(id).arg(token).arg(error).arg(&retry_at);
        })
    }

    fn set_progress(&self, id: &str, token: &str, progress: &Progress) -> Result<bool, StoreError> {
        self.run_flag(&self.scripts.progress, |args| {
            args.arg(id)
                .arg(token)
                .arg(progress.percent)
                .arg(&progress.message);
        })
    }

    fn recover_stalled(&self, queue: &str, now: UnixMillis) -> Result<Vec<Stalled>, StoreError> {
        let flat: Vec<Vec<u8>> = self.run(&self.scripts.recover, |args| {
            args.arg(queue).arg(now).arg(STALLED_ERROR);
        })?;
        flat.chunks(2)
            .map(|pair| match pair {
                [id, state] => Ok(Stalled {
                    id: String::from_utf8(id.clone())
                        .map_err(|_| StoreError::Corrupt("a job id is not UTF-8".into()))?,
                    state: record::state_of(state)?,
                }),
                _ => Err(StoreError::Corrupt("an odd reply from recover.lua".into())),
            })
            .collect()
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let fields: Option<Fields> = self.run(&self.scripts.get, |args| {
            args.arg(id);
        })?;
        fields.map(record::decode).transpose()
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            // ZRANGE 0 -1 would be the whole set.
            return Ok(Vec::new());
        }
        let jobs: Vec<Fields> = self.run(&self.scripts.dead, |args| {
            args.arg(queue).arg(limit);
        })?;
        jobs.into_iter().map(record::decode).collect()
    }

    fn requeue_dead(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        self.run_flag(&self.scripts.requeue, |args| {
            args.arg(id).arg(now);
        })
    }

    fn counts(&self, queue: &str, now: UnixMillis) -> Result<QueueCounts, StoreError> {
        let [waiting, delayed, active, dead]: [u64; 4] =
            self.run(&self.scripts.counts, |args| {
                args.arg(queue).arg(now);
            })?;
        Ok(QueueCounts {
            waiting,
            delayed,
            active,
            dead,
        })
    }
}

impl TickLease for RedisBackend {
    fn claim_tick(
        &self,
        job: &str,
        tick: UnixMillis,
        holder: &str,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let key = format!("{}:tick:{job}:{tick}", self.prefix);
        // PX takes whole milliseconds, at least one.
        let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1);
        let claimed: Option<String> = self
            .pool
            .with(|connection| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(holder)
                    .arg("NX")
                    .arg("PX")
                    .arg(keep_ms)
                    .query(connection)
            })
            .map_err(backend)?;
        Ok(claimed.is_some())
    }
}

/// The Lua scripts, each with `common.lua` in front (compiled once: Redis caches them by
/// hash, and [`Script`] sends the hash and the body only when the server lacks it).
struct Scripts {
    add: Script,
    reserve: Script,
    complete_reserve: Script,
    fail_reserve: Script,
    reserve_many: Script,
    extend: Script,
    complete: Script,
    fail: Script,
    progress: Script,
    recover: Script,
    get: Script,
    dead: Script,
    requeue: Script,
    counts: Script,
}

impl Scripts {
    fn new() -> Self {
        let script =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("lua/common.lua")));
        Scripts {
            add: script(include_str!("lua/add.lua")),
            reserve: script(include_str!("lua/reserve.lua")),
            complete_reserve: script(include_str!("lua/complete_reserve.lua")),
            fail_reserve: script(include_str!("lua/fail_reserve.lua")),
            reserve_many: script(include_str!("lua/reserve_many.lua")),
            extend: script(include_str!("lua/extend.lua")),
            complete: script(include_str!("lua/complete.lua")),
            fail: script(include_str!("lua/fail.lua")),
            progress: script(include_str!("lua/progress.lua")),
            recover: script(include_str!("lua/recover.lua")),
            get: script(include_str!("lua/get.lua")),
            dead: script(include_str!("lua/dead.lua")),
            requeue: script(include_str!("lua/requeue.lua")),
            counts: script(include_str!("lua/counts.lua")),
        }
    }
}

/// A new lease token.
fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The job a reserving script answered, if any, leased under `token`.
fn reserved(fields: Option<Fields>, token: String) -> Result<Option<Reserved>, StoreError> {
    fields
        .map(|fields| {
            Ok(Reserved {
                job: record::decode(fields)?,
                token,
            })
        })
        .transpose()
}

/// The server could not be reached, or refused a command.
fn backend(error: RedisError) -> StoreError {
    StoreError::Backend(Box::new(error))
}
