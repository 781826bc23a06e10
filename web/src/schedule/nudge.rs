//! A wake-up call for the scheduler's sleeping loops: a control change (pause, stop, a new
//! job, the scheduler stopping) must not wait for the loops' next tick.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// A generation counter with the wakers of the loops waiting for it to change.
#[derive(Debug, Default)]
pub(crate) struct Nudge {
    state: Mutex<(u64, Vec<Waker>)>,
}

impl Nudge {
    /// The current generation: read it *before* checking the state a change would concern,
    /// then wait with [`Nudge::changed`], and no change in between is lost.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().0
    }

    /// Wakes every loop waiting.
    pub(crate) fn wake_all(&self) {
        let wakers = {
            let mut state = self.lock();
            state.0 += 1;
            std::mem::take(&mut state.1)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Completes once the generation is no longer `seen`.
    pub(crate) fn changed(&self, seen: u64) -> Changed<'_> {
        Changed { nudge: self, seen }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Waker>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The future of [`Nudge::changed`].
pub(crate) struct Changed<'a> {
    nudge: &'a Nudge,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.nudge.lock();
        if state.0 != self.seen {
            return Poll::Ready(());
        }
        if !state.1.iter().any(|waker| waker.will_wake(cx.waker())) {
            state.1.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
