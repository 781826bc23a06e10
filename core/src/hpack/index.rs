//! What the encoder asks of the tables for every field it sends: is this field in the static or
//! the dynamic table, and if not, is its name? Answered in constant time: the static table by a
//! `match` on the name ([`static_name`]), the dynamic table by two hash maps from a field's
//! hash, and its name's, to the serial number of the newest entry that has it.
//!
//! The maps are hints. A hit is checked against the entry itself, so a hash collision or an
//! evicted entry only costs a missed match, never a wrong index. Evictions leave stale hints
//! behind; the maps are rebuilt from the table once they hold twice as many hints as it holds
//! entries, which keeps their memory proportional to the table's.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;

use super::table::{DynamicTable, StaticName, static_exact, static_name};

/// Where a field was found: the index of an exact match, else of an entry with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    /// An entry with the same name and value (§6.1).
    pub(super) exact: Option<usize>,
    /// An entry with the same name (§6.2), the static table's first.
    pub(super) name: Option<usize>,
    /// The name's place in the static table.
    pub(super) static_name: Option<StaticName>,
    name_hash: u64,
}

/// The dynamic table of an encoder, with its hash index.
#[derive(Debug, Clone)]
pub(super) struct IndexedTable {
    table: DynamicTable,
    /// Hash of name and value -> serial number of the newest entry with them.
    by_field: HashMap<u64, u64, BuildHasherDefault<HashedKey>>,
    /// Hash of the name -> serial number of the newest entry with that name.
    by_name: HashMap<u64, u64, BuildHasherDefault<HashedKey>>,
}

impl IndexedTable {
    pub(super) fn new(max_size: usize) -> Self {
        IndexedTable {
            table: DynamicTable::new(max_size),
            by_field: HashMap::default(),
            by_name: HashMap::default(),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.table.size()
    }

    pub(super) fn max_size(&self) -> usize {
        self.table.max_size()
    }

    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.table.set_max_size(max_size);
    }

    /// Looks `(name, value)` up in both tables, with the same answer as a scan would give:
    /// a static exact match first, then the newest dynamic one; for the name alone, the static
    /// table first, then the newest dynamic entry.
    pub(super) fn find(&self, name: &[u8], value: &[u8]) -> Found {
        let static_name = static_name(name);
        let name_hash = hash(NAME_SEED, name);
        let exact = static_name.and_then(|s| static_exact(s, value));
        let mut found = Found {
            exact,
            name: exact.or(static_name.map(|s| s.first)),
            static_name,
            name_hash,
        };
        if found.exact.is_some() {
            return found;
        }
        let Some(name_index) = self.live(&self.by_name, name_hash, |(n, _)| n == name) else {
            return found;
        };
        found.name = found.name.or(Some(name_index));
        found.exact = self.live(&self.by_field, field_hash(name_hash, value), |(n, v)| {
            n == name && v == value
        });
        found
    }

    /// Adds an entry (§4.4), `found` being what [`IndexedTable::find`] said of it.
    pub(super) fn insert(&mut self, name: Bytes, value: Bytes, found: &Found) {
        let field_hash = field_hash(found.name_hash, &value);
        if !self.table.insert(name, value) {
            return;
        }
        let Some(serial) = self.table.newest_serial() else {
            return;
        };
        self.by_field.insert(field_hash, serial);
        self.by_name.insert(found.name_hash, serial);
        if self.by_field.len() > 2 * self.table.len() + 16 {
            self.rebuild();
        }
    }

    /// The combined index of the entry a hint points to, if it is still there and `matches`.
    fn live(
        &self,
        hints: &HashMap<u64, u64, BuildHasherDefault<HashedKey>>,
        hash: u64,
        matches: impl Fn((&[u8], &[u8])) -> bool,
    ) -> Option<usize> {
        let &serial = hints.get(&hash)?;
        let (index, (name, value)) = self.table.by_serial(serial)?;
        matches((name, value)).then_some(index)
    }

