//! HTTP/2 frame decoding (RFC 9113 §4, §6): arbitrary bytes arriving in arbitrary pieces, with
//! an arbitrary max_frame_size. Properties: no panic; no frame longer than max_frame_size; a
//! frame is consumed whole; every decoded frame re-encodes to the same length and decodes
//! again to the same frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::h2::{FRAME_HEADER_LEN, FrameHeader, decode, encode};

#[derive(Arbitrary, Debug)]
struct Input {
    max_frame_size: u32,
    /// Sizes of the pieces the bytes arrive in (0 means 1).
    pieces: Vec<u16>,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let max = input.max_frame_size;
    let mut buf = BytesMut::new();
    let mut rest = &input.bytes[..];
    let mut pieces = input.pieces.iter().copied().cycle();
    while !rest.is_empty() {
        let n = usize::from(pieces.next().unwrap_or(u16::MAX).max(1)).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let before = buf.len();
            let length = buf
                .first_chunk::<FRAME_HEADER_LEN>()
                .map(|h| FrameHeader::parse(h).length);
            match decode(&mut buf, max) {
                Ok(None) => {
                    assert_eq!(buf.len(), before);
                    break;
                }
                Ok(Some(frame)) => {
                    let length = length.expect("a frame has a header");
                    assert!(length <= max, "frame of {length} bytes past limit {max}");
                    assert_eq!(before - buf.len(), FRAME_HEADER_LEN + length as usize);
                    let mut again = BytesMut::new();
                    encode(&frame, &mut again).expect("a decoded frame fits");
                    assert_eq!(again.len(), FRAME_HEADER_LEN + length as usize);
                    assert_eq!(decode(&mut again, max), Ok(Some(frame)));
                    assert!(again.is_empty());
                }
                Err(e) if e.is_connection_error() => return,
                Err(_) => assert!(buf.len() < before, "stream error must consume the frame"),
            }
        }
    }
});
