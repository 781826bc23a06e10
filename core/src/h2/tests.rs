//! Frame codec tests: every rule of RFC 9113 §4 and §6 that `decode` enforces, a round trip of
//! every frame type, and byte-at-a-time delivery.

use bytes::{Bytes, BytesMut};

use super::*;

const MAX: u32 = DEFAULT_MAX_FRAME_SIZE;

/// A raw frame: header fields as given, payload as given.
fn raw(ty: u8, fl: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    let header = FrameHeader {
        length: payload.len() as u32,
        kind: ty,
        flags: fl,
        stream,
    };
    buf.extend_from_slice(&header.to_bytes());
    buf.extend_from_slice(payload);
    buf
}

fn decode_one(ty: u8, fl: u8, stream: u32, payload: &[u8]) -> Result<Option<Frame>, FrameError> {
    decode(&mut raw(ty, fl, stream, payload), MAX)
}

fn conn(code: ErrorCode, rule: FrameRule) -> Result<Option<Frame>, FrameError> {
    Err(FrameError {
        rule,
        code,
        scope: ErrorScope::Connection,
    })
}

fn settings_payload(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(id, value) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

fn every_frame_type() -> Vec<Frame> {
    let prio = Priority {
        exclusive: true,
        dependency: 7,
        weight: 200,
    };
    vec![
        Frame::Data {
            stream: 1,
            end_stream: true,
            pad_len: None,
            data: Bytes::from_static(b"hello"),
        },
        Frame::Data {
            stream: 3,
            end_stream: false,
            pad_len: Some(4),
            data: Bytes::from_static(b"padded"),
        },
        Frame::Data {
            stream: 5,
            end_stream: false,
            pad_len: Some(0),
            data: Bytes::new(),
        },
        Frame::Headers {
            stream: 1,
            end_stream: false,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment: Bytes::from_static(b"\x82\x86"),
        },
        Frame::Headers {
            stream: 0x7fff_ffff,
            end_stream: true,
            end_headers: false,
            priority: Some(prio),
            pad_len: Some(3),
            fragment: Bytes::from_static(b"\x84"),
        },
        Frame::Priority {
            stream: 9,
            priority: Priority {
                exclusive: false,
                dependency: 0,
                weight: 15,
            },
        },
        Frame::RstStream {
            stream: 1,
            code: ErrorCode::Cancel,
        },
        Frame::RstStream {
            stream: 1,
            code: ErrorCode::Unknown(0xdead),
        },
        Frame::Settings {
            ack: false,
            settings: [
                (1, 4096),
                (2, 0),
                (3, 100),
                (4, 65_535),
                (5, 16_384),
                (6, 8192),
                (0x99, 7),
            ]
            .into_iter()
            .collect(),
        },
        Frame::Settings {
            ack: true,
            settings: Settings::new(),
        },
        Frame::PushPromise {
            stream: 1,
            end_headers: true,
            pad_len: Some(2),
            promised: 2,
            fragment: Bytes::from_static(b"\x82"),
        },
        Frame::PushPromise {
            stream: 3,
            end_headers: false,
            pad_len: None,
            promised: 4,
            fragment: Bytes::new(),
        },
        Frame::Ping {
            ack: false,
            data: *b"12345678",
        },
        Frame::Ping {
            ack: true,
            data: [0; 8],
        },
        Frame::GoAway {
            last_stream: 5,
            code: ErrorCode::EnhanceYourCalm,
            debug: Bytes::from_static(b"slow down"),
        },
        Frame::WindowUpdate {
            stream: 0,
            increment: 1,
        },
        Frame::WindowUpdate {
            stream: 3,
            increment: 0x7fff_ffff,
        },
        Frame::Continuation {
            stream: 1,
            end_headers: true,
            fragment: Bytes::from_static(b"\x87"),
        },
        Frame::Unknown {
            kind: 0x42,
            flags: 0xff,
            stream: 11,
            payload: Bytes::from_static(b"whatever"),
        },
    ]
}

// ----- round trips -----

#[test]
fn every_frame_type_round_trips() {
    for frame in every_frame_type() {
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf).unwrap();
        assert_eq!(decode(&mut buf, MAX), Ok(Some(frame)));
        assert!(buf.is_empty());
    }
}

#[test]
fn bytes_fed_one_at_a_time_give_the_same_frames() {
    let frames = every_frame_type();
    let mut wire = BytesMut::new();
    for frame in &frames {
        encode(frame, &mut wire).unwrap();
    }
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &byte in wire.iter() {
        buf.extend_from_slice(&[byte]);
        while let Some(frame) = decode(&mut buf, MAX).unwrap() {
            out.push(frame);
        }
    }
    assert_eq!(out, frames);
    assert!(buf.is_empty());
}

