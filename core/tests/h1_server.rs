//! The server role of HTTP/1.1, one rule per test: pipelining, persistence, `100-continue`,
//! protocol upgrades, bodiless responses, response framing, `Date`, timeouts on a virtual
//! clock, discarding unread bodies, backpressure and end of input.

mod support;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};
use weft_core::Limits;
use weft_core::h1::{BodySize, H1Error, ReadStatus, SendError, ServerEvent, TargetForm};

use support::{Ev, Peer, count, find, get, read_responses, secs, serve, t0, target_of};

/// A HeaderMap from pairs.
fn fields(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

/// The head part (up to and including the blank line) of the first response in `output`.
fn first_head(output: &[u8]) -> String {
    let end = find(output, b"\r\n\r\n").expect("a complete head") + 4;
    String::from_utf8(output[..end].to_vec()).unwrap()
}

/// Feeds `input`, drains events, answers the single request with `body`, and returns the
/// output written for it.
fn exchange(peer: &mut Peer, input: &[u8], body: &[u8]) -> Vec<u8> {
    peer.feed(input);
    let events = peer.events();
    assert!(
        matches!(events.first(), Some(Ev::Request { .. })) && events.last() == Some(&Ev::End),
        "not one complete request: {events:?}"
    );
    peer.respond(body);
    peer.output()
}

fn post_with_length(target: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: example.com\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ----- pipelining (RFC 9112 §9.3.2) -----

#[test]
fn pipelined_requests_are_surfaced_one_at_a_time_in_order() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[get("/1"), post_with_length("/2", "two"), get("/3")].concat());
    let mut output = Vec::new();
    for (n, body) in [(1, ""), (2, "two"), (3, "")] {
        let events = peer.events();
        assert_eq!(target_of(&events[0]), format!("/{n}"));
        let mut expected_rest = Vec::new();
        if !body.is_empty() {
            expected_rest.push(Ev::Data(body.as_bytes().to_vec()));
        }
        expected_rest.push(Ev::End);
        assert_eq!(&events[1..], &expected_rest[..], "request {n}");
        // The next request waits until this response is complete.
        assert_eq!(peer.events(), []);
        assert_eq!(peer.conn.read_status(), ReadStatus::Paused);
        let answer = format!("answer {n}");
        peer.conn
            .send_response(
                StatusCode::OK,
                &HeaderMap::new(),
                BodySize::Known(answer.len() as u64),
            )
            .unwrap();
        assert_eq!(
            peer.events(),
            [],
            "surfaced before the response was finished"
        );
        peer.conn.send_data(answer.as_bytes()).unwrap();
        assert_eq!(
            peer.events(),
            [],
            "surfaced before the response was finished"
        );
        peer.conn.finish().unwrap();
        output.extend(peer.output());
    }
    let bodies: Vec<_> = read_responses(&output, &[])
        .into_iter()
        .map(|r| (r.status, String::from_utf8(r.body).unwrap()))
        .collect();
    assert_eq!(
        bodies,
        [
            (200, "answer 1".to_owned()),
            (200, "answer 2".to_owned()),
            (200, "answer 3".to_owned())
        ]
    );
    assert!(!peer.conn.is_closed());
}

#[test]
fn pipelined_requests_are_all_answered_in_order_by_the_driver() {
    let input = [get("/a"), get("/b"), get("/c")].concat();
    let outcome = serve(&Limits::default(), &[&input]);
    let targets: Vec<_> = outcome
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Request { .. }))
        .map(target_of)
        .collect();
    assert_eq!(targets, ["/a", "/b", "/c"]);
    assert_eq!(count(&outcome.output, b"HTTP/1.1 200 OK\r\n"), 3);
}

// ----- persistence (RFC 9112 §9.3) -----

#[test]
fn http11_connection_persists_by_default() {
    let mut peer = Peer::with_defaults();
    let output = exchange(&mut peer, &get("/1"), b"one");
    let response = &read_responses(&output, &[])[0];
    assert_eq!(response.header("connection"), None);
    assert_eq!(peer.conn.read_status(), ReadStatus::NeedData);
    let output = exchange(&mut peer, &get("/2"), b"two");
    assert_eq!(read_responses(&output, &[])[0].body, b"two");
    assert!(!peer.conn.is_closed());
}

#[test]
fn http10_keep_alive_request_gets_keep_alive_echoed() {
    let mut peer = Peer::with_defaults();
    let request = b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let output = exchange(&mut peer, request, b"one");
    let response = &read_responses(&output, &[])[0];
    assert_eq!(response.values("connection"), ["keep-alive"]);
    assert_eq!(response.header("content-length"), Some("3"));
    // The connection persists: a second request is read and answered.
    let output = exchange(&mut peer, request, b"two");
    assert_eq!(read_responses(&output, &[])[0].body, b"two");
    assert!(!peer.conn.is_closed());
}

#[test]
fn http10_request_without_keep_alive_closes_after_its_response() {
    let mut peer = Peer::with_defaults();
    let output = exchange(&mut peer, b"GET / HTTP/1.0\r\n\r\n", b"bye");
    let response = &read_responses(&output, &[])[0];
    assert!(response.connection_has("close"));
    assert_eq!(response.body, b"bye");
    assert!(peer.conn.is_closed());
}

#[test]
fn http10_response_of_unknown_length_is_close_delimited() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    assert_eq!(peer.conn.send_data(b"hello ").unwrap(), 6);
    assert_eq!(peer.conn.send_data(b"world").unwrap(), 5);
    peer.conn.finish().unwrap();
    let output = peer.output();
    let head = first_head(&output);
    assert!(!head.contains("content-length"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    assert_eq!(&output[head.len()..], b"hello world");
    assert!(peer.conn.is_closed());
}

#[test]
fn connection_close_request_is_answered_with_close_then_closed_once_drained() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    peer.events();
    peer.respond(b"ok");
    assert!(
        !peer.conn.is_closed(),
        "closed before the response was written"
    );
    let output = peer.output();
    let response = &read_responses(&output, &[])[0];
    assert!(response.connection_has("close"));
    assert_eq!(response.values("connection").len(), 1);
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.read_status(), ReadStatus::Closed);
    assert_eq!(peer.receive(&get("/more")), 0);
}

