//! The lease that makes a cron tick run on one instance only, when several share a backend.

use std::time::Duration;

use crate::backend::{StoreError, UnixMillis};

/// Claims the ticks of cron jobs across instances sharing a backend.
pub trait TickLease: Send + Sync + 'static {
    /// Claims tick `tick` (the scheduled time) of the job `job` for `holder` (an instance's
    /// id). Exactly one caller across all instances gets `true` for a given job and tick;
    /// the claim is kept for `keep` (long enough for every instance to have tried) and then
    /// forgotten by the backend.
    fn claim_tick(
        &self,
        job: &str,
        tick: UnixMillis,
        holder: &str,
        keep: Duration,
    ) -> Result<bool, StoreError>;

    /// Whether calls answer at once (in memory), without the blocking pool.
    fn runs_inline(&self) -> bool {
        false
    }
}
