//! [`QueueStore`] on the `weft_jobs` table: each call is one SQL statement, which SQLite runs
//! as one transaction holding the write lock from its start.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteBackend;
use crate::queue::store::{
    Added, Backoff, JobRecord, JobState, NewJob, Priority, Progress, QueueCounts, QueueStore,
    Reserved, Stalled, StoreError, UnixMillis,
};

/// The columns [`job_from_row`] reads, in its order.
macro_rules! job_columns {
    () => {
        "id, queue, name, data, priority, state, run_at, created_at, attempts, max_attempts, \
         backoff, progress_percent, progress_message, last_error"
    };
}

/// `state` values.
const WAITING: i64 = 0;
const ACTIVE: i64 = 1;
const DEAD: i64 = 2;

/// What a job that died of a stalled attempt gives as its last error.
const STALLED_ERROR: &str = "stalled: the lease ended before the job did";

const ADD: &str = "INSERT INTO weft_jobs (id, queue, name, data, priority, state, run_at, \
    created_at, attempts, max_attempts, backoff) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, 0, ?8, ?9) \
    ON CONFLICT (id) DO NOTHING";

/// The next due job, found through `weft_jobs_due` in one statement.
const RESERVE: &str = concat!(
    "UPDATE weft_jobs SET state = 1, attempts = attempts + 1, run_at = ?3, token = ?4 \
     WHERE seq = (SELECT seq FROM weft_jobs WHERE queue = ?1 AND state = 0 AND run_at <= ?2 \
     ORDER BY priority, run_at, seq LIMIT 1) RETURNING ",
    job_columns!()
);

const EXTEND: &str = "UPDATE weft_jobs SET run_at = ?3 WHERE id = ?1 AND state = 1 AND token = ?2";

const COMPLETE: &str = "DELETE FROM weft_jobs WHERE id = ?1 AND state = 1 AND token = ?2";

/// Waiting again until `?4`, or dead (state `?5`) with `?4` NULL.
const FAIL: &str = "UPDATE weft_jobs SET state = ?5, run_at = COALESCE(?4, run_at), \
    last_error = ?3, token = NULL WHERE id = ?1 AND state = 1 AND token = ?2";

const PROGRESS: &str = "UPDATE weft_jobs SET progress_percent = ?3, progress_message = ?4 \
    WHERE id = ?1 AND state = 1 AND token = ?2";

const RECOVER: &str = "UPDATE weft_jobs SET \
    state = CASE WHEN attempts < max_attempts THEN 0 ELSE 2 END, \
    run_at = CASE WHEN attempts < max_attempts THEN ?2 ELSE run_at END, \
    last_error = CASE WHEN attempts < max_attempts THEN last_error ELSE ?3 END, \
    token = NULL \
    WHERE queue = ?1 AND state = 1 AND run_at < ?2 RETURNING id, state";

const GET: &str = concat!("SELECT ", job_columns!(), " FROM weft_jobs WHERE id = ?1");

const DEAD_LETTERS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM weft_jobs WHERE queue = ?1 AND state = 2 ORDER BY created_at, seq LIMIT ?2"
);

const REQUEUE: &str = "UPDATE weft_jobs SET state = 0, run_at = ?2, attempts = 0, token = NULL \
    WHERE id = ?1 AND state = 2";

const COUNTS: &str = "SELECT \
    COALESCE(SUM(state = 0 AND run_at <= ?2), 0), COALESCE(SUM(state = 0 AND run_at > ?2), 0), \
    COALESCE(SUM(state = 1), 0), COALESCE(SUM(state = 2), 0) \
    FROM weft_jobs WHERE queue = ?1";

