//! A whole server WebSocket connection (RFC 6455) fed arbitrary bytes in arbitrary pieces,
//! with arbitrary sends, closes, timeouts and EOF between them. Properties: no panic; input
//! taken never exceeds input given; output stays within the buffer bound plus the control
//! frames owed; text messages are UTF-8; close codes reported from the wire are valid; no
//! event after the connection closed on EOF; sizes respect the limits.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::WsLimits;
use weft_core::ws::{CloseCode, Connection, Event, Message, MessageKind, Role};

#[derive(Arbitrary, Debug)]
enum Action {
    Receive { len: u16 },
    SendText(String),
    SendBinary { len: u16 },
    SendFragment { len: u16, fin: bool, text: bool },
    Ping(Vec<u8>),
    Close { code: u16 },
    Transmit,
    Advance { millis: u16 },
    Eof,
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_frame_size: u16,
    max_message_size: u16,
    max_buffered_output: u16,
    max_send_frame_size: u16,
    actions: Vec<Action>,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let mut limits = WsLimits::default();
    limits.max_frame_size = usize::from(input.max_frame_size);
    limits.max_message_size = usize::from(input.max_message_size);
    limits.max_buffered_output = usize::from(input.max_buffered_output);
    limits.max_send_frame_size = usize::from(input.max_send_frame_size);
    let bound = limits.max_buffered_output + 2 * (125 + 14);
    let mut now = Instant::now();
    let mut conn = Connection::new(Role::Server, limits.clone(), now);
    let mut rest = &input.bytes[..];
    let mut eof = false;
    for action in input.actions.iter().take(1000) {
        match action {
            Action::Receive { len } => {
                let n = usize::from(*len).min(rest.len());
                let taken = conn.receive(now, &rest[..n]);
                assert!(taken <= n);
                rest = &rest[taken..];
            }
            Action::SendText(text) => drop(conn.send_text(text)),
            Action::SendBinary { len } => drop(conn.send_binary(&vec![0x5a; usize::from(*len)])),
            Action::SendFragment { len, fin, text } => {
                let kind = if *text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let data = vec![b'a'; usize::from(*len)];
                if let Ok(n) = conn.send_fragment(kind, &data, *fin) {
                    assert!(n <= data.len());
                }
            }
            Action::Ping(payload) => drop(conn.send_ping(payload)),
            Action::Close { code } => drop(conn.close(CloseCode(*code), "")),
            Action::Transmit => drop(conn.poll_transmit(now)),
            Action::Advance { millis } => {
                now += Duration::from_millis(u64::from(*millis) * 10);
                conn.handle_timeout(now);
            }
            Action::Eof => {
                conn.receive_eof();
                eof = true;
            }
        }
        assert!(
            conn.pending_output() <= bound,
            "output {} > {bound}",
            conn.pending_output()
        );
        let mut events = 0;
        while let Some(event) = conn.poll_event() {
            events += 1;
            check(&event, &limits);
        }
        assert!(events <= 2, "events are produced one at a time");
        if eof {
            assert!(conn.is_closed());
            assert_eq!(conn.receive(now, b"\x81\x80\0\0\0\0"), 0);
        }
    }
});

fn check(event: &Event, limits: &WsLimits) {
    match event {
        Event::Message(Message::Text(bytes)) => {
            assert!(std::str::from_utf8(bytes).is_ok());
            assert!(bytes.len() <= limits.max_message_size);
        }
        Event::Message(Message::Binary(bytes)) => assert!(bytes.len() <= limits.max_message_size),
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
        Event::Close { code, reason } => {
            assert!(code.is_sendable() || [1005, 1006].contains(&code.0));
            assert!(reason.len() <= 123);
        }
        Event::Error(e) => assert!(e.close_code().is_sendable()),
        _ => {}
    }
}
