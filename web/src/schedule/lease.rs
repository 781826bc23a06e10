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

/// A [`TickLease`] in this process's memory: the schedulers sharing one (an `Arc`) run each
/// cron tick once between them. For tests and for several schedulers in one process; instances
/// in several processes need a shared backend (Redis, SQLite).
#[derive(Debug, Default)]
pub struct LocalLease {
    /// Claimed ticks, by job and tick: the holder and when the claim is forgotten.
    claims: std::sync::Mutex<
        std::collections::HashMap<(String, UnixMillis), (String, std::time::Instant)>,
    >,
}

impl LocalLease {
    /// An empty lease.
    pub fn new() -> Self {
        LocalLease::default()
    }
}

impl TickLease for LocalLease {
    fn claim_tick(
        &self,
        job: &str,
        tick: UnixMillis,
        holder: &str,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let now = std::time::Instant::now();
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget the claims whose time ran out, as a backend's expiry would.
        claims.retain(|_, (_, until)| *until > now);
        let key = (job.to_owned(), tick);
        if claims.contains_key(&key) {
            return Ok(false);
        }
        claims.insert(key, (holder.to_owned(), now + keep));
        Ok(true)
    }

    fn runs_inline(&self) -> bool {
        true
    }
}
