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
    waiters: Mutex<Waiters>,
    changed: Condvar,
}

/// The tasks waiting for the switch, each under the id its [`Wait`] future holds, so that a
/// future dropped before the shutdown (a connection that ended) takes its waker away.
#[derive(Debug, Default)]
struct Waiters {
    next_id: u64,
    wakers: std::collections::HashMap<u64, Waker>,
}

impl Shutdown {
    /// A switch not yet thrown.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Throws the switch; everything waiting on it wakes.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut self.lock().wakers);
        for waker in wakers.into_values() {
            waker.wake();
        }
        self.inner.changed.notify_all();
    }

    /// Whether the switch was thrown.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Completes once the switch is thrown.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Unpin + use<> {
        Wait {
            shutdown: self.clone(),
            id: None,
        }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.inner
            .waiters
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

/// The future of [`Shutdown::wait`].
struct Wait {
    shutdown: Shutdown,
    /// Where this future's waker is registered, once it is.
    id: Option<u64>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let shutdown = self.shutdown.clone();
        let mut waiters = shutdown.lock();
        // Checked again under the lock, so a trigger between the two checks is not missed.
        if shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let id = *self.id.get_or_insert_with(|| {
            waiters.next_id += 1;
            waiters.next_id
        });
        waiters.wakers.insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shutdown.lock().wakers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::Shutdown;

    #[test]
    fn dropped_waits_leave_no_waker_behind() {
        let shutdown = Shutdown::new();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut wait = pin!(shutdown.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(
            shutdown.lock().wakers.len(),
            0,
            "every finished connection took its waker"
        );
    }

    #[test]
    fn trigger_completes_every_wait() {
        let shutdown = Shutdown::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = pin!(shutdown.wait());
        let mut second = pin!(shutdown.wait());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        shutdown.trigger();
        assert!(first.as_mut().poll(&mut cx).is_ready());
        assert!(second.as_mut().poll(&mut cx).is_ready());
        assert!(shutdown.wait_blocking_until(None));
    }
}
