//! Protocol deadlines of a loop's connections, in one min-heap.
//!
//! Invalidation is lazy: nothing is ever removed from the middle of the heap. A connection keeps
//! the deadline of its one live entry (`armed`); an entry whose deadline is not its connection's
//! `armed`, or whose key's generation is gone, is stale and skipped when it comes out. A deadline
//! moving *later* (the body-idle timer moves on every read) pushes nothing: the live entry fires
//! early and is armed again for the real deadline then. So the heap holds about one entry per
//! connection, whatever the traffic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::slab::Key;

/// A min-heap of `(deadline, key)`.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
}

impl Timers {
    /// Empty.
    pub(crate) fn new() -> Self {
        Timers::default()
    }

    /// Makes sure `key` is woken by `wanted`, given the deadline of its live entry (`armed`,
    /// updated here). An earlier deadline pushes an entry; a later or absent one keeps the live
    /// entry, which then fires early and harmlessly.
    pub(crate) fn arm(&mut self, key: Key, armed: &mut Option<Instant>, wanted: Option<Instant>) {
        let Some(wanted) = wanted else {
            return;
        };
        if armed.is_none_or(|live| wanted < live) {
            self.heap.push(Reverse((wanted, key)));
            *armed = Some(wanted);
        }
    }

    /// The earliest deadline in the heap (perhaps a stale one: waking early is harmless).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Takes the earliest entry if its deadline is at or before `now`. The caller checks it is
    /// live: the key still finds its connection and the deadline is the connection's `armed`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Key)> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Entries in the heap, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::slab::Slab;
    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn due_entries_come_out_in_deadline_order_and_later_ones_stay() {
        let t0 = Instant::now();
        let mut slab = Slab::new();
        let keys: Vec<Key> = (0..3).map(|i| slab.insert(i)).collect();
        let mut armed = [None; 3];
        let mut timers = Timers::new();
        timers.arm(keys[0], &mut armed[0], Some(ms(t0, 30)));
        timers.arm(keys[1], &mut armed[1], Some(ms(t0, 10)));
        timers.arm(keys[2], &mut armed[2], Some(ms(t0, 20)));
        assert_eq!(timers.next_deadline(), Some(ms(t0, 10)));
        assert_eq!(timers.pop_due(ms(t0, 5)), None);
        assert_eq!(timers.pop_due(ms(t0, 25)), Some((ms(t0, 10), keys[1])));
        assert_eq!(timers.pop_due(ms(t0, 25)), Some((ms(t0, 20), keys[2])));
        assert_eq!(timers.pop_due(ms(t0, 25)), None);
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn a_later_deadline_keeps_the_live_entry_and_pushes_nothing() {
        let t0 = Instant::now();
        let key = Slab::new().insert(());
        let mut armed = None;
        let mut timers = Timers::new();
        timers.arm(key, &mut armed, Some(ms(t0, 10)));
        for later in 11..1000 {
            timers.arm(key, &mut armed, Some(ms(t0, later)));
        }
        assert_eq!(timers.len(), 1, "extending a deadline is free");
        assert_eq!(armed, Some(ms(t0, 10)), "the live entry fires early");
    }

    #[test]
    fn an_earlier_deadline_supersedes_the_live_entry_which_becomes_stale() {
        let t0 = Instant::now();
        let key = Slab::new().insert(());
        let mut armed = None;
        let mut timers = Timers::new();
        timers.arm(key, &mut armed, Some(ms(t0, 50)));
        timers.arm(key, &mut armed, Some(ms(t0, 20)));
        assert_eq!(armed, Some(ms(t0, 20)));
        let (deadline, popped) = timers.pop_due(ms(t0, 60)).unwrap();
        assert_eq!((deadline, popped), (ms(t0, 20), key));
        assert_eq!(armed, Some(deadline), "the first entry out is live");
        armed = None;
        let (deadline, _) = timers.pop_due(ms(t0, 60)).unwrap();
        assert_ne!(armed, Some(deadline), "the superseded entry is stale");
    }

    #[test]
    fn an_entry_of_a_removed_connection_is_recognised_as_stale() {
        let t0 = Instant::now();
        let mut slab = Slab::new();
        let old = slab.insert("old");
        let mut armed = None;
        let mut timers = Timers::new();
        timers.arm(old, &mut armed, Some(ms(t0, 1)));
        slab.remove(old);
        let new = slab.insert("new");
        let (_, key) = timers.pop_due(ms(t0, 2)).unwrap();
        assert_eq!(key, old);
        assert!(
            slab.get_mut(key).is_none(),
            "the newcomer in the slot is not woken"
        );
        assert!(slab.get_mut(new).is_some());
    }

    #[test]
    fn no_deadline_arms_nothing() {
        let key = Slab::new().insert(());
        let mut armed = None;
        let mut timers = Timers::new();
        timers.arm(key, &mut armed, None);
        assert_eq!(timers.next_deadline(), None);
        assert_eq!(armed, None);
    }
}
