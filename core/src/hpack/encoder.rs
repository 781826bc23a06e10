//! The HPACK encoder (RFC 7541 §3, §6, §7): header fields in, header block bytes out.

use bytes::{BufMut, Bytes, BytesMut};

use super::index::IndexedTable;
use super::table::{entry_size, static_index};
use super::{HeaderField, huffman, integer};

/// Names whose values are secrets (as static-table indices, which all of them have): always
/// sent as never-indexed literals (RFC 7541 §6.2.3, §7.1.3), so no intermediary stores them in
/// a table and compression cannot reveal them.
const SENSITIVE_NAMES: [usize; 4] = [
    static_index(b"authorization"),
    static_index(b"cookie"),
    static_index(b"set-cookie"),
    static_index(b"proxy-authorization"),
];

/// Names whose values rarely repeat on a connection (as static-table indices): indexing them
/// would only evict entries that do.
const UNINDEXED_NAMES: [usize; 8] = [
    static_index(b":path"),
    static_index(b"content-length"),
    static_index(b"content-range"),
    static_index(b"etag"),
    static_index(b"if-modified-since"),
    static_index(b"if-none-match"),
    static_index(b"last-modified"),
    static_index(b"age"),
];

/// Encodes header blocks for one HTTP/2 connection, keeping its dynamic table.
///
/// Fields are indexed when the table holds them, added to the table when they are likely to
/// repeat, and their strings Huffman-coded when that is shorter. Sensitive fields (those marked
/// [`HeaderField::sensitive`], and `authorization`, `cookie`, `set-cookie`,
/// `proxy-authorization`) are never indexed. Names are taken as given: HTTP/2 requires them in
/// lowercase (RFC 9113 §8.2.1), which the caller ensures.
///
/// ```
/// use bytes::BytesMut;
/// use weft_core::hpack::{Decoder, Encoder, HeaderField};
///
/// let mut encoder = Encoder::new(4096);
/// let mut decoder = Decoder::new(4096, 16 * 1024);
/// let fields = vec![
///     HeaderField::new(":status", "200"),
///     HeaderField::sensitive("set-cookie", "id=42"),
/// ];
/// let mut block = BytesMut::new();
/// encoder.encode(&fields, &mut block);
/// assert_eq!(decoder.decode(&block).unwrap(), fields);
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    table: IndexedTable,
    /// Most table memory we are willing to use, whatever the peer allows.
    cap: usize,
    /// Size updates to announce at the start of the next block: the smallest maximum since the
    /// last block, then the current one (RFC 7541 §4.2).
    pending_update: Option<(usize, usize)>,
    /// Counts the changes to what the next block's bytes depend on besides its fields: the
    /// table's entries and size, and size updates to announce.
    version: u64,
}

impl Encoder {
    /// An encoder whose table starts at `max_table_size`, which must not exceed the peer's
    /// SETTINGS_HEADER_TABLE_SIZE (4096 until the peer says otherwise, RFC 9113 §6.5.2). It is
    /// also the most the table will ever use: a peer allowing more is not followed past it.
    pub fn new(max_table_size: usize) -> Self {
        Encoder::with_cap(max_table_size, max_table_size)
    }

