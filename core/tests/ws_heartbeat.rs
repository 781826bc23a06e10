//! The heartbeat of `weft_core::ws::Connection` (`WsLimits::ping_interval` and
//! `pong_timeout`): pings on schedule, pongs that answer them, the 1011 failure when none
//! does, and how it yields to the close handshake. Time is virtual: a base instant plus
//! durations, moved by hand.

#[path = "support/clock.rs"]
mod clock;
#[path = "support/ws_wire.rs"]
mod ws_wire;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use weft_core::WsLimits;
use weft_core::ws::frame::{OpCode, encode_frame};
use weft_core::ws::{CloseCode, Connection, Event, ProtocolError, Role};

const INTERVAL: Duration = Duration::from_secs(10);
const PONG_TIMEOUT: Duration = Duration::from_secs(4);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn limits(interval: Option<Duration>) -> WsLimits {
    let mut limits = WsLimits::default();
    limits.ping_interval = interval;
    limits.pong_timeout = PONG_TIMEOUT;
    limits.close_timeout = CLOSE_TIMEOUT;
    limits
}

fn server(t0: Instant) -> Connection {
    Connection::new(Role::Server, limits(Some(INTERVAL)), t0)
}

/// A frame as a client sends it (masked).
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, true, 0, opcode, Some([1, 2, 3, 4]), payload);
    out.to_vec()
}

/// A frame as read back from the output by a parser that shares no code with the core.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireFrame {
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// Splits `wire` into frames (control-frame sized payloads only: 7-bit lengths).
fn parse_frames(mut wire: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        assert!(wire.len() >= 2, "truncated frame header in {wire:?}");
        assert_eq!(wire[0] & 0xF0, 0x80, "FIN set, no RSV bits");
        let masked = wire[1] & 0x80 != 0;
        let len = usize::from(wire[1] & 0x7F);
        assert!(len <= 125, "test frames are short");
        let mut at = 2;
        let mut key = [0; 4];
        if masked {
            key.copy_from_slice(&wire[2..6]);
            at = 6;
        }
        let payload = wire[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, b)| if masked { b ^ key[i % 4] } else { *b })
            .collect();
        frames.push(WireFrame {
            opcode: wire[0] & 0x0F,
            masked,
            payload,
        });
        wire = &wire[at + len..];
    }
    frames
}

/// Everything the connection wants written now, as frames.
fn drain(conn: &mut Connection, now: Instant) -> Vec<WireFrame> {
    parse_frames(&ws_wire::written(conn, now))
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Feeds `wire` whole (it is small), draining events between calls.
fn feed(conn: &mut Connection, now: Instant, wire: &[u8]) -> Vec<Event> {
    let mut seen = Vec::new();
    let mut rest = wire;
    for _ in 0..100 {
        let taken = conn.receive(now, rest);
        rest = &rest[taken..];
        seen.extend(events(conn));
        if rest.is_empty() || (taken == 0 && !conn.wants_read()) {
            break;
        }
    }
    seen
}

fn ping(counter: u64) -> WireFrame {
    WireFrame {
        opcode: 0x9,
        masked: false,
        payload: counter.to_be_bytes().to_vec(),
    }
}

fn heartbeat_close() -> WireFrame {
    let mut payload = 1011u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"heartbeat timeout");
    WireFrame {
        opcode: 0x8,
        masked: false,
        payload,
    }
}

#[test]
fn first_ping_is_sent_one_interval_after_creation_and_not_before() {
    let t0 = clock::start();
    let mut conn = server(t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + INTERVAL));
    conn.handle_timeout(t0 + INTERVAL - Duration::from_millis(1));
    assert!(drain(&mut conn, t0 + INTERVAL).is_empty(), "no ping early");
    conn.handle_timeout(t0 + INTERVAL);
    assert_eq!(drain(&mut conn, t0 + INTERVAL), vec![ping(0)]);
    assert!(events(&mut conn).is_empty(), "sending a ping is no event");
    assert!(!conn.is_closed());
}