#[test]
fn application_connection_close_ends_the_connection() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[get("/1"), get("/2")].concat());
    peer.events();
    peer.respond_with(StatusCode::OK, &fields(&[("connection", "close")]), b"ok");
    let output = peer.output();
    let response = &read_responses(&output, &[])[0];
    assert_eq!(response.values("connection"), ["close"]);
    assert_eq!(peer.events(), [], "request after a close response was read");
    assert!(peer.conn.is_closed());
}

// ----- Expect: 100-continue (RFC 9110 §10.1.1) -----

const EXPECTING: &[u8] =
    b"PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

#[test]
fn continue_is_sent_only_when_the_application_asks_for_the_body() {
    let mut peer = Peer::with_defaults();
    peer.feed(EXPECTING);
    let events = peer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], Ev::Request { .. }));
    assert_eq!(peer.output(), b"", "100 Continue before request_body()");
    // Even a body sent without waiting is held back.
    peer.feed(b"hel");
    assert_eq!(peer.events(), []);
    peer.conn.request_body();
    peer.conn.request_body();
    assert_eq!(peer.output(), b"HTTP/1.1 100 Continue\r\n\r\n");
    peer.feed(b"lo");
    assert_eq!(peer.events(), [Ev::Data(b"hello".to_vec()), Ev::End]);
    peer.respond(b"stored");
    let output = peer.output();
    assert_eq!(count(&output, b"100 Continue"), 0, "a second 100 Continue");
    let response = &read_responses(&output, &[])[0];
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), None);
    assert!(!peer.conn.is_closed());
}

#[test]
fn interim_100_from_the_application_counts_as_asking_for_the_body() {
    let mut peer = Peer::with_defaults();
    peer.feed(EXPECTING);
    peer.events();
    peer.conn
        .send_response(StatusCode::CONTINUE, &HeaderMap::new(), BodySize::EMPTY)
        .unwrap();
    peer.conn.request_body();
    assert_eq!(peer.output(), b"HTTP/1.1 100 Continue\r\n\r\n");
    peer.feed(b"hello");
    assert_eq!(peer.events(), [Ev::Data(b"hello".to_vec()), Ev::End]);
}

#[test]
fn final_status_without_reading_an_expected_body_closes_the_connection() {
    let mut peer = Peer::with_defaults();
    peer.feed(EXPECTING);
    peer.events();
    peer.respond_with(StatusCode::PAYLOAD_TOO_LARGE, &HeaderMap::new(), b"");
    let output = peer.output();
    assert_eq!(count(&output, b"100 Continue"), 0);
    let responses = read_responses(&output, &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 413);
    assert!(responses[0].connection_has("close"));
    assert!(peer.conn.is_closed());
    // The body the client might still send is never read as a request.
    assert_eq!(peer.receive(b"hello"), 0);
    assert_eq!(peer.events(), []);
}

#[test]
fn expect_continue_is_ignored_on_http10() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    let events = peer.events();
    assert_eq!(&events[1..], [Ev::Data(b"hi".to_vec()), Ev::End]);
    peer.conn.request_body();
    assert_eq!(peer.output(), b"");
}

// ----- protocol switches (RFC 9110 §7.8, §15.2.2, §9.3.6) -----

#[test]
fn switching_protocols_hands_over_the_bytes_after_the_head() {
    let mut peer = Peer::with_defaults();
    peer.feed(
        b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85frame",
    );
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("no request");
    };
    assert!(head.wants_upgrade);
    assert_eq!(peer.events(), [Ev::End]);
    peer.conn
        .send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &fields(&[("upgrade", "websocket"), ("connection", "Upgrade")]),
            BodySize::EMPTY,
        )
        .unwrap();
    assert_eq!(peer.events(), [Ev::Upgraded(b"\x81\x85frame".to_vec())]);
    let output = peer.output();
    let head = first_head(&output);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!(output.len(), head.len(), "bytes after the 101 head");
    // The rest of the input belongs to the new protocol: the connection takes none of it.
    assert_eq!(peer.conn.read_status(), ReadStatus::Closed);
    assert_eq!(peer.receive(b"more"), 0);
    assert!(
        !peer.conn.is_closed(),
        "an upgraded socket is handed over, not closed"
    );
    assert_eq!(peer.conn.poll_timeout(), None);
}

#[test]
fn connect_answered_with_2xx_opens_a_tunnel() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01");
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("no request");
    };
    assert_eq!(head.target_form, TargetForm::Authority);
    assert_eq!(head.method, Method::CONNECT);
    assert_eq!(peer.events(), [Ev::End]);
    peer.conn
        .send_response(
            StatusCode::OK,
            &fields(&[("content-length", "0")]),
            BodySize::EMPTY,
        )
        .unwrap();
    assert_eq!(peer.events(), [Ev::Upgraded(b"\x16\x03\x01".to_vec())]);
    let output = peer.output();
    assert!(output.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // RFC 9110 §9.3.6: no Content-Length or Transfer-Encoding in a 2xx to CONNECT.
    assert_eq!(find(&output, b"content-length"), None);
    assert!(output.ends_with(b"\r\n\r\n"));
}

#[test]
fn connect_refused_with_an_error_status_stays_http() {
    let mut peer = Peer::with_defaults();
    peer.feed(
        &[
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_vec(),
            get("/next"),
        ]
        .concat(),
    );
    peer.events();
    peer.respond_with(StatusCode::FORBIDDEN, &HeaderMap::new(), b"no");
    let events = peer.events();
    assert_eq!(target_of(&events[0]), "/next");
}

#[test]
fn switching_protocols_without_an_upgrade_request_is_refused() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    assert_eq!(
        peer.conn.send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &fields(&[("upgrade", "websocket")]),
            BodySize::EMPTY
        ),
        Err(SendError::UnexpectedSwitch)
    );
    assert_eq!(peer.output(), b"", "a refused switch wrote bytes");
    // The request can still be answered normally.
    peer.respond(b"plain");
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!((response.status, &response.body[..]), (200, &b"plain"[..]));
}

