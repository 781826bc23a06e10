//! WebSocket frame (RFC 6455 §5) properties: a frame survives encode then decode whatever the
//! points its bytes arrive at; a message yields the same event in any fragmentation, with
//! control frames anywhere between its fragments; masking is its own inverse at any offset.
//! The zero-copy receive path (`FrameDecoder::decode_frame`, `Connection::receive_buf`) gives
//! the same frames and events as the copying one, however the bytes are cut into reads.

use std::time::Instant;

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use weft_core::WsLimits;
use weft_core::ws::frame::{Decoded, FrameDecoder, OpCode, apply_mask, encode_frame};
use weft_core::ws::{Connection, Event, Message, Role, WHOLE_FRAME_MAX};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// Splits `wire` at the given cut points (taken modulo its length).
fn pieces(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|w| wire[w[0]..w[1]].to_vec())
        .collect()
}

/// Feeds `pieces` to a server connection, draining events after each call.
fn server_events(pieces: &[Vec<u8>]) -> Vec<Event> {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, WsLimits::default(), now);
    let mut events = Vec::new();
    for piece in pieces {
        let mut rest = &piece[..];
        for _ in 0..=piece.len() + 1 {
            let n = conn.receive(now, rest);
            rest = &rest[n..];
            events.extend(std::iter::from_fn(|| conn.poll_event()));
            if rest.is_empty() {
                break;
            }
        }
    }
    events
}

/// Feeds `pieces` to a server connection through `receive_buf`, each appended to one buffer
/// as a socket's reads are (never past `WHOLE_FRAME_MAX` bytes held, as a session's buffer).
fn server_events_buf(pieces: &[Vec<u8>]) -> Vec<Event> {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, WsLimits::default(), now);
    let mut events = Vec::new();
    let mut input = BytesMut::new();
    for piece in pieces {
        let mut rest = &piece[..];
        for _ in 0..=piece.len() + 1 {
            let room = WHOLE_FRAME_MAX - input.len();
            let (now_read, later) = rest.split_at(room.min(rest.len()));
            input.extend_from_slice(now_read);
            rest = later;
            conn.receive_buf(now, &mut input, |event| {
                events.push(event);
                Ok(())
            });
            if rest.is_empty() {
                break;
            }
        }
    }
    events
}

/// One message of the stream a client sends: its fragments, and pings after some of them.
#[derive(Debug, Clone)]
struct Sent {
    binary: bool,
    payload: Vec<u8>,
    fragment_cuts: Vec<usize>,
    ping_after: Vec<bool>,
}

fn sent() -> impl Strategy<Value = Sent> {
    let payload = prop_oneof![
        4 => vec(prop::sample::select(b"abc xyz".to_vec()), 0..300),
        1 => vec(any::<u8>(), 0..3000),
        1 => (any::<u8>(), 1usize..150_000).prop_map(|(byte, len)| vec![byte & 0x7f; len]),
    ];
    (
        any::<bool>(),
        payload,
        vec(any::<usize>(), 0..4),
        vec(any::<bool>(), 0..5),
    )
        .prop_map(|(binary, payload, fragment_cuts, ping_after)| Sent {
            binary: binary || !payload.is_ascii(),
            payload,
            fragment_cuts,
            ping_after,
        })
}

/// The wire of `messages` as a client sends them, every frame masked with `mask`.
fn client_wire(messages: &[Sent], mask: [u8; 4]) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for sent in messages {
        let fragments = pieces(&sent.payload, &sent.fragment_cuts);
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = match (i, sent.binary) {
                (0, true) => OpCode::Binary,
                (0, false) => OpCode::Text,
                _ => OpCode::Continuation,
            };
            let last = i + 1 == fragments.len();
            encode_frame(&mut wire, last, 0, opcode, Some(mask), fragment);
            if !last && sent.ping_after.get(i).copied().unwrap_or(false) {
                encode_frame(&mut wire, true, 0, OpCode::Ping, Some(mask), b"p");
            }
        }
    }
    wire.to_vec()
}

