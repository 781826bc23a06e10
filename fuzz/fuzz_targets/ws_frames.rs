//! WebSocket frame decoding (RFC 6455 §5.2): arbitrary bytes in arbitrary pieces, for either
//! role, with arbitrary allowed reserved bits and frame limit. Properties: no panic; the
//! decoder takes only what it is given; a payload never exceeds its header's length nor the
//! frame limit; a control frame is at most 125 bytes and final; the masking rule holds.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::ws::frame::{Decoded, FrameDecoder, RSV1, RSV2, RSV3};

#[derive(Arbitrary, Debug)]
struct Input {
    expect_masked: bool,
    allowed_rsv: u8,
    max_frame_size: u16,
    /// Sizes of the pieces the bytes arrive in (0 means 1).
    pieces: Vec<u16>,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let allowed = input.allowed_rsv & (RSV1 | RSV2 | RSV3);
    let max = usize::from(input.max_frame_size);
    let mut decoder = FrameDecoder::new(input.expect_masked, allowed, max);
    let mut rest = &input.bytes[..];
    let mut pieces = input.pieces.iter().copied().cycle();
    let mut current: Option<(u64, u64)> = None;
    while !rest.is_empty() {
        let n = usize::from(pieces.next().unwrap_or(u16::MAX).max(1)).min(rest.len());
        let mut piece = &rest[..n];
        rest = &rest[n..];
        loop {
            let mut sink = BytesMut::new();
            match decoder.decode(piece, &mut sink) {
                Err(_) => return,
                Ok((taken, item)) => {
                    assert!(taken <= piece.len());
                    piece = &piece[taken..];
                    match item {
                        None => {
                            assert!(piece.is_empty());
                            break;
                        }
                        Some(Decoded::Header(h)) => {
                            assert!(current.is_none());
                            assert!(h.payload_len <= max as u64);
                            assert_eq!(h.mask.is_some(), input.expect_masked);
                            assert_eq!(h.rsv & !allowed, 0);
                            if h.opcode.is_control() {
                                assert!(h.fin && h.payload_len <= 125);
                            }
                            current = Some((h.payload_len, 0));
                        }
                        Some(Decoded::Payload(len)) => {
                            assert_eq!(len, sink.len());
                            assert_eq!(len, taken);
                            let (total, seen) = current.as_mut().expect("payload after a header");
                            *seen += len as u64;
                            assert!(*seen <= *total);
                        }
                        Some(Decoded::End) => {
                            let (total, seen) = current.take().expect("end after a header");
                            assert_eq!(total, seen);
                        }
                    }
                }
            }
        }
    }
});
