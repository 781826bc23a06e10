//! The HPACK decoder (RFC 7541 §3, §6): header block bytes in, header fields out.

use bytes::{Bytes, BytesMut};

use super::table::{DynamicTable, STATIC_TABLE, entry_size};

/// Indices 1 to this are the static table's (RFC 7541 §2.3.3).
const STATIC_ENTRIES: usize = STATIC_TABLE.len();
use super::{HeaderField, HpackError, huffman, integer};

/// Decodes header blocks of one HTTP/2 connection, keeping its dynamic table.
///
/// Two bounds protect memory:
/// - the dynamic table never exceeds the SETTINGS_HEADER_TABLE_SIZE we advertised
///   ([`Decoder::set_max_table_size`]); a size update above it is an error (RFC 7541 §6.3);
/// - the decoded header list never exceeds `max_header_list_size`, counted as name + value + 32
///   per field (RFC 9113 §6.5.2). Past it, decoding goes on to the end of the block without
///   keeping the fields, so the dynamic table stays in sync, and then returns
///   [`HpackError::HeaderListTooLarge`]. The caller may refuse that one stream and keep the
///   connection, or end it: its choice.
///
/// Strings are allocated only after their length was checked against the bytes left in the
/// block, so a block of `n` bytes never makes the decoder allocate much more than `n` (Huffman
/// expands at most 8/5). The strings of one block share one allocation, made at the first
/// literal. A field added to the dynamic table shares it too when the block is small next to
/// the entry and its name is not another dynamic entry's; otherwise it gets its own copy (name
/// and value in one allocation). Each entry thus keeps alive at most four times its size, and
/// the table at most four times its maximum.
///
/// Any other error leaves the table out of sync: the connection must end with
/// `COMPRESSION_ERROR` (RFC 9113 §4.3).
///
/// ```
/// use weft_core::hpack::Decoder;
///
/// let mut decoder = Decoder::new(4096, 16 * 1024);
/// // RFC 7541 C.3.1: GET http://www.example.com/
/// let block = b"\x82\x86\x84\x41\x0fwww.example.com";
/// let fields = decoder.decode(block).unwrap();
/// assert_eq!(&fields[3].name[..], b":authority");
/// assert_eq!(&fields[3].value[..], b"www.example.com");
/// assert_eq!(decoder.table_size(), 57);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    /// SETTINGS_HEADER_TABLE_SIZE we advertised (and the peer acknowledged).
    max_table_size: usize,
    max_header_list_size: usize,
    /// We lowered the setting below the table's maximum: the next block must start with an
    /// update (RFC 7541 §4.2).
    update_required: bool,
}

impl Decoder {
    /// A decoder for a connection where we advertised `max_table_size` as
    /// SETTINGS_HEADER_TABLE_SIZE (4096 unless we sent otherwise, RFC 9113 §6.5.2), refusing
    /// header lists larger than `max_header_list_size`.
    pub fn new(max_table_size: usize, max_header_list_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            max_header_list_size,
            update_required: false,
        }
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE of ours; call it once the peer acknowledged
    /// the SETTINGS frame. Lowering it below the table's current maximum requires the peer's
    /// next block to begin with a size update at or below it (RFC 7541 §4.2).
    pub fn set_max_table_size(&mut self, max_table_size: usize) {
        self.max_table_size = max_table_size;
        self.update_required = max_table_size < self.table.max_size();
    }

    /// Changes the largest header list accepted (name + value + 32 per field).
    pub fn set_max_header_list_size(&mut self, max_header_list_size: usize) {
        self.max_header_list_size = max_header_list_size;
    }

    /// The dynamic table's size, in RFC 7541 §4.1 bytes; never above [`Self::table_max_size`].
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's current maximum size, as last set by the peer's size update.
    pub fn table_max_size(&self) -> usize {
        self.table.max_size()
    }

