//! HTTP/2 frame codec (RFC 9113 §4, §6) properties: any valid frame survives encode then
//! decode, whatever the points at which its bytes arrive; arbitrary bytes never panic the
//! decoder and never yield a frame longer than the max_frame_size it was given.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use weft_core::h2::{
    DEFAULT_MAX_FRAME_SIZE, ErrorCode, FRAME_HEADER_LEN, Frame, FrameHeader, MAX_PAYLOAD_LEN,
    Priority, Settings, decode, encode,
};

// ----- generators -----

fn stream() -> impl Strategy<Value = u32> {
    1..=0x7fff_ffff_u32
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![0..=0xd_u32, any::<u32>()].prop_map(ErrorCode::from)
}

fn priority() -> impl Strategy<Value = Priority> {
    (any::<bool>(), 0..=0x7fff_ffff_u32, any::<u8>()).prop_map(|(exclusive, dependency, weight)| {
        Priority {
            exclusive,
            dependency,
            weight,
        }
    })
}

/// A (id, value) pair that passes the checks of §6.5.2.
fn setting() -> impl Strategy<Value = (u16, u32)> {
    prop_oneof![
        (Just(Settings::HEADER_TABLE_SIZE), any::<u32>()),
        (Just(Settings::ENABLE_PUSH), 0..=1_u32),
        (Just(Settings::MAX_CONCURRENT_STREAMS), any::<u32>()),
        (Just(Settings::INITIAL_WINDOW_SIZE), 0..=0x7fff_ffff_u32),
        (Just(Settings::MAX_FRAME_SIZE), 16_384..=16_777_215_u32),
        (Just(Settings::MAX_HEADER_LIST_SIZE), any::<u32>()),
        (7..=u16::MAX, any::<u32>()),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (stream(), any::<bool>(), any::<Option<u8>>(), bytes(64)).prop_map(
            |(stream, end_stream, pad_len, data)| Frame::Data {
                stream,
                end_stream,
                pad_len,
                data
            }
        ),
        (
            stream(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(priority()),
            any::<Option<u8>>(),
            bytes(64)
        )
            .prop_map(
                |(stream, end_stream, end_headers, priority, pad_len, fragment)| Frame::Headers {
                    stream,
                    end_stream,
                    end_headers,
                    priority,
                    pad_len,
                    fragment
                }
            ),
        (stream(), priority()).prop_map(|(stream, priority)| Frame::Priority { stream, priority }),
        (stream(), code()).prop_map(|(stream, code)| Frame::RstStream { stream, code }),
        vec(setting(), 0..8).prop_map(|pairs| Frame::Settings {
            ack: false,
            settings: pairs.into_iter().collect()
        }),
        Just(Frame::Settings {
            ack: true,
            settings: Settings::new()
        }),
        (
            stream(),
            any::<bool>(),
            any::<Option<u8>>(),
            stream(),
            bytes(64)
        )
            .prop_map(|(stream, end_headers, pad_len, promised, fragment)| {
                Frame::PushPromise {
                    stream,
                    end_headers,
                    pad_len,
                    promised,
                    fragment,
                }
            }),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(ack, data)| Frame::Ping { ack, data }),
        (0..=0x7fff_ffff_u32, code(), bytes(32)).prop_map(|(last_stream, code, debug)| {
            Frame::GoAway {
                last_stream,
                code,
                debug,
            }
        }),
        (0..=0x7fff_ffff_u32, 1..=0x7fff_ffff_u32)
            .prop_map(|(stream, increment)| Frame::WindowUpdate { stream, increment }),
        (stream(), any::<bool>(), bytes(64)).prop_map(|(stream, end_headers, fragment)| {
            Frame::Continuation {
                stream,
                end_headers,
                fragment,
            }
        }),
        (10..=u8::MAX, any::<u8>(), 0..=0x7fff_ffff_u32, bytes(32)).prop_map(
            |(kind, flags, stream, payload)| Frame::Unknown {
                kind,
                flags,
                stream,
                payload
            }
        ),
    ]
}

/// Delivers `wire` in pieces cut at `cuts` (positions taken modulo the length), decoding after
/// each piece.
fn decode_in_pieces(wire: &[u8], cuts: &[usize], max: u32) -> Vec<Frame> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&wire[at..p]);
        at = p;
        while let Some(frame) = decode(&mut buf, max).expect("valid frame refused") {
            out.push(frame);
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    out
}

// ----- properties -----

proptest! {
    #[test]
    fn valid_frames_round_trip_at_any_split(
        frames in vec(frame(), 1..8),
        cuts in vec(any::<usize>(), 0..12),
    ) {
        let mut wire = BytesMut::new();
        for f in &frames {
            encode(f, &mut wire).expect("small frame");
        }
        prop_assert_eq!(decode_in_pieces(&wire, &cuts, DEFAULT_MAX_FRAME_SIZE), frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_exceed_max_frame_size(
        input in vec(any::<u8>(), 0..512),
        max in prop_oneof![0..64_u32, any::<u32>(), Just(MAX_PAYLOAD_LEN)],
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut buf = BytesMut::new();
        let mut at = 0;
        'feed: for p in points {
            buf.extend_from_slice(&input[at..p]);
            at = p;
            loop {
                let before = buf.clone();
                match decode(&mut buf, max) {
                    Ok(None) => break,
                    Ok(Some(_)) => {
                        let header = FrameHeader::parse(
                            before[..FRAME_HEADER_LEN].try_into().expect("9 bytes"),
                        );
                        prop_assert!(header.length <= max);
                        prop_assert_eq!(
                            before.len() - buf.len(),
                            FRAME_HEADER_LEN + header.length as usize
                        );
                    }
                    Err(e) if e.is_connection_error() => break 'feed,
                    Err(_) => {}
                }
            }
        }
    }
}
