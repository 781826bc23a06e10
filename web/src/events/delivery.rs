//! What [`Events::emit_and_wait`](super::Events::emit_and_wait) waits for: one emit's
//! listeners, counted as they end.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// How one event's delivery went, once every listener has ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The listeners the event reached (sync, async and blocking).
    pub listeners: usize,
    /// How many of them failed: returned an error, panicked, or were dropped unrun.
    pub failed: usize,
}

/// One emit's count, shared by the emitter and its deferred listeners' [`Ticket`]s.
#[derive(Default)]
pub(super) struct Tally {
    state: Mutex<TallyState>,
}

#[derive(Default)]
struct TallyState {
    delivery: Delivery,
    /// Deferred listeners still running.
    pending: usize,
    waker: Option<Waker>,
}

impl Tally {
    fn state(&self) -> std::sync::MutexGuard<'_, TallyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a listener that has ended.
    pub(super) fn record(&self, failed: bool) {
        let mut state = self.state();
        state.delivery.listeners += 1;
        state.delivery.failed += usize::from(failed);
    }

    /// A ticket for a deferred listener, which counts it when it ends (or is dropped).
    pub(super) fn ticket(self: &Arc<Self>) -> Ticket {
        self.state().pending += 1;
        Ticket {
            tally: Arc::clone(self),
            failed: None,
        }
    }

    /// Completes once every ticket has ended; call it after the emit has handed them out.
    pub(super) fn wait(self: Arc<Self>) -> impl Future<Output = Delivery> + Send + 'static {
        std::future::poll_fn(move |cx| {
            let mut state = self.state();
            if state.pending == 0 {
                Poll::Ready(state.delivery)
            } else {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// Held by an async or blocking listener's task: counts it in its emit's [`Tally`] when
/// dropped, so a task its runtime drops unrun still ends the wait (as a failure).
pub(super) struct Ticket {
    tally: Arc<Tally>,
    /// `Some` once the listener has run: whether it failed.
    failed: Option<bool>,
}

impl Ticket {
    /// The listener ran; `failed` says how it went.
    pub(super) fn finish(mut self, failed: bool) {
        self.failed = Some(failed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.failed.is_none() {
            tracing::warn!("an event listener was dropped unrun: its runtime stopped");
        }
        let waker = {
            let mut state = self.tally.state();
            state.delivery.listeners += 1;
            state.delivery.failed += usize::from(self.failed.unwrap_or(true));
            state.pending -= 1;
            if state.pending == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
