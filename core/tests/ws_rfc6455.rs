//! The RFC 6455 case list against a server `weft_core::ws::Connection`: every case is fed
//! whole and byte by byte, and both runs must give the same events and output.

use std::time::Instant;

use bytes::BytesMut;
use weft_core::WsLimits;
use weft_core::ws::frame::{OpCode, RSV1, RSV2, RSV3, encode_frame};
use weft_core::ws::{CloseCode, Connection, Event, Message, ProtocolError, Role};

const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    raw_frame(fin, 0, opcode, payload)
}

fn raw_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, fin, rsv, opcode, Some(MASK), payload);
    out.to_vec()
}

fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(true, OpCode::Close, &payload)
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    output: Vec<u8>,
    closed: bool,
}

fn limits() -> WsLimits {
    let mut limits = WsLimits::default();
    limits.max_frame_size = 1000;
    limits.max_message_size = 2000;
    limits
}

/// Feeds `wire` in pieces of `step` bytes, draining events and output after each call.
fn run_with(wire: &[u8], step: usize, eof: bool) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, limits(), now);
    let mut events = Vec::new();
    let mut output = Vec::new();
    for piece in wire.chunks(step) {
        let mut rest = piece;
        for _ in 0..=piece.len() * 2 + 2 {
            let taken = conn.receive(now, rest);
            rest = &rest[taken..];
            events.extend(std::iter::from_fn(|| conn.poll_event()));
            while let Some(bytes) = conn.poll_transmit(now) {
                output.extend_from_slice(&bytes);
            }
            if rest.is_empty() || !conn.wants_read() {
                break;
            }
        }
    }
    if eof {
        conn.receive_eof();
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    Outcome {
        events,
        output,
        closed: conn.is_closed(),
    }
}

/// Feeds `wire` in pieces of `step` bytes through the zero-copy `receive_buf`, the pieces
/// appended to one buffer as a socket's reads would be. With `refuse`, every other event is
/// handed back and taken with `poll_event` instead, and reading resumes after it.
fn run_buf_with(wire: &[u8], step: usize, refuse: bool) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, limits(), now);
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut input = BytesMut::new();
    let mut offered = 0;
    for piece in wire.chunks(step) {
        input.extend_from_slice(piece);
        for _ in 0..=wire.len() + 2 {
            conn.receive_buf(now, &mut input, |event| {
                offered += 1;
                if refuse && offered % 2 == 0 {
                    return Err(event);
                }
                events.push(event);
                Ok(())
            });
            let before = events.len();
            events.extend(std::iter::from_fn(|| conn.poll_event()));
            while let Some(bytes) = conn.poll_transmit(now) {
                output.extend_from_slice(&bytes);
            }
            if events.len() == before {
                break;
            }
        }
    }
    Outcome {
        events,
        output,
        closed: conn.is_closed(),
    }
}

/// Runs whole and byte by byte, through `receive` and `receive_buf`; all must agree.
fn run(wire: &[u8]) -> Outcome {
    let whole = run_with(wire, wire.len().max(1), false);
    let bytewise = run_with(wire, 1, false);
    assert_eq!(whole, bytewise, "split must not change the outcome");
    for step in [wire.len().max(1), 1, 3] {
        for refuse in [false, true] {
            let buffered = run_buf_with(wire, step, refuse);
            assert_eq!(whole, buffered, "receive_buf, step {step}, refuse {refuse}");
        }
    }
    whole
}

fn server_close(code: u16) -> Vec<u8> {
    let mut out = vec![0x88, 2];
    out.extend_from_slice(&code.to_be_bytes());
    out
}

fn assert_failed(outcome: &Outcome, code: CloseCode) {
    match outcome.events.last() {
        Some(Event::Error(e)) => assert_eq!(e.close_code(), code, "{outcome:?}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(
        outcome.output.ends_with(&server_close(code.0)),
        "{outcome:?}"
    );
    assert!(outcome.closed);
}

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.to_owned().into()))
}

#[test]
fn single_frame_text_and_binary() {
    let mut wire = frame(true, OpCode::Text, b"Hello");
    wire.extend(frame(true, OpCode::Binary, &[0, 255, 1]));
    wire.extend(frame(true, OpCode::Text, b""));
    let outcome = run(&wire);
    assert_eq!(
        outcome.events,
        vec![
            text("Hello"),
            Event::Message(Message::Binary(vec![0, 255, 1].into())),
            text(""),
        ]
    );
    assert!(outcome.output.is_empty());
    assert!(!outcome.closed);
}

