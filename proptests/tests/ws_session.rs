//! A WebSocket served by the real [`Dispatcher`] over HTTP/1.1: whatever messages a client
//! sends (text or binary, empty to larger than every buffer, compressed or not), however its
//! bytes are cut by the network, and however small the socket's queues, an echo handler sends
//! back exactly the same messages in the same order, and the close handshake ends the
//! connection. This exercises the glue between the protocol and the application (input
//! buffering, backpressure, messages larger than the output buffer sent in parts) that the
//! core's own properties cannot see.

use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Instant;

use http::Request;
use proptest::collection::vec;
use proptest::prelude::*;
use weft_adapters::{DispatchConfig, Dispatcher};
use weft_core::WsLimits;
use weft_core::ws::deflate::{DeflateConfig, accept_response};
use weft_core::ws::handshake::client_key;
use weft_core::ws::{CloseCode, Connection, Event, Message, Role};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, Service};
use weft_service::websocket::{QueueSizes, WebSocketUpgrade};

/// What the client sends: a message, or one cut into fragments by our client.
#[derive(Debug, Clone)]
struct Sent {
    text: bool,
    payload: Vec<u8>,
}

fn sent() -> impl Strategy<Value = Sent> {
    let payload = prop_oneof![
        3 => vec(prop::sample::select(b"abc xyz".to_vec()), 0..200),
        1 => vec(any::<u8>(), 0..3000),
        1 => (any::<u8>(), 1usize..400_000).prop_map(|(byte, len)| vec![byte & 0x7f; len]),
    ];
    (any::<bool>(), payload).prop_map(|(text, payload)| {
        // Text must be UTF-8: keep ASCII for text messages.
        let text = text && payload.iter().all(u8::is_ascii);
        Sent { text, payload }
    })
}

/// An echo handler whose queues are `queue` bytes each way.
fn echo(queue: usize) -> impl Service {
    move |request: Request<Body>| async move {
        let upgrade = match WebSocketUpgrade::from_request(&request) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
        upgrade
            .queues(QueueSizes {
                receive: queue,
                send: queue,
            })
            .on_upgrade(|mut socket| async move {
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
            })
    }
}

/// The server and our client, talking through byte pipes cut at `cuts`.
struct Pair {
    server: Dispatcher,
    client: Connection,
    now: Instant,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    cuts: Vec<usize>,
    turn: usize,
    events: Vec<Event>,
}

impl Pair {
    /// The next piece size for a pipe.
    fn piece(&mut self) -> usize {
        self.turn += 1;
        self.cuts[self.turn % self.cuts.len()]
    }

    /// One round: client output to the server in one piece, server polled, server output to
    /// the client in one piece. True when anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(bytes) = self.client.poll_transmit(self.now) {
            self.to_server.extend_from_slice(&bytes);
        }
        let piece = self.piece();
        if self.server.wants_read() && !self.to_server.is_empty() {
            let room = self
                .server
                .receive_capacity()
                .min(piece)
                .min(self.to_server.len());
            let taken = self.server.receive(self.now, &self.to_server[..room]);
            self.to_server.drain(..taken);
            moved |= taken > 0;
        }
        let mut cx = Context::from_waker(Waker::noop());
        moved |= self.server.poll(&mut cx);
        while let Some(bytes) = self.server.poll_transmit(self.now) {
            self.to_client.extend_from_slice(&bytes);
            moved = true;
        }
        let piece = self.piece();
        let end = piece.min(self.to_client.len());
        let mut offered = 0;
        while offered < end && self.client.wants_read() {
            let taken = self.client.receive(self.now, &self.to_client[offered..end]);
            offered += taken;
            while let Some(event) = self.client.poll_event() {
                self.events.push(event);
            }
            if taken == 0 {
                break;
            }
        }
        self.to_client.drain(..offered);
        moved | (offered > 0)
    }
}

/// Opens a socket (deflate offered or not) and returns the pair after the `101`.
fn open<S: Service>(service: S, deflate: bool, cuts: Vec<usize>) -> Pair {
    let now = Instant::now();
    let mut server = Dispatcher::new(
        Arc::new(service),
        DispatchConfig::default(),
        ConnectionInfo::default(),
        now,
    );
    let offer = DeflateConfig::default();
    let mut request = format!(
        "GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-key: {}\r\nsec-websocket-version: 13\r\n",
        client_key([9; 16])
    );
    if deflate {
        request.push_str(&format!("sec-websocket-extensions: {}\r\n", offer.offer()));
    }
    request.push_str("\r\n");
    let taken = server.receive(now, request.as_bytes());
    assert_eq!(taken, request.len());
    let mut cx = Context::from_waker(Waker::noop());
    let mut output = Vec::new();
    for _ in 0..8 {
        server.poll(&mut cx);
        while let Some(bytes) = server.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
    }
    let end = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole response head")
        + 4;
    let head = String::from_utf8_lossy(&output[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    let extensions: Vec<&str> = head
        .lines()
        .filter_map(|line| line.strip_prefix("sec-websocket-extensions: "))
        .collect();
    let params = accept_response(&offer, extensions).expect("a valid answer");
    assert_eq!(params.is_some(), deflate, "compression iff offered");
    let client = Connection::with_deflate(
        Role::Client { mask_seed: [5; 16] },
        WsLimits::default(),
        now,
        params,
    );
    Pair {
        server,
        client,
        now,
        to_server: Vec::new(),
        to_client: output[end..].to_vec(),
        cuts,
        turn: 0,
        events: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn an_echo_returns_every_message_in_order_at_any_cut(
        messages in vec(sent(), 0..12),
        deflate in any::<bool>(),
        queue in prop_oneof![Just(1usize), 1usize..5000, Just(1 << 20)],
        cuts in vec(1usize..70_000, 1..6),
    ) {
        let mut pair = open(echo(queue), deflate, cuts);
        let mut expected = Vec::new();
        let mut steps = 0;
        for message in &messages {
            // Whole messages when they fit our client's buffer; else in parts.
            let mut sent = 0;
            loop {
                let kind = if message.text {
                    weft_core::ws::MessageKind::Text
                } else {
                    weft_core::ws::MessageKind::Binary
                };
                let whole = sent == 0 && if message.text {
                    pair.client.send_text(std::str::from_utf8(&message.payload).unwrap()).is_ok()
                } else {
                    pair.client.send_binary(&message.payload).is_ok()
                };
                if whole {
                    break;
                }
                sent += pair.client.send_fragment(kind, &message.payload[sent..], true).unwrap_or(0);
                if sent == message.payload.len() && (sent > 0 || message.payload.is_empty()) {
                    break;
                }
                pair.step();
                steps += 1;
                prop_assert!(steps < 20_000, "no progress sending");
            }
            let payload = bytes::Bytes::from(message.payload.clone());
            expected.push(Event::Message(if message.text {
                Message::Text(payload)
            } else {
                Message::Binary(payload)
            }));
            pair.step();
        }
        for _ in 0..20_000 {
            if pair.events.len() >= expected.len() && !pair.step() {
                break;
            }
            pair.step();
        }
        prop_assert_eq!(&pair.events, &expected);
        pair.client.close(CloseCode::NORMAL, "done").unwrap();
        for _ in 0..1000 {
            if !pair.step() && pair.server.is_closed() {
                break;
            }
        }
        prop_assert!(pair.server.is_closed(), "the close handshake ends the connection");
        let closed = pair.events.last().cloned();
        prop_assert!(
            matches!(closed, Some(Event::Close { code, .. }) if code == CloseCode::NORMAL),
            "{:?}", closed
        );
    }
}
