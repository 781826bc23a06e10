//! Unit tests of the connection; the RFC 6455 case list is in `core/tests/ws_rfc6455.rs`.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::frame::{self, OpCode, encode_frame};
use super::*;
use crate::WsLimits;

fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, fin, 0, opcode, Some([9, 8, 7, 6]), payload);
    out.to_vec()
}

fn feed(conn: &mut Connection, now: Instant, mut data: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..10_000 {
        let n = conn.receive(now, data);
        data = &data[n..];
        let before = events.len();
        events.extend(std::iter::from_fn(|| conn.poll_event()));
        if n == 0 && events.len() == before {
            break;
        }
    }
    events
}

#[test]
fn pong_is_coalesced_when_output_is_full() {
    let now = crate::test_clock::start();
    let limits = WsLimits {
        max_buffered_output: 16,
        ..WsLimits::default()
    };
    let mut conn = Connection::new(Role::Server, limits, now);
    conn.send_binary(&[0; 10]).unwrap();
    let mut wire = frame(true, OpCode::Ping, b"one");
    wire.extend(frame(true, OpCode::Ping, b"two"));
    let events = feed(&mut conn, now, &wire);
    assert_eq!(events.len(), 2);
    let out = conn.poll_transmit(now).unwrap();
    // The binary frame, then only the latest pong.
    assert_eq!(&out[12..], &[0x8A, 3, b't', b'w', b'o']);
    assert!(conn.poll_transmit(now).is_none());
}

#[test]
fn close_timeout_closes_when_peer_stays_silent() {
    let now = crate::test_clock::start();
    let mut conn = Connection::new(Role::Server, WsLimits::default(), now);
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(conn.send_text("x"), Err(SendError::Closing));
    let out = conn.poll_transmit(now).unwrap();
    assert_eq!(&out[..], &[0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
    assert!(!conn.is_closed());
    let deadline = conn.poll_timeout().unwrap();
    conn.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!conn.is_closed());
    conn.handle_timeout(deadline);
    assert!(conn.is_closed());
}

#[test]
fn invalid_close_codes_are_not_sent() {
    let mut conn = Connection::new(
        Role::Server,
        WsLimits::default(),
        crate::test_clock::start(),
    );
    for code in [1005, 1006, 1015, 999, 1004, 2999, 5000] {
        assert_eq!(
            conn.close(CloseCode(code), ""),
            Err(SendError::InvalidCloseCode)
        );
    }
    assert_eq!(
        conn.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::ControlTooLong)
    );
    assert!(conn.close(CloseCode(4000), "").is_ok());
}

#[test]
fn client_frames_are_masked_with_varying_keys() {
    let now = crate::test_clock::start();
    let mut conn = Connection::new(
        Role::Client { mask_seed: [3; 16] },
        WsLimits::default(),
        now,
    );
    conn.send_text("hello").unwrap();
    conn.send_text("hello").unwrap();
    let out = conn.poll_transmit(now).unwrap();
    assert_eq!(out.len(), 2 * 11);
    assert_eq!(out[1], 0x85);
    assert_ne!(out[2..6], out[13..17], "each frame gets its own key");
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let events = feed(&mut server, now, &out);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::Text("hello".into())),
            Event::Message(Message::Text("hello".into())),
        ]
    );
}

#[test]
fn send_fragment_is_partial_under_backpressure() {
    let now = crate::test_clock::start();
    let limits = WsLimits {
        max_buffered_output: 100,
        max_send_frame_size: 30,
        ..WsLimits::default()
    };
    let mut conn = Connection::new(Role::Server, limits, now);
    let data = vec![7u8; 250];
    assert_eq!(conn.send_binary(&data), Err(SendError::Full));
    let mut sent = 0;
    let mut wire = Vec::new();
    for _ in 0..100 {
        if sent == data.len() {
            break;
        }
        match conn.send_fragment(MessageKind::Binary, &data[sent..], true) {
            Ok(n) => sent += n,
            Err(SendError::Full) => {}
            Err(e) => panic!("{e:?}"),
        }
        assert!(conn.pending_output() <= 100);
        wire.extend_from_slice(&conn.poll_transmit(now).unwrap_or_default());
    }
    assert_eq!(sent, data.len());
    let mut client = Connection::new(
        Role::Client { mask_seed: [0; 16] },
        WsLimits::default(),
        now,
    );
    let events = feed(&mut client, now, &wire);
    assert_eq!(events, vec![Event::Message(Message::Binary(data.into()))]);
}

