//! The Huffman code of RFC 7541 §5.2 and Appendix B.
//!
//! Decoding looks up [`LOOKUP_BITS`] bits at a time in tables built at compile time, which
//! yield the one or two codes those bits start with, for every code up to that length (all of
//! printable ASCII but nine rare characters); longer codes, EOS among them, walk a binary tree
//! bit by bit from where the lookup stopped, and so do the last bits of the input. The three
//! rules of §5.2 are enforced: EOS inside a string is an error, padding is at most 7 bits, and
//! padding is all ones (the most significant bits of EOS).
//!
//! Encoding packs codes into a 64-bit accumulator and writes 32 bits at a time.

use bytes::{BufMut, BytesMut};

use super::HpackError;
use super::huffman_table::CODES;

/// The EOS symbol (RFC 7541 Appendix B).
const EOS: u16 = 256;
/// Marks a tree child that is a symbol rather than another node.
const LEAF: u16 = 0x8000;
/// A prefix code with 257 symbols has exactly 256 internal nodes.
const NODES: usize = 256;

/// Bits looked up at once: codes up to 12 bits cover every octet a header usually holds.
const LOOKUP_BITS: u32 = 12;
const LOOKUP_MASK: u64 = (1 << LOOKUP_BITS) - 1;

/// `LOOKUP[bits]`: for the next [`LOOKUP_BITS`] bits of input, `length << 8 | symbol` of the
/// code they start with, or 0 when that code is longer than [`LOOKUP_BITS`].
static LOOKUP: [u16; 1 << LOOKUP_BITS] = build_lookup();

/// `PAIRS[bits]`: the one or two whole codes the next [`LOOKUP_BITS`] bits start with, as
/// `count << 24 | second symbol << 16 | first symbol << 8 | bits used`; 0 (count 0) when the
/// first code is longer. Two lowercase letters fit in 12 bits, so text decodes two octets a
/// lookup. 16 KiB.
static PAIRS: [u32; 1 << LOOKUP_BITS] = build_pairs();

const fn build_pairs() -> [u32; 1 << LOOKUP_BITS] {
    let single = build_lookup();
    let mut pairs = [0u32; 1 << LOOKUP_BITS];
    let mut bits = 0usize;
    while bits < 1 << LOOKUP_BITS {
        let first = single[bits];
        let first_len = (first >> 8) as u32;
        if first_len != 0 {
            let rest = (bits << first_len) & (LOOKUP_MASK as usize);
            let second = single[rest];
            let second_len = (second >> 8) as u32;
            pairs[bits] = if second_len != 0 && first_len + second_len <= LOOKUP_BITS {
                (2 << 24)
                    | ((second as u32 & 0xff) << 16)
                    | ((first as u32 & 0xff) << 8)
                    | (first_len + second_len)
            } else {
                (1 << 24) | ((first as u32 & 0xff) << 8) | first_len
            };
        }
        bits += 1;
    }
    pairs
}

/// `TREE[node][bit]` is the next node, or `LEAF | symbol`. Node 0 is the root.
static TREE: [[u16; 2]; NODES] = build_tree();

const fn build_lookup() -> [u16; 1 << LOOKUP_BITS] {
    let mut table = [0u16; 1 << LOOKUP_BITS];
    let mut symbol = 0usize;
    while symbol < 256 {
        let (code, len) = CODES[symbol];
        if len as u32 <= LOOKUP_BITS {
            let free_bits = LOOKUP_BITS - len as u32;
            let first = (code as usize) << free_bits;
            let mut i = 0usize;
            while i < 1 << free_bits {
                table[first + i] = ((len as u16) << 8) | symbol as u16;
                i += 1;
            }
        }
        symbol += 1;
    }
    table
}

const fn build_tree() -> [[u16; 2]; NODES] {
    let mut nodes = [[0u16; 2]; NODES];
    let mut next = 1usize;
    let mut symbol = 0usize;
    while symbol < CODES.len() {
        let (code, len) = CODES[symbol];
        let mut node = 0usize;
        let mut bit_index = len;
        while bit_index > 1 {
            bit_index -= 1;
            let bit = ((code >> bit_index) & 1) as usize;
            if nodes[node][bit] == 0 {
                nodes[node][bit] = next as u16;
                next += 1;
            }
            node = nodes[node][bit] as usize;
        }
        nodes[node][(code & 1) as usize] = LEAF | symbol as u16;
        symbol += 1;
    }
    nodes
}