    /// Drops the stale hints: the maps again hold only what the table holds.
    fn rebuild(&mut self) {
        self.by_field.clear();
        self.by_name.clear();
        for (serial, (name, value)) in self.table.serials() {
            let name_hash = hash(NAME_SEED, name);
            self.by_field.insert(field_hash(name_hash, value), serial);
            self.by_name.insert(name_hash, serial);
        }
    }
}

const NAME_SEED: u64 = 0x243f_6a88_85a3_08d3;
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fast non-cryptographic hash, eight bytes a step. A peer cannot hurt us by making names
/// collide: a collision costs one missed match, and the table bounds how many hints exist.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut state = seed ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        state = (state.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
    // The last eight bytes again (overlapping the last word) when there are that many, else
    // the few there are; built in a register, as a copy into a stack array stalls the load.
    let tail = match bytes.last_chunk::<8>() {
        Some(last) => u64::from_le_bytes(*last),
        None => bytes.iter().fold(0, |tail, &b| (tail << 8) | u64::from(b)),
    };
    (state.rotate_left(23) ^ tail).wrapping_mul(MULTIPLIER)
}

/// The hash of a whole field, from its name's.
fn field_hash(name_hash: u64, value: &[u8]) -> u64 {
    hash(name_hash, value)
}

/// Hashes a key that is already a hash: only mixes its bits so that every bit of it counts
/// for the map's buckets (the 64-bit finaliser of MurmurHash3).
#[derive(Debug, Default, Clone, Copy)]
struct HashedKey(u64);

impl Hasher for HashedKey {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash(self.0, bytes);
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpack::table::STATIC_TABLE;

    #[test]
    fn static_name_agrees_with_the_table() {
        for (i, &(name, _)) in STATIC_TABLE.iter().enumerate() {
            let found = static_name(name).unwrap();
            let range = found.first - 1..found.first - 1 + found.count;
            assert!(range.contains(&i), "{}", String::from_utf8_lossy(name));
            assert!(STATIC_TABLE[range].iter().all(|&(n, _)| n == name));
            assert_eq!(
                found.first == i + 1,
                i == 0 || STATIC_TABLE[i - 1].0 != name
            );
        }
        assert_eq!(static_name(b"x-custom"), None);
        assert_eq!(static_name(b"Accept"), None);
    }

    /// Fields from a small alphabet, so names and values repeat and entries get evicted.
    fn pseudo_random_fields(count: usize) -> Vec<(Bytes, Bytes)> {
        let names: [&[u8]; 6] = [b":path", b"accept", b"x-a", b"x-b", b"cookie", b":status"];
        let values: [&[u8]; 5] = [b"", b"/", b"200", b"abc", b"a-longer-value-of-some-size"];
        let mut state = 0x1234_5678_9abc_def1u64;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let name = names[(state % 6) as usize];
                let value = values[(state / 6 % 5) as usize];
                (Bytes::from_static(name), Bytes::from_static(value))
            })
            .collect()
    }

    #[test]
    fn finds_what_a_scan_finds() {
        for max_size in [0, 40, 100, 256, 4096] {
            let mut indexed = IndexedTable::new(max_size);
            let mut scanned = DynamicTable::new(max_size);
            for (round, (name, value)) in pseudo_random_fields(3000).into_iter().enumerate() {
                let found = indexed.find(&name, &value);
                assert_eq!(
                    (found.exact, found.name),
                    scanned.find(&name, &value),
                    "{max_size} {round}"
                );
                if round % 3 != 0 {
                    indexed.insert(name.clone(), value.clone(), &found);
                    scanned.insert(name, value);
                }
                if round % 500 == 499 {
                    let size = (round / 500 % 3) * max_size / 2;
                    indexed.set_max_size(size);
                    scanned.set_max_size(size);
                }
            }
        }
    }

    #[test]
    fn hints_stay_proportional_to_the_table() {
        let mut indexed = IndexedTable::new(200);
        for i in 0..10_000u32 {
            let value = Bytes::from(i.to_string());
            let found = indexed.find(b"x-counter", &value);
            indexed.insert(Bytes::from_static(b"x-counter"), value, &found);
            assert!(indexed.by_field.len() <= 2 * indexed.table.len() + 17);
            assert!(indexed.by_name.len() <= indexed.by_field.len());
        }
    }
}