impl QueueStore for SqliteBackend {
    fn add(&self, job: NewJob, now: UnixMillis) -> Result<Added, StoreError> {
        let backoff = serde_json::to_string(&job.backoff)
            .map_err(|error| StoreError::Backend(Box::new(error)))?;
        let inserted = self.with(|connection| {
            connection.prepare_cached(ADD)?.execute(params![
                job.id,
                job.queue,
                job.name,
                job.data,
                job.priority as i64,
                job.run_at,
                now,
                job.max_attempts,
                backoff,
            ])
        })?;
        Ok(if inserted == 1 {
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
        let token = uuid::Uuid::new_v4().simple().to_string();
        let job = self.with(|connection| {
            connection
                .prepare_cached(RESERVE)?
                .query_row(params![queue, now, lease_until, token], job_from_row)
                .optional()
        })?;
        Ok(job.map(|job| Reserved { job, token }))
    }

    fn extend_lease(
        &self,
        id: &str,
        token: &str,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.changed(EXTEND, params![id, token, lease_until])
    }

    fn complete(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        self.changed(COMPLETE, params![id, token])
    }

    fn fail(
        &self,
        id: &str,
        token: &str,
        error: &str,
        retry_at: Option<UnixMillis>,
    ) -> Result<bool, StoreError> {
        let state = if retry_at.is_some() { WAITING } else { DEAD };
        self.changed(FAIL, params![id, token, error, retry_at, state])
    }

    fn set_progress(&self, id: &str, token: &str, progress: &Progress) -> Result<bool, StoreError> {
        self.changed(
            PROGRESS,
            params![id, token, progress.percent, progress.message],
        )
    }

    fn recover_stalled(&self, queue: &str, now: UnixMillis) -> Result<Vec<Stalled>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(RECOVER)?;
            let rows = statement.query_map(params![queue, now, STALLED_ERROR], |row| {
                Ok(Stalled {
                    id: row.get(0)?,
                    state: state_from(row, 1)?,
                })
            })?;
            rows.collect()
        })
    }

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(GET)?
                .query_row(params![id], job_from_row)
                .optional()
        })
    }

    fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut statement = connection.prepare_cached(DEAD_LETTERS)?;
            let rows = statement.query_map(params![queue, limit], job_from_row)?;
            rows.collect()
        })
    }

    fn requeue_dead(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        self.changed(REQUEUE, params![id, now])
    }

    fn counts(&self, queue: &str, now: UnixMillis) -> Result<QueueCounts, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(COUNTS)?
                .query_row(params![queue, now], |row| {
                    Ok(QueueCounts {
                        waiting: count_from(row, 0)?,
                        delayed: count_from(row, 1)?,
                        active: count_from(row, 2)?,
                        dead: count_from(row, 3)?,
                    })
                })
        })
    }
}

impl SqliteBackend {
    /// Runs a statement that changes at most one row; whether it did.
    fn changed(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<bool, StoreError> {
        self.with(|connection: &mut Connection| {
            Ok(connection.prepare_cached(sql)?.execute(params)? == 1)
        })
    }
}

/// Reads a job from a row of [`job_columns!`].
fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let progress = match row.get::<_, Option<u8>>(11)? {
        Some(percent) => Some(Progress {
            percent,
            message: row.get::<_, Option<String>>(12)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(JobRecord {
        id: row.get(0)?,
        queue: row.get(1)?,
        name: row.get(2)?,
        data: row.get(3)?,
        priority: priority_from(row, 4)?,
        state: state_from(row, 5)?,
        run_at: row.get(6)?,
        created_at: row.get(7)?,
        attempts: row.get(8)?,
        max_attempts: row.get(9)?,
        backoff: backoff_from(row, 10)?,
        progress,
        last_error: row.get(13)?,
    })
}

fn priority_from(row: &Row<'_>, column: usize) -> rusqlite::Result<Priority> {
    match row.get::<_, i64>(column)? {
        0 => Ok(Priority::Urgent),
        1 => Ok(Priority::Normal),
        2 => Ok(Priority::Low),
        other => Err(corrupt(column, Type::Integer, format!("priority {other}"))),
    }
}

fn state_from(row: &Row<'_>, column: usize) -> rusqlite::Result<JobState> {
    match row.get::<_, i64>(column)? {
        WAITING => Ok(JobState::Waiting),
        ACTIVE => Ok(JobState::Active),
        DEAD => Ok(JobState::Dead),
        other => Err(corrupt(column, Type::Integer, format!("state {other}"))),
    }
}

fn backoff_from(row: &Row<'_>, column: usize) -> rusqlite::Result<Backoff> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(column, Type::Text, error.into())
    })
}

/// A count (SQLite's integers are signed).
fn count_from(row: &Row<'_>, column: usize) -> rusqlite::Result<u64> {
    let count: i64 = row.get(column)?;
    u64::try_from(count).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(column, count))
}

/// A column holding a value weft never writes (mapped to [`StoreError::Corrupt`]).
fn corrupt(column: usize, kind: Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, kind, what.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql`, one line per step.
    fn plan(sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
        let backend = SqliteBackend::in_memory().unwrap();
        let steps: Vec<String> = backend
            .with(|connection| {
                let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = statement.query_map(params, |row| row.get::<_, String>(3))?;
                rows.collect()
            })
            .unwrap();
        steps.join("\n")
    }

    #[test]
    fn reserve_reads_the_due_index_in_order_without_sorting() {
        let plan = plan(RESERVE, params!["q", 0, 0, "token"]);
        assert!(plan.contains("weft_jobs_due"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn recover_and_counts_read_the_due_index() {
        let recover = plan(RECOVER, params!["q", 0, STALLED_ERROR]);
        assert!(recover.contains("weft_jobs_due"), "{recover}");
        let counts = plan(COUNTS, params!["q", 0]);
        assert!(counts.contains("COVERING INDEX weft_jobs_due"), "{counts}");
    }
}
