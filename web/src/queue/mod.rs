//! Job queues: producers add jobs, workers run them with retries, backoff, a dead-letter
//! queue, progress and events, on any [backend](crate::backend).

pub mod store;
