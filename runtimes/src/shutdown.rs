//! The shutdown signal shared by a server's threads, tasks and handles.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Instant;

/// A one-way switch that tells a server to shut down gracefully. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    changed: Condvar,
}

impl Shutdown {
    /// A switch not yet thrown.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Throws the switch; everything waiting on it wakes.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.lock());
        for waker in wakers {
            waker.wake();
        }
        self.inner.changed.notify_all();
    }

    /// Whether the switch was thrown.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Completes once the switch is thrown.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = self.clone();
        std::future::poll_fn(move |cx| {
            if shutdown.is_triggered() {
                return Poll::Ready(());
            }
            let mut wakers = shutdown.lock();
            // Checked again under the lock, so a trigger between the two checks is not missed.
            if shutdown.is_triggered() {
                return Poll::Ready(());
            }
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Blocks the thread until the switch is thrown or `deadline` passes; true if thrown.
    pub fn wait_blocking_until(&self, deadline: Option<Instant>) -> bool {
        let mut wakers = self.lock();
        while !self.is_triggered() {
            match deadline {
                None => {
                    wakers = self
                        .inner
                        .changed
                        .wait(wakers)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        return false;
                    };
                    wakers = self
                        .inner
                        .changed
                        .wait_timeout(wakers, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Throws the switch on SIGINT or SIGTERM (Unix), from a thread of its own.
    pub(crate) fn on_signals(&self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
            let shutdown = self.clone();
            std::thread::Builder::new()
                .name("weft-signals".into())
                .spawn(move || {
                    let mut received = signals.forever();
                    if let Some(signal) = received.next() {
                        tracing::info!(
                            signal,
                            "shutting down gracefully (signal again to stop now)"
                        );
                        shutdown.trigger();
                    }
                    // A second signal means the operator will not wait for the drain.
                    if let Some(signal) = received.next() {
                        tracing::warn!(
                            signal,
                            "second signal: exiting without waiting for requests"
                        );
                        std::process::exit(130);
                    }
                })?;
        }
        Ok(())
    }
}
