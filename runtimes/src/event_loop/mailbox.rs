//! What other threads send to an event loop beyond its connections' wake-ups (which the
//! driver's [`Wakeups`] queue): connections handed over by the accepting loop, room at the
//! connection gate, and shutdown commands. Senders queue here, then poke the loop's
//! [`Wakeups`], which notifies its reactor only when the loop is (about to be) asleep.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Wake;

use weft_adapters::driver::Mailbox as Wakeups;

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
    /// The driver's wake-ups, whose sleep handshake this mail rides on.
    wakeups: Arc<Wakeups>,
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
    /// An empty mailbox riding on `wakeups`, the loop's driver's.
    pub(crate) fn new(wakeups: Arc<Wakeups>) -> Self {
        Mailbox {
            wakeups,
            handed: Mutex::new(Handoffs {
                queue: VecDeque::new(),
                closed: false,
            }),
            command: AtomicU8::new(Command::Run as u8),
            gate_open: AtomicBool::new(false),
        }
    }

    /// The driver's wake-ups.
    pub(crate) fn wakeups(&self) -> &Arc<Wakeups> {
        &self.wakeups
    }

    /// Hands a connection to the loop; gives it back when the loop has ended.
    pub(crate) fn hand_over(&self, item: T) -> Result<(), T> {
        let mut handed = lock(&self.handed);
        if handed.closed {
            return Err(item);
        }
        handed.queue.push_back(item);
        drop(handed);
        self.wakeups.poke();
        Ok(())
    }

    /// Raises the loop's command (never lowers it).
    pub(crate) fn command(&self, command: Command) {
        self.command.fetch_max(command as u8, Ordering::SeqCst);
        self.wakeups.poke();
    }

    /// Tells the accepting loop that the gate has room.
    pub(crate) fn open_gate(&self) {
        self.gate_open.store(true, Ordering::SeqCst);
        self.wakeups.poke();
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

    /// Called before the reactor wait: true when the loop may sleep, false when mail arrived,
    /// this mailbox's or the driver's (the wait must then not block).
    pub(crate) fn prepare_sleep(&self, command_seen: Command) -> bool {
        self.wakeups.prepare_sleep(|| {
            !lock(&self.handed).queue.is_empty()
                || self.gate_open.load(Ordering::SeqCst)
                || self.current_command() != command_seen
        })
    }

    /// Called after the reactor wait returned.
    pub(crate) fn awake(&self) {
        self.wakeups.awake();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

    use weft_adapters::driver::Notify;

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
        let wakeups = Arc::new(Wakeups::new(Box::new(notifier)));
        (Arc::new(Mailbox::new(wakeups)), count)
    }

    #[test]
    fn hand_overs_end_the_sleep_and_notify_a_sleeping_loop_once() {
        let (mailbox, notified) = mailbox();
        mailbox.hand_over(6).unwrap();
        assert_eq!(notified.load(Ordering::SeqCst), 0, "the loop is awake");
        assert!(!mailbox.prepare_sleep(Command::Run), "mail is waiting");
        let mut handed = VecDeque::new();
        mailbox.take_handed(&mut handed);
        assert_eq!(handed, [6]);
        assert!(mailbox.prepare_sleep(Command::Run));
        mailbox.hand_over(7).unwrap();
        mailbox.hand_over(8).unwrap();
        assert_eq!(
            notified.load(Ordering::SeqCst),
            1,
            "one notification per sleep"
        );
        mailbox.awake();
        mailbox.take_handed(&mut handed);
        assert_eq!(handed, [7, 8]);
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

    #[test]
    fn an_open_gate_ends_the_sleep_once() {
        let (mailbox, _) = mailbox();
        mailbox.open_gate();
        assert!(!mailbox.prepare_sleep(Command::Run));
        assert!(mailbox.take_gate_open());
        assert!(mailbox.prepare_sleep(Command::Run));
    }
}