#[test]
fn text_fragments_must_stay_utf8() {
    let mut conn = Connection::new(
        Role::Server,
        WsLimits::default(),
        crate::test_clock::start(),
    );
    assert_eq!(
        conn.send_fragment(MessageKind::Text, b"\xe2\x82", false),
        Ok(2)
    );
    assert_eq!(
        conn.send_fragment(MessageKind::Binary, b"x", true),
        Err(SendError::InvalidMessage)
    );
    assert_eq!(
        conn.send_fragment(MessageKind::Text, b"\xff", true),
        Err(SendError::InvalidMessage)
    );
    assert_eq!(conn.send_fragment(MessageKind::Text, b"\xac", true), Ok(1));
}

fn deflate_pair(now: Instant) -> (Connection, Connection) {
    let config = deflate::DeflateConfig::default();
    let accepted = deflate::accept_offers(&config, [config.offer()])
        .unwrap()
        .unwrap();
    let client_params = deflate::accept_response(&config, [accepted.response.as_str()])
        .unwrap()
        .unwrap();
    let server = Connection::with_deflate(
        Role::Server,
        WsLimits::default(),
        now,
        Some(accepted.params),
    );
    let client = Connection::with_deflate(
        Role::Client { mask_seed: [1; 16] },
        WsLimits::default(),
        now,
        Some(client_params),
    );
    (server, client)
}

#[test]
fn deflate_messages_round_trip_both_ways() {
    let now = crate::test_clock::start();
    let (mut server, mut client) = deflate_pair(now);
    let text = "compress me ".repeat(500);
    for _ in 0..3 {
        client.send_text(&text).unwrap();
        let wire = client.poll_transmit(now).unwrap();
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1 marks a compressed message");
        assert!(wire.len() < text.len() / 4);
        let events = feed(&mut server, now, &wire);
        assert_eq!(
            events,
            vec![Event::Message(Message::Text(text.clone().into()))]
        );
        server.send_binary(text.as_bytes()).unwrap();
        let wire = server.poll_transmit(now).unwrap();
        // Byte by byte on the way back.
        let mut events = Vec::new();
        for byte in wire.iter() {
            events.extend(feed(&mut client, now, std::slice::from_ref(byte)));
        }
        assert_eq!(
            events,
            vec![Event::Message(Message::Binary(text.clone().into()))]
        );
    }
}

#[test]
fn deflate_bomb_is_bounded_by_message_limit() {
    let now = crate::test_clock::start();
    let (_, mut client) = deflate_pair(now);
    let limits = WsLimits {
        max_message_size: 1000,
        ..WsLimits::default()
    };
    let config = deflate::DeflateConfig::default();
    let accepted = deflate::accept_offers(&config, [config.offer()])
        .unwrap()
        .unwrap();
    let mut server = Connection::with_deflate(Role::Server, limits, now, Some(accepted.params));
    client.send_binary(&vec![0u8; 100_000]).unwrap();
    let wire = client.poll_transmit(now).unwrap();
    let events = feed(&mut server, now, &wire);
    assert!(matches!(events.as_slice(), [Event::Error(e)] if e.close_code() == CloseCode::TOO_BIG));
}

#[test]
fn rsv1_without_deflate_fails() {
    let now = crate::test_clock::start();
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let mut out = BytesMut::new();
    encode_frame(
        &mut out,
        true,
        super::frame::RSV1,
        OpCode::Text,
        Some([1, 2, 3, 4]),
        b"x",
    );
    let events = feed(&mut server, now, &out);
    assert!(
        matches!(events.as_slice(), [Event::Error(e)] if e.close_code() == CloseCode::PROTOCOL_ERROR)
    );
}

