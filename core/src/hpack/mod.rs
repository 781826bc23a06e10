//! HPACK, the header compression of HTTP/2 (RFC 7541), with no HTTP/2 inside.
//!
//! - [`Decoder`] turns a complete header block into [`HeaderField`]s, keeping the dynamic table
//!   (§2.3, §4) and enforcing the bounds a hostile peer probes: integers (§5.1), string lengths
//!   checked before allocating (§5.2), Huffman padding and EOS (§5.2), size updates only at the
//!   start of a block and never above our SETTINGS_HEADER_TABLE_SIZE (§4.2, §6.3), and a
//!   header-list limit counted as name + value + 32 per field (RFC 9113 §6.5.2) that keeps the
//!   table in sync when crossed.
//! - [`Encoder`] turns fields into a header block: indexed when the table holds them, added to
//!   the table when worth it, Huffman-coded when shorter, never indexed when sensitive (§6.2.3,
//!   §7.1.3), with the size updates the peer's SETTINGS ask for (§6.3).
//!
//! Pseudo-header fields (`:method`, `:status`, ...) are plain names here; their rules belong
//! to HTTP/2. Every [`HpackError`] maps to `COMPRESSION_ERROR` on the connection, except
//! [`HpackError::HeaderListTooLarge`], after which the connection may go on
//! ([`HpackError::keeps_table_in_sync`]).

mod decoder;
mod encoder;
mod error;
mod huffman;
mod huffman_table;
mod index;
mod integer;
mod table;

#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use error::HpackError;
pub use table::{ENTRY_OVERHEAD, entry_size};

/// One header field: a name and a value, as bytes.
///
/// `sensitive` asks the encoder for a never-indexed literal (RFC 7541 §6.2.3); the decoder sets
/// it on fields that arrived that way, so an intermediary re-encoding them keeps the promise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderField {
    /// The field name; HTTP/2 requires lowercase (RFC 9113 §8.2.1).
    pub name: Bytes,
    /// The field value.
    pub value: Bytes,
    /// Never to be stored in a compression table (RFC 7541 §7.1.3).
    pub sensitive: bool,
}

impl HeaderField {
    /// A field that may be indexed (unless its name is one the encoder always protects).
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// A field that must never be indexed, by us or any intermediary (RFC 7541 §6.2.3).
    pub fn sensitive(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: true,
        }
    }

    /// Its size as RFC 7541 §4.1 counts it: name + value + 32.
    pub fn size(&self) -> usize {
        entry_size(&self.name, &self.value)
    }
}