#[test]
fn upgrade_without_connection_upgrade_is_not_an_upgrade_request() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("no request");
    };
    assert!(!head.wants_upgrade);
    peer.events();
    assert_eq!(
        peer.conn.send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &HeaderMap::new(),
            BodySize::EMPTY
        ),
        Err(SendError::UnexpectedSwitch)
    );
}

#[test]
fn switching_protocols_before_the_request_body_is_read_is_refused() {
    let mut peer = Peer::with_defaults();
    peer.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 4\r\n\r\n",
    );
    assert!(matches!(peer.event(), Some(ServerEvent::Request(_))));
    assert_eq!(
        peer.conn.send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &HeaderMap::new(),
            BodySize::EMPTY
        ),
        Err(SendError::UnexpectedSwitch)
    );
    peer.feed(b"bodyAFTER");
    assert_eq!(peer.events(), [Ev::Data(b"body".to_vec()), Ev::End]);
    peer.conn
        .send_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &HeaderMap::new(),
            BodySize::EMPTY,
        )
        .unwrap();
    assert_eq!(peer.events(), [Ev::Upgraded(b"AFTER".to_vec())]);
}

// ----- responses without a body (RFC 9110 §9.3.2, §15.3.5, §15.4.5) -----

#[test]
fn head_response_keeps_content_length_but_sends_no_body() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"HEAD /file HTTP/1.1\r\nHost: a\r\n\r\n");
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(5))
        .unwrap();
    assert_eq!(peer.conn.send_data(b"hello").unwrap(), 5);
    peer.conn.finish().unwrap();
    let output = peer.output();
    let head = first_head(&output);
    assert_eq!(output.len(), head.len(), "a body after a HEAD response");
    assert!(head.contains("content-length: 5\r\n"), "{head}");
    // Framing stayed intact: the next request is read and answered.
    let output = exchange(&mut peer, &get("/after"), b"next");
    assert_eq!(read_responses(&output, &[])[0].body, b"next");
}

#[test]
fn no_content_response_has_neither_body_nor_content_length() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(
            StatusCode::NO_CONTENT,
            &fields(&[("content-length", "7")]),
            BodySize::Known(7),
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(b"ignored").unwrap(), 7);
    peer.conn.finish().unwrap();
    let output = peer.output();
    assert_eq!(
        output,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        "{}",
        String::from_utf8_lossy(&output)
    );
}

#[test]
fn not_modified_response_never_states_a_zero_length() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(StatusCode::NOT_MODIFIED, &HeaderMap::new(), BodySize::EMPTY)
        .unwrap();
    peer.conn.finish().unwrap();
    let output = peer.output();
    let head = first_head(&output);
    // RFC 9110 §8.6: a 304 may only repeat the 200's length; a cache would store a 0.
    assert!(!head.contains("content-length"), "{head}");
}

#[test]
fn not_modified_response_has_no_body() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(
            StatusCode::NOT_MODIFIED,
            &fields(&[("etag", "\"v1\"")]),
            BodySize::Known(5),
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(b"hello").unwrap(), 5);
    peer.conn.finish().unwrap();
    let output = peer.output();
    let head = first_head(&output);
    assert_eq!(output.len(), head.len(), "a body after 304");
    assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{head}");
    assert!(head.contains("etag: \"v1\"\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let output = exchange(&mut peer, &get("/after"), b"next");
    assert_eq!(read_responses(&output, &[])[0].body, b"next");
}

#[test]
fn interim_responses_go_to_http11_clients_only() {
    let hints = fields(&[("link", "</style.css>; rel=preload")]);
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(StatusCode::from_u16(103).unwrap(), &hints, BodySize::EMPTY)
        .unwrap();
    peer.respond(b"ok");
    let statuses: Vec<_> = read_responses(&peer.output(), &[])
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [103, 200]);

    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.0\r\n\r\n");
    peer.events();
    peer.conn
        .send_response(StatusCode::from_u16(103).unwrap(), &hints, BodySize::EMPTY)
        .unwrap();
    peer.respond(b"ok");
    let statuses: Vec<_> = read_responses(&peer.output(), &[])
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200]);
}

// ----- response framing (RFC 9112 §6, §7) -----

#[test]
fn response_of_unknown_size_is_chunked_with_trailers() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(
            StatusCode::OK,
            &fields(&[("trailer", "x-checksum")]),
            BodySize::Unknown,
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(b"hello").unwrap(), 5);
    assert_eq!(peer.conn.send_data(b"").unwrap(), 0);
    assert_eq!(peer.conn.send_data(b" world").unwrap(), 6);
    peer.conn
        .send_trailers(&fields(&[("x-checksum", "abc")]))
        .unwrap();
    let output = peer.output();
    let head = first_head(&output);
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert_eq!(
        &output[head.len()..],
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n"
    );
    let response = &read_responses(&output, &[])[0];
    assert_eq!(response.body, b"hello world");
    assert_eq!(
        response.trailers,
        [("x-checksum".to_owned(), "abc".to_owned())]
    );
    assert!(!peer.conn.is_closed());
}

#[test]
fn trailers_are_dropped_from_a_content_length_response() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(2))
        .unwrap();
    peer.conn.send_data(b"ok").unwrap();
    peer.conn
        .send_trailers(&fields(&[("x-checksum", "abc")]))
        .unwrap();
    let output = peer.output();
    assert!(output.ends_with(b"\r\n\r\nok"));
    assert_eq!(find(&output, b"x-checksum"), None);
}

#[test]
fn framing_fields_from_the_application_are_replaced() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.respond_with(
        StatusCode::OK,
        &fields(&[
            ("content-length", "999"),
            ("transfer-encoding", "gzip"),
            ("x-app", "kept"),
        ]),
        b"ok",
    );
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.values("content-length"), ["2"]);
    assert_eq!(response.values("transfer-encoding"), Vec::<&str>::new());
    assert_eq!(response.header("x-app"), Some("kept"));
}

