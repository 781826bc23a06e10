//! The in-memory backend: the default, nothing to install; jobs live as long as the process.
//!
//! [`MemoryBackend`] keeps every queue of the process behind one lock. Each queue has three
//! ordered indexes, so that no call scans the jobs it does not answer about:
//! - waiting jobs by (priority, due time, order added): [`reserve`](QueueStore::reserve) looks
//!   at the first entry of each of the three priorities;
//! - running jobs by the end of their lease: [`recover_stalled`](QueueStore::recover_stalled)
//!   reads only the expired ones;
//! - dead jobs by (time added, order added): the dead-letter queue, oldest first.
//!
//! Cron tick claims ([`TickLease`]) are kept for their `keep` duration and pruned on every
//! claim, so they do not grow with the process's age.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::{StoreError, UnixMillis};
use crate::queue::store::{
    Added, JobRecord, JobState, NewJob, Priority, Progress, QueueCounts, QueueStore, Reserved,
    Stalled,
};
use crate::schedule::lease::TickLease;

/// Queues and cron leases in this process's memory. Cheap to clone: clones share the jobs.
///
/// Nothing survives the process, and other processes do not see it: for several instances use
/// a shared backend (see [the backends](crate::backend)).
#[derive(Clone, Default)]
pub struct MemoryBackend {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change below is made whole before anything can panic, so a poisoned lock
        // still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryBackend")
            .field("jobs", &inner.jobs.len())
            .field("queues", &inner.queues.len())
            .field("tick_claims", &inner.ticks.claims.len())
            .finish()
    }
}

/// Everything the backend holds.
#[derive(Default)]
struct Inner {
    /// Every stored job, by id.
    jobs: HashMap<String, Entry>,
    /// The indexes of each queue, by name.
    queues: HashMap<String, QueueIndex>,
    /// Order added (of jobs), and lease tokens: never reused.
    next_seq: u64,
    /// Cron tick claims.
    ticks: TickClaims,
}

/// A stored job and what the indexes need to find it.
struct Entry {
    record: JobRecord,
    /// Its place in the order added: ties within a priority and a due time.
    seq: u64,
    /// The token of the lease it is held under, while active.
    token: Option<String>,
}

/// The ordered indexes of one queue; each maps a key derived from the record to its id.
#[derive(Default)]
struct QueueIndex {
    /// Waiting (due or delayed): (priority, run_at, seq).
    waiting: BTreeMap<(Priority, UnixMillis, u64), String>,
    /// Active: (lease end, seq).
    active: BTreeMap<(UnixMillis, u64), String>,
    /// Dead: (created_at, seq).
    dead: BTreeMap<(UnixMillis, u64), String>,
}

impl QueueIndex {
    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.active.is_empty() && self.dead.is_empty()
    }

    /// Indexes `entry` under its current state.
    fn insert(&mut self, entry: &Entry) {
        let record = &entry.record;
        let id = record.id.clone();
        match record.state {
            JobState::Waiting => {
                self.waiting
                    .insert((record.priority, record.run_at, entry.seq), id);
            }
            JobState::Active => {
                self.active.insert((record.run_at, entry.seq), id);
            }
            JobState::Dead => {
                self.dead.insert((record.created_at, entry.seq), id);
            }
        }
    }

    /// Removes `entry` from the index of its current state.
    fn remove(&mut self, entry: &Entry) {
        let record = &entry.record;
        match record.state {
            JobState::Waiting => {
                self.waiting
                    .remove(&(record.priority, record.run_at, entry.seq));
            }
            JobState::Active => {
                self.active.remove(&(record.run_at, entry.seq));
            }
            JobState::Dead => {
                self.dead.remove(&(record.created_at, entry.seq));
            }
        }
    }

    /// The id of the job `reserve` takes: the first due job of the highest priority that has
    /// one. Within a priority the index is ordered by due time, so its first entry is due if
    /// any is.
    fn next_due(&self, now: UnixMillis) -> Option<String> {
        [Priority::Urgent, Priority::Normal, Priority::Low]
            .into_iter()
            .find_map(|priority| {
                let from = (priority, UnixMillis::MIN, 0);
                let to = (priority, now, u64::MAX);
                self.waiting
                    .range(from..=to)
                    .next()
                    .map(|(_, id)| id.clone())
            })
    }
}