#[test]
fn pings_repeat_every_interval_with_a_counter_payload() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let mut now = t0;
    for counter in 0..3 {
        now += INTERVAL;
        conn.handle_timeout(now);
        assert_eq!(drain(&mut conn, now), vec![ping(counter)]);
        assert_eq!(conn.poll_timeout(), Some(now + PONG_TIMEOUT));
        let answer = feed(&mut conn, now, &client_frame(OpCode::Pong, &[]));
        assert_eq!(answer, vec![Event::Pong(Vec::new().into())]);
        assert_eq!(conn.poll_timeout(), Some(now + INTERVAL));
    }
}

#[test]
fn pong_clears_the_deadline() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let sent = t0 + INTERVAL;
    conn.handle_timeout(sent);
    drain(&mut conn, sent);
    assert_eq!(conn.poll_timeout(), Some(sent + PONG_TIMEOUT));
    // A pong with another payload counts too: peers may coalesce or answer differently.
    let events = feed(
        &mut conn,
        sent + secs(1),
        &client_frame(OpCode::Pong, b"any"),
    );
    assert_eq!(events, vec![Event::Pong(b"any".to_vec().into())]);
    assert_eq!(conn.poll_timeout(), Some(sent + INTERVAL));
    conn.handle_timeout(sent + PONG_TIMEOUT);
    assert!(drain(&mut conn, sent + PONG_TIMEOUT).is_empty());
    assert!(self::events(&mut conn).is_empty());
    assert!(!conn.is_closed());
}

#[test]
fn missing_pong_fails_with_1011_and_ends_within_close_timeout_unread() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let sent = t0 + INTERVAL;
    conn.handle_timeout(sent);
    assert_eq!(drain(&mut conn, sent), vec![ping(0)]);
    let overdue = sent + PONG_TIMEOUT;
    conn.handle_timeout(overdue - Duration::from_millis(1));
    assert!(
        events(&mut conn).is_empty(),
        "not failed before the deadline"
    );
    conn.handle_timeout(overdue);
    let failed = events(&mut conn);
    assert_eq!(failed, vec![Event::Error(ProtocolError::HeartbeatTimeout)]);
    assert_eq!(
        ProtocolError::HeartbeatTimeout.close_code(),
        CloseCode::INTERNAL_ERROR
    );
    assert!(conn.pending_output() > 0, "the Close is queued");
    // The peer never reads, so the driver never takes the output.
    assert!(!conn.is_closed());
    assert!(!conn.wants_read());
    let give_up = conn
        .poll_timeout()
        .expect("a deadline while the Close waits");
    assert!(give_up <= overdue + CLOSE_TIMEOUT, "{give_up:?}");
    conn.handle_timeout(give_up);
    assert!(conn.is_closed());
    assert!(events(&mut conn).is_empty());
}

#[test]
fn missing_pong_close_is_on_the_wire_and_ends_once_written() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let sent = t0 + INTERVAL;
    conn.handle_timeout(sent);
    drain(&mut conn, sent);
    let overdue = sent + PONG_TIMEOUT;
    conn.handle_timeout(overdue);
    assert_eq!(drain(&mut conn, overdue), vec![heartbeat_close()]);
    assert!(conn.is_closed());
    assert_eq!(
        events(&mut conn),
        vec![Event::Error(ProtocolError::HeartbeatTimeout)]
    );
}

#[test]
fn a_late_timer_fails_an_overdue_pong_instead_of_pinging_again() {
    let t0 = clock::start();
    let mut conn = server(t0);
    conn.handle_timeout(t0 + INTERVAL);
    drain(&mut conn, t0 + INTERVAL);
    // The driver wakes long after both the pong deadline and the next ping time.
    let late = t0 + INTERVAL * 3;
    conn.handle_timeout(late);
    assert_eq!(drain(&mut conn, late), vec![heartbeat_close()]);
    assert_eq!(
        events(&mut conn),
        vec![Event::Error(ProtocolError::HeartbeatTimeout)]
    );
}