#[test]
fn content_length_from_the_application_sizes_an_unknown_body() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(
            StatusCode::OK,
            &fields(&[("content-length", "3")]),
            BodySize::Unknown,
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(b"abcd"), Err(SendError::BodyTooLong));
    peer.conn.send_data(b"abc").unwrap();
    peer.conn.finish().unwrap();
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.values("content-length"), ["3"]);
    assert_eq!(response.body, b"abc");
}

#[test]
fn response_status_line_is_http11_even_for_http10_clients() {
    let mut peer = Peer::with_defaults();
    let output = exchange(&mut peer, b"GET / HTTP/1.0\r\n\r\n", b"x");
    assert!(output.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

// ----- the application's mistakes (SendError) -----

#[test]
fn second_response_to_one_request_is_refused() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.respond(b"one");
    assert_eq!(
        peer.conn
            .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::EMPTY),
        Err(SendError::InvalidState)
    );
    assert_eq!(peer.conn.send_data(b"x"), Err(SendError::InvalidState));
    assert_eq!(peer.conn.finish(), Err(SendError::InvalidState));
}

#[test]
fn response_before_any_request_is_refused() {
    let mut peer = Peer::with_defaults();
    assert_eq!(
        peer.conn
            .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::EMPTY),
        Err(SendError::InvalidState)
    );
    assert_eq!(peer.output(), b"");
}

#[test]
fn body_longer_than_declared_is_refused_without_writing() {
    let mut peer = Peer::with_defaults();
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(3))
        .unwrap();
    let head_len = peer.output().len();
    assert!(head_len > 0);
    assert_eq!(peer.conn.send_data(b"abcd"), Err(SendError::BodyTooLong));
    assert_eq!(peer.output(), b"");
    assert_eq!(peer.conn.send_data(b"abc").unwrap(), 3);
    peer.conn.finish().unwrap();
    assert_eq!(peer.output(), b"abc");
}

#[test]
fn finishing_a_short_body_fails_and_closes_the_connection() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[get("/1"), get("/2")].concat());
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(10))
        .unwrap();
    peer.conn.send_data(b"short").unwrap();
    assert_eq!(peer.conn.finish(), Err(SendError::BodyIncomplete));
    assert_eq!(peer.events(), [], "a request read after a broken response");
    let output = peer.output();
    assert!(output.ends_with(b"short"));
    assert!(peer.conn.is_closed());
}

// ----- Date (RFC 9110 §6.6.1) -----

#[test]
fn date_field_comes_from_set_date() {
    let mut peer = Peer::with_defaults();
    let output = exchange(&mut peer, &get("/"), b"x");
    assert_eq!(
        read_responses(&output, &[])[0].header("date"),
        None,
        "a date the core cannot know"
    );
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
    let output = exchange(&mut peer, &get("/"), b"x");
    assert_eq!(
        read_responses(&output, &[])[0].values("date"),
        ["Sun, 06 Nov 1994 08:49:37 GMT"]
    );
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 06 Nov 1994 08:49:38 GMT"));
    let output = exchange(&mut peer, &get("/"), b"x");
    assert_eq!(
        read_responses(&output, &[])[0].values("date"),
        ["Sun, 06 Nov 1994 08:49:38 GMT"]
    );
}

#[test]
fn date_from_the_application_is_not_repeated() {
    let mut peer = Peer::with_defaults();
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
    peer.feed(&get("/"));
    peer.events();
    peer.respond_with(
        StatusCode::OK,
        &fields(&[("date", "Mon, 07 Nov 1994 00:00:00 GMT")]),
        b"x",
    );
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.values("date"), ["Mon, 07 Nov 1994 00:00:00 GMT"]);
}

#[test]
fn error_responses_carry_the_date() {
    let mut peer = Peer::with_defaults();
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
    peer.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(peer.events(), [Ev::Error(H1Error::MissingHost)]);
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.status, 400);
    assert_eq!(response.values("date"), ["Sun, 06 Nov 1994 08:49:37 GMT"]);
}

// ----- timeouts, on a virtual clock -----

#[test]
fn partial_head_times_out_with_408_and_close() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    peer.feed(b"GET / HTTP/1.1\r\nHo");
    assert_eq!(peer.events(), []);
    let deadline = peer.conn.poll_timeout().expect("a head deadline");
    assert_eq!(deadline, t0() + limits.head_timeout);
    // Just before the deadline nothing happens.
    peer.conn.handle_timeout(deadline - secs(1));
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), b"");
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::HeadTimeout)]);
    let responses = read_responses(&peer.output(), &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 408);
    assert!(responses[0].connection_has("close"));
    assert!(peer.conn.is_closed());
}

#[test]
fn head_trickling_in_slowly_still_times_out() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    // One byte a second never moves the deadline (slowloris).
    for &byte in b"GET / HTTP/1.1\r\nHost: a\r\nX: yyyyyyyyyyyyyy" {
        peer.advance(secs(1));
        if peer.now >= t0() + limits.head_timeout {
            break;
        }
        peer.feed(&[byte]);
        assert_eq!(peer.conn.poll_timeout(), Some(t0() + limits.head_timeout));
    }
    peer.conn.handle_timeout(peer.now);
    assert_eq!(peer.events(), [Ev::Error(H1Error::HeadTimeout)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 408);
}

#[test]
fn silent_new_connection_closes_quietly_at_the_head_deadline() {
    let mut peer = Peer::with_defaults();
    let deadline = peer.conn.poll_timeout().expect("a deadline from the start");
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), b"");
    assert!(peer.conn.is_closed());
}

#[test]
fn idle_keep_alive_connection_closes_quietly() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    peer.advance(secs(1));
    exchange(&mut peer, &get("/"), b"x");
    let deadline = peer.conn.poll_timeout().expect("a keep-alive deadline");
    assert_eq!(deadline, t0() + secs(1) + limits.keep_alive_timeout);
    peer.conn.handle_timeout(deadline - secs(1));
    assert!(!peer.conn.is_closed());
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), b"", "an idle close must write nothing");
    assert!(peer.conn.is_closed());
}

