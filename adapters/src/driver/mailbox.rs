//! Wake-ups of a driver's connections from any thread, and the sleep handshake that makes them
//! cost a system call only when the loop is (about to be) asleep.
//!
//! A loop sleeps in its reactor; a waker queues its connection's key here, then wakes the
//! reactor only when the loop announced a sleep. Wake-ups from the loop's own thread (a handler
//! that completes at once, a connection that spent its round budget) therefore cost no system
//! call. A runtime's own mail (connections handed over, commands) rides on the same handshake:
//! it queues its mail, then calls [`Mailbox::poke`], and checks for it in
//! [`Mailbox::prepare_sleep`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use super::slab::Key;

/// Wakes a reactor blocked in its wait, from any thread.
pub trait Notify: Send + Sync + 'static {
    /// Makes the current or the next wait return at once.
    fn notify(&self) -> std::io::Result<()>;
}

/// One loop's wake-up inbox: the keys of the connections woken since the loop last looked.
pub struct Mailbox {
    notifier: Box<dyn Notify>,
    /// The loop is in (or entering) its reactor wait and must be notified.
    sleeping: AtomicBool,
    /// Connections whose wakers were woken since the loop last looked.
    woken: Mutex<Vec<Key>>,
}

impl Mailbox {
    /// An empty mailbox whose loop is woken through `notifier`.
    pub fn new(notifier: Box<dyn Notify>) -> Self {
        Mailbox {
            notifier,
            sleeping: AtomicBool::new(false),
            woken: Mutex::new(Vec::new()),
        }
    }

    /// Wakes the loop if it sleeps; call it after queueing mail of one's own.
    pub fn poke(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            if let Err(error) = self.notifier.notify() {
                tracing::error!(%error, "cannot wake an event loop");
            }
        }
    }

    /// Called before the reactor wait: true when the loop may sleep, false when mail arrived
    /// (the wait must then not block). `other_mail` says whether the caller's own mail waits;
    /// it is asked after the sleep is announced, so that whatever a sender queued before it saw
    /// the announcement is seen here, and whatever it queues after is followed by a
    /// notification. From here until [`awake`](Self::awake), [`poke`](Self::poke) notifies.
    pub fn prepare_sleep(&self, other_mail: impl FnOnce() -> bool) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        let mail = !lock(&self.woken).is_empty() || other_mail();
        if mail {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        !mail
    }

    /// Called after the reactor wait returned: the loop is awake and sees its mail by itself.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Queues a connection's wake-up.
    fn wake_connection(&self, key: Key) {
        lock(&self.woken).push(key);
        self.poke();
    }

    /// Moves the woken keys into `keys` (which the loop keeps, to reuse its allocation).
    pub(crate) fn take_woken(&self, keys: &mut Vec<Key>) {
        std::mem::swap(&mut *lock(&self.woken), keys);
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The waker of one connection: queues its key in its loop's mailbox, once until the loop
/// drives it.
pub(crate) struct ConnectionWaker {
    mailbox: Arc<Mailbox>,
    key: Key,
    queued: AtomicBool,
}

impl ConnectionWaker {
    /// The waker of the connection under `key`, with the shared state the loop clears.
    pub(crate) fn new(mailbox: &Arc<Mailbox>, key: Key) -> (Arc<Self>, Waker) {
        let state = Arc::new(ConnectionWaker {
            mailbox: Arc::clone(mailbox),
            key,
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&state));
        (state, waker)
    }

    /// The loop is about to drive the connection: later wake-ups queue it again.
    pub(crate) fn clear(&self) {
        self.queued.store(false, Ordering::SeqCst);
    }
}

impl Wake for ConnectionWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.mailbox.wake_connection(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::super::slab::Slab;
    use super::*;

    #[derive(Default)]
    struct CountingNotifier(Arc<AtomicUsize>);

    impl Notify for CountingNotifier {
        fn notify(&self) -> std::io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn mailbox() -> (Arc<Mailbox>, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let notifier = CountingNotifier(Arc::clone(&count));
        (Arc::new(Mailbox::new(Box::new(notifier))), count)
    }

    #[test]
    fn an_awake_loop_is_not_notified_and_a_sleeping_one_is_once() {
        let (mailbox, notified) = mailbox();
        let mut slab = Slab::new();
        let (a, b) = (slab.insert(()), slab.insert(()));
        let (mark, waker) = ConnectionWaker::new(&mailbox, a);
        waker.wake_by_ref();
        assert_eq!(notified.load(Ordering::SeqCst), 0, "the loop is awake");
        assert!(!mailbox.prepare_sleep(|| false), "mail is waiting");
        let mut keys = Vec::new();
        mailbox.take_woken(&mut keys);
        assert_eq!(keys, [a]);
        mark.clear();
        assert!(mailbox.prepare_sleep(|| false));
        let (_, other) = ConnectionWaker::new(&mailbox, b);
        waker.wake_by_ref();
        other.wake_by_ref();
        assert_eq!(
            notified.load(Ordering::SeqCst),
            1,
            "one notification per sleep"
        );
        mailbox.awake();
        keys.clear();
        mailbox.take_woken(&mut keys);
        assert_eq!(keys, [a, b]);
    }

    #[test]
    fn a_connection_is_queued_once_until_cleared() {
        let (mailbox, _) = mailbox();
        let key = Slab::new().insert(());
        let (state, waker) = ConnectionWaker::new(&mailbox, key);
        waker.wake_by_ref();
        waker.wake_by_ref();
        let mut keys = Vec::new();
        mailbox.take_woken(&mut keys);
        assert_eq!(keys.len(), 1);
        state.clear();
        waker.wake();
        keys.clear();
        mailbox.take_woken(&mut keys);
        assert_eq!(keys, [key]);
    }

    #[test]
    fn other_mail_ends_the_sleep_and_a_poke_notifies_a_sleeper_only() {
        let (mailbox, notified) = mailbox();
        assert!(!mailbox.prepare_sleep(|| true), "the caller's own mail");
        mailbox.poke();
        assert_eq!(notified.load(Ordering::SeqCst), 0, "not asleep");
        assert!(mailbox.prepare_sleep(|| false));
        mailbox.poke();
        mailbox.poke();
        assert_eq!(notified.load(Ordering::SeqCst), 1);
    }
}
