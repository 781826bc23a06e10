//! The zero-copy WebSocket receive path (`Connection::receive_buf`, which takes whole frames off
//! the caller's buffer and unmasks them in place) against the copying one (`Connection::receive`
//! and `poll_event`): arbitrary bytes from a client, in arbitrary pieces, under small arbitrary
//! frame and message limits, with or without events handed back.
//!
//! Properties: no panic; the buffer never holds more than what was appended; both paths report
//! the same events in the same order (messages, pings, pongs, the close and the protocol
//! errors, with their close codes), so the fast path accepts and refuses exactly what the
//! reference path does.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::WsLimits;
use weft_core::ws::{Connection, Event, Role, WHOLE_FRAME_MAX};

#[derive(Arbitrary, Debug)]
struct Input {
    max_frame_size: u16,
    max_message_size: u16,
    /// Hand every other event back to `receive_buf` (it must keep it for `poll_event`).
    hand_back: bool,
    /// Sizes of the pieces the bytes arrive in (0 means 1).
    pieces: Vec<u16>,
    bytes: Vec<u8>,
}

fn limits(input: &Input) -> WsLimits {
    let mut limits = WsLimits::default();
    limits.max_frame_size = usize::from(input.max_frame_size).max(1);
    limits.max_message_size = usize::from(input.max_message_size).max(1);
    limits
}

/// The pieces the bytes arrive in.
fn pieces(input: &Input) -> Vec<&[u8]> {
    let mut rest = &input.bytes[..];
    let mut sizes = input.pieces.iter().copied().cycle();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = usize::from(sizes.next().unwrap_or(u16::MAX).max(1)).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// The reference: the copying path, events drained after each call.
fn copying(input: &Input, now: Instant) -> Vec<Event> {
    let mut conn = Connection::new(Role::Server, limits(input), now);
    let mut events = Vec::new();
    for piece in pieces(input) {
        let mut rest = piece;
        for _ in 0..=piece.len() + 1 {
            let n = conn.receive(now, rest);
            rest = &rest[n..];
            events.extend(std::iter::from_fn(|| conn.poll_event()));
            if rest.is_empty() || conn.is_closed() {
                break;
            }
        }
    }
    events
}

/// The fast path: each piece appended to one buffer (never past `WHOLE_FRAME_MAX` held, as a
/// session's buffer), every event delivered in one call or handed back and polled.
fn in_place(input: &Input, now: Instant) -> Vec<Event> {
    let mut conn = Connection::new(Role::Server, limits(input), now);
    let mut events = Vec::new();
    let mut buffer = BytesMut::new();
    let mut refuse = false;
    for piece in pieces(input) {
        let mut rest = piece;
        for _ in 0..=piece.len() + 1 {
            let room = WHOLE_FRAME_MAX.saturating_sub(buffer.len());
            let (now_read, later) = rest.split_at(room.min(rest.len()));
            buffer.extend_from_slice(now_read);
            rest = later;
            // A handed-back event stops the reading: the buffer is offered again, as a
            // session does once it took the event, until nothing moves.
            loop {
                let (held, seen) = (buffer.len(), events.len());
                conn.receive_buf(now, &mut buffer, |event| {
                    refuse = input.hand_back && !refuse;
                    if refuse {
                        return Err(event);
                    }
                    events.push(event);
                    Ok(())
                });
                assert!(buffer.len() <= held);
                events.extend(std::iter::from_fn(|| conn.poll_event()));
                if buffer.len() == held && events.len() == seen {
                    break;
                }
            }
            if rest.is_empty() || conn.is_closed() {
                break;
            }
        }
    }
    events
}

fuzz_target!(|input: Input| {
    let now = Instant::now();
    let reference = copying(&input, now);
    let fast = in_place(&input, now);
    assert_eq!(reference, fast);
});