#[test]
fn first_byte_of_the_next_request_starts_the_head_deadline() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    exchange(&mut peer, &get("/"), b"x");
    let keep_alive_deadline = peer.conn.poll_timeout().unwrap();
    peer.advance(secs(2));
    peer.feed(b"GET /next");
    let head_deadline = peer.conn.poll_timeout().unwrap();
    assert_eq!(head_deadline, t0() + secs(2) + limits.head_timeout);
    // The old keep-alive deadline no longer closes the connection.
    peer.conn.handle_timeout(keep_alive_deadline);
    assert!(!peer.conn.is_closed());
    assert_eq!(peer.events(), []);
    peer.conn.handle_timeout(head_deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::HeadTimeout)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 408);
}

#[test]
fn stalled_body_times_out_with_408() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    let events = peer.events();
    assert_eq!(events[1..], [Ev::Data(b"abc".to_vec())]);
    // A driver polls for output after events; that tells the connection the time.
    assert_eq!(peer.output(), b"");
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(t0() + limits.body_idle_timeout)
    );
    // Progress moves the deadline.
    peer.advance(secs(20));
    peer.feed(b"de");
    assert_eq!(peer.events(), [Ev::Data(b"de".to_vec())]);
    assert_eq!(peer.output(), b"");
    let deadline = peer.conn.poll_timeout().unwrap();
    assert_eq!(deadline, t0() + secs(20) + limits.body_idle_timeout);
    peer.conn.handle_timeout(t0() + limits.body_idle_timeout);
    assert_eq!(peer.events(), []);
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::BodyTimeout)]);
    let responses = read_responses(&peer.output(), &[]);
    assert_eq!(responses[0].status, 408);
    assert!(responses[0].connection_has("close"));
    assert!(peer.conn.is_closed());
}

#[test]
fn body_timeout_after_the_response_started_closes_without_a_second_response() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    peer.conn.send_data(b"partial").unwrap();
    let written = peer.output();
    let deadline = peer.conn.poll_timeout().unwrap();
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::BodyTimeout)]);
    assert_eq!(peer.output(), b"", "an error response after a started one");
    assert_eq!(count(&written, b"HTTP/1.1"), 1);
    assert!(peer.conn.is_closed());
}

#[test]
fn timers_set_between_calls_carrying_the_time_are_armed_at_once() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    peer.advance(secs(3));
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n");
    peer.events();
    // The body timer was set by `poll_event`, which carries no time: it starts from the
    // last time known (the `receive`), with no `poll_transmit` needed to arm it.
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(t0() + secs(3) + limits.body_idle_timeout)
    );
    peer.feed(b"0123456789");
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::EMPTY)
        .unwrap();
    peer.conn.finish().unwrap();
    // The keep-alive timer, set by `finish`, is armed too (before the send timeout of the
    // response still waiting to be taken).
    assert_eq!(
        peer.conn.poll_timeout(),
        Some(t0() + secs(3) + limits.keep_alive_timeout)
    );
}

/// A request answered with a streamed body that fills the output buffer and is never taken.
fn response_left_untaken(limits: &Limits) -> Peer {
    let mut peer = Peer::new(limits.clone());
    peer.feed(&get("/big"));
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    let chunk = vec![b'x'; 4096];
    while peer.conn.send_data(&chunk).unwrap() > 0 {}
    peer
}

#[test]
fn output_not_taken_for_send_timeout_ends_the_connection() {
    let mut limits = Limits::default();
    limits.send_timeout = secs(10);
    let mut peer = response_left_untaken(&limits);
    let deadline = peer.conn.poll_timeout().expect("the send timeout shows");
    assert_eq!(deadline, t0() + secs(10));
    peer.conn.handle_timeout(deadline - secs(1));
    assert_eq!(peer.events(), []);
    assert!(!peer.conn.send_timed_out());
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::SendTimeout)]);
    assert!(peer.conn.send_timed_out());
    assert_eq!(peer.conn.pending_output(), 0, "what waited is dropped");
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.poll_timeout(), None);
    assert_eq!(peer.conn.send_data(b"more"), Err(SendError::Closed));
    assert_eq!(peer.output(), b"", "nothing, not even an error response");
}

#[test]
fn taking_output_restarts_the_send_timeout() {
    let mut limits = Limits::default();
    limits.send_timeout = secs(10);
    let mut peer = response_left_untaken(&limits);
    // The peer reads a little late, then stops again.
    peer.advance(secs(8));
    assert!(!peer.output().is_empty());
    assert_eq!(peer.conn.poll_timeout(), None, "nothing waits, no timer");
    assert!(peer.conn.send_data(b"more").unwrap() > 0);
    let deadline = peer.conn.poll_timeout().unwrap();
    assert_eq!(deadline, t0() + secs(8) + secs(10));
    peer.conn.handle_timeout(t0() + secs(10));
    assert_eq!(peer.events(), []);
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::SendTimeout)]);
}

#[test]
fn an_error_response_the_peer_never_reads_is_dropped_at_the_send_timeout() {
    let mut limits = Limits::default();
    limits.send_timeout = secs(10);
    let mut peer = Peer::new(limits);
    peer.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(peer.events(), [Ev::Error(H1Error::MissingHost)]);
    assert!(!peer.conn.is_closed(), "the 400 waits to be written");
    let deadline = peer
        .conn
        .poll_timeout()
        .expect("the 400 must be taken in time");
    peer.conn.handle_timeout(deadline);
    assert_eq!(peer.events(), [Ev::Error(H1Error::SendTimeout)]);
    assert!(peer.conn.is_closed());
}

// ----- unread request bodies (RFC 9112 §9.3) -----

#[test]
fn small_unread_body_is_discarded_and_the_connection_reused() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[post_with_length("/upload", "hello"), get("/next")].concat());
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("no request");
    };
    assert_eq!(head.uri, "/upload");
    // Answered without reading the body.
    peer.respond(b"no thanks");
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.header("connection"), None);
    let events = peer.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(target_of(&events[0]), "/next");
    assert_eq!(events[1], Ev::End);
}

