//! The wait before a failed job's next attempt: [`Backoff::delay`].

use std::time::Duration;

use super::store::Backoff;

impl Backoff {
    /// The computed wait after failed attempt number `attempt` (1 for the first attempt),
    /// before any jitter: the fixed delay, or `base × 2^(attempt − 1)` capped at `max`. With
    /// jitter it is the upper bound of [`delay`](Backoff::delay).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        match *self {
            Backoff::Fixed { delay_ms } => Duration::from_millis(delay_ms),
            Backoff::Exponential {
                base_ms, max_ms, ..
            } => {
                let doublings = attempt.saturating_sub(1);
                let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
                Duration::from_millis(base_ms.saturating_mul(factor).min(max_ms))
            }
        }
    }

    /// The wait after failed attempt number `attempt` (1 for the first attempt). With
    /// jitter, a uniformly random wait between zero and [`ceiling`](Backoff::ceiling) ("full
    /// jitter"): jobs that failed together, say when a service they call went down, then do
    /// not all retry at the same instant.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        match *self {
            Backoff::Exponential { jitter: true, .. } => full_jitter(ceiling),
            _ => ceiling,
        }
    }
}

/// A uniformly random duration in `[0, ceiling]`, to the millisecond.
fn full_jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    // Without a random source the full wait is the safe choice: never earlier than asked.
    let Ok(random) = getrandom::u64() else {
        return ceiling;
    };
    match ceiling_ms.checked_add(1) {
        Some(span) => Duration::from_millis(random % span),
        None => Duration::from_millis(random),
    }
}
