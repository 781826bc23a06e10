//! The last response head we encoded, kept with its HPACK block: a server answering one
//! route sends the same head again and again (same status, same fields, the date changing
//! once a second), and while the encoder's state is unchanged the same fields encode to the
//! same bytes, so the block is copied instead of looked up and encoded field by field.
//!
//! The block is reused only when the encoder is in the state it was in when the block was
//! made, and only blocks whose encoding left that state unchanged (every field found in a
//! table, no size update announced) are kept: reusing one then changes nothing either.

/// The most bytes a kept head (its key or its block) may have: a cache for the common small
/// head, not a second copy of a large one.
const MAX_KEPT: usize = 512;

/// One response head's fields, and how they were encoded.
#[derive(Debug, Default)]
pub(super) struct HeadCache {
    /// The fields of the kept head: each name and value with its length, and its
    /// sensitivity.
    key: Vec<u8>,
    /// The fields of the head being written, built as [`HeadCache::key`].
    next: Vec<u8>,
    /// The kept head's header block.
    block: Vec<u8>,
    /// The encoder's [`state_version`](crate::hpack::Encoder::state_version) the block
    /// belongs to; `None` when nothing is kept.
    version: Option<u64>,
}

impl HeadCache {
    /// Starts describing the head about to be written.
    pub(super) fn start(&mut self) {
        self.next.clear();
    }

    /// Adds one field of the head being written, in order.
    pub(super) fn push_field(&mut self, name: &[u8], value: &[u8], sensitive: bool) {
        for part in [name, value] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            self.next.extend_from_slice(&len.to_le_bytes());
            self.next.extend_from_slice(part);
        }
        self.next.push(u8::from(sensitive));
    }

    /// The block of the head being written, when it is the kept one and the encoder is at
    /// `version`, the state it was encoded in.
    pub(super) fn block(&self, version: u64) -> Option<&[u8]> {
        (self.version == Some(version) && self.key == self.next).then_some(&self.block[..])
    }

    /// Keeps `block` as the encoding of the head being written, in encoder state `version`
    /// (which encoding it must have left unchanged).
    pub(super) fn keep(&mut self, version: u64, block: &[u8]) {
        if self.next.len() > MAX_KEPT || block.len() > MAX_KEPT {
            self.version = None;
            return;
        }
        std::mem::swap(&mut self.key, &mut self.next);
        self.block.clear();
        self.block.extend_from_slice(block);
        self.version = Some(version);
    }

    /// Keeps nothing: the encoding of the head being written changed the encoder's state.
    pub(super) fn forget(&mut self) {
        self.version = None;
    }
}

#[cfg(test)]
mod tests {
    use super::HeadCache;

    fn describe(cache: &mut HeadCache, fields: &[(&str, &str)]) {
        cache.start();
        for (name, value) in fields {
            cache.push_field(name.as_bytes(), value.as_bytes(), false);
        }
    }

    #[test]
    fn a_kept_block_serves_the_same_fields_in_the_same_state_only() {
        let mut cache = HeadCache::default();
        describe(
            &mut cache,
            &[(":status", "200"), ("content-type", "text/plain")],
        );
        assert_eq!(cache.block(7), None);
        cache.keep(7, b"block");
        describe(
            &mut cache,
            &[(":status", "200"), ("content-type", "text/plain")],
        );
        assert_eq!(cache.block(7), Some(&b"block"[..]));
        assert_eq!(cache.block(8), None, "another encoder state");
        describe(
            &mut cache,
            &[(":status", "200"), ("content-type", "text/html")],
        );
        assert_eq!(cache.block(7), None, "another value");
        // Field boundaries count: "ab" + "c" is not "a" + "bc".
        describe(&mut cache, &[("ab", "c")]);
        cache.keep(9, b"other");
        describe(&mut cache, &[("a", "bc")]);
        assert_eq!(cache.block(9), None);
        describe(&mut cache, &[("ab", "c")]);
        cache.forget();
        assert_eq!(cache.block(9), None);
    }

    #[test]
    fn sensitivity_is_part_of_the_head() {
        let mut cache = HeadCache::default();
        cache.start();
        cache.push_field(b"x-token", b"1", false);
        cache.keep(1, b"indexed");
        cache.start();
        cache.push_field(b"x-token", b"1", true);
        assert_eq!(cache.block(1), None);
    }

    #[test]
    fn large_heads_are_not_kept() {
        let mut cache = HeadCache::default();
        let long = "v".repeat(600);
        describe(&mut cache, &[("x-long", &long)]);
        cache.keep(1, b"block");
        describe(&mut cache, &[("x-long", &long)]);
        assert_eq!(cache.block(1), None);
    }
}