#[test]
fn unread_body_arriving_after_the_response_is_discarded() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(matches!(peer.event(), Some(ServerEvent::Request(_))));
    peer.respond(b"early");
    peer.output();
    peer.feed(b"5\r\nhello\r\n0\r\n\r\n");
    peer.feed(&get("/next"));
    let events = peer.events();
    assert_eq!(target_of(&events[0]), "/next");
    assert_eq!(events[1..], [Ev::End]);
}

#[test]
fn large_unread_body_closes_the_connection() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    let length = limits.max_discard_body + 1;
    peer.feed(
        format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\nsome of it")
            .as_bytes(),
    );
    assert!(matches!(peer.event(), Some(ServerEvent::Request(_))));
    peer.respond(b"too big for me");
    let response = &read_responses(&peer.output(), &[])[0];
    assert_eq!(response.body, b"too big for me");
    assert!(peer.conn.is_closed());
    assert_eq!(peer.receive(b"rest of the body"), 0);
}

// ----- backpressure -----

#[test]
fn receive_takes_less_than_offered_when_the_buffer_is_full() {
    let mut limits = Limits::default();
    limits.max_buffered_input = 1024;
    limits.max_head_size = 512;
    let mut peer = Peer::new(limits);
    let requests: Vec<Vec<u8>> = (0..60).map(|i| get(&format!("/{i}"))).collect();
    let input = requests.concat();
    assert!(input.len() > 2048);
    let mut offset = peer.receive(&input);
    assert!(offset < input.len(), "took all {offset} bytes");
    assert!(offset <= 1024, "buffered {offset} bytes over the limit");
    let mut served = Vec::new();
    while served.len() < requests.len() {
        let events = peer.events();
        if let Some(request) = events.first() {
            served.push(target_of(request).to_owned());
            peer.respond(b"ok");
            peer.output();
        }
        offset += peer.receive(&input[offset..]);
    }
    let expected: Vec<_> = (0..60).map(|i| format!("/{i}")).collect();
    assert_eq!(served, expected);
    assert_eq!(offset, input.len());
}

#[test]
fn receive_resumes_a_large_body_as_it_is_drained() {
    let mut limits = Limits::default();
    limits.max_buffered_input = 1024;
    limits.max_head_size = 512;
    let mut peer = Peer::new(limits);
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n".to_vec();
    input.extend_from_slice(&body);
    let mut offset = 0;
    let mut received = Vec::new();
    let mut ended = false;
    while !ended {
        let taken = peer.receive(&input[offset..]);
        assert!(taken <= 1024);
        offset += taken;
        for event in peer.events() {
            match event {
                Ev::Data(data) => received.extend_from_slice(&data),
                Ev::End => ended = true,
                Ev::Request { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(received, body);
}

#[test]
fn send_data_takes_part_when_the_output_is_full() {
    let mut limits = Limits::default();
    limits.max_buffered_output = 256;
    let mut peer = Peer::new(limits);
    peer.feed(&get("/"));
    peer.events();
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(1000))
        .unwrap();
    let head_len = peer.conn.pending_output();
    let first = peer.conn.send_data(&body).unwrap();
    assert_eq!(first, 256 - head_len);
    assert_eq!(peer.conn.send_data(&body[first..]).unwrap(), 0);
    let mut output = peer.output();
    let mut sent = first;
    while sent < body.len() {
        let taken = peer.conn.send_data(&body[sent..]).unwrap();
        assert!(taken > 0 && taken <= 256);
        assert!(peer.conn.pending_output() <= 256);
        sent += taken;
        output.extend(peer.output());
    }
    peer.conn.finish().unwrap();
    output.extend(peer.output());
    assert_eq!(read_responses(&output, &[])[0].body, body);
}

#[test]
fn chunked_send_data_never_overfills_the_output() {
    let mut limits = Limits::default();
    limits.max_buffered_output = 128;
    let mut peer = Peer::new(limits);
    peer.feed(&get("/"));
    peer.events();
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    let mut output = peer.output();
    let body = vec![b'z'; 1000];
    let mut sent = 0;
    while sent < body.len() {
        let taken = peer.conn.send_data(&body[sent..]).unwrap();
        assert!(taken > 0, "no progress on an empty buffer");
        assert!(taken < body.len() - sent || sent + taken == body.len());
        assert!(peer.conn.pending_output() <= 128);
        sent += taken;
        output.extend(peer.output());
    }
    peer.conn.finish().unwrap();
    output.extend(peer.output());
    assert_eq!(read_responses(&output, &[])[0].body, body);
}

// ----- incremental input -----

#[test]
fn head_fed_one_byte_at_a_time_is_surfaced_once_complete() {
    let mut head = b"GET /slow HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..80 {
        head.extend_from_slice(format!("X-Field-{i}: value number {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let mut peer = Peer::with_defaults();
    for &byte in &head[..head.len() - 1] {
        peer.feed(&[byte]);
        assert_eq!(peer.events(), []);
    }
    peer.feed(&head[head.len() - 1..]);
    let Some(ServerEvent::Request(request)) = peer.event() else {
        panic!("no request after the last byte");
    };
    assert_eq!(request.raw().as_ref(), &head[..]);
    assert_eq!(request.headers.len(), 81);
    assert_eq!(request.headers["x-field-79"], "value number 79");
    assert_eq!(peer.events(), [Ev::End]);
}

#[test]
fn request_head_keeps_original_field_names_and_exposes_parsed_parts() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\nX-MiXeD: v1\r\nx-mixed: v2\r\n\r\n");
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("no request");
    };
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.target_form, TargetForm::Origin);
    assert_eq!(head.uri.path(), "/p");
    assert_eq!(head.uri.query(), Some("q=1"));
    let names: Vec<_> = head.original_header_names().collect();
    assert_eq!(names, [&b"Host"[..], b"X-MiXeD", b"x-mixed"]);
    let values: Vec<_> = head.headers.get_all("x-mixed").iter().collect();
    assert_eq!(values, ["v1", "v2"]);
    assert!(head.keep_alive);
    let request = head.into_request(());
    assert_eq!(request.headers()[header::HOST], "a");
}

// ----- end of input -----

#[test]
fn end_of_input_mid_body_is_an_incomplete_message() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhel");
    let events = peer.events();
    assert_eq!(events[1..], [Ev::Data(b"hel".to_vec())]);
    peer.conn.receive_eof();
    assert_eq!(peer.events(), [Ev::Error(H1Error::IncompleteMessage)]);
    let responses = read_responses(&peer.output(), &[]);
    assert_eq!(responses[0].status, 400);
    assert!(responses[0].connection_has("close"));
    assert!(peer.conn.is_closed());
}

#[test]
fn end_of_input_after_a_complete_request_still_serves_it() {
    let mut peer = Peer::with_defaults();
    peer.feed(&post_with_length("/", "body"));
    peer.conn.receive_eof();
    let events = peer.events();
    assert_eq!(events[1..], [Ev::Data(b"body".to_vec()), Ev::End]);
    peer.respond(b"served");
    let responses = read_responses(&peer.output(), &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"served");
    // Nothing more can come: the connection ends once asked for its next event.
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), b"");
    assert!(peer.conn.is_closed());
}

