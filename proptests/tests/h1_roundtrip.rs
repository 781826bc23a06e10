//! Round trips through weft's own HTTP/1.1 client and server: whatever the method, target,
//! fields, body framing and the boundaries at which bytes arrive, what one side sends is what
//! the other side reads.

use std::time::Instant;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use weft_core::Limits;
use weft_core::h1::{
    BodySize, ClientConnection, ClientEvent, RequestHead, ResponseHead, ServerConnection,
    ServerEvent,
};

// ----- generators -----

/// Fields the connections write or act on themselves (framing, persistence, upgrade,
/// expectations), which the round trip cannot carry unchanged.
const CONNECTION_FIELDS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// Methods with a meaning of their own, plus any token (CONNECT is left out: it takes an
/// authority-form target and opens a tunnel).
fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        select(vec![
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}".prop_filter("not CONNECT", |m| m != "CONNECT"),
    ]
    .prop_map(|m| Method::from_bytes(m.as_bytes()).expect("a token is a method"))
}

/// An origin-form target: `/segment/...` and an optional query, from unreserved characters,
/// sub-delims, `:`, `@` and well-formed percent-escapes (RFC 3986 pchar).
fn origin_target() -> impl Strategy<Value = Uri> {
    let pchar = "([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})";
    let segments = format!("(/{pchar}{{1,8}}){{0,4}}/?");
    let query = format!("(\\?({pchar}|[/?]){{0,16}})?");
    proptest::string::string_regex(&format!("{segments}{query}"))
        .expect("valid regex")
        .prop_map(|target| {
            let target = if target.starts_with('/') {
                target
            } else {
                format!("/{target}")
            };
            target.parse().expect("an origin-form target is a URI")
        })
}

/// A field name that is a token and not one the connection handles itself; a small pool
/// makes repeated names (several field lines with one name) common.
fn field_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        select(vec!["accept", "cookie", "x-dup", "via", "warning"]).prop_map(str::to_owned),
        "[a-z0-9!#$%&'*+.^_`|~-]{1,20}",
    ]
    .prop_filter("not a connection field", |name| {
        !CONNECTION_FIELDS.contains(&name.as_str())
    })
    .prop_map(|name| HeaderName::from_bytes(name.as_bytes()).expect("a token is a field name"))
}

/// A field value: visible ASCII (now and then obs-text), spaces and tabs inside only, or empty.
fn field_value() -> impl Strategy<Value = HeaderValue> {
    let visible = prop_oneof![9 => 0x21u8..=0x7e, 1 => 0x80u8..=0xff];
    let inner = prop_oneof![8 => 0x21u8..=0x7e, 1 => select(vec![b' ', b'\t']), 1 => 0x80u8..=0xff];
    prop_oneof![
        1 => Just(Vec::new()),
        8 => (visible.clone(), vec(inner, 0..24), visible.clone()).prop_map(|(first, mut middle, last)| {
            middle.insert(0, first);
            middle.push(last);
            middle
        }),
        1 => visible.prop_map(|b| vec![b]),
    ]
    .prop_map(|bytes| HeaderValue::from_bytes(&bytes).expect("visible bytes are a field value"))
}

fn fields(count: std::ops::Range<usize>) -> impl Strategy<Value = HeaderMap> {
    vec((field_name(), field_value()), count).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, value);
        }
        map
    })
}

/// Trailers to send after a chunked body, or none.
fn trailers() -> impl Strategy<Value = Option<HeaderMap>> {
    proptest::option::of(fields(1..5))
}

/// A body and the sizes of the pieces it is handed over in (the last piece takes the rest).
fn body() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (
        prop_oneof![
            1 => Just(Vec::new()),
            6 => vec(any::<u8>(), 1..2048),
        ],
        vec(0usize..512, 0..8),
    )
}

/// Sizes of the reads that deliver a byte stream; used in turn, over and over.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        vec(1usize..8, 1..8),
        vec(1usize..200, 1..8),
        vec(1usize..4096, 1..3),
    ]
}

fn known_or_unknown(chunked: bool, len: usize) -> BodySize {
    if chunked {
        BodySize::Unknown
    } else {
        BodySize::Known(len as u64)
    }
}