/// Input bits not decoded yet: the top `len` bits of `acc`, oldest first, so that the next
/// code is always at the top and taking it is one shift. Below them sit either zeros or the
/// input bits that follow (a refill reads eight bytes and counts only the whole ones that fit;
/// the next refill writes the same bits in the same place again).
struct BitReader<'a> {
    src: &'a [u8],
    acc: u64,
    /// At most 63.
    len: u32,
}

impl BitReader<'_> {
    /// Tops the accumulator up to more than 55 bits, or to the end of the input: with one
    /// eight-byte read while eight bytes are left, else byte by byte.
    fn refill(&mut self) {
        if let Some((word, _)) = self.src.split_first_chunk::<8>() {
            let take = (63 - self.len) / 8; // whole bytes that fit: 0 to 7
            if take > 0 {
                self.acc |= u64::from_be_bytes(*word) >> self.len;
                self.len += 8 * take;
                self.src = self.src.get(take as usize..).unwrap_or_default();
            }
            return;
        }
        while self.len <= 55 {
            let Some((&byte, rest)) = self.src.split_first() else {
                return;
            };
            self.acc |= u64::from(byte) << (56 - self.len);
            self.len += 8;
            self.src = rest;
        }
    }

    /// Drops the top `bits` bits, which were decoded.
    fn consume(&mut self, bits: u32) {
        self.acc <<= bits;
        self.len -= bits;
    }

    /// Decodes codes of up to [`LOOKUP_BITS`] bits, one or two a lookup, while the
    /// accumulator holds that many bits; stops before a longer code.
    fn decode_short_codes(&mut self, out: &mut [u8], written: &mut usize) {
        while self.len >= LOOKUP_BITS {
            let bits = self.acc >> (64 - LOOKUP_BITS);
            let entry = PAIRS.get(bits as usize).copied().unwrap_or(0);
            let count = (entry >> 24) as usize;
            if count == 0 {
                return;
            }
            // Both octets are written even when there is one: the second is then overwritten
            // by the next code, or cut off by the final length. Short of room for two, the
            // careful path takes over.
            let Some(pair) = out
                .get_mut(*written..)
                .and_then(|rest| rest.first_chunk_mut::<2>())
            else {
                return;
            };
            *pair = [(entry >> 8) as u8, (entry >> 16) as u8];
            *written += count;
            // The bits used are the entry's low six bits, which is all a 64-bit shift reads:
            // the next lookup waits for the load and one shift, nothing more.
            self.acc = self.acc.wrapping_shl(entry);
            self.len -= entry & 0x3f;
        }
    }

    /// The next [`LOOKUP_BITS`] bits, padded with ones past the end of the input.
    fn peek(&self) -> usize {
        let padded = if self.len >= LOOKUP_BITS {
            self.acc
        } else {
            self.acc | (u64::MAX >> self.len)
        };
        (padded >> (64 - LOOKUP_BITS)) as usize
    }

    /// Bit `i` (0-based) of the pending bits; `i < self.len`.
    fn bit(&self, i: u32) -> usize {
        ((self.acc >> (63 - i)) & 1) as usize
    }

    /// The code longer than [`LOOKUP_BITS`] that starts here, by walking the tree; `None` when
    /// the input ends inside it.
    fn long_code(&self) -> Option<(u16, u32)> {
        let mut node = 0usize;
        for i in 0..self.len {
            let next = TREE.get(node)?.get(self.bit(i)).copied()?;
            if next & LEAF != 0 {
                return Some((next & !LEAF, i + 1));
            }
            node = usize::from(next);
        }
        None
    }

    /// Checks what is left once no code fits: at most 7 bits, all ones (§5.2).
    fn check_padding(&self) -> Result<(), HpackError> {
        if self.len > 7 {
            return Err(HpackError::HuffmanPaddingTooLong);
        }
        let ones = (1u64 << self.len) - 1;
        if self.acc.checked_shr(64 - self.len).unwrap_or(0) != ones {
            return Err(HpackError::HuffmanPaddingNotOnes);
        }
        Ok(())
    }
}

