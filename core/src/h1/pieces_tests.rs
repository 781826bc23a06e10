//! Output in pieces: body `Bytes` queued without a copy ([`ServerConnection::send_data_bytes`])
//! come out of `poll_transmit` as pieces of their own, framed and in order, and the wire is
//! the same as when every byte is copied.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::{BodySize, ServerConnection, ServerEvent};
use crate::Limits;

fn connection_with_request(now: Instant, request: &[u8]) -> ServerConnection {
    let mut conn = ServerConnection::new(Limits::default(), now);
    assert_eq!(conn.receive(now, request), request.len());
    assert!(matches!(conn.poll_event(), Some(ServerEvent::Request(_))));
    assert_eq!(conn.poll_event(), Some(ServerEvent::EndOfMessage));
    conn
}

fn body(len: usize) -> Bytes {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Sends `pieces` as one response (Content-Length when `known`, else chunked), with
/// `send_data_bytes` or `send_data`, and returns the pieces handed out.
fn respond(pieces: &[Bytes], known: bool, by_bytes: bool) -> Vec<Bytes> {
    let now = crate::test_clock::start();
    let mut conn = connection_with_request(now, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let total: usize = pieces.iter().map(Bytes::len).sum();
    let size = if known {
        BodySize::Known(total as u64)
    } else {
        BodySize::Unknown
    };
    conn.send_response(StatusCode::OK, &HeaderMap::new(), size)
        .unwrap();
    for piece in pieces {
        let taken = if by_bytes {
            conn.send_data_bytes(piece).unwrap()
        } else {
            conn.send_data(piece).unwrap()
        };
        assert_eq!(taken, piece.len());
    }
    conn.finish().unwrap();
    let pending = conn.pending_output();
    let mut out = Vec::new();
    conn.poll_transmit_vectored(now, &mut out, usize::MAX);
    assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), pending);
    assert_eq!(conn.pending_output(), 0);
    out
}

fn concat(pieces: &[Bytes]) -> Vec<u8> {
    pieces.iter().flat_map(|p| p.iter().copied()).collect()
}

#[test]
fn large_pieces_go_out_uncopied_and_the_wire_is_unchanged() {
    let large = body(4096);
    let small = body(13);
    for known in [true, false] {
        let given = [large.clone(), small.clone(), large.clone()];
        let copied = respond(&given, known, false);
        let pieces = respond(&given, known, true);
        assert_eq!(concat(&pieces), concat(&copied), "known length: {known}");
        // The large pieces are the very bytes given: same memory, no copy.
        let shared = pieces
            .iter()
            .filter(|piece| piece.as_ptr() == large.as_ptr())
            .count();
        assert_eq!(shared, 2, "known length: {known}");
    }
}

#[test]
fn chunked_pieces_are_framed_around_the_uncopied_bytes() {
    let large = body(1000);
    let pieces = respond(std::slice::from_ref(&large), false, true);
    let wire = concat(&pieces);
    let text = String::from_utf8(wire).unwrap();
    assert!(text.contains("transfer-encoding: chunked\r\n\r\n3e8\r\n"));
    assert!(text.ends_with("\r\n0\r\n\r\n"));
}

#[test]
fn small_pieces_are_copied() {
    let pieces = respond(&[body(ServerConnection::PIECE_MIN - 1)], true, true);
    assert_eq!(pieces.len(), 1, "head and body in one buffer");
}

#[test]
fn pieces_respect_the_length_and_the_output_bound() {
    let now = crate::test_clock::start();
    let mut conn = connection_with_request(now, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(1000))
        .unwrap();
    assert_eq!(
        conn.send_data_bytes(&body(1001)),
        Err(super::SendError::BodyTooLong)
    );
    let limits = Limits {
        max_buffered_output: 2000,
        ..Limits::default()
    };
    let mut conn = ServerConnection::new(limits, now);
    conn.receive(now, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    while conn.poll_event().is_some() {}
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Unknown)
        .unwrap();
    let head = conn.pending_output();
    let taken = conn.send_data_bytes(&body(4096)).unwrap();
    assert!(taken < 4096 && head + taken <= 2000, "{head} + {taken}");
    assert!(conn.pending_output() <= 2000 + 2);
}

#[test]
fn suppressed_bodies_drop_pieces() {
    let now = crate::test_clock::start();
    let mut conn = connection_with_request(now, b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n");
    conn.send_response(StatusCode::OK, &HeaderMap::new(), BodySize::Known(4096))
        .unwrap();
    assert_eq!(conn.send_data_bytes(&body(4096)), Ok(4096));
    conn.finish().unwrap();
    let out = conn.poll_transmit(now).unwrap();
    assert!(out.ends_with(b"content-length: 4096\r\n\r\n"));
    assert_eq!(conn.poll_transmit(now), None);
}