    /// An encoder for a peer whose decoder's table currently allows `peer_max_table_size`
    /// (4096 at the start of an HTTP/2 connection), using at most `cap` of it. A smaller `cap`
    /// is announced by a size update at the start of the first block (RFC 7541 §4.2).
    pub fn with_cap(peer_max_table_size: usize, cap: usize) -> Self {
        let mut encoder = Encoder {
            table: IndexedTable::new(peer_max_table_size),
            cap,
            pending_update: None,
            version: 0,
        };
        if cap < peer_max_table_size {
            encoder.pending_update = Some((cap, cap));
            encoder.table.set_max_size(cap);
        }
        encoder
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table then uses the smaller of it and
    /// the size given to [`Encoder::new`]; the change is announced at the start of the next
    /// block (RFC 7541 §6.3), evicting entries at once when it shrinks.
    pub fn set_max_table_size(&mut self, peer_max_table_size: usize) {
        let size = peer_max_table_size.min(self.cap);
        let smallest = match self.pending_update {
            Some((smallest, _)) => smallest.min(size),
            None if size == self.table.max_size() => return,
            None => size,
        };
        self.pending_update = Some((smallest, size));
        self.version = self.version.wrapping_add(1);
        self.table.set_max_size(smallest);
        self.table.set_max_size(size);
    }

    /// The dynamic table's size, in RFC 7541 §4.1 bytes.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Encodes `fields` as one header block, appending it to `dst`.
    pub fn encode<'a, I>(&mut self, fields: I, dst: &mut BytesMut)
    where
        I: IntoIterator<Item = &'a HeaderField>,
    {
        self.start_block(dst);
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    /// Starts a header block in `dst`: announces the table size changes not told yet. A block
    /// written field by field ([`Encoder::encode_field`], [`Encoder::encode_borrowed`]) must
    /// start with it.
    pub(crate) fn start_block(&mut self, dst: &mut BytesMut) {
        if let Some((smallest, size)) = self.pending_update.take() {
            self.version = self.version.wrapping_add(1);
            if smallest < size {
                integer::encode(smallest, 5, 0x20, dst);
            }
            integer::encode(size, 5, 0x20, dst);
        }
    }

    /// The encoder's state as a number that changes whenever its table or its pending size
    /// updates do: while it stays the same, the same fields encode to the same bytes, and a
    /// block whose encoding left it unchanged may be sent again as it is.
    pub(crate) fn state_version(&self) -> u64 {
        self.version
    }

    /// Encodes one field of a block begun with [`Encoder::start_block`].
    pub(crate) fn encode_field(&mut self, field: &HeaderField, dst: &mut BytesMut) {
        self.encode_parts(&field.name, &field.value, field.sensitive, dst, || {
            (field.name.clone(), field.value.clone())
        });
    }

    /// [`Encoder::encode_field`] for a field whose bytes are borrowed (a response's
    /// `HeaderMap`): they are copied only when the field enters the dynamic table, which a
    /// field repeated on the connection does once, not on every block.
    pub(crate) fn encode_borrowed(
        &mut self,
        name: &[u8],
        value: &[u8],
        sensitive: bool,
        dst: &mut BytesMut,
    ) {
        self.encode_parts(name, value, sensitive, dst, || {
            (Bytes::copy_from_slice(name), Bytes::copy_from_slice(value))
        });
    }

    /// Encodes a field; `owned` gives its bytes for the dynamic table, when it goes there.
    fn encode_parts(
        &mut self,
        name: &[u8],
        value: &[u8],
        sensitive: bool,
        dst: &mut BytesMut,
        owned: impl FnOnce() -> (Bytes, Bytes),
    ) {
        let found = self.table.find(name, value);
        let static_index = found.static_name.map(|s| s.first);
        let sensitive = sensitive || static_index.is_some_and(|i| SENSITIVE_NAMES.contains(&i));
        if !sensitive {
            if let Some(index) = found.exact {
                integer::encode(index, 7, 0x80, dst); // §6.1
                return;
            }
        }
        let index = found.name.unwrap_or(0);
        let indexing = !sensitive
            && !static_index.is_some_and(|i| UNINDEXED_NAMES.contains(&i))
            && entry_size(name, value) <= self.table.max_size() / 2;
        if indexing {
            integer::encode(index, 6, 0x40, dst); // §6.2.1
        } else if sensitive {
            integer::encode(index, 4, 0x10, dst); // §6.2.3
        } else {
            integer::encode(index, 4, 0x00, dst); // §6.2.2
        }
        if index == 0 {
            write_string(name, dst);
        }
        write_string(value, dst);
        if indexing {
            let (name, value) = owned();
            self.table.insert(name, value, &found);
            self.version = self.version.wrapping_add(1);
        }
    }
}

/// Writes a string literal (RFC 7541 §5.2), Huffman-coded unless that is longer (on a tie,
/// Huffman, as the examples of RFC 7541 Appendix C do).
fn write_string(src: &[u8], dst: &mut BytesMut) {
    if src.len() < 0x7f {
        write_short_string(src, dst);
        return;
    }
    let huffman_len = huffman::encoded_len(src);
    if huffman_len <= src.len() {
        integer::encode(huffman_len, 7, 0x80, dst);
        huffman::encode(src, dst);
    } else {
        integer::encode(src.len(), 7, 0x00, dst);
        dst.put_slice(src);
    }
}

/// [`write_string`] in one pass for a string whose length fits the one-byte prefix (as does
/// the length of any Huffman coding no longer than it): Huffman-code it behind a placeholder
/// prefix, then fill the prefix in, or start over with the raw octets if that came out longer.
fn write_short_string(src: &[u8], dst: &mut BytesMut) {
    let prefix_at = dst.len();
    dst.put_u8(0);
    huffman::encode(src, dst);
    let huffman_len = dst.len() - prefix_at - 1;
    if huffman_len <= src.len() {
        if let Some(prefix) = dst.get_mut(prefix_at) {
            *prefix = 0x80 | huffman_len as u8; // < 0x7f
        }
        return;
    }
    dst.truncate(prefix_at);
    dst.put_u8(src.len() as u8); // < 0x7f
    dst.put_slice(src);
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::{SENSITIVE_NAMES, UNINDEXED_NAMES, write_string};
    use crate::hpack::table::STATIC_TABLE;
    use crate::hpack::{huffman, integer};

    /// The two-pass choice, spelled out: Huffman when no longer than the octets.
    fn expected_string(src: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let huffman_len = huffman::encoded_len(src);
        if huffman_len <= src.len() {
            integer::encode(huffman_len, 7, 0x80, &mut out);
            huffman::encode(src, &mut out);
        } else {
            integer::encode(src.len(), 7, 0x00, &mut out);
            out.put_slice(src);
        }
        out.to_vec()
    }

    #[test]
    fn strings_choose_the_shorter_form_at_every_prefix_length() {
        for len in [0, 1, 2, 125, 126, 127, 128, 300] {
            for octet in [b'a', b'0', 0x00, 0xff, b'{'] {
                let src = vec![octet; len];
                let mut out = BytesMut::from(&b"kept"[..]);
                write_string(&src, &mut out);
                assert_eq!(&out[..4], b"kept");
                assert_eq!(out[4..], expected_string(&src)[..], "{len} x {octet:#x}");
            }
        }
    }

    fn names(indices: &[usize]) -> Vec<&'static [u8]> {
        indices.iter().map(|&i| STATIC_TABLE[i - 1].0).collect()
    }

    #[test]
    fn policy_names_are_in_the_static_table() {
        assert_eq!(
            names(&SENSITIVE_NAMES),
            [
                &b"authorization"[..],
                b"cookie",
                b"set-cookie",
                b"proxy-authorization"
            ]
        );
        assert_eq!(
            names(&UNINDEXED_NAMES)[..2],
            [&b":path"[..], b"content-length"]
        );
        assert!(UNINDEXED_NAMES.iter().all(|&i| i > 0));
    }
}
