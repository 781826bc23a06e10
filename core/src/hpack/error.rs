//! What can go wrong while decoding an HPACK header block, and what each failure means for the
//! HTTP/2 connection that carried it.

use std::fmt;

/// A rule of RFC 7541 that a header block broke, or a bound it crossed.
///
/// Every variant except [`HpackError::HeaderListTooLarge`] leaves the decoder's dynamic table
/// in an unknown state: HTTP/2 answers it with a connection error of type
/// `COMPRESSION_ERROR` (0x9, RFC 9113 §4.3). [`HpackError::HeaderListTooLarge`] is raised only
/// after the whole block was processed with the table kept in sync, so the caller may refuse
/// just that stream and keep the connection ([`HpackError::keeps_table_in_sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HpackError {
    /// The block ended inside an integer, a string or a representation (RFC 7541 §5).
    Truncated,
    /// An integer larger than 2^32 - 1, or encoded with more continuation bytes than such a
    /// value needs (RFC 7541 §5.1: implementations must bound integers).
    IntegerOverflow,
    /// A Huffman-coded string holds the EOS symbol (RFC 7541 §5.2: MUST be a decoding error).
    HuffmanEos,
    /// Huffman padding longer than 7 bits (RFC 7541 §5.2: MUST be a decoding error).
    HuffmanPaddingTooLong,
    /// Huffman padding that is not the most significant bits of EOS, i.e. not all ones
    /// (RFC 7541 §5.2: MUST be a decoding error).
    HuffmanPaddingNotOnes,
    /// Index 0, which names no entry (RFC 7541 §6.1: MUST be a decoding error).
    IndexZero,
    /// An index past the end of the static and dynamic tables (RFC 7541 §2.3.3).
    IndexOutOfRange,
    /// A dynamic table size update after the first header field of a block
    /// (RFC 7541 §4.2: it MUST occur at the beginning of a block).
    TableSizeUpdateNotAtStart,
    /// A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE we advertised
    /// (RFC 7541 §6.3: MUST be treated as a decoding error).
    TableSizeUpdateTooLarge,
    /// We lowered SETTINGS_HEADER_TABLE_SIZE below the table's current maximum, and the next
    /// block did not begin with the size update that acknowledges it (RFC 7541 §4.2).
    MissingTableSizeUpdate,
    /// The decoded header list (name + value + 32 per field, RFC 9113 §6.5.2) is larger than
    /// the limit. The block was still processed to its end, so the dynamic table is in sync.
    HeaderListTooLarge,
}

impl HpackError {
    /// Whether the decoder's dynamic table is still in sync with the peer's encoder after this
    /// error. When it is, the caller may refuse only the stream (e.g. with `431` or
    /// `RST_STREAM`) and keep decoding later blocks; otherwise the connection must end with
    /// `COMPRESSION_ERROR`.
    pub fn keeps_table_in_sync(&self) -> bool {
        matches!(self, HpackError::HeaderListTooLarge)
    }
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HpackError::Truncated => "header block truncated",
            HpackError::IntegerOverflow => "HPACK integer too large",
            HpackError::HuffmanEos => "Huffman string contains EOS",
            HpackError::HuffmanPaddingTooLong => "Huffman padding longer than 7 bits",
            HpackError::HuffmanPaddingNotOnes => "Huffman padding is not all ones",
            HpackError::IndexZero => "HPACK index 0",
            HpackError::IndexOutOfRange => "HPACK index out of range",
            HpackError::TableSizeUpdateNotAtStart => {
                "dynamic table size update after the first header field"
            }
            HpackError::TableSizeUpdateTooLarge => {
                "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE"
            }
            HpackError::MissingTableSizeUpdate => "required dynamic table size update missing",
            HpackError::HeaderListTooLarge => "header list larger than the limit",
        };
        f.write_str(text)
    }
}

impl std::error::Error for HpackError {}