/// Decodes the Huffman-coded `src` into the front of `out`, returning how many octets it
/// wrote. `out` must have room for 8/5 of `src` (no code is shorter than 5 bits): the caller
/// sizes it once for many strings, so that nothing is grown or zeroed string by string.
pub(super) fn decode(src: &[u8], out: &mut [u8]) -> Result<usize, HpackError> {
    debug_assert!(out.len() >= src.len().saturating_mul(8) / 5);
    decode_into(src, out)
}

/// Decodes `src` into `out`, which has room for it; returns how many octets it wrote.
fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, HpackError> {
    let mut reader = BitReader {
        src,
        acc: 0,
        len: 0,
    };
    let mut written = 0;
    loop {
        reader.refill();
        reader.decode_short_codes(out, &mut written);
        if reader.len < LOOKUP_BITS && !reader.src.is_empty() {
            continue; // out of bits, not of input
        }
        // Then one careful step: a code longer than the lookup (which may need all of 30
        // bits, hence the refill), or the last bits of the input.
        reader.refill();
        if reader.len == 0 {
            return Ok(written);
        }
        let entry = LOOKUP.get(reader.peek()).copied().unwrap_or(0);
        let code_len = u32::from(entry >> 8);
        let (symbol, code_len) = if code_len != 0 {
            if code_len > reader.len {
                return reader.check_padding().map(|()| written); // our padding made the code
            }
            (entry & 0xff, code_len)
        } else {
            match reader.long_code() {
                Some((EOS, _)) => return Err(HpackError::HuffmanEos),
                Some(found) => found,
                None => return reader.check_padding().map(|()| written),
            }
        };
        if let Some(slot) = out.get_mut(written) {
            *slot = symbol as u8;
        }
        written += 1;
        reader.consume(code_len);
    }
}

/// Length in octets of the Huffman coding of `src`.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODE_LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// The code lengths alone, four lines of cache rather than sixteen.
static CODE_LENGTHS: [u8; 256] = code_lengths();

const fn code_lengths() -> [u8; 256] {
    let mut lengths = [0u8; 256];
    let mut symbol = 0;
    while symbol < 256 {
        lengths[symbol] = CODES[symbol].1;
        symbol += 1;
    }
    lengths
}

