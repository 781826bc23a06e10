//! Frames (RFC 6455 §5.2): an incremental decoder that checks every header rule before a byte
//! of payload is stored, an encoder, and the masking transform.

use bytes::{Buf, BufMut, BytesMut};

use super::CloseCode;

/// Largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Longest frame header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// RSV1: the first frame of a message compressed by permessage-deflate (RFC 7692 §6).
pub const RSV1: u8 = 0x40;
/// RSV2, unused by any extension we know.
pub const RSV2: u8 = 0x20;
/// RSV3, unused by any extension we know.
pub const RSV3: u8 = 0x10;

/// A frame's opcode (§5.2); the reserved ones are refused by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// A later fragment of a message.
    Continuation,
    /// The first frame of a UTF-8 text message.
    Text,
    /// The first frame of a binary message.
    Binary,
    /// The close handshake.
    Close,
    /// A ping, answered with a pong carrying the same payload.
    Ping,
    /// A pong.
    Pong,
}

impl OpCode {
    /// The opcode with this 4-bit value, or `None` for a reserved one.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control frame (close, ping, pong): short and never fragmented.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of its message.
    pub fin: bool,
    /// The reserved bits as they sit in the first byte (`RSV1 | RSV2 | RSV3` mask).
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, present on client frames.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// A frame that breaks the protocol or a limit; each names the close code to fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A reserved bit is set that no negotiated extension defines (1002).
    ReservedBits,
    /// A reserved opcode (1002).
    UnknownOpcode,
    /// A control frame with more than 125 bytes of payload (1002).
    ControlTooLong,
    /// A control frame without FIN (1002).
    FragmentedControl,
    /// A client frame that is not masked (1002, §5.1).
    Unmasked,
    /// A server frame that is masked (1002, §5.1).
    Masked,
    /// A 64-bit length with its most significant bit set (1002).
    LengthOverflow,
    /// A payload larger than the frame limit (1009).
    TooLarge,
}

impl FrameError {
    /// The close code the connection fails with.
    pub fn close_code(self) -> CloseCode {
        match self {
            FrameError::TooLarge => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// What [`FrameDecoder::decode`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, valid header; its payload follows.
    Header(FrameHeader),
    /// This many payload bytes, unmasked, were appended to the sink.
    Payload(usize),
    /// The current frame's payload is complete.
    End,
}

#[derive(Debug, Clone)]
enum State {
    Header {
        buf: [u8; MAX_HEADER_LEN],
        len: usize,
    },
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
    },
}

/// Reads frames from bytes arriving in any split, checking each header before its payload.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// Frames must be masked (we are the server) or must not be (we are the client).
    expect_masked: bool,
    /// Reserved bits a negotiated extension defines.
    allowed_rsv: u8,
    max_frame_size: u64,
    state: State,
}

impl FrameDecoder {
    /// A decoder for frames sent by a client (`expect_masked`) or by a server, accepting the
    /// reserved bits in `allowed_rsv` and payloads up to `max_frame_size` bytes.
    pub fn new(expect_masked: bool, allowed_rsv: u8, max_frame_size: usize) -> Self {
        FrameDecoder {
            expect_masked,
            allowed_rsv,
            max_frame_size: u64::try_from(max_frame_size).unwrap_or(u64::MAX),
            state: State::Header {
                buf: [0; MAX_HEADER_LEN],
                len: 0,
            },
        }
    }

    /// Whether the decoder is between frames (no partial header or payload held).
    pub fn is_between_frames(&self) -> bool {
        matches!(self.state, State::Header { len: 0, .. })
    }

    /// Decodes from `input`, appending payload bytes (unmasked) to `sink`. Returns how many
    /// input bytes were used and what they made; `None` means all of `input` was used and
    /// more is needed.
    pub fn decode(
        &mut self,
        input: &[u8],
        sink: &mut BytesMut,
    ) -> Result<(usize, Option<Decoded>), FrameError> {
        match &mut self.state {
            State::Header { buf, len } => {
                let (taken, header) =
                    read_header(buf, len, input, self.expect_masked, self.allowed_rsv)?;
                let Some(header) = header else {
                    return Ok((taken, None));
                };
                if header.payload_len > self.max_frame_size {
                    return Err(FrameError::TooLarge);
                }
                self.state = State::Payload {
                    remaining: header.payload_len,
                    mask: header.mask,
                    offset: 0,
                };
                Ok((taken, Some(Decoded::Header(header))))
            }
            State::Payload { remaining: 0, .. } => {
                self.state = State::Header {
                    buf: [0; MAX_HEADER_LEN],
                    len: 0,
                };
                Ok((0, Some(Decoded::End)))
            }
            State::Payload {
                remaining,
                mask,
                offset,
            } => {
                let n = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                if n == 0 {
                    return Ok((0, None));
                }
                let chunk = input.get(..n).unwrap_or_default();
                let start = sink.len();
                sink.extend_from_slice(chunk);
                if let (Some(key), Some(appended)) = (*mask, sink.get_mut(start..)) {
                    apply_mask(appended, key, *offset);
                }
                *offset = (*offset + n) % 4;
                *remaining -= n as u64;
                Ok((n, Some(Decoded::Payload(n))))
            }
        }
    }
}

