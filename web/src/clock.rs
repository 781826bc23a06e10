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

/// A clock that moves only when told: for tests of timed work without waiting.
///
/// It has a wall clock ([`now`](Clock::now), moved by [`advance`](Self::advance) and jumped by
/// [`set`](Self::set)) and, as a real system does, a separate steady time that sleeps count
/// on. [`advance`](Self::advance) moves both and completes the sleeps whose time came;
/// [`set`](Self::set) moves the wall clock alone, forward or back, as an NTP correction or
/// an operator would, and wakes no sleeper. Clones share the same time.
#[derive(Clone)]
pub struct VirtualClock {
    state: std::sync::Arc<std::sync::Mutex<VirtualState>>,
}

/// The shared time of a [`VirtualClock`] and its sleepers.
struct VirtualState {
    wall: SystemTime,
    /// Steady time since the clock was made: what sleeps count on.
    steady: Duration,
    /// Pending sleeps by id: when each ends (steady time) and who to wake then.
    sleepers: std::collections::HashMap<u64, (Duration, Option<std::task::Waker>)>,
    next_id: u64,
}

impl VirtualClock {
    /// A clock reading `start`.
    pub fn new(start: SystemTime) -> Self {
        VirtualClock {
            state: std::sync::Arc::new(std::sync::Mutex::new(VirtualState {
                wall: start,
                steady: Duration::ZERO,
                sleepers: std::collections::HashMap::new(),
                next_id: 0,
            })),
        }
    }

    /// Lets `duration` pass: the wall clock and the steady time move on, and every sleep
    /// whose end came is woken.
    pub fn advance(&self, duration: Duration) {
        let wakers: Vec<std::task::Waker> = {
            let mut state = self.lock();
            state.wall += duration;
            state.steady += duration;
            let steady = state.steady;
            state
                .sleepers
                .values_mut()
                .filter(|(end, _)| *end <= steady)
                .filter_map(|(_, waker)| waker.take())
                .collect()
        };
        // Woken outside the lock: a waker may poll the sleep on this thread.
        for waker in wakers {
            waker.wake();
        }
    }

    /// Jumps the wall clock to `time`, forward or back. Sleeps count steady time, so none
    /// ends or is woken: the sleepers see the jump when they next read [`now`](Clock::now).
    pub fn set(&self, time: SystemTime) {
        self.lock().wall = time;
    }

    /// How many sleeps are still waiting for their end (a sleep that ended but was not yet
    /// polled does not count): tests wait for the sleepers they expect, which tells them that
    /// the work being tested has come to rest.
    pub fn sleepers(&self) -> usize {
        let state = self.lock();
        state
            .sleepers
            .values()
            .filter(|(end, _)| *end > state.steady)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VirtualState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("VirtualClock")
            .field("now", &state.wall)
            .field("sleepers", &state.sleepers.len())
            .finish()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> SystemTime {
        self.lock().wall
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let end = state.steady.saturating_add(duration);
        state.sleepers.insert(id, (end, None));
        Box::pin(VirtualSleep {
            clock: self.clone(),
            id,
        })
    }
}

/// One sleep on a [`VirtualClock`]; dropping it forgets the sleeper.
struct VirtualSleep {
    clock: VirtualClock,
    id: u64,
}

impl std::future::Future for VirtualSleep {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut state = self.clock.lock();
        let steady = state.steady;
        match state.sleepers.get_mut(&self.id) {
            Some((end, _)) if *end <= steady => {
                state.sleepers.remove(&self.id);
                std::task::Poll::Ready(())
            }
            Some((_, waker)) => {
                *waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
            None => std::task::Poll::Ready(()),
        }
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        self.clock.lock().sleepers.remove(&self.id);
    }
}
