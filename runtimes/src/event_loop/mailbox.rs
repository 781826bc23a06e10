//! What other threads send to an event loop: wake-ups of its connections, connections handed
//! over by the accepting loop, room at the connection gate, and shutdown commands.
//!
//! A loop sleeps in its reactor; senders write here, then wake the reactor only when the loop
//! is (about to be) asleep. Wake-ups from the loop's own thread (a handler that completes at
//! once, a connection that spent its round budget) therefore cost no system call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use super::slab::Key;

/// Wakes a reactor blocked in its wait, from any thread.
pub(crate) trait Notify: Send + Sync + 'static {
    /// Makes the current or the next wait return at once.
    fn notify(&self) -> std::io::Result<()>;
}

/// What the server asks of a loop, in increasing order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Command {
    /// Serve.
    Run = 0,
    /// Graceful shutdown: stop accepting, close idle connections, finish the rest.
    Drain = 1,
    /// The drain deadline passed: close everything now.
    Stop = 2,
}

/// One loop's inbox. `T` is a connection handed over from the accepting loop.
pub(crate) struct Mailbox<T> {
    notifier: Box<dyn Notify>,
    /// The loop is in (or entering) its reactor wait and must be notified.
    sleeping: AtomicBool,
    /// Connections whose wakers were woken since the loop last looked.
    woken: Mutex<Vec<Key>>,
    handed: Mutex<Handoffs<T>>,
    command: AtomicU8,
    /// The connection gate has room again (the accepting loop waits on it when full).
    gate_open: AtomicBool,
}

struct Handoffs<T> {
    queue: VecDeque<T>,
    /// The loop has ended and takes nothing more.
    closed: bool,
}

impl<T> Mailbox<T> {
    /// An empty mailbox whose loop is woken through `notifier`.
    pub(crate) fn new(notifier: Box<dyn Notify>) -> Self {
        Mailbox {
            notifier,
            sleeping: AtomicBool::new(false),
            woken: Mutex::new(Vec::new()),
            handed: Mutex::new(Handoffs {
                queue: VecDeque::new(),
                closed: false,
            }),
            command: AtomicU8::new(Command::Run as u8),
            gate_open: AtomicBool::new(false),
        }
    }

    /// Wakes the loop if it sleeps.
    fn poke(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            if let Err(error) = self.notifier.notify() {
                tracing::error!(%error, "cannot wake an event loop");
            }
        }
    }

    /// Queues a connection's wake-up.
    pub(crate) fn wake_connection(&self, key: Key) {
        lock(&self.woken).push(key);
        self.poke();
    }

    /// Hands a connection to the loop; gives it back when the loop has ended.
    pub(crate) fn hand_over(&self, item: T) -> Result<(), T> {
        let mut handed = lock(&self.handed);
        if handed.closed {
            return Err(item);
        }
        handed.queue.push_back(item);
        drop(handed);
        self.poke();
        Ok(())
    }

    /// Raises the loop's command (never lowers it).
    pub(crate) fn command(&self, command: Command) {
        self.command.fetch_max(command as u8, Ordering::SeqCst);
        self.poke();
    }

    /// Tells the accepting loop that the gate has room.
    pub(crate) fn open_gate(&self) {
        self.gate_open.store(true, Ordering::SeqCst);
        self.poke();
    }

    // ----- the loop's side -----

    /// The command in force.
    pub(crate) fn current_command(&self) -> Command {
        match self.command.load(Ordering::SeqCst) {
            0 => Command::Run,
            1 => Command::Drain,
            _ => Command::Stop,
        }
    }

    /// Moves the woken keys into `keys` (which the loop keeps, to reuse its allocation).
    pub(crate) fn take_woken(&self, keys: &mut Vec<Key>) {
        std::mem::swap(&mut *lock(&self.woken), keys);
    }

    /// Moves the connections handed over into `items`.
    pub(crate) fn take_handed(&self, items: &mut VecDeque<T>) {
        std::mem::swap(&mut lock(&self.handed).queue, items);
    }

    /// Whether the gate opened since the last call.
    pub(crate) fn take_gate_open(&self) -> bool {
        self.gate_open.swap(false, Ordering::SeqCst)
    }

    /// Refuses further hand-overs; returns those not yet taken.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut handed = lock(&self.handed);
        handed.closed = true;
        std::mem::take(&mut handed.queue)
    }

    /// Called before the reactor wait: true when the loop may sleep, false when mail arrived
    /// (the wait must then not block). From here until [`awake`](Self::awake), senders notify
    /// the reactor.
    pub(crate) fn prepare_sleep(&self, command_seen: Command) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        // Checked after announcing the sleep: whatever a sender queued before it saw
        // `sleeping` is seen here, and whatever it queues after is followed by a notification.
        let mail = !lock(&self.woken).is_empty()
            || !lock(&self.handed).queue.is_empty()
            || self.gate_open.load(Ordering::SeqCst)
            || self.current_command() != command_seen;
        if mail {
            self.sleeping.store(false, Ordering::SeqCst);
        }
        !mail
    }

    /// Called after the reactor wait returned.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clears the "already queued" mark of a connection's waker.