#[test]
fn a_pong_before_our_ping_does_not_answer_it() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let early = feed(
        &mut conn,
        t0 + secs(1),
        &client_frame(OpCode::Pong, b"early"),
    );
    assert_eq!(early, vec![Event::Pong(b"early".to_vec().into())]);
    conn.handle_timeout(t0 + INTERVAL);
    drain(&mut conn, t0 + INTERVAL);
    conn.handle_timeout(t0 + INTERVAL + PONG_TIMEOUT);
    assert_eq!(
        events(&mut conn),
        vec![Event::Error(ProtocolError::HeartbeatTimeout)]
    );
}

#[test]
fn the_oldest_unanswered_ping_sets_the_deadline() {
    let t0 = clock::start();
    let mut limits = limits(Some(secs(2)));
    limits.pong_timeout = secs(5);
    let mut conn = Connection::new(Role::Server, limits, t0);
    for (at, counter) in [(2, 0), (4, 1)] {
        conn.handle_timeout(t0 + secs(at));
        assert_eq!(drain(&mut conn, t0 + secs(at)), vec![ping(counter)]);
    }
    assert_eq!(conn.poll_timeout(), Some(t0 + secs(6)), "next ping first");
    conn.handle_timeout(t0 + secs(6));
    assert_eq!(drain(&mut conn, t0 + secs(6)), vec![ping(2)]);
    assert_eq!(
        conn.poll_timeout(),
        Some(t0 + secs(7)),
        "first ping's deadline"
    );
    conn.handle_timeout(t0 + secs(7));
    assert_eq!(
        events(&mut conn),
        vec![Event::Error(ProtocolError::HeartbeatTimeout)]
    );
}

#[test]
fn no_interval_sends_nothing_and_sets_no_timer() {
    let t0 = clock::start();
    for interval in [None, Some(Duration::ZERO)] {
        let mut conn = Connection::new(Role::Server, limits(interval), t0);
        assert_eq!(conn.poll_timeout(), None, "{interval:?}");
        for at in [1, 10, 1000, 100_000] {
            conn.handle_timeout(t0 + secs(at));
            assert!(drain(&mut conn, t0 + secs(at)).is_empty(), "{interval:?}");
            assert!(events(&mut conn).is_empty());
        }
        assert!(!conn.is_closed());
        assert_eq!(conn.poll_timeout(), None);
    }
}

#[test]
fn a_ping_that_does_not_fit_waits_for_the_next_interval() {
    let t0 = clock::start();
    let mut limits = limits(Some(INTERVAL));
    limits.max_buffered_output = 20;
    let mut conn = Connection::new(Role::Server, limits, t0);
    conn.send_binary(&[7; 12]).unwrap();
    conn.handle_timeout(t0 + INTERVAL);
    assert_eq!(conn.pending_output(), 14, "only the message, no ping");
    assert_eq!(
        conn.poll_timeout(),
        Some(t0 + INTERVAL * 2),
        "no pong is awaited for a ping never sent"
    );
    conn.handle_timeout(t0 + INTERVAL + PONG_TIMEOUT);
    assert!(events(&mut conn).is_empty());
    assert!(conn.poll_transmit(t0 + INTERVAL * 2).is_some());
    conn.handle_timeout(t0 + INTERVAL * 2);
    assert_eq!(drain(&mut conn, t0 + INTERVAL * 2), vec![ping(0)]);
}

#[test]
fn client_heartbeat_pings_are_masked() {
    let t0 = clock::start();
    let role = Role::Client { mask_seed: [5; 16] };
    let mut conn = Connection::new(role, limits(Some(INTERVAL)), t0);
    conn.handle_timeout(t0 + INTERVAL);
    let frames = drain(&mut conn, t0 + INTERVAL);
    assert_eq!(
        frames,
        vec![WireFrame {
            masked: true,
            ..ping(0)
        }]
    );
}

