//! Integer representation with an N-bit prefix (RFC 7541 §5.1).
//!
//! Values are bounded to 2^32 - 1 and to the five continuation bytes such a value needs, so a
//! peer cannot make us loop over an endless run of `0x80` bytes or overflow arithmetic.

use bytes::{BufMut, BytesMut};

use super::HpackError;

/// Largest integer we accept (RFC 7541 §5.1 leaves the bound to implementations).
const MAX_INTEGER: u64 = u32::MAX as u64;

/// Most continuation bytes after the prefix: 5 × 7 bits cover 2^32 - 1.
const MAX_CONTINUATION_BYTES: usize = 5;

fn prefix_mask(prefix_bits: u8) -> u8 {
    if prefix_bits >= 8 {
        0xff
    } else {
        (1u8 << prefix_bits) - 1
    }
}

/// Decodes an integer whose prefix is the low `prefix_bits` bits of `src[0]`.
/// Returns the value and the number of bytes it took.
pub(super) fn decode(src: &[u8], prefix_bits: u8) -> Result<(usize, usize), HpackError> {
    let mask = prefix_mask(prefix_bits);
    let (&first, rest) = src.split_first().ok_or(HpackError::Truncated)?;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return to_usize(value).map(|v| (v, 1));
    }
    for (i, &byte) in rest.iter().enumerate() {
        if i >= MAX_CONTINUATION_BYTES {
            return Err(HpackError::IntegerOverflow);
        }
        value += u64::from(byte & 0x7f) << (7 * i);
        if value > MAX_INTEGER {
            return Err(HpackError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return to_usize(value).map(|v| (v, i + 2));
        }
    }
    Err(HpackError::Truncated)
}

fn to_usize(value: u64) -> Result<usize, HpackError> {
    usize::try_from(value).map_err(|_| HpackError::IntegerOverflow)
}

/// Encodes `value` with a `prefix_bits`-bit prefix; `flags` fills the bits above the prefix.
pub(super) fn encode(value: usize, prefix_bits: u8, flags: u8, dst: &mut BytesMut) {
    let mask = prefix_mask(prefix_bits);
    if value < usize::from(mask) {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask);
    let mut rest = value - usize::from(mask);
    while rest >= 0x80 {
        dst.put_u8((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: usize, prefix_bits: u8) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(value, prefix_bits, 0, &mut dst);
        dst.to_vec()
    }

    #[test]
    fn encodes_rfc_examples_c1() {
        assert_eq!(encoded(10, 5), [0x0a]); // C.1.1
        assert_eq!(encoded(1337, 5), [0x1f, 0x9a, 0x0a]); // C.1.2
        assert_eq!(encoded(42, 8), [0x2a]); // C.1.3
    }

    #[test]
    fn decodes_rfc_examples_c1() {
        assert_eq!(decode(&[0xea], 5), Ok((10, 1)));
        assert_eq!(decode(&[0xff, 0x9a, 0x0a, 0xff], 5), Ok((1337, 3)));
        assert_eq!(decode(&[0x2a], 8), Ok((42, 1)));
    }

    #[test]
    fn round_trips_every_prefix_and_boundary() {
        for prefix in 1..=8u8 {
            for value in [
                0,
                1,
                30,
                31,
                32,
                126,
                127,
                128,
                254,
                255,
                256,
                16_383,
                1 << 20,
                u32::MAX as usize,
            ] {
                let bytes = encoded(value, prefix);
                assert_eq!(
                    decode(&bytes, prefix),
                    Ok((value, bytes.len())),
                    "{value} /{prefix}"
                );
            }
        }
    }

    #[test]
    fn rejects_integer_above_u32() {
        let bytes = encoded(u32::MAX as usize + 1, 5);
        assert_eq!(decode(&bytes, 5), Err(HpackError::IntegerOverflow));
    }

    #[test]
    fn rejects_endless_continuation_bytes() {
        let mut bytes = vec![0x1f];
        bytes.extend(std::iter::repeat_n(0x80, 100));
        bytes.push(0);
        assert_eq!(decode(&bytes, 5), Err(HpackError::IntegerOverflow));
    }

    #[test]
    fn rejects_truncated_integer() {
        assert_eq!(decode(&[], 5), Err(HpackError::Truncated));
        assert_eq!(decode(&[0x1f, 0x9a], 5), Err(HpackError::Truncated));
    }
}
