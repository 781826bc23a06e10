//! Our client and our server talking to each other in memory, as quinn-proto's test pair:
//! bytes move between the two state machines with no socket and a virtual clock.

use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};
use weft_core::Limits;
use weft_core::h1::{BodySize, ClientConnection, ClientEvent, ServerConnection, ServerEvent};

/// A client and a server joined by two in-memory pipes.
struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    now: Instant,
    /// Server-to-client bytes not yet taken by the client.
    to_client: Vec<u8>,
    /// Client-to-server bytes not yet taken by the server.
    to_server: Vec<u8>,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        Pair {
            client: ClientConnection::new(Limits::default()),
            server: ServerConnection::new(Limits::default(), now),
            now,
            to_client: Vec::new(),
            to_server: Vec::new(),
        }
    }

    /// Moves the client's pending output to the server and returns the server's events.
    fn deliver_to_server(&mut self) -> Vec<ServerEvent> {
        while let Some(bytes) = self.client.poll_transmit() {
            self.to_server.extend_from_slice(&bytes);
        }
        let taken = self.server.receive(self.now, &self.to_server);
        self.to_server.drain(..taken);
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// Moves the server's pending output to the client and returns the client's events.
    fn deliver_to_client(&mut self) -> Vec<ClientEvent> {
        while let Some(bytes) = self.server.poll_transmit(self.now) {
            self.to_client.extend_from_slice(&bytes);
        }
        let taken = self.client.receive(&self.to_client);
        self.to_client.drain(..taken);
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

fn host() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("example.com"));
    headers
}

fn get(pair: &mut Pair, path: &str) {
    let uri: Uri = path.parse().unwrap();
    pair.client
        .send_request(&Method::GET, &uri, &host(), BodySize::EMPTY)
        .unwrap();
    pair.client.finish().unwrap();
}

fn respond(server: &mut ServerConnection, body: &[u8]) {
    server
        .send_response(
            StatusCode::OK,
            &HeaderMap::new(),
            BodySize::Known(body.len() as u64),
        )
        .unwrap();
    assert_eq!(server.send_data(body).unwrap(), body.len());
    server.finish().unwrap();
}

fn response_bodies(events: &[ClientEvent]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for event in events {
        match event {
            ClientEvent::Response(_) => bodies.push(Vec::new()),
            ClientEvent::Data(data) => bodies.last_mut().unwrap().extend_from_slice(data),
            _ => {}
        }
    }
    bodies
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut pair = Pair::new();
    for path in ["/one", "/two", "/three"] {
        get(&mut pair, path);
    }
    assert_eq!(pair.client.in_flight(), 3);

    let mut paths = Vec::new();
    // The server surfaces one request at a time: the next only once the previous is answered.
    for _ in 0..3 {
        let events = pair.deliver_to_server();
        let heads: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Request(head) => Some(head.uri.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            heads.len(),
            1,
            "exactly one request surfaces before its answer: {events:?}"
        );
        paths.push(heads[0].clone());
        let body = heads[0].clone();
        respond(&mut pair.server, body.as_bytes());
    }
    assert_eq!(paths, ["/one", "/two", "/three"]);
    let events = pair.deliver_to_client();
    assert_eq!(
        response_bodies(&events),
        [b"/one".to_vec(), b"/two".to_vec(), b"/three".to_vec()]
    );
    assert_eq!(pair.client.in_flight(), 0);
}

#[test]
fn expect_continue_waits_for_the_server() {
    let mut pair = Pair::new();
    let mut headers = host();
    headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
    let uri: Uri = "/upload".parse().unwrap();
    pair.client
        .send_request(&Method::PUT, &uri, &headers, BodySize::Known(4))
        .unwrap();

    let events = pair.deliver_to_server();
    assert!(matches!(&events[..], [ServerEvent::Request(head)] if head.expects_continue));
    assert!(
        pair.deliver_to_client().is_empty(),
        "no 100 Continue before the application reads"
    );

    pair.server.request_body();
    let events = pair.deliver_to_client();
    assert!(
        matches!(&events[..], [ClientEvent::Informational(head)] if head.status == StatusCode::CONTINUE),
        "{events:?}"
    );

    pair.client.send_data(b"data").unwrap();
    pair.client.finish().unwrap();
    let events = pair.deliver_to_server();
    assert_eq!(
        events,
        [
            ServerEvent::Data(Bytes::from_static(b"data")),
            ServerEvent::EndOfMessage
        ]
    );
    respond(&mut pair.server, b"stored");
    assert_eq!(
        response_bodies(&pair.deliver_to_client()),
        [b"stored".to_vec()]
    );
}

