//! A response body the driver writes to the transport itself (`sendfile(2)`): the connection
//! hands it over only for Content-Length framing after the head is drained, counts what the
//! driver sent against the length, finishes the message, and keeps its send timeout.

use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use weft_core::Limits;
use weft_core::h1::{BodySize, H1Error, SendError, ServerConnection, ServerEvent};

/// A connection that has received `input` and drained its events.
fn connection(input: &[u8], now: Instant) -> ServerConnection {
    let mut conn = ServerConnection::new(Limits::default(), now);
    assert_eq!(conn.receive(now, input), input.len());
    while conn.poll_event().is_some() {}
    conn
}

fn all_output(conn: &mut ServerConnection, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit(now) {
        out.extend_from_slice(&bytes);
    }
    out
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn a_length_body_is_handed_over_after_the_head_and_finishes_the_response() {
    let now = Instant::now();
    let mut conn = connection(GET, now);
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(10))
        .unwrap();
    assert_eq!(
        conn.begin_direct_body(now),
        Err(SendError::InvalidState),
        "the head is not drained yet"
    );
    let head = all_output(&mut conn, now);
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(String::from_utf8_lossy(&head).contains("content-length: 10\r\n"));
    assert_eq!(conn.begin_direct_body(now), Ok(10));
    assert!(conn.is_sending_direct());
    assert_eq!(conn.send_data(b"x"), Err(SendError::InvalidState));
    conn.sent_direct(now, 4).unwrap();
    assert_eq!(conn.sent_direct(now, 7), Err(SendError::BodyTooLong));
    conn.sent_direct(now, 6).unwrap();
    assert!(!conn.is_sending_direct());
    assert!(
        all_output(&mut conn, now).is_empty(),
        "no byte of the body went through"
    );
    // The exchange is complete: the next pipelined request is read.
    conn.receive(now, GET);
    assert!(matches!(
        conn.poll_event(),
        Some(ServerEvent::Request { .. })
    ));
}

#[test]
fn chunked_head_and_close_delimited_bodies_are_refused() {
    let now = Instant::now();
    let mut chunked = connection(GET, now);
    chunked
        .send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    all_output(&mut chunked, now);
    assert_eq!(chunked.begin_direct_body(now), Err(SendError::InvalidState));

    let mut head = connection(b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", now);
    head.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(10))
        .unwrap();
    all_output(&mut head, now);
    assert_eq!(head.begin_direct_body(now), Err(SendError::InvalidState));

    let mut old = connection(b"GET /a HTTP/1.0\r\n\r\n", now);
    old.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    all_output(&mut old, now);
    assert_eq!(old.begin_direct_body(now), Err(SendError::InvalidState));
}

#[test]
fn counting_without_a_handover_is_refused() {
    let now = Instant::now();
    let mut conn = connection(GET, now);
    assert_eq!(conn.sent_direct(now, 1), Err(SendError::InvalidState));
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(3))
        .unwrap();
    all_output(&mut conn, now);
    assert_eq!(conn.sent_direct(now, 1), Err(SendError::InvalidState));
    // The ordinary path still works after the refusals.
    assert_eq!(conn.send_data(b"abc"), Ok(3));
    conn.finish().unwrap();
}

#[test]
fn a_stalled_direct_body_times_out_from_its_last_progress() {
    let start = Instant::now();
    let limits = Limits::default();
    let mut conn = connection(GET, start);
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(100))
        .unwrap();
    all_output(&mut conn, start);
    conn.begin_direct_body(start).unwrap();
    let later = start + Duration::from_secs(1);
    conn.sent_direct(later, 50).unwrap();
    // Polling for output (as drivers do in every turn) is no progress.
    assert!(conn.poll_transmit(later + Duration::from_secs(1)).is_none());
    let deadline = conn.poll_timeout().expect("the send timeout runs");
    assert_eq!(deadline, later + limits.send_timeout);
    conn.handle_timeout(deadline);
    assert!(conn.send_timed_out());
    assert!(matches!(
        conn.poll_event(),
        Some(ServerEvent::Error(H1Error::SendTimeout))
    ));
    assert!(conn.is_closed());
}

#[test]
fn an_aborted_direct_body_closes_the_connection() {
    let now = Instant::now();
    let mut conn = connection(GET, now);
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(100))
        .unwrap();
    all_output(&mut conn, now);
    conn.begin_direct_body(now).unwrap();
    conn.sent_direct(now, 10).unwrap();
    conn.abort();
    assert!(!conn.is_sending_direct());
    assert_eq!(conn.sent_direct(now, 1), Err(SendError::Closed));
    assert!(conn.is_closed());
}