#[test]
fn waits_for_whole_frame_without_consuming() {
    let whole = raw(kind::PING, 0, 0, b"12345678");
    let mut buf = BytesMut::from(&whole[..16]);
    assert_eq!(decode(&mut buf, MAX), Ok(None));
    assert_eq!(buf.len(), 16);
    buf.extend_from_slice(&whole[16..]);
    assert!(matches!(
        decode(&mut buf, MAX),
        Ok(Some(Frame::Ping { .. }))
    ));
    assert_eq!(decode(&mut BytesMut::from(&b"\0\0"[..]), MAX), Ok(None));
}

#[test]
fn encode_writes_exact_bytes() {
    let mut buf = BytesMut::new();
    encode(
        &Frame::Data {
            stream: 1,
            end_stream: true,
            pad_len: Some(2),
            data: Bytes::from_static(b"ab"),
        },
        &mut buf,
    )
    .unwrap();
    assert_eq!(&buf[..], b"\0\0\x05\0\x09\0\0\0\x01\x02ab\0\0");
}

#[test]
fn reserved_bit_ignored_on_read_and_cleared_on_write() {
    let mut buf = raw(kind::WINDOW_UPDATE, 0, 0x8000_0003, &[0x80, 0, 0, 9]);
    let frame = decode(&mut buf, MAX).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::WindowUpdate {
            stream: 3,
            increment: 9
        }
    );
    let mut out = BytesMut::new();
    encode(
        &Frame::WindowUpdate {
            stream: 0x8000_0003,
            increment: 0x8000_0009,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..], b"\0\0\x04\x08\0\0\0\0\x03\0\0\0\x09");
}

#[test]
fn undefined_flags_are_ignored() {
    let frame = decode_one(kind::PING, 0xfe, 0, b"abcdefgh")
        .unwrap()
        .unwrap();
    assert_eq!(
        frame,
        Frame::Ping {
            ack: false,
            data: *b"abcdefgh"
        }
    );
}

#[test]
fn unknown_frame_types_are_surfaced() {
    let frame = decode_one(0xfa, 0x3, 0, b"xyz").unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::Unknown {
            kind: 0xfa,
            flags: 0x3,
            stream: 0,
            payload: Bytes::from_static(b"xyz")
        }
    );
}

#[test]
fn encode_refuses_payload_over_24_bits() {
    let frame = Frame::Data {
        stream: 1,
        end_stream: false,
        pad_len: None,
        data: Bytes::from(vec![0; 1 << 24]),
    };
    let mut buf = BytesMut::new();
    assert_eq!(
        encode(&frame, &mut buf),
        Err(PayloadTooLarge { len: 1 << 24 })
    );
    assert!(buf.is_empty());
}