/// Appends the Huffman coding of `src` to `dst`, padded with ones (RFC 7541 §5.2).
pub(super) fn encode(src: &[u8], dst: &mut BytesMut) {
    // Room for the common case, a coding no longer than the octets; more grows `dst`.
    dst.reserve(src.len() + 4);
    // Pending bits are the low `bits` of `acc`; fewer than 32 between codes, so adding one
    // (at most 30 bits) never overflows the 64.
    let mut acc = 0u64;
    let mut bits = 0u32;
    for &byte in src {
        let (code, len) = CODES[usize::from(byte)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        if bits >= 32 {
            bits -= 32;
            dst.put_u32((acc >> bits) as u32);
        }
    }
    while bits >= 8 {
        bits -= 8;
        dst.put_u8((acc >> bits) as u8);
    }
    if bits > 0 {
        dst.put_u8(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(src: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(src, &mut dst);
        assert_eq!(dst.len(), encoded_len(src));
        dst.to_vec()
    }

    fn decoded(src: &[u8]) -> Result<Vec<u8>, HpackError> {
        // Room for exactly 8/5 of the input, and a sentinel after it that must stay.
        let room = src.len() * 8 / 5;
        let mut out = vec![0xaa; room + 1];
        let written = decode(src, &mut out[..room])?;
        assert_eq!(out[room], 0xaa);
        assert!(written <= room);
        Ok(out[..written].to_vec())
    }

    #[test]
    fn table_is_a_complete_prefix_code() {
        // Kraft sum of a complete code is exactly 1: sum of 2^(30 - len) == 2^30.
        let sum: u64 = CODES.iter().map(|&(_, len)| 1u64 << (30 - len)).sum();
        assert_eq!(sum, 1 << 30);
        assert_eq!(CODES[usize::from(b'a')], (0x3, 5));
        assert_eq!(CODES[usize::from(b'0')], (0x0, 5));
        assert_eq!(CODES[256], (0x3fff_ffff, 30));
    }

    #[test]
    fn encodes_rfc_example_c4_1() {
        assert_eq!(
            encoded(b"www.example.com"),
            [
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff
            ]
        );
    }

    #[test]
    fn round_trips_every_octet() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decoded(&encoded(&all)), Ok(all.clone()));
        for b in all {
            assert_eq!(decoded(&encoded(&[b])), Ok(vec![b]));
        }
        assert_eq!(decoded(&[]), Ok(vec![]));
    }

    #[test]
    fn rejects_eos_in_string() {
        // 30 ones is EOS; followed by two one bits of padding.
        assert_eq!(
            decoded(&[0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
    }

    #[test]
    fn rejects_padding_longer_than_seven_bits() {
        // 'a' (00011) then 11 one bits of padding.
        assert_eq!(
            decoded(&[0x1f, 0xff]),
            Err(HpackError::HuffmanPaddingTooLong)
        );
        assert_eq!(decoded(&[0xff]), Err(HpackError::HuffmanPaddingTooLong));
    }

    #[test]
    fn rejects_padding_that_is_not_all_ones() {
        // 'a' (00011) then padding 110.
        assert_eq!(decoded(&[0x1e]), Err(HpackError::HuffmanPaddingNotOnes));
        // '0' (00000) then padding 000.
        assert_eq!(decoded(&[0x00]), Err(HpackError::HuffmanPaddingNotOnes));
    }

    /// The plain bit-at-a-time walk of the tree, as the reference the table must agree with.
    fn reference_decode(src: &[u8]) -> Result<Vec<u8>, HpackError> {
        let mut out = Vec::new();
        let mut node = 0usize;
        let mut pending_bits = 0u32;
        let mut pending_ones = true;
        for &byte in src {
            for shift in (0..8).rev() {
                let bit = (byte >> shift) & 1;
                let next = TREE[node][usize::from(bit)];
                pending_bits += 1;
                pending_ones &= bit == 1;
                if next & LEAF == 0 {
                    node = usize::from(next);
                    continue;
                }
                if next & !LEAF == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                out.push((next & !LEAF) as u8);
                (node, pending_bits, pending_ones) = (0, 0, true);
            }
        }
        if pending_bits > 7 {
            return Err(HpackError::HuffmanPaddingTooLong);
        }
        if !pending_ones {
            return Err(HpackError::HuffmanPaddingNotOnes);
        }
        Ok(out)
    }

    #[test]
    fn agrees_with_the_tree_walk_on_every_two_byte_input() {
        for first in 0..=255u8 {
            assert_eq!(decoded(&[first]), reference_decode(&[first]), "{first:#x}");
            for second in 0..=255u8 {
                let src = [first, second];
                assert_eq!(decoded(&src), reference_decode(&src), "{src:x?}");
            }
        }
    }

    #[test]
    fn agrees_with_the_tree_walk_on_random_inputs() {
        // A xorshift generator: reproducible, no dependency. Inputs mix arbitrary bytes with
        // runs of 0xff, where the long codes, EOS and padding live.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let len = (next() % 40) as usize;
            let src: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => 0xff,
                    1 => 0xfe | (next() as u8 & 1),
                    _ => next() as u8,
                })
                .collect();
            assert_eq!(decoded(&src), reference_decode(&src), "{src:x?}");
        }
    }

    #[test]
    fn decodes_long_codes_at_every_alignment() {
        let rare: Vec<u8> = (0..=255u8)
            .filter(|&b| CODES[usize::from(b)].1 > 12)
            .collect();
        assert!(rare.len() > 100);
        for offset in 0..8 {
            let mut src = b"abcdefg"[..offset].to_vec();
            src.extend_from_slice(&rare);
            src.extend_from_slice(b"tail");
            assert_eq!(decoded(&encoded(&src)), Ok(src));
        }
    }

    #[test]
    fn rejects_eos_after_symbols_and_accepts_seven_bits_of_padding() {
        // 'a' (00011) + EOS (30 ones) + 5 ones of padding.
        assert_eq!(
            decoded(&[0x1f, 0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
        // '0' (00000) + '0' + 6 ones: 16 bits.
        assert_eq!(decoded(&[0x00, 0x3f]), Ok(b"00".to_vec()));
        // 'a' + 3 ones of padding, then a whole byte of ones: 11 bits of padding.
        assert_eq!(
            decoded(&[0x1f, 0xff]),
            Err(HpackError::HuffmanPaddingTooLong)
        );
    }
}
