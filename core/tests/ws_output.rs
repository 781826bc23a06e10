//! What a `weft_core::ws::Connection` writes, in which order, and for how long it waits for
//! the driver to take it: replies and the end of a message in progress go out before the
//! Close we owe after an error or the peer's Close, and output left untaken for
//! `WsLimits::send_timeout` fails the connection with 1006. Time is virtual.

#[path = "support/clock.rs"]
mod clock;
#[path = "support/ws_wire.rs"]
mod ws_wire;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use weft_core::WsLimits;
use weft_core::ws::frame::{OpCode, encode_frame};
use weft_core::ws::{CloseCode, Connection, Event, Message, MessageKind, ProtocolError, Role};

const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn server(t0: Instant) -> Connection {
    let mut limits = WsLimits::default();
    limits.send_timeout = SEND_TIMEOUT;
    Connection::new(Role::Server, limits, t0)
}

/// A frame as a client sends it (masked).
fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, fin, 0, opcode, Some([1, 2, 3, 4]), payload);
    out.to_vec()
}

/// Feeds `wire` (small) as one read, taking events as the connection stops for them.
fn feed(conn: &mut Connection, now: Instant, wire: &[u8]) -> Vec<Event> {
    let mut seen = Vec::new();
    let mut rest = wire;
    for _ in 0..100 {
        let taken = conn.receive(now, rest);
        rest = &rest[taken..];
        seen.extend(std::iter::from_fn(|| conn.poll_event()));
        if rest.is_empty() || (taken == 0 && !conn.wants_read()) {
            break;
        }
    }
    seen
}

/// All the bytes the connection wants written now.
fn drain(conn: &mut Connection, now: Instant) -> Vec<u8> {
    ws_wire::written(conn, now)
}

/// A short unmasked server frame, as the wire must show it.
fn server_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte, u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn messages_before_a_protocol_error_in_the_same_read_come_first() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let wire = [
        client_frame(true, OpCode::Text, b"a"),
        client_frame(true, OpCode::Text, b"b"),
        // A continuation with no message in progress: 1002.
        client_frame(true, OpCode::Continuation, b"c"),
    ]
    .concat();
    let events = feed(&mut conn, t0, &wire);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("a")),
            Event::Message(Message::text("b")),
            Event::Error(ProtocolError::UnexpectedContinuation),
        ]
    );
}

#[test]
fn replies_sent_after_an_error_go_out_before_its_close() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let wire = [
        client_frame(true, OpCode::Text, b"a"),
        client_frame(true, OpCode::Continuation, b"c"),
    ]
    .concat();
    assert_eq!(feed(&mut conn, t0, &wire).len(), 2);
    // The application answers the message it got before the error.
    conn.send_text("A").unwrap();
    let close = server_frame(0x88, &CloseCode::PROTOCOL_ERROR.0.to_be_bytes());
    assert_eq!(
        drain(&mut conn, t0),
        [server_frame(0x81, b"A"), close].concat()
    );
    assert!(conn.is_closed());
    assert!(conn.send_text("late").is_err(), "nothing after the Close");
}

#[test]
fn a_message_in_progress_is_finished_before_the_answer_to_the_peers_close() {
    let t0 = clock::start();
    let mut conn = server(t0);
    assert_eq!(conn.send_fragment(MessageKind::Text, b"par", false), Ok(3));
    let events = feed(
        &mut conn,
        t0,
        &client_frame(true, OpCode::Close, &[0x03, 0xE8]),
    );
    assert_eq!(
        events,
        vec![Event::Close {
            code: CloseCode::NORMAL,
            reason: String::new()
        }]
    );
    assert_eq!(conn.send_fragment(MessageKind::Text, b"t", true), Ok(1));
    assert_eq!(
        drain(&mut conn, t0),
        [
            server_frame(0x01, b"par"),
            server_frame(0x80, b"t"),
            server_frame(0x88, &[0x03, 0xE8]),
        ]
        .concat()
    );
    assert!(conn.is_closed());
}

#[test]
fn output_not_taken_for_send_timeout_fails_with_1006_locally() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let later = t0 + Duration::from_secs(2);
    assert_eq!(conn.poll_timeout(), None);
    feed(&mut conn, later, &client_frame(true, OpCode::Ping, b"p"));
    // The pong waits since `later`, the last time the connection was told.
    let deadline = conn.poll_timeout().expect("the send timeout shows");
    assert_eq!(deadline, later + SEND_TIMEOUT);
    conn.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(conn.poll_event(), None);
    conn.handle_timeout(deadline);
    assert_eq!(
        conn.poll_event(),
        Some(Event::Error(ProtocolError::SendTimeout))
    );
    assert_eq!(ProtocolError::SendTimeout.close_code(), CloseCode::ABNORMAL);
    assert!(conn.send_timed_out());
    assert!(conn.is_closed());
    assert_eq!(conn.pending_output(), 0);
    assert_eq!(drain(&mut conn, deadline), b"", "no Close frame either");
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn taking_output_restarts_the_send_timeout() {
    let t0 = clock::start();
    let mut conn = server(t0);
    conn.send_text("one").unwrap();
    assert_eq!(conn.poll_timeout(), Some(t0 + SEND_TIMEOUT));
    let read = t0 + Duration::from_secs(8);
    assert!(!drain(&mut conn, read).is_empty());
    assert_eq!(conn.poll_timeout(), None);
    conn.send_text("two").unwrap();
    assert_eq!(conn.poll_timeout(), Some(read + SEND_TIMEOUT));
    conn.handle_timeout(t0 + SEND_TIMEOUT);
    assert_eq!(conn.poll_event(), None);
    assert!(!conn.is_closed());
}