#[test]
fn fragmented_message_with_interleaved_pings() {
    let mut wire = frame(false, OpCode::Text, b"Hel");
    wire.extend(frame(true, OpCode::Ping, b"p1"));
    wire.extend(frame(false, OpCode::Continuation, b""));
    wire.extend(frame(true, OpCode::Pong, b"unsolicited"));
    wire.extend(frame(true, OpCode::Continuation, b"lo"));
    let outcome = run(&wire);
    assert_eq!(
        outcome.events,
        vec![
            Event::Ping("p1".into()),
            Event::Pong("unsolicited".into()),
            text("Hello"),
        ]
    );
    assert_eq!(outcome.output, [0x8A, 2, b'p', b'1']);
}

#[test]
fn utf8_split_across_fragments_is_valid() {
    let euro = "€".as_bytes();
    let mut wire = frame(false, OpCode::Text, &euro[..1]);
    wire.extend(frame(false, OpCode::Continuation, &euro[1..2]));
    wire.extend(frame(true, OpCode::Continuation, &euro[2..]));
    assert_eq!(run(&wire).events, vec![text("€")]);
}

#[test]
fn invalid_utf8_in_the_middle_of_a_fragment_fails_before_the_end() {
    let mut wire = frame(false, OpCode::Text, b"ok \xc0\xaf then more");
    // The message never finishes: the failure must come from the first fragment.
    wire.extend(frame(false, OpCode::Continuation, b"x"));
    let outcome = run(&wire);
    assert_eq!(
        outcome.events,
        vec![Event::Error(ProtocolError::InvalidUtf8)]
    );
    assert_failed(&outcome, CloseCode::INVALID_DATA);
}

#[test]
fn invalid_utf8_split_across_fragments() {
    // F4 then 90: above U+10FFFF, impossible once the second fragment arrives.
    let mut wire = frame(false, OpCode::Text, b"a\xf4");
    wire.extend(frame(false, OpCode::Continuation, b"\x90\x80\x80"));
    assert_failed(&run(&wire), CloseCode::INVALID_DATA);
    // A character cut off by the end of the message.
    let wire = frame(true, OpCode::Text, b"a\xe2\x82");
    assert_failed(&run(&wire), CloseCode::INVALID_DATA);
}

#[test]
fn invalid_utf8_in_close_reason() {
    assert_failed(&run(&close_frame(1000, b"\xff")), CloseCode::INVALID_DATA);
}

#[test]
fn invalid_close_codes() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        assert_failed(&run(&close_frame(code, b"")), CloseCode::PROTOCOL_ERROR);
    }
    assert_failed(
        &run(&frame(true, OpCode::Close, &[3])),
        CloseCode::PROTOCOL_ERROR,
    );
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let outcome = run(&close_frame(code, b"bye"));
        assert_eq!(
            outcome.events,
            vec![Event::Close {
                code: CloseCode(code),
                reason: "bye".to_owned()
            }]
        );
        assert_eq!(outcome.output, server_close(code));
        assert!(outcome.closed, "the server closes the TCP connection first");
    }
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let outcome = run(&frame(true, OpCode::Close, b""));
    assert_eq!(
        outcome.events,
        vec![Event::Close {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        }]
    );
    assert_eq!(outcome.output, [0x88, 0]);
}

#[test]
fn nothing_is_read_after_close() {
    let mut wire = close_frame(1000, b"");
    wire.extend(frame(true, OpCode::Text, b"late"));
    assert_eq!(run(&wire).events.len(), 1);
}

#[test]
fn oversized_frame_fails_from_its_header() {
    // Only the header is sent: the refusal cannot wait for the payload.
    let mut wire = vec![0x82, 0xFE, 0x03, 0xE9];
    wire.extend_from_slice(&MASK);
    assert_failed(&run(&wire), CloseCode::TOO_BIG);
    let mut wire = vec![0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0];
    wire.extend_from_slice(&MASK);
    assert_failed(&run(&wire), CloseCode::TOO_BIG);
}