#[test]
fn extreme_limits_do_not_overflow() {
    let now = crate::test_clock::start();
    let limits = WsLimits {
        max_send_frame_size: usize::MAX,
        max_buffered_output: usize::MAX,
        max_frame_size: usize::MAX,
        max_message_size: usize::MAX,
        close_timeout: Duration::MAX,
        ping_interval: Some(Duration::MAX),
        pong_timeout: Duration::MAX,
        send_timeout: Duration::MAX,
    };
    let mut conn = Connection::new(Role::Client { mask_seed: [2; 16] }, limits, now);
    conn.send_binary(b"abc").unwrap();
    assert_eq!(conn.send_fragment(MessageKind::Text, b"de", true), Ok(2));
    conn.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        conn.poll_timeout(),
        None,
        "a deadline past Instant's range means none"
    );
    let events = feed(
        &mut conn,
        now,
        &[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    assert!(
        events.is_empty(),
        "a huge frame is only refused by the limit, here none"
    );
}

#[test]
fn an_empty_fragment_needs_room_for_its_header() {
    let now = crate::test_clock::start();
    let limits = WsLimits {
        max_buffered_output: 10,
        ..WsLimits::default()
    };
    let mut conn = Connection::new(Role::Server, limits, now);
    // A message of 2 + 7 bytes leaves 1 byte of room: less than any frame header.
    conn.send_binary(b"1234567").unwrap();
    assert_eq!(conn.pending_output(), 9);
    assert_eq!(
        conn.send_fragment(MessageKind::Binary, b"", true),
        Err(SendError::Full)
    );
    assert_eq!(conn.pending_output(), 9, "the output bound holds");
    conn.poll_transmit(now);
    assert_eq!(conn.send_fragment(MessageKind::Binary, b"", true), Ok(0));
    assert_eq!(conn.pending_output(), 2, "the empty final frame");
}

#[test]
fn a_large_compressed_frame_is_inflated_as_it_arrives() {
    let now = crate::test_clock::start();
    let config = deflate::DeflateConfig::default();
    let accepted = deflate::accept_offers(&config, [config.offer()])
        .unwrap()
        .unwrap();
    let client_params = deflate::accept_response(&config, [accepted.response.as_str()])
        .unwrap()
        .unwrap();
    let mut server = Connection::with_deflate(
        Role::Server,
        WsLimits::default(),
        now,
        Some(accepted.params),
    );
    // One frame of about 1 MiB of compressed, incompressible data: larger than the message.
    let client_limits = WsLimits {
        max_send_frame_size: 4 << 20,
        max_buffered_output: 4 << 20,
        ..WsLimits::default()
    };
    let mut client = Connection::with_deflate(
        Role::Client { mask_seed: [4; 16] },
        client_limits,
        now,
        Some(client_params),
    );
    let mut state = 0x2545_f491_u32;
    let message: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    client.send_binary(&message).unwrap();
    let wire = client.poll_transmit(now).unwrap();
    assert!(wire.len() > message.len(), "incompressible: the frame grew");
    let mut events = Vec::new();
    let mut largest_held = 0;
    for piece in wire.chunks(16 * 1024) {
        events.extend(feed(&mut server, now, piece));
        largest_held = largest_held.max(server.held_compressed());
    }
    assert!(
        largest_held < 128 * 1024,
        "held {largest_held} compressed bytes"
    );
    assert_eq!(
        events,
        vec![Event::Message(Message::Binary(message.into()))]
    );
}

/// Feeds `data` through `receive_buf` in pieces of `step` bytes, each appended to one buffer
/// that never holds more than [`WHOLE_FRAME_MAX`] bytes (as a session's does), taking every
/// event as it comes.
fn feed_buf(conn: &mut Connection, now: Instant, data: &[u8], step: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut input = BytesMut::new();
    let mut rest = data;
    for _ in 0..100_000 {
        let room = WHOLE_FRAME_MAX - input.len();
        let (piece, after) = rest.split_at(step.min(room).min(rest.len()));
        input.extend_from_slice(piece);
        rest = after;
        let before = input.len();
        conn.receive_buf(now, &mut input, |event| {
            events.push(event);
            Ok(())
        });
        if rest.is_empty() && input.len() == before {
            break;
        }
    }
    events
}

/// A client connection whose frames are as large as the messages it sends.
fn big_frame_client(now: Instant) -> Connection {
    let limits = WsLimits {
        max_send_frame_size: 4 << 20,
        max_buffered_output: 4 << 20,
        ..WsLimits::default()
    };
    Connection::new(Role::Client { mask_seed: [5; 16] }, limits, now)
}

#[test]
fn receive_buf_hands_out_every_message_of_a_buffer_as_a_slice_of_it() {
    let now = crate::test_clock::start();
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let mut wire = Vec::new();
    for i in 0..100u8 {
        wire.extend(frame(true, OpCode::Binary, &[i; 125]));
    }
    wire.extend(frame(true, OpCode::Text, "héllo".as_bytes()));
    let mut input = BytesMut::from(&wire[..]);
    let start = input.as_ptr() as usize;
    let range = start..start + input.capacity();
    let mut events = Vec::new();
    server.receive_buf(now, &mut input, |event| {
        events.push(event);
        Ok(())
    });
    assert!(input.is_empty(), "all of it taken in one call");
    assert_eq!(events.len(), 101);
    for (i, event) in events.iter().enumerate() {
        let Event::Message(message) = event else {
            panic!("{event:?}");
        };
        let payload = message.payload();
        assert!(range.contains(&(payload.as_ptr() as usize)), "not copied");
        if i < 100 {
            assert_eq!(&payload[..], &[i as u8; 125][..]);
        } else {
            assert_eq!(message.as_text(), Some("héllo"));
        }
    }
}

#[test]
fn receive_buf_hands_back_refused_events_and_resumes() {
    let now = crate::test_clock::start();
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let mut wire = Vec::new();
    for i in 0..5u8 {
        wire.extend(frame(true, OpCode::Binary, &[i; 3]));
    }
    let mut input = BytesMut::from(&wire[..]);
    let mut got = Vec::new();
    server.receive_buf(now, &mut input, |event| match got.len() {
        1 => Err(event),
        _ => {
            got.push(event);
            Ok(())
        }
    });
    assert_eq!(got.len(), 1);
    assert!(!input.is_empty(), "reading stopped at the refused event");
    assert!(!server.wants_read());
    got.extend(std::iter::from_fn(|| server.poll_event()));
    server.receive_buf(now, &mut input, |event| {
        got.push(event);
        Ok(())
    });
    assert!(input.is_empty());
    let payloads: Vec<Vec<u8>> = got
        .iter()
        .map(|event| match event {
            Event::Message(message) => message.payload().to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(payloads, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
}

#[test]
fn receive_buf_streams_frames_larger_than_its_buffer() {
    let now = crate::test_clock::start();
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let mut client = big_frame_client(now);
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let text = "ü".repeat(50_000);
    client.send_binary(&large).unwrap();
    client
        .send_fragment(MessageKind::Text, &text.as_bytes()[..70_001], false)
        .unwrap();
    client.send_ping(b"between").unwrap();
    client
        .send_fragment(MessageKind::Text, &text.as_bytes()[70_001..], true)
        .unwrap();
    client.send_binary(b"small").unwrap();
    let wire = client.poll_transmit(now).unwrap();
    let expected = vec![
        Event::Message(Message::Binary(large.clone().into())),
        Event::Ping("between".into()),
        Event::Message(Message::text(text.clone())),
        Event::Message(Message::Binary("small".into())),
    ];
    for step in [wire.len(), 16 * 1024, 7_777, 1_000] {
        let mut server = Connection::new(Role::Server, WsLimits::default(), now);
        let events = feed_buf(&mut server, now, &wire, step);
        // (Not assert_eq: the payloads would flood the output.)
        assert!(events == expected, "step {step}: {} events", events.len());
    }
    assert_eq!(feed(&mut server, now, &wire).len(), 4);
}

#[test]
fn receive_buf_keeps_the_limits() {
    let now = crate::test_clock::start();
    let limits = WsLimits {
        max_frame_size: 100_000,
        max_message_size: 150_000,
        ..WsLimits::default()
    };
    let mut client = big_frame_client(now);
    client.send_binary(&vec![1; 100_001]).unwrap();
    let wire = client.poll_transmit(now).unwrap();
    let mut server = Connection::new(Role::Server, limits.clone(), now);
    let events = feed_buf(&mut server, now, &wire, 4096);
    assert_eq!(
        events,
        vec![Event::Error(ProtocolError::Frame(
            frame::FrameError::TooLarge
        ))]
    );
    client
        .send_fragment(MessageKind::Binary, &vec![2; 90_000], false)
        .unwrap();
    client
        .send_fragment(MessageKind::Binary, &vec![2; 90_000], true)
        .unwrap();
    let wire = client.poll_transmit(now).unwrap();
    let mut server = Connection::new(Role::Server, limits, now);
    let events = feed_buf(&mut server, now, &wire, 4096);
    assert_eq!(events, vec![Event::Error(ProtocolError::MessageTooBig)]);
    let mut server = Connection::new(Role::Server, WsLimits::default(), now);
    let bad = frame(true, OpCode::Text, b"ok \xc0\xaf");
    let events = feed_buf(&mut server, now, &bad, 1);
    assert_eq!(events, vec![Event::Error(ProtocolError::InvalidUtf8)]);
    assert_eq!(
        server.poll_transmit(now).as_deref(),
        Some(&[0x88, 2, 0x03, 0xEF][..])
    );
}

#[test]
fn receive_buf_inflates_compressed_messages() {
    let now = crate::test_clock::start();
    let (mut server, mut client) = deflate_pair(now);
    let text = "compress me ".repeat(500);
    for step in [usize::MAX, 1] {
        client.send_text(&text).unwrap();
        let wire = client.poll_transmit(now).unwrap();
        let events = feed_buf(&mut server, now, &wire, step);
        assert_eq!(
            events,
            vec![Event::Message(Message::Text(text.clone().into()))]
        );
    }
}

/// Found by the `ws_receive_buf` fuzz target: the zero-copy path refuses a frame whose header
/// breaks a rule of the connection as soon as the header is in, as the streaming path does,
/// rather than waiting for a payload that may never come.
#[test]
fn receive_buf_refuses_a_bad_header_before_its_payload_arrives() {
    let now = crate::test_clock::start();
    // A masked continuation frame of 116 bytes with no message in progress: header only.
    let header = [0x00, 0x80 | 116, 0xff, 0xff, 0xff, 0x00];
    let mut conn = Connection::new(Role::Server, WsLimits::default(), now);
    let events = feed_buf(&mut conn, now, &header, header.len());
    assert_eq!(
        events,
        vec![Event::Error(ProtocolError::UnexpectedContinuation)]
    );
    // A data frame over the message limit, announced only.
    let limits = WsLimits {
        max_message_size: 100,
        ..WsLimits::default()
    };
    let mut conn = Connection::new(Role::Server, limits, now);
    let events = feed_buf(&mut conn, now, &[0x82, 0x80 | 116, 1, 2, 3, 4], 6);
    assert_eq!(events, vec![Event::Error(ProtocolError::MessageTooBig)]);
    // A text frame whose first payload bytes are not UTF-8 fails fast, before the rest.
    let mut conn = Connection::new(Role::Server, WsLimits::default(), now);
    let events = feed_buf(&mut conn, now, &[0x81, 0x80 | 116, 0, 0, 0, 0, 0xff], 7);
    assert_eq!(events, vec![Event::Error(ProtocolError::InvalidUtf8)]);
}
