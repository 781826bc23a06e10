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

/// The dynamic table: a FIFO of entries bounded by a size in RFC 7541 §4.1 bytes.
#[derive(Debug, Clone)]
pub(super) struct DynamicTable {
    /// Newest entry at the front (index 62).
    entries: VecDeque<(Bytes, Bytes)>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub(super) fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
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
    /// table and is not added.
    pub(super) fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front((name, value));
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

    /// Finds `(name, value)` in both tables: the index of an exact match if any, else the index
    /// of an entry with the same name.
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