impl Inner {
    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Applies `change` to job `id`, keeping its queue's indexes in step.
    fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let entry = self.jobs.get_mut(id)?;
        let index = self.queues.entry(entry.record.queue.clone()).or_default();
        index.remove(entry);
        let result = change(entry);
        index.insert(entry);
        Some(result)
    }

    /// The job `id` if it is active under `token`.
    fn leased(&self, id: &str, token: &str) -> bool {
        self.jobs.get(id).is_some_and(|entry| {
            entry.record.state == JobState::Active && entry.token.as_deref() == Some(token)
        })
    }

    /// Forgets job `id` entirely (it completed), and its queue once that is empty.
    fn remove(&mut self, id: &str) {
        let Some(entry) = self.jobs.remove(id) else {
            return;
        };
        let queue = &entry.record.queue;
        if let Some(index) = self.queues.get_mut(queue) {
            index.remove(&entry);
            if index.is_empty() {
                self.queues.remove(queue);
            }
        }
    }
}

impl QueueStore for MemoryBackend {
    fn add(&self, job: NewJob, now: UnixMillis) -> Result<Added, StoreError> {
        let mut inner = self.lock();
        if inner.jobs.contains_key(&job.id) {
            return Ok(Added::Duplicate(job.id));
        }
        let seq = inner.next_seq();
        let entry = Entry {
            record: JobRecord {
                id: job.id.clone(),
                queue: job.queue,
                name: job.name,
                data: job.data,
                priority: job.priority,
                state: JobState::Waiting,
                run_at: job.run_at,
                created_at: now,
                attempts: 0,
                max_attempts: job.max_attempts.max(1),
                backoff: job.backoff,
                progress: None,
                last_error: None,
            },
            seq,
            token: None,
        };
        inner
            .queues
            .entry(entry.record.queue.clone())
            .or_default()
            .insert(&entry);
        inner.jobs.insert(job.id.clone(), entry);
        Ok(Added::New(job.id))
    }

    fn reserve(
        &self,
        queue: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<Option<Reserved>, StoreError> {
        let mut inner = self.lock();
        let Some(id) = inner
            .queues
            .get(queue)
            .and_then(|index| index.next_due(now))
        else {
            return Ok(None);
        };
        let token = format!("lease-{}", inner.next_seq());
        let job = inner.update(&id, |entry| {
            entry.record.state = JobState::Active;
            entry.record.run_at = lease_until;
            entry.record.attempts = entry.record.attempts.saturating_add(1);
            entry.token = Some(token.clone());
            entry.record.clone()
        });
        Ok(job.map(|job| Reserved { job, token }))
    }

    fn extend_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.leased(id, token) {
            return Ok(false);
        }
        inner.update(id, |entry| entry.record.run_at = lease_until);
        Ok(true)
    }

    fn complete(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.leased(id, token) {
            return Ok(false);
        }
        inner.remove(id);
        Ok(true)
    }

    fn fail(
        &self,
        id: &str,
        token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.leased(id, token) {
            return Ok(false);
        }
        inner.update(id, |entry| {
            entry.token = None;
            entry.record.last_error = Some(error.to_owned());
            match retry_at {
                Some(at) => {
                    entry.record.state = JobState::Waiting;
                    entry.record.run_at = at;
                }
                None => entry.record.state = JobState::Dead,
            }
        });
        Ok(true)
    }

    fn set_progress(&self, id: &str, token: &str, progress: &Progress) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.leased(id, token) {
            return Ok(false);
        }
        if let Some(entry) = inner.jobs.get_mut(id) {
            entry.record.progress = Some(progress.clone());
        }
        Ok(true)
    }

    fn recover_stalled(&self, queue: &str, now: UnixMillis) -> Result<Vec<Stalled>, StoreError> {
        let mut inner = self.lock();
        let expired: Vec<String> = match inner.queues.get(queue) {
            Some(index) => index
                .active
                .range(..(now, 0))
                .map(|(_, id)| id.clone())
                .collect(),
            None => return Ok(Vec::new()),
        };
        let mut stalled = Vec::with_capacity(expired.len());
        for id in expired {
            let state = inner.update(&id, |entry| {
                entry.token = None;
                entry.record.last_error = Some("stalled: its lease ended while it ran".to_owned());
                if entry.record.attempts < entry.record.max_attempts {
                    entry.record.state = JobState::Waiting;
                    entry.record.run_at = now;
                } else {
                    entry.record.state = JobState::Dead;
                }
                entry.record.state
            });
            if let Some(state) = state {
                stalled.push(Stalled { id, state });
            }
        }
        Ok(stalled)
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.lock().jobs.get(id).map(|entry| entry.record.clone()))
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let inner = self.lock();
        let Some(index) = inner.queues.get(queue) else {
            return Ok(Vec::new());
        };
        Ok(index
            .dead
            .values()
            .take(limit)
            .filter_map(|id| inner.jobs.get(id).map(|entry| entry.record.clone()))
            .collect())
    }

    fn requeue_dead(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let is_dead = inner
            .jobs
            .get(id)
            .is_some_and(|entry| entry.record.state == JobState::Dead);
        if !is_dead {
            return Ok(false);
        }
        inner.update(id, |entry| {
            entry.record.state = JobState::Waiting;
            entry.record.run_at = now;
            entry.record.attempts = 0;
        });
        Ok(true)
    }

    fn counts(&self, queue: &str, now: UnixMillis) -> Result<QueueCounts, StoreError> {
        let inner = self.lock();
        let Some(index) = inner.queues.get(queue) else {
            return Ok(QueueCounts::default());
        };
        let waiting = index
            .waiting
            .keys()
            .filter(|(_, run_at, _)| *run_at <= now)
            .count();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(QueueCounts {
            waiting: count(waiting),
            delayed: count(index.waiting.len() - waiting),
            active: count(index.active.len()),
            dead: count(index.dead.len()),
        })
    }

    fn runs_inline(&self) -> bool {
        true
    }
}