#[test]
fn preface_is_the_rfc_string() {
    assert_eq!(PREFACE, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
}

#[test]
fn settings_accessors_take_last_value_and_keep_unknown_ids() {
    let frame = decode_one(
        kind::SETTINGS,
        0,
        0,
        &settings_payload(&[(4, 10), (0x77, 1), (4, 20), (2, 1), (5, 20_000)]),
    )
    .unwrap()
    .unwrap();
    let Frame::Settings { ack, settings } = frame else {
        panic!("not SETTINGS")
    };
    assert!(!ack);
    assert_eq!(settings.initial_window_size(), Some(20));
    assert_eq!(settings.enable_push(), Some(true));
    assert_eq!(settings.max_frame_size(), Some(20_000));
    assert_eq!(settings.header_table_size(), None);
    assert_eq!(settings.max_concurrent_streams(), None);
    assert_eq!(settings.max_header_list_size(), None);
    assert_eq!(settings.get(0x77), Some(1));
    assert_eq!(settings.pairs().len(), 5);
}

#[test]
fn error_code_u32_conversions() {
    for code in 0..=0xd_u32 {
        let e = ErrorCode::from(code);
        assert!(!matches!(e, ErrorCode::Unknown(_)));
        assert_eq!(u32::from(e), code);
    }
    assert_eq!(ErrorCode::from(0xe), ErrorCode::Unknown(0xe));
    assert_eq!(u32::from(ErrorCode::Unknown(0xffff_ffff)), 0xffff_ffff);
}

// ----- §4.2 frame size -----

#[test]
fn rejects_length_over_max_frame_size_before_buffering() {
    // Only the header has arrived; the refusal does not wait for the payload.
    let mut buf = BytesMut::new();
    buf.extend_from_slice(
        &FrameHeader {
            length: MAX + 1,
            kind: kind::DATA,
            flags: 0,
            stream: 1,
        }
        .to_bytes(),
    );
    assert_eq!(
        decode(&mut buf, MAX),
        conn(ErrorCode::FrameSizeError, FrameRule::TooLarge)
    );
    assert!(buf.capacity() < MAX as usize);
    // Exactly the limit is fine.
    let mut buf = raw(kind::DATA, 0, 1, &vec![0; MAX as usize]);
    assert!(decode(&mut buf, MAX).unwrap().is_some());
}

// ----- stream 0 / non-zero stream -----

#[test]
fn rejects_stream_frames_on_stream_zero() {
    for (ty, payload) in [
        (kind::DATA, &b""[..]),
        (kind::HEADERS, b""),
        (kind::PRIORITY, b"\0\0\0\x01\x10"),
        (kind::RST_STREAM, b"\0\0\0\x08"),
        (kind::PUSH_PROMISE, b"\0\0\0\x02"),
        (kind::CONTINUATION, b""),
    ] {
        assert_eq!(
            decode_one(ty, 0, 0, payload),
            conn(ErrorCode::ProtocolError, FrameRule::StreamZero),
            "type {ty}"
        );
    }
}

#[test]
fn rejects_connection_frames_on_a_stream() {
    for (ty, payload) in [
        (kind::SETTINGS, &b""[..]),
        (kind::PING, b"12345678"),
        (kind::GOAWAY, b"\0\0\0\0\0\0\0\0"),
    ] {
        assert_eq!(
            decode_one(ty, 0, 1, payload),
            conn(ErrorCode::ProtocolError, FrameRule::StreamNonZero),
            "type {ty}"
        );
    }
}

// ----- fixed lengths -----

#[test]
fn rejects_settings_length_not_multiple_of_six() {
    assert_eq!(
        decode_one(kind::SETTINGS, 0, 0, &[0; 7]),
        conn(ErrorCode::FrameSizeError, FrameRule::BadLength)
    );
}

#[test]
fn rejects_settings_ack_with_payload() {
    assert_eq!(
        decode_one(kind::SETTINGS, flags::ACK, 0, &settings_payload(&[(1, 1)])),
        conn(ErrorCode::FrameSizeError, FrameRule::SettingsAckWithPayload)
    );
}

#[test]
fn rejects_ping_not_eight_bytes() {
    for len in [0, 7, 9] {
        assert_eq!(
            decode_one(kind::PING, 0, 0, &vec![0; len]),
            conn(ErrorCode::FrameSizeError, FrameRule::BadLength)
        );
    }
}

#[test]
fn rejects_rst_stream_not_four_bytes() {
    for len in [0, 3, 5] {
        assert_eq!(
            decode_one(kind::RST_STREAM, 0, 1, &vec![0; len]),
            conn(ErrorCode::FrameSizeError, FrameRule::BadLength)
        );
    }
}

#[test]
fn rejects_priority_not_five_bytes_as_stream_error_and_consumes_it() {
    let mut buf = raw(kind::PRIORITY, 0, 3, &[0; 4]);
    buf.extend_from_slice(&raw(kind::PING, 0, 0, b"12345678"));
    assert_eq!(
        decode(&mut buf, MAX),
        Err(FrameError {
            rule: FrameRule::BadLength,
            code: ErrorCode::FrameSizeError,
            scope: ErrorScope::Stream(3)
        })
    );
    // The connection goes on with the next frame.
    assert!(matches!(
        decode(&mut buf, MAX),
        Ok(Some(Frame::Ping { .. }))
    ));
}

#[test]
fn rejects_window_update_not_four_bytes() {
    for (stream, len) in [(0, 3), (1, 5)] {
        assert_eq!(
            decode_one(kind::WINDOW_UPDATE, 0, stream, &vec![1; len]),
            conn(ErrorCode::FrameSizeError, FrameRule::BadLength)
        );
    }
}

#[test]
fn rejects_goaway_shorter_than_eight_bytes() {
    assert_eq!(
        decode_one(kind::GOAWAY, 0, 0, &[0; 7]),
        conn(ErrorCode::FrameSizeError, FrameRule::BadLength)
    );
}

#[test]
fn rejects_frames_too_short_for_their_fixed_fields() {
    // PADDED with no Pad Length byte; PRIORITY flag with under 5 bytes; PUSH_PROMISE under 4.
    for (ty, fl, payload) in [
        (kind::DATA, flags::PADDED, &b""[..]),
        (kind::HEADERS, flags::PADDED, b""),
        (kind::HEADERS, flags::PRIORITY, b"\0\0\0\x01"),
        (
            kind::HEADERS,
            flags::PRIORITY | flags::PADDED,
            b"\0\0\0\0\x01",
        ),
        (kind::PUSH_PROMISE, 0, b"\0\0\x02"),
        (kind::PUSH_PROMISE, flags::PADDED, b"\0\0\0\x02"),
    ] {
        assert_eq!(
            decode_one(ty, fl, 1, payload),
            conn(ErrorCode::FrameSizeError, FrameRule::BadLength),
            "type {ty} flags {fl:#x}"
        );
    }
}

// ----- padding -----

#[test]
fn rejects_padding_as_long_as_payload() {
    for (ty, fl, payload) in [
        // DATA: length 3, pad length 3 ≥ payload length.
        (kind::DATA, flags::PADDED, &b"\x03\0\0"[..]),
        (kind::DATA, flags::PADDED, b"\x01"),
        // HEADERS: 2 bytes left for fragment + padding, padding 3.
        (kind::HEADERS, flags::PADDED, b"\x03ab"),
        (
            kind::HEADERS,
            flags::PADDED | flags::PRIORITY,
            b"\x01\0\0\0\x03\x10",
        ),
        (kind::PUSH_PROMISE, flags::PADDED, b"\x01\0\0\0\x02"),
    ] {
        assert_eq!(
            decode_one(ty, fl, 1, payload),
            conn(ErrorCode::ProtocolError, FrameRule::PaddingTooLong),
            "type {ty} flags {fl:#x}"
        );
    }
}

#[test]
fn accepts_padding_filling_the_rest_of_the_payload() {
    assert_eq!(
        decode_one(kind::DATA, flags::PADDED, 1, b"\x02\0\0"),
        Ok(Some(Frame::Data {
            stream: 1,
            end_stream: false,
            pad_len: Some(2),
            data: Bytes::new()
        }))
    );
}

// ----- SETTINGS values (§6.5.2) -----

#[test]
fn rejects_enable_push_other_than_zero_or_one() {
    assert_eq!(
        decode_one(kind::SETTINGS, 0, 0, &settings_payload(&[(2, 2)])),
        conn(ErrorCode::ProtocolError, FrameRule::InvalidEnablePush)
    );
}

#[test]
fn rejects_initial_window_size_over_2_31_minus_1() {
    assert!(decode_one(kind::SETTINGS, 0, 0, &settings_payload(&[(4, 0x7fff_ffff)])).is_ok());
    assert_eq!(
        decode_one(kind::SETTINGS, 0, 0, &settings_payload(&[(4, 0x8000_0000)])),
        conn(
            ErrorCode::FlowControlError,
            FrameRule::InvalidInitialWindowSize
        )
    );
}

#[test]
fn rejects_max_frame_size_out_of_range() {
    for ok in [16_384, 16_777_215] {
        assert!(decode_one(kind::SETTINGS, 0, 0, &settings_payload(&[(5, ok)])).is_ok());
    }
    for bad in [0, 16_383, 16_777_216, u32::MAX] {
        assert_eq!(
            decode_one(kind::SETTINGS, 0, 0, &settings_payload(&[(5, bad)])),
            conn(ErrorCode::ProtocolError, FrameRule::InvalidMaxFrameSize)
        );
    }
}

#[test]
fn ignores_values_of_unknown_settings() {
    assert!(
        decode_one(
            kind::SETTINGS,
            0,
            0,
            &settings_payload(&[(0xffff, u32::MAX)])
        )
        .is_ok()
    );
}

// ----- WINDOW_UPDATE increment (§6.9) -----

#[test]
fn rejects_zero_window_increment_on_stream_as_stream_error() {
    assert_eq!(
        decode_one(kind::WINDOW_UPDATE, 0, 5, &[0x80, 0, 0, 0]),
        Err(FrameError {
            rule: FrameRule::ZeroWindowIncrement,
            code: ErrorCode::ProtocolError,
            scope: ErrorScope::Stream(5)
        })
    );
}

#[test]
fn rejects_zero_window_increment_on_connection_as_connection_error() {
    assert_eq!(
        decode_one(kind::WINDOW_UPDATE, 0, 0, &[0; 4]),
        conn(ErrorCode::ProtocolError, FrameRule::ZeroWindowIncrement)
    );
}

// ----- PUSH_PROMISE -----

#[test]
fn rejects_push_promise_of_stream_zero() {
    assert_eq!(
        decode_one(kind::PUSH_PROMISE, 0, 1, &[0x80, 0, 0, 0]),
        conn(ErrorCode::ProtocolError, FrameRule::PromisedStreamZero)
    );
}