#[test]
fn end_of_input_after_pipelined_requests_still_serves_them_all() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[get("/1"), post_with_length("/2", "two"), get("/3")].concat());
    peer.conn.receive_eof();
    let mut served = Vec::new();
    let mut output = Vec::new();
    loop {
        let events = peer.events();
        let Some(request) = events.first() else {
            break;
        };
        assert_eq!(events.last(), Some(&Ev::End));
        served.push(target_of(request).to_owned());
        peer.respond(b"ok");
        output.extend(peer.output());
    }
    assert_eq!(served, ["/1", "/2", "/3"]);
    let responses = read_responses(&output, &[]);
    assert_eq!(responses.len(), 3);
    assert!(responses.iter().all(|r| r.status == 200 && r.body == b"ok"));
    assert!(peer.conn.is_closed());
}

#[test]
fn end_of_input_after_a_partial_pipelined_request_serves_the_complete_one() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[get("/whole"), b"GET /cut HTTP/1.1\r\nHo".to_vec()].concat());
    peer.conn.receive_eof();
    let events = peer.events();
    assert_eq!(target_of(&events[0]), "/whole");
    peer.respond(b"ok");
    assert_eq!(peer.events(), [Ev::Error(H1Error::IncompleteMessage)]);
    let statuses: Vec<_> = read_responses(&peer.output(), &[])
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 400]);
    assert!(peer.conn.is_closed());
}

#[test]
fn end_of_input_on_an_idle_connection_closes_quietly() {
    let mut peer = Peer::with_defaults();
    exchange(&mut peer, &get("/"), b"x");
    peer.conn.receive_eof();
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), b"");
    assert!(peer.conn.is_closed());
}

#[test]
fn end_of_input_mid_head_is_an_incomplete_message() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.1\r\nHost");
    peer.conn.receive_eof();
    assert_eq!(peer.events(), [Ev::Error(H1Error::IncompleteMessage)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 400);
}

// ----- errors -----

#[test]
fn error_after_the_response_started_writes_no_error_response() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(matches!(peer.event(), Some(ServerEvent::Request(_))));
    peer.conn
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    let started = peer.output();
    peer.feed(b"zz\r\n");
    assert_eq!(peer.events(), [Ev::Error(H1Error::InvalidChunkSize)]);
    assert_eq!(peer.output(), b"");
    assert_eq!(count(&started, b"HTTP/1.1 "), 1);
    assert_eq!(peer.conn.send_data(b"more"), Err(SendError::Closed));
    assert!(peer.conn.is_closed());
}

#[test]
fn nothing_is_read_or_sent_after_an_error() {
    let mut peer = Peer::with_defaults();
    peer.feed(&[b"GET / HTTP/1.1\r\n\r\n".to_vec(), get("/after")].concat());
    assert_eq!(peer.events(), [Ev::Error(H1Error::MissingHost)]);
    assert_eq!(peer.events(), []);
    assert_eq!(peer.receive(&get("/later")), 0);
    assert_eq!(
        peer.conn
            .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::EMPTY),
        Err(SendError::Closed)
    );
    assert_eq!(read_responses(&peer.output(), &[]).len(), 1);
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.poll_timeout(), None);
}

/// A head refused with `error` and answered with `status` and `connection: close`.
fn assert_refused(input: &[u8], error: H1Error, status: u16) {
    let mut peer = Peer::with_defaults();
    peer.feed(input);
    assert_eq!(peer.events(), [Ev::Error(error)]);
    let responses = read_responses(&peer.output(), &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, status);
    assert!(responses[0].connection_has("close"));
    assert!(peer.conn.is_closed());
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1Error::ContentLengthWithTransferEncoding,
        400,
    );
}

#[test]
fn rejects_transfer_encoding_not_ending_in_chunked() {
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        H1Error::TransferEncodingNotChunked,
        400,
    );
}

#[test]
fn answers_unknown_transfer_coding_with_501() {
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        H1Error::UnsupportedTransferCoding,
        501,
    );
}

#[test]
fn rejects_conflicting_content_lengths() {
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        H1Error::ConflictingContentLength,
        400,
    );
}