#[test]
fn length_with_most_significant_bit_set() {
    let mut wire = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    wire.extend_from_slice(&MASK);
    assert_failed(&run(&wire), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn oversized_message_over_fragments() {
    let mut wire = frame(false, OpCode::Binary, &[1; 900]);
    wire.extend(frame(false, OpCode::Continuation, &[2; 900]));
    wire.extend(frame(true, OpCode::Continuation, &[3; 900]));
    assert_failed(&run(&wire), CloseCode::TOO_BIG);
}

#[test]
fn reserved_bits_without_extension() {
    for rsv in [RSV1, RSV2, RSV3] {
        assert_failed(
            &run(&raw_frame(true, rsv, OpCode::Text, b"x")),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn reserved_opcodes() {
    for opcode in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let wire = [0x80 | opcode, 0x80, 1, 2, 3, 4];
        assert_failed(&run(&wire), CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn unmasked_client_frame() {
    assert_failed(&run(&[0x81, 0x02, b'h', b'i']), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn long_control_frames() {
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let mut payload = vec![b'a'; 126];
        payload[0] = 0x03;
        payload[1] = 0xE8;
        assert_failed(
            &run(&frame(true, opcode, &payload)),
            CloseCode::PROTOCOL_ERROR,
        );
    }
    // 125 bytes is the most a control frame may carry.
    let outcome = run(&frame(true, OpCode::Ping, &[7; 125]));
    assert_eq!(outcome.events, vec![Event::Ping(vec![7; 125].into())]);
}

#[test]
fn fragmented_control_frames() {
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        assert_failed(&run(&frame(false, opcode, b"")), CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn continuation_rules() {
    assert_failed(
        &run(&frame(true, OpCode::Continuation, b"x")),
        CloseCode::PROTOCOL_ERROR,
    );
    let mut wire = frame(false, OpCode::Text, b"a");
    wire.extend(frame(true, OpCode::Binary, b"b"));
    assert_failed(&run(&wire), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn close_handshake_started_by_server() {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, limits(), now);
    conn.close(CloseCode::GOING_AWAY, "restart").unwrap();
    let out = conn.poll_transmit(now).unwrap();
    assert_eq!(&out[..4], &[0x88, 9, 0x03, 0xE9]);
    // Messages still arrive until the peer's Close, and pings are no longer answered.
    let mut wire = frame(true, OpCode::Text, b"in flight");
    wire.extend(frame(true, OpCode::Ping, b""));
    wire.extend(close_frame(1001, b""));
    let mut events = Vec::new();
    let mut rest = &wire[..];
    for _ in 0..10 {
        let n = conn.receive(now, rest);
        rest = &rest[n..];
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text("in flight"));
    assert!(matches!(
        events[2],
        Event::Close {
            code: CloseCode::GOING_AWAY,
            ..
        }
    ));
    assert!(
        conn.poll_transmit(now).is_none(),
        "no answer to a Close we provoked"
    );
    assert!(conn.is_closed());
}

#[test]
fn close_handshake_started_by_peer_as_client() {
    let now = Instant::now();
    let mut conn = Connection::new(Role::Client { mask_seed: [5; 16] }, limits(), now);
    let taken = conn.receive(now, &server_close(1000));
    assert_eq!(taken, 4);
    assert!(matches!(
        conn.poll_event(),
        Some(Event::Close {
            code: CloseCode::NORMAL,
            ..
        })
    ));
    let out = conn.poll_transmit(now).unwrap();
    assert_eq!(&out[..2], &[0x88, 0x82], "the client's echo is masked");
    // The client waits for the server to close TCP, at most the close timeout.
    assert!(!conn.is_closed());
    assert_eq!(
        conn.receive(now, b"ignored"),
        7,
        "bytes after the Close are dropped"
    );
    assert_eq!(conn.poll_event(), None);
    conn.receive_eof();
    assert!(conn.is_closed());
    assert_eq!(
        conn.poll_event(),
        None,
        "a finished handshake is not abnormal"
    );
}

#[test]
fn abrupt_eof_is_abnormal_closure() {
    let outcome = run_with(&frame(false, OpCode::Text, b"half"), 1, true);
    assert_eq!(
        outcome.events,
        vec![Event::Close {
            code: CloseCode::ABNORMAL,
            reason: String::new()
        }]
    );
    assert!(outcome.output.is_empty(), "1006 is never sent");
    assert!(outcome.closed);
}
