//! Wake-ups inside the process: a [`Signal`] that idle workers wait on and producers fire,
//! so that a job added in this process starts at once instead of at the next poll.
//!
//! A signal counts its notifications (its *generation*). A waiter reads the generation
//! *before* it looks for work and then waits for it to change: a notification between the two
//! is never missed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use super::store::QueueStore;

/// A notification counter with waiters.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    generation: u64,
    /// The waiters' wakers, by waiter; a waiter removes its own when dropped, so this holds
    /// at most one per waiter alive.
    wakers: Vec<(u64, Waker)>,
    /// Waiters chosen by `notify_one` that have not seen it yet: each completes at its next
    /// poll. Removed with the waiter.
    picked: Vec<u64>,
    next_waiter: u64,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many notifications there were so far.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Wakes every waiter.
    pub(crate) fn notify(&self) {
        let wakers = {
            let mut state = self.lock();
            state.generation = state.generation.wrapping_add(1);
            std::mem::take(&mut state.wakers)
        };
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Wakes one waiter: one job was added, and one idle worker slot is enough to take it.
    /// Waking every slot for each job would have all but one look at the store for nothing
    /// (a round trip each on Redis or SQLite). A slot that finishes a job looks for the next
    /// without waiting, so no job is left behind. When a waiter is woken, the notification
    /// is its alone (the generation stays): slots that read the generation earlier and wait
    /// later do not look for the job it will take. With no waiter, the generation moves, so
    /// that those slots look.
    pub(crate) fn notify_one(&self) {
        let waker = {
            let mut state = self.lock();
            if state.wakers.is_empty() {
                state.generation = state.generation.wrapping_add(1);
                None
            } else {
                let (id, waker) = state.wakers.remove(0);
                state.picked.push(id);
                Some(waker)
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Completes once the generation is no longer `seen`.
    pub(crate) fn changed(self: &Arc<Self>, seen: u64) -> Changed {
        let id = {
            let mut state = self.lock();
            state.next_waiter = state.next_waiter.wrapping_add(1);
            state.next_waiter
        };
        Changed {
            signal: Arc::clone(self),
            seen,
            id,
        }
    }
}

/// The future of [`Signal::changed`].
#[derive(Debug)]
pub(crate) struct Changed {
    signal: Arc<Signal>,
    seen: u64,
    id: u64,
}

impl Future for Changed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.signal.lock();
        let id = self.id;
        if let Some(at) = state.picked.iter().position(|picked| *picked == id) {
            state.picked.swap_remove(at);
            return Poll::Ready(());
        }
        if state.generation != self.seen {
            return Poll::Ready(());
        }
        match state.wakers.iter_mut().find(|(waiter, _)| *waiter == id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => state.wakers.push((id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        let id = self.id;
        let mut state = self.signal.lock();
        state.wakers.retain(|(waiter, _)| *waiter != id);
        state.picked.retain(|picked| *picked != id);
    }
}

/// The signal of queue `name` in `store`: the same for every [`Queue`](super::Queue) of this
/// process with the same store (the same `Arc`) and name.
pub(crate) fn for_queue(store: &Arc<dyn QueueStore>, name: &str) -> Arc<Signal> {
    type Registry = Mutex<HashMap<(usize, String), Weak<Signal>>>;
    static SIGNALS: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    // The store's address names it: while a signal lives, a queue holding the store does,
    // so the address cannot be reused by another store.
    let address = Arc::as_ptr(store).cast::<()>() as usize;
    let mut signals = SIGNALS
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (address, name.to_owned());
    if let Some(signal) = signals.get(&key).and_then(Weak::upgrade) {
        return signal;
    }
    // Forget the signals of queues that are gone, so the registry stays as small as the
    // queues alive.
    signals.retain(|_, signal| signal.strong_count() > 0);
    let signal = Arc::new(Signal::default());
    signals.insert(key, Arc::downgrade(&signal));
    signal
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn a_notification_after_the_generation_was_read_is_not_missed() {
        let signal = Arc::new(Signal::default());
        let seen = signal.generation();
        signal.notify();
        block_on(signal.changed(seen));
    }

    #[test]
    fn a_waiter_waits_until_notified_and_leaves_no_waker_behind() {
        let signal = Arc::new(Signal::default());
        let mut waiting = Box::pin(signal.changed(signal.generation()));
        assert!(block_on(poll_once(waiting.as_mut())).is_none());
        assert!(block_on(poll_once(waiting.as_mut())).is_none());
        assert_eq!(signal.lock().wakers.len(), 1);
        drop(waiting);
        assert!(signal.lock().wakers.is_empty());
    }

    #[test]
    fn notify_one_wakes_one_waiter_and_leaves_the_others_waiting() {
        let signal = Arc::new(Signal::default());
        let seen = signal.generation();
        let woken: Vec<Arc<Flag>> = (0..3).map(|_| Arc::new(Flag::default())).collect();
        let mut waiters: Vec<_> = (0..3).map(|_| Box::pin(signal.changed(seen))).collect();
        for (waiter, flag) in waiters.iter_mut().zip(&woken) {
            let waker = Waker::from(Arc::clone(flag));
            let mut cx = Context::from_waker(&waker);
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
        }
        signal.notify_one();
        let count = |flags: &[Arc<Flag>]| flags.iter().filter(|f| f.is_set()).count();
        assert_eq!(count(&woken), 1, "one waiter woken");
        assert_eq!(signal.lock().wakers.len(), 2, "the others still registered");
        // The woken waiter completes; the notification was its alone.
        for (waiter, flag) in waiters.iter_mut().zip(&woken) {
            let waker = Waker::from(Arc::clone(flag));
            let mut cx = Context::from_waker(&waker);
            assert_eq!(waiter.as_mut().poll(&mut cx).is_ready(), flag.is_set());
        }
        assert!(signal.lock().picked.is_empty());
        assert!(
            block_on(poll_once(signal.changed(seen))).is_none(),
            "a later waiter is not woken by a notification another took"
        );
        signal.notify();
        assert_eq!(count(&woken), 3, "notify wakes the rest");
    }

    /// A waker that records that it was woken.
    #[derive(Default)]
    struct Flag(std::sync::atomic::AtomicBool);

    impl Flag {
        fn is_set(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn notify_one_without_waiters_moves_the_generation() {
        let signal = Arc::new(Signal::default());
        let seen = signal.generation();
        signal.notify_one();
        block_on(signal.changed(seen));
    }

    #[test]
    fn a_picked_waiter_dropped_unpolled_leaves_nothing_behind() {
        let signal = Arc::new(Signal::default());
        let mut waiting = Box::pin(signal.changed(signal.generation()));
        assert!(block_on(poll_once(waiting.as_mut())).is_none());
        signal.notify_one();
        drop(waiting);
        let state = signal.lock();
        assert!(state.wakers.is_empty() && state.picked.is_empty());
    }

    #[test]
    fn queues_with_the_same_store_and_name_share_a_signal() {
        let store: Arc<dyn QueueStore> = Arc::new(crate::backend::memory::MemoryBackend::new());
        let other: Arc<dyn QueueStore> = Arc::new(crate::backend::memory::MemoryBackend::new());
        let a = for_queue(&store, "mail");
        assert!(Arc::ptr_eq(&a, &for_queue(&store, "mail")));
        assert!(!Arc::ptr_eq(&a, &for_queue(&store, "images")));
        assert!(!Arc::ptr_eq(&a, &for_queue(&other, "mail")));
    }
}
