//! Blocking work, kept off the threads that serve connections.

/// Runs `work` (file I/O, a synchronous database driver, CPU-heavy hashing) on a thread pool
/// shared by every runtime, and completes with its result. An event loop that ran such work
/// itself would stall every connection it serves; awaiting this instead stalls only the one
/// request that needs the work done.
///
/// The pool grows with demand (up to 500 threads) and shrinks when idle; it works under any
/// runtime, including a user's own executor.
///
/// ```
/// # futures_lite::future::block_on(async {
/// let digest = weft_runtime::spawn_blocking(|| (1..=10u64).product::<u64>()).await;
/// assert_eq!(digest, 3_628_800);
/// # });
/// ```
pub async fn spawn_blocking<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    blocking::unblock(work).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocking_work_runs_on_another_thread() {
        let caller = std::thread::current().id();
        let worker =
            futures_lite::future::block_on(super::spawn_blocking(|| std::thread::current().id()));
        assert_ne!(worker, caller);
    }
}
