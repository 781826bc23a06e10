//! [`TickLease`] on the `weft_ticks` table: a claim is a row keyed by (job, tick); the first
//! insert wins.

use std::time::Duration;

use rusqlite::{TransactionBehavior, params};

use super::SqliteBackend;
use crate::backend::{StoreError, UnixMillis};
use crate::schedule::lease::TickLease;

/// Forgets claims older than the one being made by more than its `keep`.
const PRUNE: &str = "DELETE FROM weft_ticks WHERE tick < ?1";

const CLAIM: &str = "INSERT OR IGNORE INTO weft_ticks (job, tick, holder) VALUES (?1, ?2, ?3)";

impl TickLease for SqliteBackend {
    /// Claims the tick in one `BEGIN IMMEDIATE` transaction that first prunes old claims.
    ///
    /// Claims are pruned by the scheduled times they name, not by this host's clock: a tick
    /// is claimed when it is due, so `tick − keep` is the moment before which every instance
    /// has tried its ticks. That keeps the backend off the wall clock (the scheduler's clock
    /// may be a virtual one) and bounds the table to `keep`'s worth of ticks.
    fn claim_tick(
        &self,
        job: &str,
        tick: UnixMillis,
        holder: &str,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let forget_before = tick.saturating_sub(keep);
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction
                .prepare_cached(PRUNE)?
                .execute(params![forget_before])?;
            let won = transaction
                .prepare_cached(CLAIM)?
                .execute(params![job, tick, holder])?
                == 1;
            transaction.commit()?;
            Ok(won)
        })
    }
}