/// A frame's header parsed in place at the front of a buffer ([`FrameDecoder::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peeked {
    /// The header, every rule checked (the frame size limit included).
    pub header: FrameHeader,
    /// Its length on the wire.
    pub header_len: usize,
}

impl Peeked {
    /// The whole frame's length on the wire, header and payload (saturating: a payload past
    /// `usize` can never be held anyway).
    pub fn frame_len(&self) -> usize {
        usize::try_from(self.header.payload_len)
            .unwrap_or(usize::MAX)
            .saturating_add(self.header_len)
    }
}

impl FrameDecoder {
    /// Parses the header at the front of `input` without taking anything, for a receiver that
    /// keeps its own buffer and takes whole frames out of it ([`take_frame`]): `None` while
    /// the header is incomplete. Only between frames ([`is_between_frames`]): the caller
    /// either takes the whole frame or gives its bytes to [`decode`] instead, never both.
    ///
    /// [`take_frame`]: Self::take_frame
    /// [`is_between_frames`]: Self::is_between_frames
    /// [`decode`]: Self::decode
    pub fn peek(&self, input: &[u8]) -> Result<Option<Peeked>, FrameError> {
        let &[first, second, ref rest @ ..] = input else {
            return Ok(None);
        };
        check_first_two(first, second, self.expect_masked, self.allowed_rsv)?;
        let header_len = header_len(second);
        let Some(rest) = rest.get(..header_len - 2) else {
            return Ok(None);
        };
        let (payload_len, key) = match (second & 0x7F, rest) {
            (126, &[a, b, ref key @ ..]) => (u64::from(u16::from_be_bytes([a, b])), key),
            (127, &[a, b, c, d, e, f, g, h, ref key @ ..]) => {
                let value = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if value >> 63 != 0 {
                    return Err(FrameError::LengthOverflow);
                }
                (value, key)
            }
            (short, key) => (u64::from(short), key),
        };
        if payload_len > self.max_frame_size {
            return Err(FrameError::TooLarge);
        }
        let mask = match *key {
            [a, b, c, d] => Some([a, b, c, d]),
            _ => None,
        };
        let opcode = OpCode::from_bits(first & 0x0F).ok_or(FrameError::UnknownOpcode)?;
        let header = FrameHeader {
            fin: first & 0x80 != 0,
            rsv: first & (RSV1 | RSV2 | RSV3),
            opcode,
            mask,
            payload_len,
        };
        Ok(Some(Peeked { header, header_len }))
    }

    /// Takes the frame `peeked` (from [`peek`](Self::peek) on the same bytes) off the front
    /// of `input` and returns its payload, unmasked where it lies: no byte is copied, and
    /// the payload shares `input`'s allocation (`freeze` it to hand it out). `None`, taking
    /// nothing, while the frame is not all in `input`.
    pub fn take_frame(input: &mut BytesMut, peeked: &Peeked) -> Option<BytesMut> {
        let len = peeked.frame_len();
        if input.len() < len {
            return None;
        }
        input.advance(peeked.header_len);
        let mut payload = input.split_to(len - peeked.header_len);
        if let Some(key) = peeked.header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Some(payload)
    }

    /// The next whole frame at the front of `input`, taken off it with its payload unmasked
    /// in place ([`peek`](Self::peek), then [`take_frame`](Self::take_frame)); `None`, taking
    /// nothing, until all of it has arrived. For a receiver whose buffer holds its largest
    /// frame; larger frames go through [`decode`](Self::decode), in pieces.
    pub fn decode_frame(
        &self,
        input: &mut BytesMut,
    ) -> Result<Option<(FrameHeader, BytesMut)>, FrameError> {
        let Some(peeked) = self.peek(input)? else {
            return Ok(None);
        };
        Ok(Self::take_frame(input, &peeked).map(|payload| (peeked.header, payload)))
    }
}

