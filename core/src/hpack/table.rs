//! The static table (RFC 7541 Appendix A) and the dynamic table (RFC 7541 §2.3, §4).
//!
//! Both tables share one index space (§2.3.3): 1..=61 is the static table, 62 and up the
//! dynamic table, newest entry first.

use std::collections::VecDeque;

use bytes::Bytes;

/// Bytes an entry accounts for beyond its name and value (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// Size of an entry as RFC 7541 §4.1 counts it: name + value + 32.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The static table of RFC 7541 Appendix A; index `i` is `STATIC_TABLE[i - 1]`.
pub(super) const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The entries of the static table that have one name: index `first` to `first + count - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StaticName {
    /// Index of the first entry with the name (RFC 7541 Appendix A).
    pub(super) first: usize,
    /// How many consecutive entries have it.
    pub(super) count: usize,
}

/// Where `name` is in the static table, by one `match` rather than a scan of 61 entries.
pub(super) fn static_name(name: &[u8]) -> Option<StaticName> {
    let (first, count) = match name {
        b":authority" => (1, 1),
        b":method" => (2, 2),
        b":path" => (4, 2),
        b":scheme" => (6, 2),
        b":status" => (8, 7),
        b"accept-charset" => (15, 1),
        b"accept-encoding" => (16, 1),
        b"accept-language" => (17, 1),
        b"accept-ranges" => (18, 1),
        b"accept" => (19, 1),
        b"access-control-allow-origin" => (20, 1),
        b"age" => (21, 1),
        b"allow" => (22, 1),
        b"authorization" => (23, 1),
        b"cache-control" => (24, 1),
        b"content-disposition" => (25, 1),
        b"content-encoding" => (26, 1),
        b"content-language" => (27, 1),
        b"content-length" => (28, 1),
        b"content-location" => (29, 1),
        b"content-range" => (30, 1),
        b"content-type" => (31, 1),
        b"cookie" => (32, 1),
        b"date" => (33, 1),
        b"etag" => (34, 1),
        b"expect" => (35, 1),
        b"expires" => (36, 1),
        b"from" => (37, 1),
        b"host" => (38, 1),
        b"if-match" => (39, 1),
        b"if-modified-since" => (40, 1),
        b"if-none-match" => (41, 1),
        b"if-range" => (42, 1),
        b"if-unmodified-since" => (43, 1),
        b"last-modified" => (44, 1),
        b"link" => (45, 1),
        b"location" => (46, 1),
        b"max-forwards" => (47, 1),
        b"proxy-authenticate" => (48, 1),
        b"proxy-authorization" => (49, 1),
        b"range" => (50, 1),
        b"referer" => (51, 1),
        b"refresh" => (52, 1),
        b"retry-after" => (53, 1),
        b"server" => (54, 1),
        b"set-cookie" => (55, 1),
        b"strict-transport-security" => (56, 1),
        b"transfer-encoding" => (57, 1),
        b"user-agent" => (58, 1),
        b"vary" => (59, 1),
        b"via" => (60, 1),
        b"www-authenticate" => (61, 1),
        _ => return None,
    };
    Some(StaticName { first, count })
}

/// The index of the first static entry named `name`, computed at compile time; 0 (no entry)
/// when the table lacks the name.
pub(super) const fn static_index(name: &[u8]) -> usize {
    let mut i = 0;
    while i < STATIC_TABLE.len() {
        let candidate = STATIC_TABLE[i].0;
        if candidate.len() == name.len() {
            let mut j = 0;
            while j < name.len() && candidate[j] == name[j] {
                j += 1;
            }
            if j == name.len() {
                return i + 1;
            }
        }
        i += 1;
    }
    0
}

/// The index of the static entry `(name, value)`, if there is one.
pub(super) fn static_exact(name: StaticName, value: &[u8]) -> Option<usize> {
    let entries = STATIC_TABLE
        .get(name.first.checked_sub(1)?..)?
        .get(..name.count)?;
    let offset = entries.iter().position(|&(_, v)| v == value)?;
    Some(name.first + offset)
}

/// The dynamic table: a FIFO of entries bounded by a size in RFC 7541 §4.1 bytes.
#[derive(Debug, Clone)]
pub(super) struct DynamicTable {
    /// Newest entry at the front (index 62).
    entries: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max_size: usize,
    /// Entries ever added: the newest has serial number `added - 1`, so a serial number
    /// names an entry for as long as it stays ([`DynamicTable::by_serial`]).
    added: u64,
}

impl DynamicTable {
    pub(super) fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            added: 0,
        }
    }

    /// The serial number the newest entry got.
    pub(super) fn newest_serial(&self) -> Option<u64> {
        self.added.checked_sub(1)
    }

    /// The entry with serial number `serial` and its 1-based combined index (§2.3.3), if it
    /// has not been evicted.
    pub(super) fn by_serial(&self, serial: u64) -> Option<(usize, &(Bytes, Bytes))> {
        let position = usize::try_from(self.added.checked_sub(serial)?.checked_sub(1)?).ok()?;
        let entry = self.entries.get(position)?;
        Some((position + 62, entry))
    }

    /// Entries with their serial numbers, oldest first.
    pub(super) fn serials(&self) -> impl Iterator<Item = (u64, &(Bytes, Bytes))> {
        let newest = self.added;
        self.entries
            .iter()
            .rev()
            .zip(
                (0..self.entries.len() as u64)
                    .rev()
                    .map(move |p| newest.wrapping_sub(p + 1)),
            )
            .map(|(entry, serial)| (serial, entry))
    }

    /// How many entries it holds.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// Changes the maximum size, evicting oldest entries until the table fits (§4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds an entry, evicting as §4.4 says; an entry larger than the maximum empties the
    /// table and is not added (then it returns false).
    pub(super) fn insert(&mut self, name: Bytes, value: Bytes) -> bool {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return false;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((name, value));
        self.added = self.added.wrapping_add(1);
        true
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some((name, value)) => self.size -= entry_size(&name, &value),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// The entry at 1-based combined index `index` (§2.3.3), static table included.
    pub(super) fn get(&self, index: usize) -> Option<(Bytes, Bytes)> {
        match index {
            0 => None,
            1..=61 => STATIC_TABLE
                .get(index - 1)
                .map(|&(n, v)| (Bytes::from_static(n), Bytes::from_static(v))),
            _ => self.entries.get(index - 62).cloned(),
        }
    }

    /// Finds `(name, value)` in both tables by scanning them: the index of an exact match if
    /// any, else the index of an entry with the same name. The reference the encoder's index
    /// is tested against.
    #[cfg(test)]
    pub(super) fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_match = None;
        for (i, &(n, v)) in STATIC_TABLE.iter().enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 1), Some(i + 1));
                }
                name_match.get_or_insert(i + 1);
            }
        }
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 62), name_match.or(Some(i + 62)));
                }
                name_match.get_or_insert(i + 62);
            }
        }
        (None, name_match)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(max: usize, entries: &[(&'static str, &'static str)]) -> DynamicTable {
        let mut table = DynamicTable::new(max);
        for &(n, v) in entries {
            table.insert(
                Bytes::from_static(n.as_bytes()),
                Bytes::from_static(v.as_bytes()),
            );
        }
        table
    }

    #[test]
    fn counts_name_value_and_32() {
        let table = table_with(4096, &[("custom-key", "custom-header")]);
        assert_eq!(table.size(), 55);
    }

    #[test]
    fn evicts_oldest_entries_to_fit_a_new_one() {
        // Each entry is 32 + 2 = 34 bytes; 100 fits two.
        let table = table_with(100, &[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(table.len(), 2);
        assert_eq!(table.size(), 68);
        assert_eq!(table.get(62).map(|e| e.0), Some(Bytes::from_static(b"c")));
        assert_eq!(table.get(63).map(|e| e.0), Some(Bytes::from_static(b"b")));
        assert_eq!(table.get(64), None);
    }

    #[test]
    fn entry_larger_than_the_table_empties_it() {
        let mut table = table_with(40, &[("a", "1")]);
        table.insert(Bytes::from_static(b"name"), Bytes::from_static(b"value"));
        assert_eq!((table.len(), table.size()), (0, 0));
    }

    #[test]
    fn lowering_the_maximum_evicts() {
        let mut table = table_with(100, &[("a", "1"), ("b", "2")]);
        table.set_max_size(34);
        assert_eq!((table.len(), table.size()), (1, 34));
        table.set_max_size(0);
        assert_eq!((table.len(), table.size()), (0, 0));
    }

    #[test]
    fn indexes_static_then_dynamic() {
        let table = table_with(4096, &[("x", "y")]);
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(2).map(|e| e.1), Some(Bytes::from_static(b"GET")));
        assert_eq!(
            table.get(61).map(|e| e.0),
            Some(Bytes::from_static(b"www-authenticate"))
        );
        assert_eq!(table.get(62).map(|e| e.1), Some(Bytes::from_static(b"y")));
        assert_eq!(table.get(63), None);
        assert_eq!(table.find(b":method", b"POST"), (Some(3), Some(3)));
        assert_eq!(table.find(b":method", b"PUT"), (None, Some(2)));
        assert_eq!(table.find(b"x", b"y"), (Some(62), Some(62)));
        assert_eq!(table.find(b"x", b"z"), (None, Some(62)));
        assert_eq!(table.find(b"nope", b""), (None, None));
    }
}