#[test]
fn refuses_a_declared_body_over_the_limit_before_reading_it() {
    let mut limits = Limits::default();
    limits.max_body_size = 100;
    let mut peer = Peer::new(limits);
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
    assert_eq!(peer.events(), [Ev::Error(H1Error::BodyTooLarge)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 413);
}

#[test]
fn rejects_http11_request_without_host() {
    assert_refused(b"GET / HTTP/1.1\r\n\r\n", H1Error::MissingHost, 400);
}

#[test]
fn rejects_host_whose_port_is_not_digits() {
    assert_refused(
        b"GET / HTTP/1.1\r\nHost: example.com:http\r\n\r\n",
        H1Error::InvalidHost,
        400,
    );
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert!(matches!(peer.event(), Some(ServerEvent::Request(_))));
}

#[test]
fn rejects_whitespace_between_field_name_and_colon() {
    assert_refused(
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        H1Error::WhitespaceBeforeColon,
        400,
    );
}

#[test]
fn rejects_obsolete_line_folding() {
    assert_refused(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
        H1Error::ObsoleteLineFolding,
        400,
    );
}

#[test]
fn rejects_bare_line_feed() {
    assert_refused(b"GET / HTTP/1.1\nHost: a\n\n", H1Error::BareLineFeed, 400);
}

#[test]
fn answers_http2_request_line_with_505() {
    assert_refused(
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        H1Error::UnsupportedVersion,
        505,
    );
}

#[test]
fn answers_unsupported_expectation_with_417() {
    assert_refused(
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
        H1Error::UnsupportedExpectation,
        417,
    );
}

#[test]
fn answers_long_target_with_414_before_the_line_ends() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    let mut line = b"GET /".to_vec();
    line.extend(std::iter::repeat_n(b'a', limits.max_request_target_len + 1));
    peer.feed(&line);
    assert_eq!(peer.events(), [Ev::Error(H1Error::RequestTargetTooLong)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 414);
}

#[test]
fn answers_oversized_head_with_431_before_it_ends() {
    let limits = Limits::default();
    let mut peer = Peer::new(limits.clone());
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    head.extend(std::iter::repeat_n(b'v', limits.max_head_size));
    let taken = peer.receive(&head);
    assert!(taken > limits.max_head_size);
    assert_eq!(peer.events(), [Ev::Error(H1Error::HeadTooLarge)]);
    assert_eq!(read_responses(&peer.output(), &[])[0].status, 431);
}

#[test]
fn rejects_asterisk_target_for_anything_but_options() {
    assert_refused(
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        H1Error::TargetFormMismatch,
        400,
    );
    let mut peer = Peer::with_defaults();
    peer.feed(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("OPTIONS * refused");
    };
    assert_eq!(head.target_form, TargetForm::Asterisk);
}

#[test]
fn accepts_absolute_form_target() {
    let mut peer = Peer::with_defaults();
    peer.feed(b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    let Some(ServerEvent::Request(head)) = peer.event() else {
        panic!("absolute-form refused");
    };
    assert_eq!(head.target_form, TargetForm::Absolute);
    assert_eq!(head.uri.host(), Some("example.com"));
    assert_eq!(head.uri.port_u16(), Some(8080));
}

#[test]
fn read_status_follows_the_exchange() {
    let mut peer = Peer::with_defaults();
    assert_eq!(peer.conn.read_status(), ReadStatus::NeedData);
    peer.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab");
    peer.events();
    assert_eq!(peer.conn.read_status(), ReadStatus::NeedData, "mid-body");
    peer.feed(b"cd");
    peer.events();
    assert_eq!(peer.conn.read_status(), ReadStatus::Paused, "response owed");
    peer.respond(b"");
    assert_eq!(peer.conn.read_status(), ReadStatus::NeedData);
    peer.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    peer.events();
    peer.respond(b"");
    assert_eq!(peer.conn.read_status(), ReadStatus::Closed);
}

#[test]
fn nothing_more_is_read_after_the_peer_closed() {
    let mut conn = weft_core::h1::ServerConnection::new(Limits::default(), t0());
    conn.receive_eof();
    assert_eq!(conn.read_status(), ReadStatus::Closed);
    assert_eq!(conn.receive(t0(), b"GET / HTTP/1.1\r\n"), 0);
}

#[test]
fn abort_leaves_a_chunked_response_unfinished() {
    let mut conn = weft_core::h1::ServerConnection::new(Limits::default(), t0());
    conn.receive(t0(), &get("/"));
    while conn.poll_event().is_some() {}
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    assert_eq!(conn.send_data(b"part").unwrap(), 4);
    conn.abort();
    let mut output = Vec::new();
    while let Some(bytes) = conn.poll_transmit(t0()) {
        output.extend_from_slice(&bytes);
    }
    let output = String::from_utf8(output).unwrap();
    assert!(
        output.ends_with("4\r\npart\r\n"),
        "no last chunk after abort: {output:?}"
    );
    assert!(conn.is_closed());
    assert_eq!(conn.send_data(b"more"), Err(SendError::Closed));
}

#[test]
fn shutdown_closes_an_idle_connection_at_once() {
    let mut conn = weft_core::h1::ServerConnection::new(Limits::default(), t0());
    conn.shutdown();
    assert!(
        conn.poll_transmit(t0()).is_none(),
        "an idle connection closes without a word"
    );
    assert!(conn.is_closed());
}

#[test]
fn shutdown_lets_the_request_in_progress_finish_with_close() {
    let mut conn = weft_core::h1::ServerConnection::new(Limits::default(), t0());
    conn.receive(t0(), &get("/slow"));
    while conn.poll_event().is_some() {}
    conn.shutdown();
    assert!(
        !conn.is_closed(),
        "the request in progress is still answered"
    );
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(2))
        .unwrap();
    conn.send_data(b"ok").unwrap();
    conn.finish().unwrap();
    let mut output = Vec::new();
    while let Some(bytes) = conn.poll_transmit(t0()) {
        output.extend_from_slice(&bytes);
    }
    let output = String::from_utf8(output).unwrap();
    assert!(output.contains("connection: close\r\n"), "{output}");
    assert!(conn.is_closed());
}

#[test]
fn shutdown_answers_a_head_that_had_begun_then_closes() {
    let mut conn = weft_core::h1::ServerConnection::new(Limits::default(), t0());
    conn.receive(t0(), b"GET /late HTTP/1.1\r\n");
    conn.shutdown();
    conn.receive(t0(), b"Host: a\r\n\r\n");
    assert!(matches!(conn.poll_event(), Some(ServerEvent::Request(_))));
    while conn.poll_event().is_some() {}
    conn.send_response(StatusCode::NO_CONTENT, &HeaderMap::new(), BodySize::EMPTY)
        .unwrap();
    conn.finish().unwrap();
    let output = conn.poll_transmit(t0()).unwrap();
    assert!(String::from_utf8_lossy(&output).contains("connection: close"));
    while conn.poll_event().is_some() {}
    assert!(conn.is_closed());
}
