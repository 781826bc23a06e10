//! In-memory tests of WebSockets over HTTP/1.1: the switch after `101`, echo both ways with our
//! own client ([`weft_core::ws::Connection`] in the client role), refusal before the switch,
//! backpressure, and how a socket ends (handler done, panic, shutdown, peer gone).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use weft_core::WsLimits;
use weft_core::ws::handshake::{accept_key, client_key};
use weft_core::ws::{CloseCode, Connection, Event, Message, Role};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, Service};
use weft_service::websocket::{QueueSizes, WebSocketUpgrade};

use super::{DispatchConfig, Dispatcher};

const KEY_BYTES: [u8; 16] = *b"0123456789abcdef";

fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: {}\r\nsec-websocket-version: 13\r\n{extra}\r\n",
        client_key(KEY_BYTES)
    )
    .into_bytes()
}

fn server<S: Service>(service: S) -> Dispatcher {
    Dispatcher::new(
        Arc::new(service),
        DispatchConfig::default(),
        ConnectionInfo::default(),
        Instant::now(),
    )
}

/// Echoes every message.
async fn echo(request: Request<Body>) -> Response<Body> {
    match WebSocketUpgrade::from_request(&request) {
        Ok(upgrade) => upgrade.on_upgrade(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    return;
                }
            }
        }),
        Err(rejection) => rejection.into_response(),
    }
}

/// Drives the dispatcher until nothing moves (bounded), returning what it wrote.
fn pump(dispatcher: &mut Dispatcher, now: Instant) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut output = Vec::new();
    for _ in 0..64 {
        let moved = dispatcher.poll(&mut cx);
        let mut wrote = false;
        while let Some(bytes) = dispatcher.poll_transmit(now) {
            output.extend_from_slice(&bytes);
            wrote = true;
        }
        if !moved && !wrote {
            break;
        }
    }
    output
}

/// Gives all of `input` to the dispatcher as far as it reads, polling between reads; returns
/// how much it took, and adds what it wrote to `output`.
fn feed_collecting(
    dispatcher: &mut Dispatcher,
    now: Instant,
    input: &[u8],
    output: &mut Vec<u8>,
) -> usize {
    let mut taken = 0;
    for _ in 0..1024 {
        if taken == input.len() || !dispatcher.wants_read() {
            break;
        }
        let room = dispatcher.receive_capacity().min(input.len() - taken);
        taken += dispatcher.receive(now, &input[taken..taken + room]);
        output.extend(pump(dispatcher, now));
    }
    taken
}

/// [`feed_collecting`] where the output does not matter.
fn feed(dispatcher: &mut Dispatcher, now: Instant, input: &[u8]) -> usize {
    feed_collecting(dispatcher, now, input, &mut Vec::new())
}

/// Sends `input` and returns everything written in answer.
fn send(dispatcher: &mut Dispatcher, now: Instant, input: &[u8]) -> Vec<u8> {
    let mut output = Vec::new();
    feed_collecting(dispatcher, now, input, &mut output);
    output.extend(pump(dispatcher, now));
    output
}

/// Opens a socket: returns the dispatcher after the `101`, and our client.
fn open<S: Service>(service: S) -> (Dispatcher, Connection, Instant) {
    let (dispatcher, client, now, _) = open_with_frames(service);
    (dispatcher, client, now)
}

/// [`open`], also returning the events of frames the server sent right after its `101`.
fn open_with_frames<S: Service>(service: S) -> (Dispatcher, Connection, Instant, Vec<Event>) {
    let now = Instant::now();
    let mut dispatcher = server(service);
    let output = send(&mut dispatcher, now, &upgrade_request("/ws", ""));
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    let accept = accept_key(&client_key(KEY_BYTES));
    assert!(
        text.to_ascii_lowercase().contains(&format!(
            "sec-websocket-accept: {}",
            accept.to_ascii_lowercase()
        )),
        "{text}"
    );
    let mut client = Connection::new(
        Role::Client { mask_seed: [7; 16] },
        WsLimits::default(),
        now,
    );
    let head_end = output.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let events = client_reads(&mut client, now, &output[head_end..]);
    (dispatcher, client, now, events)
}