proptest! {
    #[test]
    fn receive_buf_gives_the_events_of_receive_at_any_cut(
        messages in vec(sent(), 1..6),
        wire_cuts in vec(any::<usize>(), 0..10),
        mask in any::<[u8; 4]>(),
    ) {
        let wire = client_wire(&messages, mask);
        let reads = pieces(&wire, &wire_cuts);
        let copied = server_events(&reads);
        let in_place = server_events_buf(&reads);
        let messages_out = in_place.iter().filter(|e| matches!(e, Event::Message(_))).count();
        prop_assert_eq!(messages_out, messages.len());
        // (Not prop_assert_eq: large payloads would flood the output.)
        prop_assert!(copied == in_place, "{} events vs {}", copied.len(), in_place.len());
    }

    #[test]
    fn a_stream_split_at_every_byte_gives_the_same_messages(
        messages in vec(sent().prop_filter("small", |s| s.payload.len() < 400), 1..4),
        mask in any::<[u8; 4]>(),
    ) {
        let wire = client_wire(&messages, mask);
        let whole = server_events_buf(std::slice::from_ref(&wire));
        prop_assert_eq!(whole.iter().filter(|e| matches!(e, Event::Message(_))).count(), messages.len());
        for cut in 0..=wire.len() {
            let reads = [wire[..cut].to_vec(), wire[cut..].to_vec()];
            prop_assert_eq!(&server_events_buf(&reads), &whole, "cut at {}", cut);
        }
    }

    #[test]
    fn decode_frame_round_trip_with_any_split(
        opcode in opcode(),
        fin in any::<bool>(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        payloads in vec(vec(any::<u8>(), 0..20_000), 1..4),
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let control = opcode.is_control();
        let fin = fin || control;
        let mut wire = BytesMut::new();
        let payloads: Vec<Vec<u8>> = payloads
            .into_iter()
            .map(|p| if control { p[..p.len().min(125)].to_vec() } else { p })
            .collect();
        for payload in &payloads {
            encode_frame(&mut wire, fin, 0, opcode, mask, payload);
        }
        let decoder = FrameDecoder::new(mask.is_some(), 0, 1 << 20);
        let mut input = BytesMut::new();
        let mut frames = Vec::new();
        for piece in pieces(&wire, &cuts) {
            input.extend_from_slice(&piece);
            while let Some((header, payload)) = decoder.decode_frame(&mut input).unwrap() {
                prop_assert_eq!(header.opcode, opcode);
                prop_assert_eq!(header.fin, fin);
                prop_assert_eq!(header.mask, mask);
                frames.push(payload.to_vec());
            }
        }
        prop_assert!(input.is_empty());
        prop_assert_eq!(frames, payloads);
    }

    #[test]
    fn frame_round_trip_with_any_split(
        opcode in opcode(),
        fin in any::<bool>(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        payload in vec(any::<u8>(), 0..70_000),
        cuts in vec(any::<usize>(), 0..8),
    ) {
        let control = opcode.is_control();
        let payload = if control { payload[..payload.len().min(125)].to_vec() } else { payload };
        let fin = fin || control;
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, fin, 0, opcode, mask, &payload);
        let mut decoder = FrameDecoder::new(mask.is_some(), 0, 1 << 20);
        let mut sink = BytesMut::new();
        let mut headers = Vec::new();
        let mut ends = 0;
        for piece in pieces(&wire, &cuts) {
            let mut rest = &piece[..];
            loop {
                let (n, item) = decoder.decode(rest, &mut sink).unwrap();
                rest = &rest[n..];
                match item {
                    Some(Decoded::Header(h)) => headers.push(h),
                    Some(Decoded::End) => ends += 1,
                    Some(Decoded::Payload(_)) => {}
                    None => break,
                }
            }
        }
        if let (_, Some(Decoded::End)) = decoder.decode(&[], &mut sink).unwrap() {
            ends += 1;
        }
        prop_assert_eq!(headers.len(), 1);
        prop_assert_eq!(ends, 1);
        prop_assert_eq!(headers[0].opcode, opcode);
        prop_assert_eq!(headers[0].fin, fin);
        prop_assert_eq!(headers[0].mask, mask);
        prop_assert_eq!(&sink[..], &payload[..]);
    }

    #[test]
    fn fragmentation_invariance(
        text in ".{0,200}",
        binary in any::<bool>(),
        fragment_cuts in vec(any::<usize>(), 0..6),
        ping_after in vec(any::<bool>(), 0..7),
        wire_cuts in vec(any::<usize>(), 0..10),
        mask in any::<[u8; 4]>(),
    ) {
        let data = text.as_bytes();
        let fragments = pieces(data, &fragment_cuts);
        let mut wire = BytesMut::new();
        let mut pings = 0;
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = match (i, binary) {
                (0, true) => OpCode::Binary,
                (0, false) => OpCode::Text,
                _ => OpCode::Continuation,
            };
            let last = i + 1 == fragments.len();
            encode_frame(&mut wire, last, 0, opcode, Some(mask), fragment);
            if !last && ping_after.get(i).copied().unwrap_or(false) {
                encode_frame(&mut wire, true, 0, OpCode::Ping, Some(mask), b"p");
                pings += 1;
            }
        }
        let events = server_events(&pieces(&wire, &wire_cuts));
        let message = if binary {
            Message::Binary(data.to_vec().into())
        } else {
            Message::Text(data.to_vec().into())
        };
        prop_assert_eq!(events.len(), pings + 1);
        prop_assert_eq!(events.last(), Some(&Event::Message(message)));
    }

    #[test]
    fn unmask_round_trip(
        data in vec(any::<u8>(), 0..100),
        key in any::<[u8; 4]>(),
        offset in 0usize..16,
        split in any::<usize>(),
    ) {
        let mut masked = data.clone();
        apply_mask(&mut masked, key, offset);
        for (i, (m, d)) in masked.iter().zip(&data).enumerate() {
            prop_assert_eq!(*m, d ^ key[(offset + i) % 4]);
        }
        let split = split % (data.len() + 1);
        let (a, b) = masked.split_at_mut(split);
        apply_mask(a, key, offset);
        apply_mask(b, key, offset + split);
        prop_assert_eq!(masked, data);
    }
}
