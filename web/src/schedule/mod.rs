//! The scheduler: cron jobs in time zones, one-shot and interval tasks, on the runtime's
//! timers, cluster-safe with a shared [backend](crate::backend).

pub mod lease;
