//! weft's tables, created when a backend opens the file.

use rusqlite::{Connection, TransactionBehavior};

use super::{OpenError, store_error};
use crate::backend::StoreError;

/// The schema's version, kept in `PRAGMA user_version`: a later version migrates from it.
const VERSION: i64 = 1;

/// The tables and indexes of version 1.
///
/// `weft_jobs`: one row per job not completed; `seq` (the rowid) is the order added. `state`
/// is 0 waiting, 1 active, 2 dead; `run_at` is when a waiting job is due, or when an active
/// job's lease ends; `token` is the active lease's. `weft_jobs_due` serves
/// [reserve](super::jobs)'s `ORDER BY priority, run_at, seq` (the rowid ends every index
/// entry) within one queue and state, and the counts.
///
/// `weft_ticks`: the cron ticks claimed, by job and scheduled time, pruned by time.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS weft_jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    priority INTEGER NOT NULL,
    state INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    backoff TEXT NOT NULL,
    progress_percent INTEGER,
    progress_message TEXT,
    last_error TEXT,
    token TEXT
);
CREATE INDEX IF NOT EXISTS weft_jobs_due ON weft_jobs (queue, state, priority, run_at);
CREATE TABLE IF NOT EXISTS weft_ticks (
    job TEXT NOT NULL,
    tick INTEGER NOT NULL,
    holder TEXT NOT NULL,
    PRIMARY KEY (job, tick)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS weft_ticks_by_tick ON weft_ticks (tick);
";

/// Creates the tables unless the file has them, in one transaction, so that processes
/// opening a new file together do not race.
pub(super) fn create(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let found: i64 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(store_error)?;
    if found > VERSION {
        let error = OpenError::SchemaTooNew {
            found,
            supported: VERSION,
        };
        return Err(StoreError::Backend(Box::new(error)));
    }
    transaction.execute_batch(TABLES).map_err(store_error)?;
    transaction
        .pragma_update(None, "user_version", VERSION)
        .map_err(store_error)?;
    transaction.commit().map_err(store_error)
}
