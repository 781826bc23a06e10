//! The Huffman code of RFC 7541 §5.2 and Appendix B.
//!
//! Decoding walks a binary tree built from the code table at compile time, and enforces the
//! three rules of §5.2: EOS inside a string is an error, padding is at most 7 bits, and padding
//! is all ones (the most significant bits of EOS).

use bytes::{BufMut, BytesMut};

use super::HpackError;
use super::huffman_table::CODES;

/// The EOS symbol (RFC 7541 Appendix B).
const EOS: u16 = 256;
/// Marks a tree child that is a symbol rather than another node.
const LEAF: u16 = 0x8000;
/// A prefix code with 257 symbols has exactly 256 internal nodes.
const NODES: usize = 256;

/// `TREE[node][bit]` is the next node, or `LEAF | symbol`. Node 0 is the root.
static TREE: [[u16; 2]; NODES] = build_tree();

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

/// Decodes the Huffman-coded `src`, appending the octets to `dst`.
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    let mut node = 0usize;
    // Bits read since the last complete symbol, and whether they were all ones.
    let mut pending_bits = 0u32;
    let mut pending_ones = true;
    for &byte in src {
        for shift in (0..8).rev() {
            let bit = (byte >> shift) & 1;
            let next = TREE[node][usize::from(bit)];
            pending_bits += 1;
            pending_ones &= bit == 1;
            if next & LEAF != 0 {
                let symbol = next & !LEAF;
                if symbol == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                dst.push(symbol as u8);
                node = 0;
                pending_bits = 0;
                pending_ones = true;
            } else {
                node = usize::from(next);
            }
        }
    }
    if pending_bits > 7 {
        return Err(HpackError::HuffmanPaddingTooLong);
    }
    if !pending_ones {
        return Err(HpackError::HuffmanPaddingNotOnes);
    }
    Ok(())
}

/// Length in octets of the Huffman coding of `src`.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `src` to `dst`, padded with ones (RFC 7541 §5.2).
pub(super) fn encode(src: &[u8], dst: &mut BytesMut) {
    let mut acc = 0u64;
    let mut bits = 0u32;
    for &byte in src {
        let (code, len) = CODES[usize::from(byte)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
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
        let mut dst = Vec::new();
        decode(src, &mut dst).map(|()| dst)
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
}
