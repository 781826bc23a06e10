//! Where listeners live: one sorted, immutable list per event type, replaced whole on every
//! change, so that an emit takes a read lock just long enough to clone an `Arc`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use weft_service::runtime::BoxFuture;

use super::listener::ListenerId;

/// A synchronous or blocking listener, erased to its outcome.
pub(super) type SyncCall<E> = dyn Fn(&E) -> Result<(), String> + Send + Sync;

/// An async listener, erased to a boxed future of its outcome.
pub(super) type AsyncCall<E> = dyn Fn(Arc<E>) -> BoxFuture<Result<(), String>> + Send + Sync;

/// How a listener runs.
pub(super) enum Call<E> {
    /// In place, on the emitting thread.
    Sync(Box<SyncCall<E>>),
    /// As a task on the runtime.
    Async(Box<AsyncCall<E>>),
    /// On the runtime's blocking pool (an `Arc`: the pool's thread holds it while it runs).
    Blocking(Arc<SyncCall<E>>),
}

/// One registered listener of events of type `E`.
pub(super) struct Entry<E> {
    pub(super) id: ListenerId,
    priority: i32,
    once: bool,
    /// Cleared by `off` and by the first event of a once-listener: an emit that took its
    /// snapshot before the removal sees it and skips the listener.
    active: AtomicBool,
    pub(super) call: Call<E>,
}

impl<E> Entry<E> {
    pub(super) fn new(id: ListenerId, priority: i32, once: bool, call: Call<E>) -> Self {
        Entry {
            id,
            priority,
            once,
            active: AtomicBool::new(true),
            call,
        }
    }

    /// Whether this emit may call the listener. A once-listener is claimed by exactly one
    /// emit, whichever thread swaps the flag first; that emit then removes it.
    pub(super) fn claim(&self) -> bool {
        if self.once {
            self.active.swap(false, Ordering::AcqRel)
        } else {
            self.active.load(Ordering::Acquire)
        }
    }

    pub(super) fn is_once(&self) -> bool {
        self.once
    }
}

/// The listeners of one event type, by priority (higher first, then registration order).
pub(super) struct Listeners<E> {
    pub(super) entries: Vec<Arc<Entry<E>>>,
}

/// A [`Listeners`] list without its event type, for what does not know it (`off`, `Debug`).
trait Slot: Any + Send + Sync {
    /// The event type's name.
    fn event_name(&self) -> &'static str;
    fn len(&self) -> usize;
    fn contains(&self, id: ListenerId) -> bool;
    /// The list without listener `id` (which is deactivated), or `None` when it was the last.
    fn without(&self, id: ListenerId) -> Option<Arc<dyn Slot>>;
}

impl<E: Send + Sync + 'static> Slot for Listeners<E> {
    fn event_name(&self) -> &'static str {
        std::any::type_name::<E>()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn contains(&self, id: ListenerId) -> bool {
        self.entries.iter().any(|entry| entry.id == id)
    }

    fn without(&self, id: ListenerId) -> Option<Arc<dyn Slot>> {
        let mut entries = Vec::with_capacity(self.entries.len().saturating_sub(1));
        for entry in &self.entries {
            if entry.id == id {
                entry.active.store(false, Ordering::Release);
            } else {
                entries.push(Arc::clone(entry));
            }
        }
        if entries.is_empty() {
            None
        } else {
            Some(Arc::new(Listeners { entries }))
        }
    }
}

/// Every listener of an emitter, by event type.
#[derive(Default)]
pub(super) struct Registry {
    slots: RwLock<HashMap<TypeId, Arc<dyn Slot>>>,
}

impl Registry {
    /// The listeners of `E` now, or `None` (no allocation) when there is none.
    pub(super) fn snapshot<E: Send + Sync + 'static>(&self) -> Option<Arc<Listeners<E>>> {
        let slot = Arc::clone(
            self.slots
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&TypeId::of::<E>())?,
        );
        let slot: Arc<dyn Any + Send + Sync> = slot;
        slot.downcast::<Listeners<E>>().ok()
    }

    /// Adds `entry` after every listener of its priority or higher.
    pub(super) fn add<E: Send + Sync + 'static>(&self, entry: Entry<E>) {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let mut entries = slots
            .get(&TypeId::of::<E>())
            .and_then(|slot| {
                (Arc::clone(slot) as Arc<dyn Any + Send + Sync>)
                    .downcast()
                    .ok()
            })
            .map(|listeners: Arc<Listeners<E>>| listeners.entries.clone())
            .unwrap_or_default();
        let at = entries.partition_point(|other| other.priority >= entry.priority);
        entries.insert(at, Arc::new(entry));
        slots.insert(TypeId::of::<E>(), Arc::new(Listeners { entries }));
    }

    /// Removes listener `id` of event type `event`; `false` if it is not there.
    pub(super) fn remove_in(&self, event: TypeId, id: ListenerId) -> bool {
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        match slots.get(&event) {
            Some(slot) if slot.contains(id) => {
                match slot.without(id) {
                    Some(rest) => slots.insert(event, rest),
                    None => slots.remove(&event),
                };
                true
            }
            _ => false,
        }
    }

    /// Removes listener `id`, whatever its event type; `false` if it is not there.
    pub(super) fn remove(&self, id: ListenerId) -> bool {
        let event = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(_, slot)| slot.contains(id))
            .map(|(event, _)| *event);
        // Another thread may remove it between the two locks: `remove_in` checks again.
        event.is_some_and(|event| self.remove_in(event, id))
    }

    /// How many listeners `E` has.
    pub(super) fn count<E: 'static>(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&TypeId::of::<E>())
            .map_or(0, |slot| slot.len())
    }

    /// Each event type with listeners, by name, and how many it has.
    pub(super) fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<_> = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|slot| (slot.event_name(), slot.len()))
            .collect();
        counts.sort_unstable();
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ping;

    fn entry(id: u64, priority: i32) -> Entry<Ping> {
        Entry::new(
            ListenerId::for_test(id),
            priority,
            false,
            Call::Sync(Box::new(|_| Ok(()))),
        )
    }

    fn ids(registry: &Registry) -> Vec<u64> {
        registry
            .snapshot::<Ping>()
            .map(|listeners| listeners.entries.iter().map(|e| e.id.get()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn keeps_listeners_by_priority_then_registration_order() {
        let registry = Registry::default();
        for (id, priority) in [(1, 0), (2, 5), (3, 0), (4, -1), (5, 5)] {
            registry.add(entry(id, priority));
        }
        assert_eq!(ids(&registry), [2, 5, 1, 3, 4]);
    }

    #[test]
    fn removing_the_last_listener_drops_the_event_type() {
        let registry = Registry::default();
        registry.add(entry(1, 0));
        let held = registry.snapshot::<Ping>().unwrap();
        assert!(registry.remove(ListenerId::for_test(1)));
        // An emit that took its snapshot before the removal skips the listener.
        assert!(!held.entries[0].claim());
        assert!(registry.snapshot::<Ping>().is_none());
        assert_eq!(registry.count::<Ping>(), 0);
        assert!(registry.counts().is_empty());
        assert!(!registry.remove(ListenerId::for_test(1)));
    }
}
