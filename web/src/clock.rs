//! Time for background work: the wall clock that cron schedules and job delays read, and the
//! sleeps that wait for it.
//!
//! The scheduler and the queues never read the system clock themselves: they take a
//! [`Clock`]. [`SystemClock`] is the real one (its sleeps use the runtime's timers through
//! [`weft_service::runtime::sleep`], so they work on every runtime); a virtual clock lets
//! tests move time by hand, jump it, or stall it without waiting.

use std::time::{Duration, SystemTime};

use weft_service::runtime::BoxFuture;

/// Reads the wall clock and sleeps on it.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

/// The system's clock, with the current runtime's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(weft_service::runtime::sleep(duration))
    }
}

/// Milliseconds since the Unix epoch (negative before it): how backends store times.
pub fn unix_millis(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}