/// Fills the header buffer from `input`; returns bytes taken and the header once complete.
fn read_header(
    buf: &mut [u8; MAX_HEADER_LEN],
    len: &mut usize,
    input: &[u8],
    expect_masked: bool,
    allowed_rsv: u8,
) -> Result<(usize, Option<FrameHeader>), FrameError> {
    let mut taken = 0;
    loop {
        let needed = if *len < 2 { 2 } else { header_len(buf[1]) };
        if *len >= needed {
            break;
        }
        let want = (needed - *len).min(input.len() - taken);
        if want == 0 {
            return Ok((taken, None));
        }
        let (Some(dst), Some(src)) = (
            buf.get_mut(*len..*len + want),
            input.get(taken..taken + want),
        ) else {
            return Ok((taken, None));
        };
        dst.copy_from_slice(src);
        *len += want;
        taken += want;
        if *len == 2 {
            check_first_two(buf[0], buf[1], expect_masked, allowed_rsv)?;
        }
    }
    let header = finish_header(buf)?;
    *len = 0;
    Ok((taken, Some(header)))
}

/// Total header length announced by the second byte.
fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// The rules decidable from the first two bytes (checked before reading further).
fn check_first_two(
    first: u8,
    second: u8,
    expect_masked: bool,
    allowed_rsv: u8,
) -> Result<(), FrameError> {
    let rsv = first & (RSV1 | RSV2 | RSV3);
    if rsv & !allowed_rsv != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = OpCode::from_bits(first & 0x0F).ok_or(FrameError::UnknownOpcode)?;
    let masked = second & 0x80 != 0;
    if expect_masked && !masked {
        return Err(FrameError::Unmasked);
    }
    if !expect_masked && masked {
        return Err(FrameError::Masked);
    }
    if opcode.is_control() {
        if first & 0x80 == 0 {
            return Err(FrameError::FragmentedControl);
        }
        if usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::ControlTooLong);
        }
    }
    Ok(())
}

fn finish_header(buf: &[u8; MAX_HEADER_LEN]) -> Result<FrameHeader, FrameError> {
    let &[first, second, ref rest @ ..] = buf;
    let opcode = OpCode::from_bits(first & 0x0F).ok_or(FrameError::UnknownOpcode)?;
    let (payload_len, after) = match second & 0x7F {
        126 => (u64::from(u16::from_be_bytes([rest[0], rest[1]])), 2),
        127 => {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(rest.get(..8).unwrap_or(&[0; 8]));
            let value = u64::from_be_bytes(bytes);
            if value >> 63 != 0 {
                return Err(FrameError::LengthOverflow);
            }
            (value, 8)
        }
        short => (u64::from(short), 0),
    };
    let mask = (second & 0x80 != 0).then(|| {
        let mut key = [0; 4];
        key.copy_from_slice(rest.get(after..after + 4).unwrap_or(&[0; 4]));
        key
    });
    Ok(FrameHeader {
        fin: first & 0x80 != 0,
        rsv: first & (RSV1 | RSV2 | RSV3),
        opcode,
        mask,
        payload_len,
    })
}

/// XORs `data` with the masking key, `data` starting `offset` bytes into the masked payload
/// (§5.3). Sixteen bytes at a time as one `u128` (one vector register), then eight as a
/// `u64`, in safe code: the chunks have the key's period, 4, so the key lines up in each.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let rotation = offset % 4;
    let key = [
        key[rotation],
        key[(rotation + 1) % 4],
        key[(rotation + 2) % 4],
        key[(rotation + 3) % 4],
    ];
    let [a, b, c, d] = key;
    let wide = u128::from_ne_bytes([a, b, c, d, a, b, c, d, a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let mut word = [0; 16];
        word.copy_from_slice(chunk);
        let masked = u128::from_ne_bytes(word) ^ wide;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    let mut chunks = chunks.into_remainder().chunks_exact_mut(8);
    let narrow = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let masked = u64::from_ne_bytes(word) ^ narrow;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// Appends one frame to `out`: the header, then `payload`, masked with `mask` when given
/// (client frames must be masked, server frames must not).
pub fn encode_frame(
    out: &mut BytesMut,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let fin_bit = if fin { 0x80 } else { 0 };
    out.put_u8(fin_bit | (rsv & (RSV1 | RSV2 | RSV3)) | opcode.bits());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.put_u8(mask_bit | 126);
        out.put_u16(short);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            if let Some(appended) = out.get_mut(start..) {
                apply_mask(appended, key, 0);
            }
        }
    }
}