/// `body` cut at the given piece sizes; the last piece takes what is left.
fn pieces<'a>(body: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut rest = body;
    let mut out = Vec::new();
    for &size in sizes {
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out.push(rest);
    out
}

// ----- moving bytes -----

/// `bytes` cut into reads of the sizes in `splits`, used in turn and over again.
fn reads<'a>(bytes: &'a [u8], splits: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = bytes;
    splits.iter().cycle().map_while(move |&size| {
        if rest.is_empty() {
            return None;
        }
        let (read, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(read)
    })
}

fn drain_client(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = client.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

fn drain_server(server: &mut ServerConnection, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = server.poll_transmit(now) {
        out.extend_from_slice(&bytes);
    }
    out
}

/// Writes a response body through `send_data`, draining the output whenever it pushes back.
fn server_send_all(server: &mut ServerConnection, now: Instant, data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while !rest.is_empty() {
        let taken = server
            .send_data(rest)
            .expect("send_data in a response body");
        rest = &rest[taken..];
        if taken == 0 {
            let drained = drain_server(server, now);
            assert!(
                !drained.is_empty(),
                "send_data took nothing from an empty buffer"
            );
            out.extend_from_slice(&drained);
        }
    }
}

/// One message as a receiver surfaced it.
#[derive(Debug)]
struct Received<H> {
    head: H,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    complete: bool,
}

/// Groups server events into requests, failing on anything but head, data, trailers, end.
fn group_server_events(events: Vec<ServerEvent>) -> Result<Vec<Received<RequestHead>>, String> {
    let mut messages: Vec<Received<RequestHead>> = Vec::new();
    for event in events {
        let current = messages.last_mut().filter(|m| !m.complete);
        match (event, current) {
            (ServerEvent::Request(head), None) => messages.push(Received {
                head: *head,
                body: Vec::new(),
                trailers: None,
                complete: false,
            }),
            (ServerEvent::Data(data), Some(m)) if m.trailers.is_none() && !data.is_empty() => {
                m.body.extend_from_slice(&data)
            }
            (ServerEvent::Trailers(t), Some(m)) if m.trailers.is_none() => m.trailers = Some(t),
            (ServerEvent::EndOfMessage, Some(m)) => m.complete = true,
            (event, _) => return Err(format!("unexpected server event {event:?}")),
        }
    }
    Ok(messages)
}

/// Groups client events into responses, failing on anything but head, data, trailers, end.
fn group_client_events(events: Vec<ClientEvent>) -> Result<Vec<Received<ResponseHead>>, String> {
    let mut messages: Vec<Received<ResponseHead>> = Vec::new();
    for event in events {
        let current = messages.last_mut().filter(|m| !m.complete);
        match (event, current) {
            (ClientEvent::Response(head), None) => messages.push(Received {
                head: *head,
                body: Vec::new(),
                trailers: None,
                complete: false,
            }),
            (ClientEvent::Data(data), Some(m)) if m.trailers.is_none() && !data.is_empty() => {
                m.body.extend_from_slice(&data)
            }
            (ClientEvent::Trailers(t), Some(m)) if m.trailers.is_none() => m.trailers = Some(t),
            (ClientEvent::EndOfMessage, Some(m)) => m.complete = true,
            (event, _) => return Err(format!("unexpected client event {event:?}")),
        }
    }
    Ok(messages)
}

/// Every field of `sent` is in `received` with the same values in the same order, and
/// `received` has no field beyond those and the ones in `added`.
fn same_fields(sent: &HeaderMap, received: &HeaderMap, added: &[&str]) -> Result<(), String> {
    for name in sent.keys() {
        let want: Vec<_> = sent.get_all(name).iter().collect();
        let got: Vec<_> = received.get_all(name).iter().collect();
        if want != got {
            return Err(format!("field {name}: sent {want:?}, received {got:?}"));
        }
    }
    for name in received.keys() {
        if !sent.contains_key(name) && !added.contains(&name.as_str()) {
            return Err(format!("field {name} was never sent"));
        }
    }
    Ok(())
}

// ----- properties -----

/// A request the client is asked to send.
#[derive(Debug, Clone)]
struct RequestCase {
    method: Method,
    target: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    piece_sizes: Vec<usize>,
    chunked: bool,
    trailers: Option<HeaderMap>,
}

fn request_case() -> impl Strategy<Value = RequestCase> {
    (
        method(),
        origin_target(),
        fields(0..12),
        body(),
        any::<bool>(),
        trailers(),
    )
        .prop_map(
            |(method, target, mut headers, (body, piece_sizes), chunked, trailers)| {
                headers.insert(http::header::HOST, HeaderValue::from_static("example.com"));
                RequestCase {
                    method,
                    target,
                    headers,
                    body,
                    piece_sizes,
                    chunked,
                    trailers: trailers.filter(|_| chunked),
                }
            },
        )
}

/// Has the client write `case` (request head, body in pieces, finish or trailers).
fn client_send(client: &mut ClientConnection, case: &RequestCase) {
    let size = known_or_unknown(case.chunked, case.body.len());
    client
        .send_request(&case.method, &case.target, &case.headers, size)
        .expect("send_request on an idle connection");
    for piece in pieces(&case.body, &case.piece_sizes) {
        client.send_data(piece).expect("send_data within the body");
    }
    match &case.trailers {
        Some(trailers) => client.send_trailers(trailers),
        None => client.finish(),
    }
    .expect("the whole body was sent");
}

/// The server surfaced exactly what the client was asked to send.
fn check_request(received: &Received<RequestHead>, case: &RequestCase) -> Result<(), String> {
    let head = &received.head;
    if head.method != case.method {
        return Err(format!("method {} != {}", head.method, case.method));
    }
    if head.uri != case.target || head.uri.to_string() != case.target.to_string() {
        return Err(format!("target {} != {}", head.uri, case.target));
    }
    if head.version != Version::HTTP_11 {
        return Err(format!("version {:?}", head.version));
    }
    same_fields(
        &case.headers,
        &head.headers,
        &["content-length", "transfer-encoding"],
    )?;
    if received.body != case.body {
        return Err(format!(
            "body of {} bytes != {} bytes sent",
            received.body.len(),
            case.body.len()
        ));
    }
    if received.trailers != case.trailers.clone().filter(|t| !t.is_empty()) {
        return Err(format!(
            "trailers {:?} != {:?}",
            received.trailers, case.trailers
        ));
    }
    if !received.complete {
        return Err("no EndOfMessage".to_owned());
    }
    Ok(())
}

/// A response the server is asked to send.
#[derive(Debug, Clone)]
struct ResponseCase {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    piece_sizes: Vec<usize>,
    chunked: bool,
    trailers: Option<HeaderMap>,
}

fn status() -> impl Strategy<Value = StatusCode> {
    prop_oneof![
        1 => select(vec![204u16, 304]),
        6 => 200u16..=599,
    ]
    .prop_map(|code| StatusCode::from_u16(code).expect("200..=599 is a status"))
}

fn response_case() -> impl Strategy<Value = ResponseCase> {
    (status(), fields(0..12), body(), any::<bool>(), trailers()).prop_map(
        |(status, headers, (body, piece_sizes), chunked, trailers)| ResponseCase {
            status,
            headers,
            body,
            piece_sizes,
            chunked,
            trailers,
        },
    )
}

/// Has the server write `case`; trailers are handed over even with a known length (where
/// the connection drops them, RFC 9110 §6.5).
fn server_send(server: &mut ServerConnection, now: Instant, case: &ResponseCase) -> Vec<u8> {
    let mut out = Vec::new();
    let size = known_or_unknown(case.chunked, case.body.len());
    server
        .send_response(case.status, &case.headers, size)
        .expect("send_response to a request awaiting one");
    for piece in pieces(&case.body, &case.piece_sizes) {
        server_send_all(server, now, piece, &mut out);
    }
    match &case.trailers {
        Some(trailers) => server.send_trailers(trailers),
        None => server.finish(),
    }
    .expect("the whole body was sent");
    out.extend_from_slice(&drain_server(server, now));
    out
}

/// The Content-Length a response states (RFC 9110 §8.6): a known length, also where no body
/// follows (the length a GET would have had, for HEAD); never in a 204 (MUST NOT); in a 304
/// only a real length (weft leaves out `0`, which caches would copy onto the stored 200).
fn expected_content_length(case: &ResponseCase, request_method: &Method) -> Option<usize> {
    let n = case.body.len();
    match case.status {
        _ if case.chunked => None,
        StatusCode::NO_CONTENT => None,
        StatusCode::NOT_MODIFIED if n == 0 && request_method != Method::HEAD => None,
        _ => Some(n),
    }
}

/// The client surfaced exactly what the server was asked to send, minus what the method or
/// status forbids (RFC 9110 §6.4.1: no content in responses to HEAD, in 204 or in 304).
fn check_response(
    received: &Received<ResponseHead>,
    case: &ResponseCase,
    request_method: &Method,
) -> Result<(), String> {
    let head = &received.head;
    let bodiless = request_method == Method::HEAD
        || case.status == StatusCode::NO_CONTENT
        || case.status == StatusCode::NOT_MODIFIED;
    if head.status != case.status {
        return Err(format!("status {} != {}", head.status, case.status));
    }
    if head.version != Version::HTTP_11 {
        return Err(format!("version {:?}", head.version));
    }
    let reason = case.status.canonical_reason().unwrap_or("");
    if head.reason != reason.as_bytes() {
        return Err(format!("reason {:?} != {reason:?}", head.reason));
    }
    same_fields(
        &case.headers,
        &head.headers,
        &["content-length", "transfer-encoding"],
    )?;
    let announced = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .map(|v| v.as_bytes().to_vec());
    let expected_length =
        expected_content_length(case, request_method).map(|n| n.to_string().into_bytes());
    if announced != expected_length {
        return Err(format!(
            "content-length {announced:?} != {expected_length:?}"
        ));
    }
    let body: &[u8] = if bodiless { &[] } else { &case.body };
    if received.body != body {
        return Err(format!(
            "body of {} bytes != {} bytes expected",
            received.body.len(),
            body.len()
        ));
    }
    let trailers = case
        .trailers
        .clone()
        .filter(|t| case.chunked && !bodiless && !t.is_empty());
    if received.trailers != trailers {
        return Err(format!("trailers {:?} != {trailers:?}", received.trailers));
    }
    if !received.complete {
        return Err("no EndOfMessage".to_owned());
    }
    Ok(())
}

/// A case costs well under a millisecond, so the properties run 1024 of them unless
/// `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1024);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the client is asked to send, and however the bytes are cut on the way, the
    /// server surfaces the same method, target, fields, body and trailers.
    #[test]
    fn server_reads_back_every_request_the_client_writes(
        case in request_case(),
        splits in splits(),
    ) {
        let now = Instant::now();
        let mut client = ClientConnection::new(Limits::default());
        let mut server = ServerConnection::new(Limits::default(), now);
        client_send(&mut client, &case);
        let wire = drain_client(&mut client);

        let mut events = Vec::new();
        for read in reads(&wire, &splits) {
            // Every buffer here is far below its limit: all input is taken.
            prop_assert_eq!(server.receive(now, read), read.len());
            events.extend(std::iter::from_fn(|| server.poll_event()));
        }
        let messages = group_server_events(events).map_err(TestCaseError::fail)?;
        prop_assert_eq!(messages.len(), 1, "one request surfaced");
        check_request(&messages[0], &case).map_err(TestCaseError::fail)?;
    }

    /// Whatever the server answers to a GET or HEAD, and however the bytes are cut on the
    /// way, the client surfaces the same status, fields, body (none where HEAD, 204 or 304
    /// forbid one) and trailers (only on a chunked body).
    #[test]
    fn client_reads_back_every_response_the_server_writes(
        head_request in any::<bool>(),
        case in response_case(),
        splits in splits(),
    ) {
        let now = Instant::now();
        let method = if head_request { Method::HEAD } else { Method::GET };
        let mut client = ClientConnection::new(Limits::default());
        let mut server = ServerConnection::new(Limits::default(), now);
        let mut host = HeaderMap::new();
        host.insert(http::header::HOST, HeaderValue::from_static("example.com"));
        client
            .send_request(&method, &Uri::from_static("/resource"), &host, BodySize::EMPTY)
            .expect("send_request on a new connection");
        client.finish().expect("an empty body is complete");
        let request = drain_client(&mut client);
        prop_assert_eq!(server.receive(now, &request), request.len());
        let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
        prop_assert!(
            matches!(&events[..], [ServerEvent::Request(_), ServerEvent::EndOfMessage]),
            "{:?}", events
        );

        let wire = server_send(&mut server, now, &case);
        let mut events = Vec::new();
        for read in reads(&wire, &splits) {
            prop_assert_eq!(client.receive(read), read.len());
            events.extend(std::iter::from_fn(|| client.poll_event()));
        }
        let messages = group_client_events(events).map_err(TestCaseError::fail)?;
        prop_assert_eq!(messages.len(), 1, "one response surfaced");
        check_response(&messages[0], &case, &method).map_err(TestCaseError::fail)?;
        prop_assert_eq!(client.in_flight(), 0);
    }

    /// Requests written back to back reach the server one at a time and in order, each
    /// answered once it has been read, and the client matches the answers to them in order.
    #[test]
    fn pipelined_requests_are_answered_in_order(
        requests in vec((request_case(), response_case()), 1..5),
        to_server in splits(),
        to_client in splits(),
    ) {
        let now = Instant::now();
        let mut client = ClientConnection::new(Limits::default());
        let mut server = ServerConnection::new(Limits::default(), now);
        for (request, _) in &requests {
            client_send(&mut client, request);
        }
        prop_assert_eq!(client.in_flight(), requests.len());
        let wire = drain_client(&mut client);

        // The server answers each request once its body is read, as the events come.
        let mut events = Vec::new();
        let mut answered = 0;
        let mut responses = Vec::new();
        for read in reads(&wire, &to_server) {
            prop_assert_eq!(server.receive(now, read), read.len());
            while let Some(event) = server.poll_event() {
                let ended = event == ServerEvent::EndOfMessage;
                events.push(event);
                if ended {
                    prop_assert!(answered < requests.len(), "more requests than were sent");
                    let (_, response) = &requests[answered];
                    responses.extend(server_send(&mut server, now, response));
                    answered += 1;
                }
            }
        }
        let received = group_server_events(events).map_err(TestCaseError::fail)?;
        prop_assert_eq!(received.len(), requests.len());
        for (got, (sent, _)) in received.iter().zip(&requests) {
            check_request(got, sent).map_err(TestCaseError::fail)?;
        }

        let mut events = Vec::new();
        for read in reads(&responses, &to_client) {
            prop_assert_eq!(client.receive(read), read.len());
            events.extend(std::iter::from_fn(|| client.poll_event()));
        }
        let received = group_client_events(events).map_err(TestCaseError::fail)?;
        prop_assert_eq!(received.len(), requests.len());
        for (got, (request, response)) in received.iter().zip(&requests) {
            check_response(got, response, &request.method).map_err(TestCaseError::fail)?;
        }
        prop_assert_eq!(client.in_flight(), 0);
    }
}

/// RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with
/// a status code of 1xx (Informational) or 204 (No Content)", whatever the request method.
#[test]
fn no_content_length_in_a_204_answering_head() {
    let now = Instant::now();
    let mut server = ServerConnection::new(Limits::default(), now);
    let request = b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert_eq!(server.receive(now, request), request.len());
    while server.poll_event().is_some() {}
    server
        .send_response(
            StatusCode::NO_CONTENT,
            &HeaderMap::new(),
            BodySize::Known(0),
        )
        .unwrap();
    server.finish().unwrap();
    let wire = drain_server(&mut server, now);
    let text = String::from_utf8_lossy(&wire).to_ascii_lowercase();
    assert!(!text.contains("content-length"), "{text:?}");
}

/// The helpers that cut bodies and byte streams keep every byte, in order.
#[test]
fn cutting_helpers_keep_every_byte_in_order() {
    let body = b"abcdefghij";
    let cut = pieces(body, &[3, 0, 20]);
    assert_eq!(cut.concat(), body);
    assert_eq!(cut[0], b"abc");
    let read: Vec<_> = reads(body, &[4, 1]).collect();
    assert_eq!(read, [&b"abcd"[..], b"e", b"fghi", b"j"]);
}