/// The client's events from `bytes` the server wrote.
fn client_reads(client: &mut Connection, now: Instant, mut unread: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while !unread.is_empty() && client.wants_read() {
        let taken = client.receive(now, unread);
        unread = &unread[taken..];
        while let Some(event) = client.poll_event() {
            events.push(event);
        }
    }
    events
}

/// Sends the client's output to the server and the server's back; returns the client's
/// events.
fn round_trip(dispatcher: &mut Dispatcher, client: &mut Connection, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..64 {
        let mut moved = false;
        let mut output = Vec::new();
        while let Some(bytes) = client.poll_transmit(now) {
            let taken = feed_collecting(dispatcher, now, &bytes, &mut output);
            assert_eq!(taken, bytes.len(), "server stopped reading");
            moved = true;
        }
        output.extend(pump(dispatcher, now));
        let mut unread = &output[..];
        while !unread.is_empty() && client.wants_read() {
            let taken = client.receive(now, unread);
            unread = &unread[taken..];
            while let Some(event) = client.poll_event() {
                events.push(event);
            }
            moved |= taken > 0;
        }
        if !moved {
            break;
        }
    }
    events
}

#[test]
fn text_and_binary_messages_echo_over_the_switched_connection() {
    let (mut dispatcher, mut client, now) = open(echo);
    client.send_text("hello").unwrap();
    client.send_binary(&[0, 1, 2, 255]).unwrap();
    // Larger than both sides' output buffers: it goes in parts each way.
    let big = vec![b'z'; 600 * 1024];
    let mut sent = 0;
    let mut events = Vec::new();
    for _ in 0..64 {
        sent += client
            .send_fragment(weft_core::ws::MessageKind::Binary, &big[sent..], true)
            .unwrap_or(0);
        events.extend(round_trip(&mut dispatcher, &mut client, now));
        if sent == big.len() {
            break;
        }
    }
    events.extend(round_trip(&mut dispatcher, &mut client, now));
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("hello")),
            Event::Message(Message::binary(vec![0, 1, 2, 255])),
            Event::Message(Message::binary(big)),
        ]
    );
}

#[test]
fn small_messages_echo_in_order() {
    let (mut dispatcher, mut client, now) = open(echo);
    client.send_text("one").unwrap();
    client.send_binary(b"two").unwrap();
    let events = round_trip(&mut dispatcher, &mut client, now);
    assert_eq!(
        events,
        vec![
            Event::Message(Message::text("one")),
            Event::Message(Message::binary(&b"two"[..])),
        ]
    );
}

#[test]
fn every_whole_message_of_a_read_is_answered_and_a_split_frame_waits_for_its_end() {
    let (mut dispatcher, mut client, now) = open(echo);
    for i in 0..100u8 {
        client.send_binary(&[i; 100]).unwrap();
    }
    // A frame split across two reads, the second with the rest of it and one more message.
    client.send_binary(&[b'x'; 3000]).unwrap();
    client.send_text("last").unwrap();
    let wire = client.poll_transmit(now).unwrap();
    let cut = wire.len() - 2000;
    assert_eq!(dispatcher.receive(now, &wire[..cut]), cut);
    let events = client_reads(&mut client, now, &pump(&mut dispatcher, now));
    assert_eq!(events.len(), 100, "the 100 whole messages of the read");
    assert_eq!(dispatcher.receive(now, &wire[cut..]), wire.len() - cut);
    let events = client_reads(&mut client, now, &pump(&mut dispatcher, now));
    assert_eq!(
        events,
        vec![
            Event::Message(Message::binary(vec![b'x'; 3000])),
            Event::Message(Message::text("last")),
        ]
    );
}