#[test]
fn no_ping_once_we_sent_close_and_the_close_timeout_rules() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let closed_at = t0 + secs(8);
    conn.handle_timeout(closed_at);
    conn.close(CloseCode::GOING_AWAY, "").unwrap();
    drain(&mut conn, closed_at);
    assert_eq!(conn.poll_timeout(), Some(closed_at + CLOSE_TIMEOUT));
    // Past the ping time (10 s) but within the close timeout (11 s).
    conn.handle_timeout(t0 + INTERVAL);
    assert!(
        drain(&mut conn, t0 + INTERVAL).is_empty(),
        "no ping after Close"
    );
    conn.handle_timeout(closed_at + CLOSE_TIMEOUT);
    assert!(conn.is_closed());
    assert!(
        events(&mut conn).is_empty(),
        "a close timeout is no heartbeat error"
    );
}

#[test]
fn an_unanswered_ping_does_not_fail_a_close_handshake_in_progress() {
    let t0 = clock::start();
    let mut conn = server(t0);
    let sent = t0 + INTERVAL;
    conn.handle_timeout(sent);
    drain(&mut conn, sent);
    conn.close(CloseCode::NORMAL, "bye").unwrap();
    drain(&mut conn, sent);
    assert_eq!(conn.poll_timeout(), Some(sent + CLOSE_TIMEOUT));
    // The close timeout (3 s) comes before the pong deadline (4 s) and decides alone.
    conn.handle_timeout(sent + PONG_TIMEOUT);
    assert!(conn.is_closed());
    assert!(events(&mut conn).is_empty());
}

#[test]
fn no_ping_once_the_peer_closed() {
    let t0 = clock::start();
    let role = Role::Client { mask_seed: [9; 16] };
    let mut conn = Connection::new(role, limits(Some(INTERVAL)), t0);
    let mut server_close = BytesMut::new();
    encode_frame(
        &mut server_close,
        true,
        0,
        OpCode::Close,
        None,
        &1000u16.to_be_bytes(),
    );
    let closed_at = t0 + secs(9);
    let seen = feed(&mut conn, closed_at, &server_close);
    assert_eq!(
        seen,
        vec![Event::Close {
            code: CloseCode::NORMAL,
            reason: String::new()
        }]
    );
    let echo = drain(&mut conn, closed_at);
    assert_eq!(echo.len(), 1);
    assert_eq!(echo[0].opcode, 0x8);
    // The client waits for the server's TCP close; the heartbeat stays silent meanwhile.
    conn.handle_timeout(t0 + INTERVAL);
    assert!(drain(&mut conn, t0 + INTERVAL).is_empty());
    assert!(events(&mut conn).is_empty());
    assert_eq!(conn.poll_timeout(), Some(closed_at + CLOSE_TIMEOUT));
    conn.handle_timeout(closed_at + CLOSE_TIMEOUT);
    assert!(conn.is_closed());
}

#[test]
fn a_protocol_error_ends_within_close_timeout_when_unread() {
    let t0 = clock::start();
    let mut conn = Connection::new(Role::Server, limits(None), t0);
    // A reserved opcode fails the connection with 1002.
    let mut bad = client_frame(OpCode::Text, b"x");
    bad[0] = 0x83;
    let failed_at = t0 + secs(1);
    let seen = feed(&mut conn, failed_at, &bad);
    assert!(matches!(seen.as_slice(), [Event::Error(_)]), "{seen:?}");
    assert!(!conn.is_closed(), "the Close is not written yet");
    assert_eq!(conn.poll_timeout(), Some(failed_at + CLOSE_TIMEOUT));
    conn.handle_timeout(failed_at + CLOSE_TIMEOUT);
    assert!(conn.is_closed());
}