#[test]
fn upgrade_hands_over_the_bytes_after_the_switch() {
    let mut pair = Pair::new();
    let mut headers = host();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("echo"));
    let uri: Uri = "/chat".parse().unwrap();
    pair.client
        .send_request(&Method::GET, &uri, &headers, BodySize::EMPTY)
        .unwrap();
    pair.client.finish().unwrap();
    // The client already speaks the new protocol right after its request.
    while let Some(bytes) = pair.client.poll_transmit() {
        pair.to_server.extend_from_slice(&bytes);
    }
    pair.to_server.extend_from_slice(b"early bytes");

    let events = pair.deliver_to_server();
    assert!(
        matches!(&events[..], [ServerEvent::Request(h), ServerEvent::EndOfMessage] if h.wants_upgrade),
        "{events:?}"
    );
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response_headers.insert(header::UPGRADE, HeaderValue::from_static("echo"));
    pair.server
        .send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &response_headers,
            BodySize::EMPTY,
        )
        .unwrap();
    let events: Vec<_> = std::iter::from_fn(|| pair.server.poll_event()).collect();
    assert_eq!(
        events,
        [ServerEvent::Upgraded {
            leftover: Bytes::from_static(b"early bytes")
        }]
    );

    // The server's first bytes in the new protocol follow its 101 head.
    while let Some(bytes) = pair.server.poll_transmit(pair.now) {
        pair.to_client.extend_from_slice(&bytes);
    }
    pair.to_client.extend_from_slice(b"reply");
    let taken = pair.client.receive(&pair.to_client);
    pair.to_client.drain(..taken);
    let events: Vec<_> = std::iter::from_fn(|| pair.client.poll_event()).collect();
    assert!(
        matches!(&events[..], [ClientEvent::Upgraded { leftover }] if leftover == "reply"),
        "{events:?}"
    );
}

#[test]
fn chunked_bodies_and_trailers_cross_both_ways() {
    let mut pair = Pair::new();
    let uri: Uri = "/sum".parse().unwrap();
    pair.client
        .send_request(&Method::POST, &uri, &host(), BodySize::Unknown)
        .unwrap();
    pair.client.send_data(b"abc").unwrap();
    pair.client.send_data(b"defg").unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("7"));
    pair.client.send_trailers(&trailers).unwrap();

    let events = pair.deliver_to_server();
    let mut body = Vec::new();
    let mut seen_trailers = None;
    for event in &events {
        match event {
            ServerEvent::Data(d) => body.extend_from_slice(d),
            ServerEvent::Trailers(t) => seen_trailers = Some(t.clone()),
            _ => {}
        }
    }
    assert_eq!(body, b"abcdefg");
    assert_eq!(seen_trailers.unwrap()["x-checksum"], "7");
    assert!(matches!(events.last(), Some(ServerEvent::EndOfMessage)));

    pair.server
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    pair.server.send_data(b"streamed ").unwrap();
    pair.server.send_data(b"reply").unwrap();
    pair.server.send_trailers(&trailers).unwrap();
    let events = pair.deliver_to_client();
    assert_eq!(response_bodies(&events), [b"streamed reply".to_vec()]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Trailers(t) if t["x-checksum"] == "7"))
    );
}

#[test]
fn head_response_has_no_body_for_the_client() {
    let mut pair = Pair::new();
    let uri: Uri = "/".parse().unwrap();
    pair.client
        .send_request(&Method::HEAD, &uri, &host(), BodySize::EMPTY)
        .unwrap();
    pair.client.finish().unwrap();
    get(&mut pair, "/after");
    let events = pair.deliver_to_server();
    assert!(matches!(&events[0], ServerEvent::Request(h) if h.method == Method::HEAD));
    pair.server
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(100))
        .unwrap();
    pair.server.finish().unwrap();
    pair.deliver_to_server();
    respond(&mut pair.server, b"second");
    let events = pair.deliver_to_client();
    // The HEAD response announces 100 bytes but carries none; the next response follows directly.
    assert_eq!(response_bodies(&events), [Vec::new(), b"second".to_vec()]);
}