#[test]
fn the_client_closing_ends_the_connection_after_the_close_handshake() {
    let (mut dispatcher, mut client, now) = open(echo);
    client.close(CloseCode::NORMAL, "bye").unwrap();
    let events = round_trip(&mut dispatcher, &mut client, now);
    assert!(
        matches!(&events[..], [Event::Close { code, .. }] if *code == CloseCode::NORMAL),
        "{events:?}"
    );
    assert!(
        dispatcher.is_closed(),
        "the server closes TCP first (RFC 6455 §7.1.1)"
    );
}

#[test]
fn a_handler_that_returns_closes_with_1000_after_its_last_message() {
    let service = |request: Request<Body>| async move {
        WebSocketUpgrade::from_request(&request)
            .unwrap()
            .on_upgrade(|socket| async move {
                let _ = socket.send(Message::text("last words")).await;
            })
    };
    let (mut dispatcher, mut client, now, mut events) = open_with_frames(service);
    events.extend(round_trip(&mut dispatcher, &mut client, now));
    assert_eq!(events[0], Event::Message(Message::text("last words")));
    assert!(
        matches!(&events[1], Event::Close { code, .. } if *code == CloseCode::NORMAL),
        "{events:?}"
    );
}

#[test]
fn a_panicking_handler_closes_with_1011() {
    let service = |request: Request<Body>| async move {
        WebSocketUpgrade::from_request(&request)
            .unwrap()
            .on_upgrade(|_socket| async move { panic!("deliberate panic in a socket handler") })
    };
    let (mut dispatcher, mut client, now, mut events) = open_with_frames(service);
    events.extend(round_trip(&mut dispatcher, &mut client, now));
    assert!(
        matches!(&events[..], [Event::Close { code, .. }] if *code == CloseCode::INTERNAL_ERROR),
        "{events:?}"
    );
}

#[test]
fn shutdown_closes_with_1001() {
    let (mut dispatcher, mut client, now) = open(echo);
    dispatcher.shutdown();
    let mut events = round_trip(&mut dispatcher, &mut client, now);
    events.extend(round_trip(&mut dispatcher, &mut client, now));
    assert!(
        matches!(&events[..], [Event::Close { code, .. }] if *code == CloseCode::GOING_AWAY),
        "{events:?}"
    );
    assert!(dispatcher.is_closed());
}

#[test]
fn a_refusal_before_the_switch_is_an_ordinary_response() {
    let service = |request: Request<Body>| async move {
        let upgrade = WebSocketUpgrade::from_request(&request).unwrap();
        if request.headers().get("authorization").is_none() {
            let mut refused = Response::new(Body::from("who are you?"));
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
            return refused;
        }
        upgrade.on_upgrade(|_socket| async {})
    };
    let now = Instant::now();
    let mut dispatcher = server(service);
    let output =
        String::from_utf8(send(&mut dispatcher, now, &upgrade_request("/ws", ""))).unwrap();
    assert!(
        output.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{output}"
    );
    assert!(output.ends_with("who are you?"), "{output}");
    assert!(!dispatcher.is_closed(), "still an HTTP/1.1 connection");
    let request = upgrade_request("/ws", "authorization: Bearer ok\r\n");
    let output = send(&mut dispatcher, now, &request);
    assert!(output.starts_with(b"HTTP/1.1 101 "), "{output:?}");
    assert!(
        output.ends_with(&[0x88, 2, 0x03, 0xe8]),
        "then Close 1000: {output:?}"
    );
}

#[test]
fn a_bad_version_is_answered_426_with_the_version_we_speak() {
    let service = echo;
    let now = Instant::now();
    let mut dispatcher = server(service);
    let request = String::from_utf8(upgrade_request("/ws", ""))
        .unwrap()
        .replace("sec-websocket-version: 13", "sec-websocket-version: 8");
    let output = String::from_utf8(send(&mut dispatcher, now, request.as_bytes())).unwrap();
    assert!(output.starts_with("HTTP/1.1 426 "), "{output}");
    assert!(output.contains("sec-websocket-version: 13\r\n"), "{output}");
}

