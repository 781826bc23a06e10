//! A driver's connections by key: a slot vector with a free list, where every slot counts its
//! occupants so that a key kept after its connection ended finds nothing rather than a
//! newcomer.

/// A connection's key in its [`Driver`](super::Driver): a slot index (what the reactor knows
/// the connection by) and the generation of the connection stored there, so that a key kept
/// after its connection ended finds nothing rather than a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    index: usize,
    generation: u32,
}

impl Key {
    /// The slot index: what the reactor knows the connection by.
    pub fn index(self) -> usize {
        self.index
    }
}

/// Values by [`Key`], reusing free slots first so the vector stays as small as the busiest
/// moment needed.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

#[derive(Debug)]
struct Slot<T> {
    /// Bumped each time the slot is emptied.
    generation: u32,
    value: Option<T>,
}

impl<T> Slab<T> {
    /// An empty slab.
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Values stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key the next [`insert`](Self::insert) will return.
    pub(crate) fn vacant_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key {
                index,
                generation: self.slots[index].generation,
            },
            None => Key {
                index: self.slots.len(),
                generation: 0,
            },
        }
    }

    /// Stores `value`; returns its key.
    pub(crate) fn insert(&mut self, value: T) -> Key {
        let key = self.vacant_key();
        match self.free.pop() {
            Some(index) => self.slots[index].value = Some(value),
            None => self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            }),
        }
        self.len += 1;
        key
    }

    /// The value under `key`, unless it was removed since.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slots
            .get_mut(key.index)
            .filter(|slot| slot.generation == key.generation)
            .and_then(|slot| slot.value.as_mut())
    }

    /// The key of the value in slot `index`, if any (for readiness events, which carry only
    /// the index).
    pub(crate) fn key_at(&self, index: usize) -> Option<Key> {
        self.slots
            .get(index)
            .filter(|slot| slot.value.is_some())
            .map(|slot| Key {
                index,
                generation: slot.generation,
            })
    }

    /// Takes the value under `key` out, freeing its slot.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self
            .slots
            .get_mut(key.index)
            .filter(|slot| slot.generation == key.generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    /// The keys of every value stored.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| Key {
                index,
                generation: slot.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_returns_the_vacant_key_and_get_finds_the_value() {
        let mut slab = Slab::new();
        let expected = slab.vacant_key();
        let a = slab.insert("a");
        assert_eq!(a, expected);
        let b = slab.insert("b");
        assert_ne!(a, b);
        assert_eq!(slab.get_mut(a), Some(&mut "a"));
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn a_removed_key_finds_nothing_even_after_its_slot_is_reused() {
        let mut slab = Slab::new();
        let old = slab.insert(1);
        assert_eq!(slab.remove(old), Some(1));
        assert!(slab.is_empty());
        let new = slab.insert(2);
        assert_eq!(new.index(), old.index(), "the free slot is reused");
        assert_eq!(slab.get_mut(old), None);
        assert_eq!(slab.remove(old), None);
        assert_eq!(slab.get_mut(new), Some(&mut 2));
        assert_eq!(slab.key_at(new.index()), Some(new));
    }

    #[test]
    fn free_slots_are_reused_before_the_vector_grows() {
        let mut slab = Slab::new();
        let keys: Vec<_> = (0..4).map(|i| slab.insert(i)).collect();
        slab.remove(keys[1]);
        slab.remove(keys[3]);
        let reused = [slab.insert(10).index(), slab.insert(11).index()];
        assert!(reused.contains(&1) && reused.contains(&3));
        assert_eq!(slab.insert(12).index(), 4);
        assert_eq!(slab.len(), 5);
    }

    #[test]
    fn keys_lists_only_occupied_slots() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        let c = slab.insert('c');
        slab.remove(b);
        assert_eq!(slab.keys(), vec![a, c]);
        assert_eq!(slab.key_at(b.index()), None);
        assert_eq!(slab.key_at(99), None);
    }
}