/// Cron tick claims, each forgotten once its `keep` has passed.
#[derive(Default)]
struct TickClaims {
    /// When each claimed (job, tick) is forgotten.
    claims: HashMap<(String, UnixMillis), Instant>,
    /// The same claims by expiry, to prune the oldest first.
    expiries: BTreeMap<(Instant, String, UnixMillis), ()>,
}

impl TickClaims {
    /// Forgets the claims whose `keep` has passed by `now`.
    fn prune(&mut self, now: Instant) {
        while let Some(entry) = self.expiries.first_entry() {
            let (expires, job, tick) = entry.key().clone();
            if expires > now {
                break;
            }
            entry.remove();
            if self.claims.get(&(job.clone(), tick)) == Some(&expires) {
                self.claims.remove(&(job, tick));
            }
        }
    }

    /// Claims (job, tick) unless it is claimed already.
    fn claim(&mut self, job: &str, tick: UnixMillis, keep: Duration, now: Instant) -> bool {
        self.prune(now);
        let key = (job.to_owned(), tick);
        if self.claims.contains_key(&key) {
            return false;
        }
        let expires = now
            .checked_add(keep)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.claims.insert(key, expires);
        self.expiries.insert((expires, job.to_owned(), tick), ());
        true
    }
}

impl TickLease for MemoryBackend {
    /// Claims in this process only: the first claim of a (job, tick) wins, whoever the holder;
    /// it is forgotten `keep` later.
    fn claim_tick(
        &self,
        job: &str,
        tick: UnixMillis,
        _holder: &str,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().ticks.claim(job, tick, keep, Instant::now()))
    }

    fn runs_inline(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_is_claimed_once() {
        let backend = MemoryBackend::new();
        let keep = Duration::from_secs(60);
        assert!(backend.claim_tick("report", 1_000, "a", keep).unwrap());
        assert!(!backend.claim_tick("report", 1_000, "b", keep).unwrap());
        assert!(backend.claim_tick("report", 2_000, "b", keep).unwrap());
        assert!(backend.claim_tick("other", 1_000, "b", keep).unwrap());
    }

    #[test]
    fn tick_claims_are_pruned_after_keep() {
        let mut claims = TickClaims::default();
        let start = Instant::now();
        let keep = Duration::from_secs(10);
        for tick in 0..1_000 {
            assert!(claims.claim("job", tick, keep, start));
        }
        assert_eq!(claims.claims.len(), 1_000);
        // Past `keep`, one new claim prunes all the old ones.
        let later = start + Duration::from_secs(11);
        assert!(claims.claim("job", 5_000, keep, later));
        assert_eq!(claims.claims.len(), 1);
        assert_eq!(claims.expiries.len(), 1);
        // And a forgotten tick can be claimed again.
        assert!(claims.claim("job", 0, keep, later));
    }

    #[test]
    fn a_completed_queue_leaves_no_index_behind() {
        let backend = MemoryBackend::new();
        let job = NewJob {
            id: "1".into(),
            queue: "q".into(),
            name: "n".into(),
            data: Vec::new(),
            priority: Priority::Normal,
            run_at: 0,
            max_attempts: 1,
            backoff: crate::queue::store::Backoff::default(),
        };
        backend.add(job, 0).unwrap();
        let reserved = backend.reserve("q", 0, 100).unwrap().unwrap();
        assert!(backend.complete("1", &reserved.token).unwrap());
        assert!(backend.lock().queues.is_empty());
        assert!(backend.lock().jobs.is_empty());
    }
}
