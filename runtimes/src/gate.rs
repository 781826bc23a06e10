//! The bound on connections served at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Counts connections; past `max`, acceptors wait until one ends.
#[derive(Debug)]
pub(crate) struct ConnectionGate {
    state: Mutex<GateState>,
    /// Signalled when the last connection ends.
    idle: Condvar,
}

#[derive(Debug)]
struct GateState {
    active: usize,
    max: usize,
    waiters: Vec<Waker>,
}

/// One admitted connection; dropping it lets the next one in.
#[derive(Debug)]
pub(crate) struct Permit {
    gate: Arc<ConnectionGate>,
}

impl ConnectionGate {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionGate {
            state: Mutex::new(GateState {
                active: 0,
                max: max.max(1),
                waiters: Vec::new(),
            }),
            idle: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection when there is room; otherwise wakes `cx` when there is.
    pub(crate) fn poll_acquire(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let mut state = self.lock();
        if state.active < state.max {
            state.active += 1;
            return Poll::Ready(Permit {
                gate: Arc::clone(self),
            });
        }
        state.waiters.push(cx.waker().clone());
        Poll::Pending
    }

    /// Connections being served.
    pub(crate) fn active(&self) -> usize {
        self.lock().active
    }

    /// Blocks until no connection is left or `deadline` passes; true when none is left.
    pub(crate) fn wait_idle_until(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        while state.active > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.active -= 1;
        let waiters = std::mem::take(&mut state.waiters);
        if state.active == 0 {
            self.gate.idle.notify_all();
        }
        drop(state);
        for waker in waiters {
            waker.wake();
        }
    }
}