/// The header length [`encode_frame`] writes for a payload of `len` bytes.
pub fn encoded_header_len(len: usize, masked: bool) -> usize {
    let ext = if len < 126 {
        0
    } else if len <= usize::from(u16::MAX) {
        2
    } else {
        8
    };
    2 + ext + if masked { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        decoder: &mut FrameDecoder,
        input: &[u8],
    ) -> Result<Vec<(Decoded, Vec<u8>)>, FrameError> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let mut sink = BytesMut::new();
            let (n, item) = decoder.decode(&input[pos..], &mut sink)?;
            pos += n;
            match item {
                Some(item) => out.push((item, sink.to_vec())),
                None => return Ok(out),
            }
        }
    }

    #[test]
    fn rfc_examples_decode() {
        // §5.7: a single-frame masked text message "Hello".
        let input = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let items = decode_all(&mut FrameDecoder::new(true, 0, 1024), &input).unwrap();
        assert_eq!(items[1].1, b"Hello");
        assert_eq!(items[2].0, Decoded::End);
        // Unmasked "Hello" from a server.
        let input = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let items = decode_all(&mut FrameDecoder::new(false, 0, 1024), &input).unwrap();
        assert_eq!(items[1].1, b"Hello");
    }

    #[test]
    fn header_rules() {
        let err = |input: &[u8], masked| {
            decode_all(&mut FrameDecoder::new(masked, 0, 1 << 20), input).unwrap_err()
        };
        assert_eq!(err(&[0x81, 0x05], true), FrameError::Unmasked);
        assert_eq!(err(&[0x81, 0x85], false), FrameError::Masked);
        assert_eq!(err(&[0xC1, 0x80], true), FrameError::ReservedBits);
        assert_eq!(err(&[0x83, 0x80], true), FrameError::UnknownOpcode);
        assert_eq!(err(&[0x09, 0x80], true), FrameError::FragmentedControl);
        assert_eq!(err(&[0x89, 0xFE], true), FrameError::ControlTooLong);
        let mut huge = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(err(&huge, true), FrameError::LengthOverflow);
        let mut big = vec![0x82, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0];
        big.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(err(&big, true), FrameError::TooLarge);
        assert_eq!(FrameError::TooLarge.close_code(), CloseCode::TOO_BIG);
    }

    #[test]
    fn rsv1_allowed_when_negotiated() {
        let items = decode_all(&mut FrameDecoder::new(false, RSV1, 10), &[0xC1, 0x00]).unwrap();
        assert!(matches!(items[0].0, Decoded::Header(h) if h.rsv == RSV1));
    }

    #[test]
    fn round_trip_byte_by_byte_every_length_form() {
        for len in [0usize, 5, 125, 126, 300, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut wire = BytesMut::new();
            encode_frame(
                &mut wire,
                true,
                0,
                OpCode::Binary,
                Some([1, 2, 3, 4]),
                &payload,
            );
            assert_eq!(wire.len(), encoded_header_len(len, true) + len);
            let mut decoder = FrameDecoder::new(true, 0, 1 << 20);
            let mut sink = BytesMut::new();
            let mut header = None;
            let mut ended = false;
            for byte in wire.iter() {
                let (n, item) = decoder
                    .decode(std::slice::from_ref(byte), &mut sink)
                    .unwrap();
                assert_eq!(n, 1);
                if let Some(Decoded::Header(h)) = item {
                    header = Some(h);
                }
            }
            if let (_, Some(Decoded::End)) = decoder.decode(&[], &mut sink).unwrap() {
                ended = true;
            }
            assert!(ended, "len {len}");
            assert_eq!(header.unwrap().payload_len, len as u64);
            assert_eq!(&sink[..], &payload[..]);
            assert!(decoder.is_between_frames());
        }
    }

    #[test]
    fn mask_offsets_compose() {
        let data: Vec<u8> = (0..37).collect();
        let key = [0xde, 0xad, 0xbe, 0xef];
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(parts, whole);
        }
        let expected: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(whole, expected);
    }
}