#[test]
fn a_handler_that_does_not_read_stops_the_connection_reading() {
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let service = move |request: Request<Body>| {
        let flag = Arc::clone(&flag);
        async move {
            WebSocketUpgrade::from_request(&request)
                .unwrap()
                .queues(QueueSizes {
                    receive: 4096,
                    send: 4096,
                })
                .on_upgrade(move |_socket| async move {
                    flag.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                })
        }
    };
    let (mut dispatcher, mut client, now) = open(service);
    let mut offered = 0;
    let mut taken = 0;
    for _ in 0..200 {
        let _ = client.send_binary(&[1; 1000]);
        while let Some(bytes) = client.poll_transmit(now) {
            offered += bytes.len();
            taken += feed(&mut dispatcher, now, &bytes);
        }
    }
    assert!(started.load(Ordering::SeqCst));
    assert!(offered > 150_000, "offered {offered}");
    assert!(!dispatcher.wants_read(), "backpressure reaches the socket");
    assert!(
        taken < 100_000,
        "took {taken} bytes for a handler that reads none"
    );
}

#[test]
fn the_peer_vanishing_ends_the_handlers_receive() {
    let ended = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ended);
    let service = move |request: Request<Body>| {
        let counter = Arc::clone(&counter);
        async move {
            WebSocketUpgrade::from_request(&request)
                .unwrap()
                .on_upgrade(move |mut socket| async move {
                    while socket.recv().await.is_some() {}
                    let code = socket.close_reason().map(|(code, _)| code.0).unwrap_or(0);
                    counter.store(usize::from(code), Ordering::SeqCst);
                })
        }
    };
    let (mut dispatcher, _client, now) = open(service);
    dispatcher.receive_eof();
    pump(&mut dispatcher, now);
    assert_eq!(ended.load(Ordering::SeqCst), 1006);
    assert!(dispatcher.is_closed());
}

#[test]
fn the_heartbeat_closes_a_silent_peer_with_1011() {
    use weft_service::websocket::Heartbeat;
    let service = |request: Request<Body>| async move {
        WebSocketUpgrade::from_request(&request)
            .unwrap()
            .heartbeat(Some(Heartbeat {
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            }))
            .on_upgrade(|mut socket| async move { while socket.recv().await.is_some() {} })
    };
    let (mut dispatcher, mut client, start) = open(service);
    let mut now = start;
    let mut pings = 0;
    let mut output = Vec::new();
    for _ in 0..16 {
        let Some(due) = dispatcher.poll_timeout() else {
            break;
        };
        assert!(due > now, "a deadline in the past was not handled");
        now = due;
        dispatcher.handle_timeout(now);
        output.extend(pump(&mut dispatcher, now));
        if dispatcher.is_closed() {
            break;
        }
    }
    let mut unread = &output[..];
    let mut events = Vec::new();
    while !unread.is_empty() && client.wants_read() {
        let taken = client.receive(now, unread);
        unread = &unread[taken..];
        while let Some(event) = client.poll_event() {
            pings += usize::from(matches!(event, Event::Ping(_)));
            events.push(event);
        }
    }
    assert!(pings >= 1, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Close { code, .. } if *code == CloseCode::INTERNAL_ERROR)),
        "{events:?}"
    );
    assert!(dispatcher.is_closed());
    assert!(now.duration_since(start) < Duration::from_secs(60));
}