    /// The dynamic table's entries, newest first (index 62 onwards).
    pub fn table_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.entries().map(|(n, v)| (&n[..], &v[..]))
    }

    /// Decodes one complete header block (HEADERS or PUSH_PROMISE plus its CONTINUATION
    /// frames) into a list of fields.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<HeaderField>, HpackError> {
        // Every field takes at least one byte, and most blocks hold fewer than 14: room for
        // 14 is an allocation small enough for the allocator's fast path (1 KiB).
        let mut fields = Vec::with_capacity(block.len().min(14));
        self.decode_into(block, &mut fields)?;
        Ok(fields)
    }

    /// Decodes one complete header block, appending its fields to `fields`. On
    /// [`HpackError::HeaderListTooLarge`], `fields` holds the fields that fitted.
    pub fn decode_into(
        &mut self,
        block: &[u8],
        fields: &mut Vec<HeaderField>,
    ) -> Result<(), HpackError> {
        let mut pos = 0usize;
        let mut strings = BlockStrings::new(block.len());
        let mut at_start = true;
        let mut list_size = 0usize;
        let mut too_large = false;
        while let Some(&first) = block.get(pos) {
            let rest = block.get(pos..).unwrap_or_default();
            if first & 0xe0 == 0x20 {
                // §6.3 Dynamic Table Size Update: 001xxxxx.
                if !at_start {
                    return Err(HpackError::TableSizeUpdateNotAtStart);
                }
                let (size, used) = integer::decode(rest, 5)?;
                pos += used;
                if size > self.max_table_size {
                    return Err(HpackError::TableSizeUpdateTooLarge);
                }
                self.table.set_max_size(size);
                self.update_required = false;
                continue;
            }
            if self.update_required {
                return Err(HpackError::MissingTableSizeUpdate);
            }
            at_start = false;
            let field = if first & 0x80 != 0 {
                // §6.1 Indexed Header Field: 1xxxxxxx.
                let (index, used) = integer::decode(rest, 7)?;
                pos += used;
                let (name, value) = self.entry(index)?;
                HeaderField {
                    name,
                    value,
                    sensitive: false,
                }
            } else {
                // §6.2 literals: 01 incremental indexing (6-bit index), 0000 without indexing,
                // 0001 never indexed (4-bit index).
                let (prefix, indexing, sensitive) = match first & 0xf0 {
                    0x00 => (4, false, false),
                    0x10 => (4, false, true),
                    _ => (6, true, false),
                };
                let (index, used) = integer::decode(rest, prefix)?;
                pos += used;
                let mut name = if index == 0 {
                    strings.read(block, &mut pos)?
                } else {
                    self.entry(index)?.0
                };
                let mut value = strings.read(block, &mut pos)?;
                if indexing {
                    // A name taken from another dynamic entry would keep that entry's memory
                    // alive past its eviction: such an entry always gets its own copy.
                    let dynamic_name = index > STATIC_ENTRIES;
                    if dynamic_name || !strings.may_pin(entry_size(&name, &value)) {
                        (name, value) = own_entry(index, name, value);
                    }
                    self.table.insert(name.clone(), value.clone());
                }
                HeaderField {
                    name,
                    value,
                    sensitive,
                }
            };
            list_size = list_size.saturating_add(entry_size(&field.name, &field.value));
            if list_size > self.max_header_list_size {
                too_large = true;
            }
            if !too_large {
                fields.push(field);
            }
        }
        if self.update_required {
            return Err(HpackError::MissingTableSizeUpdate);
        }
        if too_large {
            return Err(HpackError::HeaderListTooLarge);
        }
        Ok(())
    }

    fn entry(&self, index: usize) -> Result<(Bytes, Bytes), HpackError> {
        if index == 0 {
            return Err(HpackError::IndexZero);
        }
        self.table.get(index).ok_or(HpackError::IndexOutOfRange)
    }
}

/// How many times its own size a dynamic table entry may keep alive: entries share their
/// block's buffer (saving a copy) when it is small enough, so the memory the table holds
/// stays within this multiple of its size.
const PIN_RATIO: usize = 4;

/// The strings of one block, decoded into one buffer they share.
struct BlockStrings {
    /// The room for strings: allocated once, at the block's first string, with capacity for
    /// the most the block's strings can take, and zeroed as strings need it; each string is
    /// written at its front and split off.
    buffer: BytesMut,
    /// What the block's strings can take at most: raw strings are no longer than the block,
    /// Huffman ones at most 8/5 of it.
    capacity: usize,
    /// Whether `buffer` was allocated (a block without strings allocates nothing).
    allocated: bool,
}

impl BlockStrings {
    fn new(block_len: usize) -> Self {
        BlockStrings {
            buffer: BytesMut::new(),
            capacity: block_len.saturating_mul(8) / 5,
            allocated: false,
        }
    }

    /// Whether a table entry of `entry_size` may keep this block's buffer alive rather than
    /// get its own copy: only when the buffer is at most [`PIN_RATIO`] times the entry, so
    /// the table never holds more than that many times its size.
    fn may_pin(&self, entry_size: usize) -> bool {
        self.capacity <= entry_size.saturating_mul(PIN_RATIO)
    }

    /// Reads a string literal (RFC 7541 §5.2) at `*pos`, advancing past it. The length is
    /// checked against the bytes left in the block before anything is allocated.
    fn read(&mut self, block: &[u8], pos: &mut usize) -> Result<Bytes, HpackError> {
        let rest = block.get(*pos..).unwrap_or_default();
        let &first = rest.first().ok_or(HpackError::Truncated)?;
        let (len, used) = integer::decode(rest, 7)?;
        let raw = rest
            .get(used..)
            .and_then(|r| r.get(..len))
            .ok_or(HpackError::Truncated)?;
        *pos += used + len;
        if !self.allocated {
            // One allocation for the whole block, rather than growing the buffer string by
            // string.
            self.buffer.reserve(self.capacity);
            self.allocated = true;
        }
        // The strings read so far came from other bytes of the block, so the room reserved
        // is enough for this one (the block's raw strings sum to at most its length, their
        // Huffman decodings to at most 8/5 of it). The room this string may need is zeroed
        // unless a previous string zeroed it and did not use it all.
        let room = if first & 0x80 == 0 {
            len
        } else {
            len.saturating_mul(8) / 5
        };
        if self.buffer.len() < room {
            self.buffer.resize(room, 0);
        }
        let written = if first & 0x80 == 0 {
            let out = self.buffer.get_mut(..len).ok_or(HpackError::Truncated)?;
            out.copy_from_slice(raw);
            len
        } else {
            huffman::decode(raw, &mut self.buffer)?
        };
        Ok(self
            .buffer
            .split_to(written.min(self.buffer.len()))
            .freeze())
    }
}

/// A field about to enter the dynamic table, in memory of its own: a static name stays static,
/// any other name and the value are copied into one allocation. Sharing the block's buffer
/// (or another entry's) would let a small entry keep a large allocation alive.
fn own_entry(name_index: usize, name: Bytes, value: Bytes) -> (Bytes, Bytes) {
    if (1..=STATIC_ENTRIES).contains(&name_index) {
        return (name, Bytes::copy_from_slice(&value));
    }
    let mut entry = BytesMut::with_capacity(name.len() + value.len());
    entry.extend_from_slice(&name);
    entry.extend_from_slice(&value);
    let value = entry.split_off(name.len()).freeze();
    (entry.freeze(), value)
}