pub(crate) trait WakeMark: Send + Sync {
    /// Lets the next wake-up queue the connection again.
    fn clear(&self);
}

/// The waker of one connection: queues its key in its loop's mailbox, once until the loop
/// drives it.
pub(crate) struct ConnectionWaker<T> {
    mailbox: Arc<Mailbox<T>>,
    key: Key,
    queued: AtomicBool,
}

impl<T: Send + 'static> ConnectionWaker<T> {
    /// The waker of the connection under `key`, with the shared state the loop clears.
    pub(crate) fn new(mailbox: &Arc<Mailbox<T>>, key: Key) -> (Arc<Self>, Waker) {
        let state = Arc::new(ConnectionWaker {
            mailbox: Arc::clone(mailbox),
            key,
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&state));
        (state, waker)
    }
}

impl<T: Send + 'static> WakeMark for ConnectionWaker<T> {
    /// The loop is about to drive the connection: later wake-ups queue it again.
    fn clear(&self) {
        self.queued.store(false, Ordering::SeqCst);
    }
}

impl<T: Send + 'static> Wake for ConnectionWaker<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.mailbox.wake_connection(self.key);
        }
    }
}

/// The waker the accepting loop leaves with the connection gate when it is full.
pub(crate) struct GateWaker<T>(pub(crate) Arc<Mailbox<T>>);

impl<T: Send + 'static> Wake for GateWaker<T> {
    fn wake(self: Arc<Self>) {
        self.0.open_gate();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.open_gate();
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

    fn mailbox() -> (Arc<Mailbox<u32>>, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let notifier = CountingNotifier(Arc::clone(&count));
        (Arc::new(Mailbox::new(Box::new(notifier))), count)
    }

    #[test]
    fn an_awake_loop_is_not_notified_and_a_sleeping_one_is_once() {
        let (mailbox, notified) = mailbox();
        let key = Slab::new().insert(());
        let (_, waker) = ConnectionWaker::new(&mailbox, key);
        waker.wake_by_ref();
        assert_eq!(notified.load(Ordering::SeqCst), 0, "the loop is awake");
        assert!(!mailbox.prepare_sleep(Command::Run), "mail is waiting");
        let mut keys = Vec::new();
        mailbox.take_woken(&mut keys);
        assert_eq!(keys, [key]);
        assert!(mailbox.prepare_sleep(Command::Run));
        mailbox.hand_over(7).unwrap();
        mailbox.hand_over(8).unwrap();
        assert_eq!(
            notified.load(Ordering::SeqCst),
            1,
            "one notification per sleep"
        );
        mailbox.awake();
        let mut handed = VecDeque::new();
        mailbox.take_handed(&mut handed);
        assert_eq!(handed, [7, 8]);
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
    fn a_closed_mailbox_gives_hand_overs_back() {
        let (mailbox, _) = mailbox();
        mailbox.hand_over(1).unwrap();
        assert_eq!(mailbox.close(), [1]);
        assert_eq!(mailbox.hand_over(2), Err(2));
    }

    #[test]
    fn commands_only_escalate_and_end_the_sleep() {
        let (mailbox, notified) = mailbox();
        assert!(mailbox.prepare_sleep(Command::Run));
        mailbox.command(Command::Stop);
        mailbox.command(Command::Drain);
        assert_eq!(mailbox.current_command(), Command::Stop);
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        assert!(!mailbox.prepare_sleep(Command::Drain));
        assert!(mailbox.prepare_sleep(Command::Stop));
    }
}