#[test]
fn a_101_to_a_request_that_asked_for_no_upgrade_is_answered_500() {
    let service = |_request: Request<Body>| async move {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
    };
    let now = Instant::now();
    let mut dispatcher = server(service);
    let output = send(&mut dispatcher, now, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let output = String::from_utf8(output).unwrap();
    assert!(output.starts_with("HTTP/1.1 500 "), "{output}");
}

#[test]
fn an_unmasked_frame_fails_with_1002_and_the_handler_runs_to_its_end() {
    let ended = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ended);
    let service = move |request: Request<Body>| {
        let flag = Arc::clone(&flag);
        async move {
            WebSocketUpgrade::from_request(&request)
                .unwrap()
                .on_upgrade(move |mut socket| async move {
                    while socket.recv().await.is_some() {}
                    // Cleanup after the loop (leaving a hub, say) must run.
                    flag.store(true, Ordering::SeqCst);
                })
        }
    };
    let (mut dispatcher, mut client, now) = open(service);
    // A text frame "hi" without the mask bit: a server must fail the connection (§5.1).
    let output = send(&mut dispatcher, now, &[0x81, 0x02, b'h', b'i']);
    let events = client_reads(&mut client, now, &output);
    assert!(
        matches!(&events[..], [Event::Close { code, .. }] if *code == CloseCode::PROTOCOL_ERROR),
        "{events:?}"
    );
    assert!(dispatcher.is_closed());
    assert!(ended.load(Ordering::SeqCst), "the handler saw the end");
}

#[test]
fn messages_before_a_protocol_error_in_the_same_read_are_answered_before_the_close() {
    let (mut dispatcher, mut client, now) = open(echo);
    client.send_text("one").unwrap();
    client.send_text("two").unwrap();
    let mut input = client.poll_transmit(now).unwrap().to_vec();
    // Then an unmasked frame, in the same read: the connection fails with 1002.
    input.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let output = send(&mut dispatcher, now, &input);
    let events = client_reads(&mut client, now, &output);
    assert!(
        matches!(
            &events[..],
            [
                Event::Message(one),
                Event::Message(two),
                Event::Close { code, .. },
            ] if *one == Message::text("one")
                && *two == Message::text("two")
                && *code == CloseCode::PROTOCOL_ERROR
        ),
        "{events:?}"
    );
    assert!(dispatcher.is_closed());
}

#[test]
fn a_message_being_sent_in_parts_is_finished_before_the_answer_to_the_peers_close() {
    // Larger than the output buffer (256 KiB): it goes out in parts.
    const BIG: usize = 300 * 1024;
    let service = |request: Request<Body>| async move {
        WebSocketUpgrade::from_request(&request)
            .unwrap()
            .on_upgrade(|mut socket| async move {
                while let Some(message) = socket.recv().await {
                    if message.as_text() == Some("go") {
                        let _ = socket.send(Message::binary(vec![b'z'; BIG])).await;
                    }
                }
            })
    };
    let (mut dispatcher, mut client, now) = open(service);
    let mut cx = Context::from_waker(Waker::noop());
    client.send_text("go").unwrap();
    let go = client.poll_transmit(now).unwrap();
    assert_eq!(dispatcher.receive(now, &go), go.len());
    dispatcher.poll(&mut cx);
    // The first part is written; the rest waits in the session when the peer's Close comes.
    let mut output = dispatcher.poll_transmit(now).unwrap().to_vec();
    assert!(output.len() < BIG);
    client.close(CloseCode::NORMAL, "").unwrap();
    let close = client.poll_transmit(now).unwrap();
    assert_eq!(dispatcher.receive(now, &close), close.len());
    output.extend(pump(&mut dispatcher, now));
    let events = client_reads(&mut client, now, &output);
    assert!(
        matches!(
            &events[..],
            [Event::Message(big), Event::Close { code, .. }]
                if big.payload().len() == BIG && *code == CloseCode::NORMAL
        ),
        "{:?}",
        events
            .iter()
            .map(|e| match e {
                Event::Message(m) => format!("message of {}", m.payload().len()),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    );
    assert!(dispatcher.is_closed());
}
