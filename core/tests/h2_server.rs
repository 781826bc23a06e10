//! The server side of an HTTP/2 connection against RFC 9113, one rule per test: the preface
//! and SETTINGS exchange, requests and responses with bodies and trailers, flow control both
//! ways, stream states, header blocks over CONTINUATION, priorities, PING, resets, graceful
//! shutdown, server push, header validation, extended CONNECT, timers on a virtual clock, h2c
//! upgrade, frame sizes and `date`. Every assertion reads the wire through a scripted client
//! (`support/h2_peer.rs`).

#[path = "support/h2_peer.rs"]
mod h2_peer;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use weft_core::Limits;
use weft_core::h2::{ErrorCode, Frame, PrioritySignal, Protocol, SendError, ServerEvent, Settings};

use h2_peer::{
    ENABLE_CONNECT_PROTOCOL, Out, Peer, field, field_values, get_fields, header_map,
    is_window_update, owned, request_fields, secs, t0,
};

/// Limits with a non-default value for every setting we advertise, so each must appear.
fn advertised_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_head_size = 5000;
    limits.h2.max_concurrent_streams = 7;
    limits.h2.initial_window_size = 30_000;
    limits.h2.connection_window_size = 1_000_000;
    limits.h2.max_frame_size = 20_000;
    limits.h2.header_table_size = 1024;
    limits
}

// ----- preface and SETTINGS -----

#[test]
fn advertises_settings_from_limits_before_any_input() {
    let limits = advertised_limits();
    let mut peer = Peer::new(limits);
    peer.pump();
    let settings = peer
        .take_settings()
        .expect("server SETTINGS queued at once");
    assert_eq!(settings.max_concurrent_streams(), Some(7));
    assert_eq!(settings.initial_window_size(), Some(30_000));
    assert_eq!(settings.max_frame_size(), Some(20_000));
    assert_eq!(settings.header_table_size(), Some(1024));
    assert_eq!(settings.max_header_list_size(), Some(5000));
    assert_eq!(settings.get(ENABLE_CONNECT_PROTOCOL), Some(1));
    // §6.5.2: a server MUST NOT set SETTINGS_ENABLE_PUSH to 1.
    assert_ne!(settings.enable_push(), Some(true));
}

#[test]
fn raises_connection_window_with_window_update_at_start() {
    let mut peer = Peer::new(advertised_limits());
    peer.pump();
    let increments: Vec<u32> = peer
        .out
        .iter()
        .filter_map(|o| match o {
            Out::Frame(Frame::WindowUpdate {
                stream: 0,
                increment,
            }) => Some(*increment),
            _ => None,
        })
        .collect();
    assert_eq!(increments, vec![1_000_000 - 65_535]);
}

#[test]
fn acknowledges_client_settings() {
    let mut peer = Peer::new(Limits::default());
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[(Settings::INITIAL_WINDOW_SIZE, 1000)]);
    peer.expect_settings_ack();
    peer.settings_ack();
    peer.settings(&[(Settings::MAX_FRAME_SIZE, 32_768)]);
    peer.expect_settings_ack();
    peer.expect_no_connection_error();
}

#[test]
fn bad_preface_is_protocol_error() {
    let mut peer = Peer::new(Limits::default());
    peer.send_raw(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn first_frame_other_than_settings_is_protocol_error() {
    let mut peer = Peer::new(Limits::default());
    peer.send_raw(weft_core::h2::PREFACE);
    peer.ping([0; 8]);
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

// ----- requests and responses -----

#[test]
fn get_without_body_is_request_with_end_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    let (head, end_stream) = peer.expect_request(1);
    assert!(end_stream);
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.uri.path(), "/");
    assert_eq!(
        head.uri.authority().map(|a| a.as_str()),
        Some("example.com")
    );
    assert_eq!(head.uri.scheme_str(), Some("https"));
    assert_eq!(head.content_length, None);
}

#[test]
fn response_with_body_is_headers_then_data_with_end_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(
            1,
            StatusCode::OK,
            &header_map(&[("content-type", "text/plain")]),
            false,
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(1, b"hello", true), Ok(5));
    peer.pump();
    let (fields, end_stream) = peer.expect_headers(1);
    assert!(!end_stream);
    assert_eq!(fields[0], (":status".to_owned(), "200".to_owned()));
    assert_eq!(field(&fields, "content-type"), Some("text/plain"));
    let (body, ended, _) = peer.take_data(1);
    assert_eq!(body, b"hello");
    assert!(ended);
}

#[test]
fn response_without_body_ends_stream_on_headers() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 204, b"");
    let (fields, end_stream) = peer.expect_headers(1);
    assert!(end_stream);
    assert_eq!(field(&fields, ":status"), Some("204"));
    assert_eq!(
        peer.conn.send_data(1, b"x", true),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn post_body_with_content_length_arrives_as_data_events() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[("content-length", "11")]);
    peer.data(1, b"hello ", false);
    peer.data(1, b"world", true);
    let (head, end_stream) = peer.expect_request(1);
    assert!(!end_stream);
    assert_eq!(head.method, Method::POST);
    assert_eq!(head.content_length, Some(11));
    let (body, ended) = peer.take_body(1);
    assert_eq!(body, b"hello world");
    assert!(ended);
    peer.expect_no_connection_error();
}

#[test]
fn body_shorter_than_content_length_resets_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[("content-length", "10")]);
    peer.data(1, b"12345", true);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    peer.expect_reset_event(1, ErrorCode::ProtocolError, false);
    peer.expect_no_connection_error();
}

#[test]
fn body_longer_than_content_length_resets_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[("content-length", "3")]);
    peer.data(1, b"12345", false);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    peer.expect_no_connection_error();
}

#[test]
fn request_trailers_end_the_body() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[("te", "trailers")]);
    peer.data(1, b"abc", false);
    peer.headers(1, &owned(&[("x-checksum", "42")]), true);
    peer.expect_request(1);
    let (body, _) = peer.take_body(1);
    assert_eq!(body, b"abc");
    let trailers = peer.expect_trailers(1);
    assert_eq!(trailers.get("x-checksum").unwrap(), "42");
    peer.expect_no_connection_error();
}

#[test]
fn response_trailers_come_after_data_with_end_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_data(1, b"body", false), Ok(4));
    peer.conn
        .send_trailers(1, &header_map(&[("grpc-status", "0")]))
        .unwrap();
    peer.pump();
    let (_, end_stream) = peer.expect_headers(1);
    assert!(!end_stream);
    let (body, ended, _) = peer.take_data(1);
    assert_eq!(body, b"body");
    assert!(!ended, "DATA must not end the stream before the trailers");
    let (trailers, end_stream) = peer.expect_headers(1);
    assert!(end_stream);
    assert_eq!(field(&trailers, "grpc-status"), Some("0"));
    assert!(trailers.iter().all(|(n, _)| !n.starts_with(':')));
    assert_eq!(
        peer.conn.send_data(1, b"late", true),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn data_before_response_head_is_invalid_state() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    assert_eq!(
        peer.conn.send_data(1, b"x", true),
        Err(SendError::InvalidState)
    );
}

#[test]
fn response_body_longer_than_its_content_length_is_refused() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(
            1,
            StatusCode::OK,
            &header_map(&[("content-length", "2")]),
            false,
        )
        .unwrap();
    assert_eq!(
        peer.conn.send_data(1, b"abc", true),
        Err(SendError::ContentLengthMismatch)
    );
}

#[test]
fn send_on_unknown_stream_is_stream_closed() {
    let mut peer = Peer::connect(Limits::default());
    assert_eq!(
        peer.conn
            .send_response(9, StatusCode::OK, &HeaderMap::new(), true),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn informational_response_precedes_final_one() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[("expect", "100-continue")]);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::CONTINUE, &HeaderMap::new(), false)
        .unwrap();
    peer.data(1, b"x", true);
    peer.respond(1, 200, b"ok");
    let (first, end) = peer.expect_headers(1);
    assert_eq!(field(&first, ":status"), Some("100"));
    assert!(!end);
    let (second, _) = peer.expect_headers(1);
    assert_eq!(field(&second, ":status"), Some("200"));
}

// ----- flow control -----

#[test]
fn send_data_takes_only_the_client_window_and_resumes_after_window_update() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::INITIAL_WINDOW_SIZE, 10)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let body = [b'x'; 30];
    assert_eq!(peer.conn.send_data(1, &body, true), Ok(10));
    assert_eq!(peer.conn.send_capacity(1), 0);
    peer.pump();
    let (sent, ended, _) = peer.take_data(1);
    assert_eq!(sent.len(), 10);
    assert!(!ended, "END_STREAM must wait for the rest of the data");
    peer.window_update(1, 100);
    assert!(peer.conn.send_capacity(1) >= 20);
    assert_eq!(peer.conn.send_data(1, &body[10..], true), Ok(20));
    peer.pump();
    let (rest, ended, _) = peer.take_data(1);
    assert_eq!(rest.len(), 20);
    assert!(ended);
}

#[test]
fn lowering_initial_window_size_mid_stream_makes_window_negative() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::INITIAL_WINDOW_SIZE, 100)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_data(1, &[b'a'; 60], false), Ok(60));
    // Window 40; the new initial size is 80 lower (§6.9.2): 40 - 80 = -40.
    peer.settings(&[(Settings::INITIAL_WINDOW_SIZE, 20)]);
    peer.expect_settings_ack();
    assert_eq!(peer.conn.send_capacity(1), 0);
    assert_eq!(peer.conn.send_data(1, b"b", false), Ok(0));
    peer.window_update(1, 40);
    assert_eq!(peer.conn.send_capacity(1), 0, "window back to 0, not above");
    peer.window_update(1, 15);
    assert_eq!(peer.conn.send_capacity(1), 15);
    peer.expect_no_connection_error();
}

#[test]
fn raising_initial_window_size_mid_stream_opens_window() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::INITIAL_WINDOW_SIZE, 0)]);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_capacity(1), 0);
    peer.settings(&[(Settings::INITIAL_WINDOW_SIZE, 50)]);
    assert_eq!(peer.conn.send_capacity(1), 50);
}

#[test]
fn stream_window_update_overflow_resets_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    // 65 535 + 2^31 - 1 is past 2^31 - 1 (§6.9.1).
    peer.window_update(1, 0x7fff_ffff);
    peer.expect_rst(1, ErrorCode::FlowControlError);
    peer.expect_no_connection_error();
}

#[test]
fn connection_window_update_overflow_is_connection_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.window_update(0, 0x7fff_ffff);
    peer.expect_connection_error(ErrorCode::FlowControlError);
}

#[test]
fn initial_window_size_setting_that_overflows_an_open_window_is_connection_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.window_update(1, 0x7fff_ffff - 65_535);
    peer.expect_no_connection_error();
    // §6.9.2: a change that makes a window exceed 2^31-1 is a FLOW_CONTROL_ERROR connection error.
    peer.settings(&[(Settings::INITIAL_WINDOW_SIZE, 65_536)]);
    peer.expect_connection_error(ErrorCode::FlowControlError);
}

#[test]
fn client_data_beyond_our_stream_window_is_flow_control_error() {
    let mut limits = Limits::default();
    limits.h2.initial_window_size = 100;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.data(1, &[b'x'; 150], false);
    peer.expect_stream_or_connection_error(1, ErrorCode::FlowControlError);
}

#[test]
fn client_data_beyond_our_connection_window_is_flow_control_error() {
    let mut limits = Limits::default();
    limits.h2.initial_window_size = 60_000;
    limits.h2.connection_window_size = 65_535;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.post(3, &[]);
    peer.data(1, &[b'x'; 16_000], false);
    peer.data(1, &[b'x'; 16_000], false);
    peer.data(1, &[b'x'; 16_000], false);
    peer.data(3, &[b'x'; 16_000], false);
    peer.expect_no_connection_error();
    peer.data(3, &[b'x'; 2_000], false);
    // §6.9: past the connection window; the stream or the whole connection may pay.
    peer.expect_stream_or_connection_error(3, ErrorCode::FlowControlError);
}

#[test]
fn released_capacity_is_returned_in_few_window_updates() {
    let mut limits = Limits::default();
    limits.h2.initial_window_size = 8_000;
    limits.h2.connection_window_size = 16_000;
    limits.max_body_size = 1 << 20;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    let frames = 100;
    let mut sent = 0i64;
    let mut received = 0;
    for _ in 0..frames {
        // A well-behaved client: never past either window (§6.9).
        let stream_window = 8_000 + peer.window_credit(1) - sent;
        let connection_window = 65_535 + peer.window_credit(0) - sent;
        assert!(
            stream_window.min(connection_window) >= 500,
            "windows stuck at {stream_window} / {connection_window} with everything released"
        );
        peer.data(1, &[b'd'; 500], false);
        sent += 500;
        let (body, _) = peer.take_body(1);
        received += body.len();
        peer.conn.release_capacity(1, body.len());
        peer.pump();
    }
    peer.expect_no_connection_error();
    assert!(
        peer.rsts_on(1).is_empty(),
        "stream reset: {:?}",
        peer.rsts_on(1)
    );
    // 50 000 bytes through a stream window of 8 000: updates were needed.
    assert_eq!(received, frames * 500);
    let updates = peer.count_written(is_window_update);
    assert!(updates >= 1, "no WINDOW_UPDATE after 50 000 bytes");
    assert!(
        updates <= frames / 2,
        "{updates} WINDOW_UPDATE frames for {frames} DATA frames"
    );
}

// ----- streams -----

#[test]
fn stream_past_max_concurrent_streams_is_refused() {
    let mut limits = Limits::default();
    limits.h2.max_concurrent_streams = 2;
    let mut peer = Peer::connect(limits);
    peer.get(1);
    peer.get(3);
    peer.get(5);
    peer.expect_rst(5, ErrorCode::RefusedStream);
    assert!(!peer.saw_request(5), "refused stream surfaced as a request");
    peer.expect_request(1);
    peer.expect_request(3);
    // Finishing one makes room for the next; the refused block kept HPACK in step.
    peer.respond(1, 200, b"");
    peer.get(7);
    peer.expect_request(7);
    peer.expect_no_connection_error();
}

#[test]
fn data_on_idle_stream_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.data(1, b"x", true);
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn headers_on_half_closed_remote_stream_is_stream_closed() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.headers(1, &owned(&[("x-late", "1")]), true);
    // §5.1 half-closed (remote): a stream error, the connection goes on.
    peer.expect_rst(1, ErrorCode::StreamClosed);
    peer.expect_no_connection_error();
}

#[test]
fn data_on_half_closed_remote_stream_is_stream_closed() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.data(1, b"late", true);
    // §5.1 half-closed (remote): a stream error, the connection goes on.
    peer.expect_rst(1, ErrorCode::StreamClosed);
    peer.expect_no_connection_error();
}

#[test]
fn data_on_closed_stream_is_stream_closed() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 200, b"done");
    peer.out.clear();
    peer.data(1, b"late", true);
    peer.expect_stream_or_connection_error(1, ErrorCode::StreamClosed);
}

#[test]
fn headers_on_stream_closed_by_end_stream_both_ways_is_connection_error_stream_closed() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 200, b"done");
    peer.out.clear();
    peer.headers(1, &get_fields("/again"), true);
    // §5.1 closed: "any frames after receiving a frame with the END_STREAM flag set MUST
    // [be treated] as a connection error of type STREAM_CLOSED" (h2spec http2/5.1/13).
    peer.expect_connection_error(ErrorCode::StreamClosed);
    assert!(peer.rsts_on(1).is_empty(), "a GOAWAY, not a stream reset");
}

#[test]
fn data_after_client_reset_is_stream_closed_while_the_reset_waits_for_the_application() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    // The application has not taken the reset yet: the stream is still stored.
    peer.polling = false;
    peer.rst(1, ErrorCode::Cancel);
    peer.data(1, b"late", false);
    // §5.1 closed: "any frame other than PRIORITY after receiving a RST_STREAM MUST [be
    // treated] as a stream error of type STREAM_CLOSED" (h2spec http2/5.1/9).
    peer.drain();
    peer.expect_rst(1, ErrorCode::StreamClosed);
    peer.expect_no_connection_error();
    peer.polling = true;
    peer.pump();
    peer.expect_reset_event(1, ErrorCode::Cancel, true);
}

#[test]
fn headers_after_client_reset_is_stream_closed_while_the_reset_waits_for_the_application() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.polling = false;
    peer.rst(1, ErrorCode::Cancel);
    peer.headers(1, &owned(&[("x-trailer", "1")]), true);
    // h2spec http2/5.1/10; the block is still decoded, so the connection goes on.
    peer.drain();
    peer.expect_rst(1, ErrorCode::StreamClosed);
    peer.expect_no_connection_error();
    peer.get(3);
    peer.polling = true;
    peer.pump();
    peer.expect_request(3);
}

#[test]
fn data_after_our_reset_is_still_ignored_while_the_reset_waits() {
    let mut limits = Limits::default();
    limits.max_body_size = 4;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.polling = false;
    // Past max_body_size: we reset the stream with CANCEL.
    peer.data(1, b"too long", false);
    peer.data(1, b"in flight", false);
    peer.drain();
    peer.expect_rst(1, ErrorCode::Cancel);
    assert_eq!(
        peer.rsts_on(1),
        vec![ErrorCode::Cancel],
        "in-flight DATA is ignored"
    );
    peer.expect_no_connection_error();
}

#[test]
fn window_update_and_rst_on_recently_closed_stream_are_ignored() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 200, b"done");
    // §5.1: these may cross our END_STREAM in flight.
    peer.window_update(1, 10);
    peer.rst(1, ErrorCode::Cancel);
    peer.priority(1, 0);
    peer.get(3);
    peer.expect_request(3);
    peer.expect_no_connection_error();
    assert!(peer.rsts_on(1).is_empty());
}

#[test]
fn decreasing_stream_id_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(5);
    peer.expect_request(5);
    peer.get(3);
    peer.expect_connection_error(ErrorCode::ProtocolError);
    assert!(!peer.saw_request(3));
}

#[test]
fn even_stream_id_from_client_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(2);
    peer.expect_connection_error(ErrorCode::ProtocolError);
    assert!(!peer.saw_request(2));
}

#[test]
fn stream_depending_on_itself_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    let fragment = peer.block(&get_fields("/"));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: true,
        priority: Some(weft_core::h2::Priority {
            exclusive: false,
            dependency: 1,
            weight: 15,
        }),
        pad_len: None,
        fragment,
    });
    peer.expect_stream_or_connection_error(1, ErrorCode::ProtocolError);
}

#[test]
fn priority_frame_depending_on_itself_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.priority(1, 1);
    peer.expect_stream_or_connection_error(1, ErrorCode::ProtocolError);
}

// ----- header blocks -----

#[test]
fn frame_interleaved_in_header_block_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    let block = peer.block(&get_fields("/"));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..2),
    });
    peer.ping([1; 8]);
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn continuation_on_another_stream_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    let block = peer.block(&get_fields("/"));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..2),
    });
    peer.send(Frame::Continuation {
        stream: 3,
        end_headers: true,
        fragment: block.slice(2..),
    });
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn continuation_without_headers_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    let block = peer.block(&get_fields("/"));
    peer.send(Frame::Continuation {
        stream: 1,
        end_headers: true,
        fragment: block,
    });
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn large_header_block_split_over_continuations_is_accepted() {
    let mut peer = Peer::connect(Limits::default());
    let big: String = (0..6000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut fields = get_fields("/big");
    fields.push(("x-big".to_owned(), big.clone()));
    let block = peer.block(&fields);
    let third = block.len() / 3;
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..third),
    });
    peer.send(Frame::Continuation {
        stream: 1,
        end_headers: false,
        fragment: block.slice(third..2 * third),
    });
    assert!(!peer.saw_request(1), "request before END_HEADERS");
    peer.send(Frame::Continuation {
        stream: 1,
        end_headers: true,
        fragment: block.slice(2 * third..),
    });
    let (head, end_stream) = peer.expect_request(1);
    assert!(end_stream);
    assert_eq!(head.uri.path(), "/big");
    assert_eq!(head.headers.get("x-big").unwrap(), big.as_str());
}

#[test]
fn padded_headers_and_data_are_accepted() {
    let mut peer = Peer::connect(Limits::default());
    let fragment = peer.block(&request_fields("POST", "/", &[]));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: false,
        end_headers: true,
        priority: None,
        pad_len: Some(7),
        fragment,
    });
    peer.send(Frame::Data {
        stream: 1,
        end_stream: true,
        pad_len: Some(20),
        data: Bytes::from_static(b"padded"),
    });
    peer.expect_request(1);
    assert_eq!(peer.take_body(1), (b"padded".to_vec(), true));
}

#[test]
fn cookie_fields_are_joined() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &request_fields("GET", "/", &[("cookie", "a=1"), ("cookie", "b=2")]),
        true,
    );
    let (head, _) = peer.expect_request(1);
    assert_eq!(head.headers.get("cookie").unwrap(), "a=1; b=2");
}

// ----- header validation (§8.2, §8.3) -----

/// Sends a request with `fields` on stream 1, expects RST_STREAM PROTOCOL_ERROR and no
/// Request event, then checks the connection still serves stream 3.
fn assert_malformed(fields: Vec<(String, String)>) {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(1, &fields, true);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    assert!(
        !peer.saw_request(1),
        "malformed request surfaced: {fields:?}"
    );
    peer.get(3);
    peer.expect_request(3);
    peer.expect_no_connection_error();
}

#[test]
fn uppercase_field_name_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("X-Upper", "1")]));
}

#[test]
fn connection_specific_field_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("connection", "keep-alive")]));
}

#[test]
fn te_other_than_trailers_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("te", "gzip")]));
}

#[test]
fn pseudo_header_after_regular_field_is_malformed() {
    assert_malformed(owned(&[
        (":method", "GET"),
        (":scheme", "https"),
        ("x-first", "1"),
        (":path", "/"),
        (":authority", "example.com"),
    ]));
}

#[test]
fn duplicate_pseudo_header_is_malformed() {
    let mut fields = get_fields("/");
    fields.push((":path".to_owned(), "/again".to_owned()));
    assert_malformed(fields);
}

#[test]
fn missing_path_is_malformed() {
    assert_malformed(owned(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
    ]));
}

#[test]
fn response_pseudo_header_in_request_is_malformed() {
    let mut fields = get_fields("/");
    fields.push((":status".to_owned(), "200".to_owned()));
    assert_malformed(fields);
}

#[test]
fn field_value_with_newline_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("x-split", "a\nb")]));
}

#[test]
fn pseudo_header_in_trailers_is_malformed() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.data(1, b"x", false);
    peer.headers(1, &owned(&[(":path", "/")]), true);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    peer.expect_no_connection_error();
}

// ----- extended CONNECT (RFC 8441) -----

#[test]
fn extended_connect_websocket_is_accepted_with_protocol() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &owned(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/chat"),
            (":authority", "example.com"),
            ("sec-websocket-version", "13"),
        ]),
        false,
    );
    let (head, end_stream) = peer.expect_request(1);
    assert!(!end_stream);
    assert_eq!(head.method, Method::CONNECT);
    assert_eq!(
        head.protocol,
        Some(Protocol(Bytes::from_static(b"websocket")))
    );
    let request = head.into_request(());
    assert_eq!(
        request.extensions().get::<Protocol>(),
        Some(&Protocol(Bytes::from_static(b"websocket")))
    );
    assert_eq!(request.uri().path(), "/chat");
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_data(1, b"frame", false), Ok(5));
    peer.pump();
    let (fields, end) = peer.expect_headers(1);
    assert_eq!(field(&fields, ":status"), Some("200"));
    assert!(!end);
}

#[test]
fn plain_connect_without_authority_is_malformed() {
    assert_malformed(owned(&[(":method", "CONNECT")]));
}

// ----- priorities and unknown frames -----

#[test]
fn priority_frames_are_ignored() {
    let mut peer = Peer::connect(Limits::default());
    peer.priority(3, 0);
    peer.get(1);
    peer.priority(1, 0);
    peer.get(3);
    peer.expect_request(1);
    peer.expect_request(3);
    peer.expect_no_connection_error();
    assert!(peer.rsts_on(1).is_empty() && peer.rsts_on(3).is_empty());
}

#[test]
fn priority_update_frame_is_surfaced() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.priority_update(1, "u=1, i");
    let update = peer.events.iter().find_map(|e| match e {
        ServerEvent::PriorityUpdate { stream, priority } => Some((*stream, *priority)),
        _ => None,
    });
    assert_eq!(
        update,
        Some((
            1,
            PrioritySignal {
                urgency: 1,
                incremental: true
            }
        ))
    );
    peer.expect_no_connection_error();
}

#[test]
fn priority_field_is_surfaced_in_request_head() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &request_fields("GET", "/", &[("priority", "u=5, i")]),
        true,
    );
    let (head, _) = peer.expect_request(1);
    assert_eq!(
        head.priority,
        PrioritySignal {
            urgency: 5,
            incremental: true
        }
    );
    let request = head.into_request(());
    assert_eq!(
        request
            .extensions()
            .get::<PrioritySignal>()
            .map(|p| p.urgency),
        Some(5)
    );
}

#[test]
fn absent_priority_field_defaults() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    let (head, _) = peer.expect_request(1);
    assert_eq!(head.priority, PrioritySignal::default());
}

#[test]
fn unknown_frame_types_are_ignored() {
    let mut peer = Peer::connect(Limits::default());
    for stream in [0, 1, 7] {
        peer.send(Frame::Unknown {
            kind: 0xfa,
            flags: 0xff,
            stream,
            payload: Bytes::from_static(b"whatever"),
        });
    }
    peer.get(1);
    peer.expect_request(1);
    peer.expect_no_connection_error();
    assert!(peer.rsts_on(1).is_empty() && peer.rsts_on(7).is_empty());
}

#[test]
fn unknown_settings_are_ignored() {
    let mut peer = Peer::connect(Limits::default());
    peer.settings(&[(0x99, 12345), (0xf00d, 0)]);
    peer.expect_settings_ack();
    peer.get(1);
    peer.expect_request(1);
    peer.expect_no_connection_error();
}

// ----- PING, GOAWAY, resets -----

#[test]
fn ping_is_acknowledged_with_same_payload() {
    let mut peer = Peer::connect(Limits::default());
    peer.ping(*b"12345678");
    let acks: Vec<[u8; 8]> = peer
        .out
        .iter()
        .filter_map(|o| match o {
            Out::Frame(Frame::Ping { ack: true, data }) => Some(*data),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![*b"12345678"]);
}

#[test]
fn ping_ack_from_client_gets_no_answer() {
    let mut peer = Peer::connect(Limits::default());
    peer.send(Frame::Ping {
        ack: true,
        data: [9; 8],
    });
    assert!(
        !peer
            .out
            .iter()
            .any(|o| matches!(o, Out::Frame(Frame::Ping { .. }))),
        "answered a PING ACK: {:?}",
        peer.out
    );
    peer.expect_no_connection_error();
}

#[test]
fn client_goaway_is_surfaced() {
    let mut peer = Peer::connect(Limits::default());
    peer.goaway(0, ErrorCode::NoError);
    let code = peer.events.iter().find_map(|e| match e {
        ServerEvent::GoAway { code } => Some(*code),
        _ => None,
    });
    assert_eq!(code, Some(ErrorCode::NoError));
}

#[test]
fn client_rst_stream_raises_reset_by_peer_and_closes_stream_for_sending() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.rst(1, ErrorCode::Cancel);
    peer.expect_reset_event(1, ErrorCode::Cancel, true);
    assert_eq!(
        peer.conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), false),
        Err(SendError::StreamClosed)
    );
    assert_eq!(
        peer.conn.send_data(1, b"x", true),
        Err(SendError::StreamClosed)
    );
    peer.pump();
    assert!(peer.rsts_on(1).is_empty(), "answered a RST_STREAM with one");
    peer.expect_no_connection_error();
}

#[test]
fn rst_stream_on_idle_stream_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.rst(1, ErrorCode::Cancel);
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn application_reset_writes_rst_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.conn.reset(1, ErrorCode::InternalError);
    peer.pump();
    peer.expect_rst(1, ErrorCode::InternalError);
    assert_eq!(
        peer.conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), true),
        Err(SendError::StreamClosed)
    );
    // DATA the client had in flight is not an error (§5.1, closed after sending RST_STREAM).
    peer.data(1, b"in flight", false);
    peer.expect_no_connection_error();
}

#[test]
fn abort_sends_goaway_with_code_and_closes() {
    let mut peer = Peer::connect(Limits::default());
    peer.conn.abort(ErrorCode::InternalError);
    peer.drain();
    peer.expect_goaway(ErrorCode::InternalError);
    assert!(peer.conn.is_closed());
}

// ----- graceful shutdown -----

#[test]
fn graceful_shutdown_finishes_open_streams_and_refuses_new_ones() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn.shutdown();
    peer.pump();
    let goaways = peer.goaways();
    assert!(!goaways.is_empty(), "no GOAWAY after shutdown");
    assert!(goaways.iter().all(|(_, code)| *code == ErrorCode::NoError));
    assert!(!peer.conn.is_closed(), "closed with a stream still open");
    peer.get(3);
    assert!(
        !peer.saw_request(3),
        "stream opened after GOAWAY was served"
    );
    peer.respond(1, 200, b"last");
    let (_, _) = peer.expect_headers(1);
    let (body, ended, _) = peer.take_data(1);
    assert_eq!((body.as_slice(), ended), (&b"last"[..], true));
    peer.drain();
    let last = peer.goaways().last().copied().unwrap();
    assert_eq!(last, (1, ErrorCode::NoError), "final GOAWAY");
    assert!(
        peer.conn.is_closed(),
        "not closed after the last stream finished"
    );
}

#[test]
fn graceful_shutdown_with_no_streams_closes() {
    let mut peer = Peer::connect(Limits::default());
    peer.conn.shutdown();
    peer.drain();
    assert_eq!(peer.goaways().last().map(|g| g.1), Some(ErrorCode::NoError));
    assert!(peer.conn.is_closed());
    let late = peer
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true);
    assert!(
        matches!(late, Err(SendError::Closed | SendError::StreamClosed)),
        "send on a closed connection: {late:?}"
    );
}

// ----- server push (§8.4) -----

#[test]
fn push_promise_then_response_on_promised_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let uri: Uri = "https://example.com/style.css".parse().unwrap();
    let promised = peer
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    assert_eq!(promised, 2);
    peer.respond(2, 200, b"body{}");
    peer.respond(1, 200, b"<html>");
    let promise = peer.out.iter().find_map(|o| match o {
        Out::PushPromise {
            stream,
            promised,
            fields,
        } => Some((*stream, *promised, fields.clone())),
        _ => None,
    });
    let (stream, promised, fields) = promise.expect("a PUSH_PROMISE");
    assert_eq!((stream, promised), (1, 2));
    assert_eq!(field(&fields, ":method"), Some("GET"));
    assert_eq!(field(&fields, ":scheme"), Some("https"));
    assert_eq!(field(&fields, ":authority"), Some("example.com"));
    assert_eq!(field(&fields, ":path"), Some("/style.css"));
    let (head, _) = peer.expect_headers(2);
    assert_eq!(field(&head, ":status"), Some("200"));
    assert_eq!(peer.take_data(2).0, b"body{}");
    // The promise must precede the promised stream's frames.
    let promise_at = peer
        .log
        .iter()
        .position(|o| matches!(o, Out::PushPromise { .. }));
    let response_at = peer
        .log
        .iter()
        .position(|o| matches!(o, Out::Headers { stream: 2, .. }));
    assert!(promise_at < response_at);
}

#[test]
fn push_is_refused_when_client_disables_it() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::ENABLE_PUSH, 0)]);
    peer.get(1);
    peer.expect_request(1);
    let uri: Uri = "https://example.com/style.css".parse().unwrap();
    assert_eq!(
        peer.conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
    peer.pump();
    assert!(
        !peer
            .out
            .iter()
            .any(|o| matches!(o, Out::PushPromise { .. }))
    );
}

#[test]
fn push_of_unsafe_method_is_refused() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let uri: Uri = "https://example.com/form".parse().unwrap();
    assert_eq!(
        peer.conn
            .push_promise(1, &Method::POST, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
}

// ----- timers -----

#[test]
fn unacknowledged_settings_time_out() {
    let mut limits = Limits::default();
    limits.h2.settings_timeout = secs(5);
    let mut peer = Peer::new(limits);
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[]);
    let due = peer.conn.poll_timeout().expect("a SETTINGS timer");
    assert!(due <= t0() + secs(5));
    peer.advance(secs(4));
    assert!(peer.goaways().is_empty(), "timed out early");
    peer.advance(secs(2));
    peer.expect_connection_error(ErrorCode::SettingsTimeout);
}

#[test]
fn output_not_taken_for_send_timeout_ends_the_connection_with_goaway() {
    let mut limits = Limits::default();
    limits.send_timeout = secs(10);
    let mut peer = Peer::connect(limits);
    peer.get(1);
    peer.expect_request(1);
    peer.advance(secs(1));
    // The client stops reading; the application's response waits in the output.
    peer.reading = false;
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let sent = peer.conn.send_data(1, &[b'x'; 1000], false).unwrap();
    assert_eq!(sent, 1000);
    assert_eq!(peer.conn.poll_timeout(), Some(t0() + secs(11)));
    peer.advance(secs(9));
    assert_eq!(peer.error_event(), None, "timed out early");
    peer.advance(secs(1));
    assert!(peer.conn.send_timed_out());
    assert_eq!(peer.error_event(), Some(ErrorCode::EnhanceYourCalm));
    assert_eq!(
        peer.conn.send_data(1, b"more", false),
        Err(SendError::Closed)
    );
    // Only the GOAWAY is left to write (best effort): the response waiting was dropped.
    peer.drain();
    peer.expect_goaway(ErrorCode::EnhanceYourCalm);
    assert!(
        !peer
            .out
            .iter()
            .any(|o| matches!(o, Out::Headers { stream: 1, .. })),
        "{:?}",
        peer.out
    );
    assert!(peer.conn.is_closed());
}

#[test]
fn a_goaway_the_client_never_reads_is_dropped_at_the_send_timeout() {
    let mut limits = Limits::default();
    limits.send_timeout = secs(10);
    let mut peer = Peer::connect(limits);
    peer.reading = false;
    peer.data(1, b"x", true);
    assert_eq!(peer.error_event(), Some(ErrorCode::ProtocolError));
    assert!(!peer.conn.is_closed(), "the GOAWAY waits to be written");
    let due = peer
        .conn
        .poll_timeout()
        .expect("the GOAWAY must be taken in time");
    assert!(due <= t0() + secs(10));
    peer.advance(secs(10));
    assert!(peer.conn.send_timed_out());
    assert!(peer.conn.is_closed());
}

#[test]
fn idle_connection_closes_after_idle_timeout() {
    let mut limits = Limits::default();
    limits.h2.idle_timeout = secs(5);
    let mut peer = Peer::connect(limits);
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 200, b"");
    peer.advance(secs(4));
    assert!(peer.goaways().is_empty(), "idle timeout fired early");
    peer.advance(secs(2));
    assert_eq!(peer.goaways().last().map(|g| g.1), Some(ErrorCode::NoError));
    peer.expect_closed();
}

#[test]
fn connection_with_open_stream_is_not_idle() {
    let mut limits = Limits::default();
    limits.h2.idle_timeout = secs(5);
    limits.h2.send_stall_timeout = secs(3600);
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    // Past the idle timeout, short of every other timer.
    peer.advance(secs(20));
    assert!(
        peer.goaways().is_empty(),
        "closed a connection with an open stream"
    );
    assert!(!peer.conn.is_closed());
}

// ----- h2c upgrade -----

#[test]
fn upgraded_connection_answers_stream_one_without_headers() {
    let mut peer = Peer::upgraded(Limits::default(), &Settings::new());
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[]);
    peer.settings_ack();
    peer.respond(1, 200, b"upgraded");
    let (fields, _) = peer.expect_headers(1);
    assert_eq!(field(&fields, ":status"), Some("200"));
    assert_eq!(peer.take_data(1).0, b"upgraded");
    assert!(
        !peer.saw_request(1),
        "the upgraded request was already seen over HTTP/1.1"
    );
    peer.get(3);
    peer.expect_request(3);
    peer.expect_no_connection_error();
}

#[test]
fn upgraded_connection_applies_http2_settings() {
    let settings: Settings = [(Settings::INITIAL_WINDOW_SIZE, 5)].into_iter().collect();
    let mut peer = Peer::upgraded(Limits::default(), &settings);
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[]);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(peer.conn.send_data(1, b"0123456789", true), Ok(5));
}

// ----- frame sizes -----

#[test]
fn response_larger_than_max_frame_size_is_split_into_data_frames() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let body: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let mut sent = 0;
    for _ in 0..100 {
        if sent == body.len() {
            break;
        }
        sent += peer.conn.send_data(1, &body[sent..], true).unwrap();
        peer.pump();
    }
    assert_eq!(sent, body.len());
    let (received, ended, sizes) = peer.take_data(1);
    assert_eq!(received, body);
    assert!(ended);
    assert!(sizes.len() >= 3, "frame sizes {sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 16_384), "frame sizes {sizes:?}");
}

#[test]
fn response_head_larger_than_max_frame_size_uses_continuation() {
    let mut limits = Limits::default();
    limits.max_head_size = 256 * 1024;
    let mut peer = Peer::connect(limits);
    peer.get(1);
    peer.expect_request(1);
    // Varied bytes so Huffman coding cannot fit them in one frame.
    let value: String = (0..40_000u32)
        .map(|i| char::from(b'!' + ((i * 7919) % 90) as u8))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-large", HeaderValue::from_str(&value).unwrap());
    peer.conn
        .send_response(1, StatusCode::OK, &headers, true)
        .unwrap();
    peer.pump();
    let block = peer.out.iter().find_map(|o| match o {
        Out::Headers {
            stream: 1,
            fields,
            continuations,
            ..
        } => Some((fields.clone(), *continuations)),
        _ => None,
    });
    let (fields, continuations) = block.expect("HEADERS on stream 1");
    assert!(continuations >= 1, "no CONTINUATION for a 40 kB head");
    assert_eq!(field(&fields, "x-large"), Some(value.as_str()));
}

#[test]
fn honours_larger_client_max_frame_size() {
    let mut peer = Peer::connect_with(
        Limits::default(),
        &[
            (Settings::MAX_FRAME_SIZE, 65_536),
            (Settings::INITIAL_WINDOW_SIZE, 1 << 20),
        ],
    );
    peer.window_update(0, 1 << 20);
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let body = vec![7u8; 60_000];
    assert_eq!(peer.conn.send_data(1, &body, true), Ok(60_000));
    peer.pump();
    let (received, _, sizes) = peer.take_data(1);
    assert_eq!(received.len(), 60_000);
    assert!(sizes.iter().all(|&s| s <= 65_536));
}

// ----- date -----

#[test]
fn date_from_set_date_is_added_to_responses() {
    let mut peer = Peer::connect(Limits::default());
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 29 Nov 2026 02:00:00 GMT"));
    peer.get(1);
    peer.expect_request(1);
    peer.respond(1, 200, b"");
    let (fields, _) = peer.expect_headers(1);
    assert_eq!(
        field_values(&fields, "date"),
        vec!["Sun, 29 Nov 2026 02:00:00 GMT"]
    );
}

#[test]
fn own_date_is_kept() {
    let mut peer = Peer::connect(Limits::default());
    peer.conn
        .set_date(HeaderValue::from_static("Sun, 29 Nov 2026 02:00:00 GMT"));
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(
            1,
            StatusCode::OK,
            &header_map(&[("date", "Mon, 01 Jan 2024 00:00:00 GMT")]),
            true,
        )
        .unwrap();
    peer.pump();
    let (fields, _) = peer.expect_headers(1);
    assert_eq!(
        field_values(&fields, "date"),
        vec!["Mon, 01 Jan 2024 00:00:00 GMT"]
    );
}

#[test]
fn connection_specific_response_fields_are_dropped() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(
            1,
            StatusCode::OK,
            &header_map(&[
                ("connection", "close"),
                ("transfer-encoding", "chunked"),
                ("x-ok", "1"),
            ]),
            true,
        )
        .unwrap();
    peer.pump();
    let (fields, _) = peer.expect_headers(1);
    assert_eq!(field(&fields, "connection"), None);
    assert_eq!(field(&fields, "transfer-encoding"), None);
    assert_eq!(field(&fields, "x-ok"), Some("1"));
}

#[test]
fn many_requests_on_one_connection_are_all_served() {
    let mut peer = Peer::connect(Limits::default());
    for i in 0..50u32 {
        let stream = 2 * i + 1;
        peer.headers(stream, &get_fields(&format!("/item/{i}")), true);
        let (head, _) = peer.expect_request(stream);
        assert_eq!(head.uri.path(), format!("/item/{i}"));
        peer.respond(stream, 200, format!("item {i}").as_bytes());
        assert_eq!(peer.take_data(stream).0, format!("item {i}").into_bytes());
    }
    peer.expect_no_connection_error();
}

// ----- more connection rules -----

#[test]
fn window_update_on_idle_stream_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.window_update(5, 100);
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn frame_larger_than_our_max_frame_size_is_frame_size_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.data(1, &[0; 16_385], false);
    peer.expect_connection_error(ErrorCode::FrameSizeError);
}

#[test]
fn push_promise_from_client_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    let fragment = peer.block(&get_fields("/pushed"));
    peer.send(Frame::PushPromise {
        stream: 1,
        end_headers: true,
        pad_len: None,
        promised: 2,
        fragment,
    });
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn initial_window_size_above_maximum_is_flow_control_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.settings(&[(Settings::INITIAL_WINDOW_SIZE, 0x8000_0000)]);
    peer.expect_connection_error(ErrorCode::FlowControlError);
}

#[test]
fn undecodable_header_block_is_compression_error() {
    let mut peer = Peer::connect(Limits::default());
    // Indexed field 0 does not exist (RFC 7541 §6.1).
    peer.raw_headers(1, vec![0x82, 0x80], true);
    peer.expect_connection_error(ErrorCode::CompressionError);
}

#[test]
fn priority_update_on_a_stream_is_protocol_error() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"u=1");
    peer.send(Frame::Unknown {
        kind: weft_core::h2::PRIORITY_UPDATE,
        flags: 0,
        stream: 1,
        payload: Bytes::from(payload),
    });
    peer.expect_connection_error(ErrorCode::ProtocolError);
}

#[test]
fn client_header_table_size_is_honoured_by_our_encoder() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::HEADER_TABLE_SIZE, 0)]);
    for stream in [1, 3] {
        peer.get(stream);
        peer.expect_request(stream);
        peer.conn
            .send_response(
                stream,
                StatusCode::OK,
                &header_map(&[("x-repeated", "same value every time")]),
                true,
            )
            .unwrap();
        peer.pump();
        let (fields, _) = peer.expect_headers(stream);
        assert_eq!(field(&fields, "x-repeated"), Some("same value every time"));
    }
}

#[test]
fn head_response_carries_no_body() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(1, &request_fields("HEAD", "/", &[]), true);
    peer.expect_request(1);
    peer.conn
        .send_response(
            1,
            StatusCode::OK,
            &header_map(&[("content-length", "5")]),
            false,
        )
        .unwrap();
    assert_eq!(peer.conn.send_data(1, b"hello", true), Ok(5));
    peer.pump();
    let (fields, _) = peer.expect_headers(1);
    assert_eq!(field(&fields, "content-length"), Some("5"));
    let (body, ended, _) = peer.take_data(1);
    assert!(
        body.is_empty(),
        "HEAD response carried {} body bytes",
        body.len()
    );
    assert!(
        ended
            || peer.log.iter().any(|o| matches!(
                o,
                Out::Headers {
                    stream: 1,
                    end_stream: true,
                    ..
                }
            ))
    );
}

#[test]
fn declared_content_length_over_max_body_size_is_answered_413() {
    let mut limits = Limits::default();
    limits.max_body_size = 1000;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[("content-length", "1001")]);
    assert!(
        !peer.saw_request(1),
        "request over max_body_size reached the application"
    );
    let (fields, end_stream) = peer.expect_headers(1);
    assert_eq!(field(&fields, ":status"), Some("413"));
    assert!(end_stream);
    peer.expect_no_connection_error();
}

#[test]
fn body_over_max_body_size_never_reaches_the_application() {
    let mut limits = Limits::default();
    limits.max_body_size = 1000;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    for _ in 0..4 {
        peer.data(1, &[b'b'; 400], false);
    }
    let (body, _) = peer.take_body(1);
    assert!(body.len() <= 1000, "{} body bytes surfaced", body.len());
    let ended = peer.events.iter().any(|e| {
        matches!(
            e,
            ServerEvent::Reset {
                stream: 1,
                by_peer: false,
                ..
            }
        )
    });
    assert!(ended, "the application was not told the stream is over");
    assert!(
        !peer.rsts_on(1).is_empty()
            || peer
                .out
                .iter()
                .any(|o| matches!(o, Out::Headers { stream: 1, .. }))
    );
    peer.expect_no_connection_error();
}

#[test]
fn more_fields_than_max_headers_is_refused() {
    let mut limits = Limits::default();
    limits.max_headers = 5;
    let mut peer = Peer::connect(limits);
    let extra: Vec<(String, String)> = (0..10)
        .map(|i| (format!("x-f{i}"), "v".to_owned()))
        .collect();
    let mut fields = get_fields("/");
    fields.extend(extra);
    peer.headers(1, &fields, true);
    assert!(!peer.saw_request(1));
    let answered_431 = peer.out.iter().any(|o| {
        matches!(o, Out::Headers { stream: 1, fields, .. } if field(fields, ":status") == Some("431"))
    });
    assert!(
        answered_431 || !peer.rsts_on(1).is_empty(),
        "neither 431 nor RST_STREAM"
    );
    peer.expect_no_connection_error();
}

#[test]
fn host_field_stands_in_for_authority() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &owned(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/h"),
            ("host", "example.org"),
        ]),
        true,
    );
    let (head, _) = peer.expect_request(1);
    assert_eq!(
        head.uri.authority().map(|a| a.as_str()),
        Some("example.org")
    );
}

#[test]
fn authority_and_host_that_disagree_are_malformed() {
    assert_malformed(request_fields("GET", "/", &[("host", "other.example")]));
}

#[test]
fn zero_content_length_with_end_stream_is_accepted() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &request_fields("POST", "/", &[("content-length", "0")]),
        true,
    );
    let (head, end_stream) = peer.expect_request(1);
    assert!(end_stream);
    assert_eq!(head.content_length, Some(0));
}

#[test]
fn nonzero_content_length_with_end_stream_on_headers_is_malformed() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &request_fields("POST", "/", &[("content-length", "5")]),
        true,
    );
    peer.expect_rst(1, ErrorCode::ProtocolError);
    assert!(!peer.saw_request(1));
}

#[test]
fn trailers_without_end_stream_are_malformed() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.data(1, b"x", false);
    peer.headers(1, &owned(&[("x-trailer", "1")]), false);
    peer.expect_rst(1, ErrorCode::ProtocolError);
    peer.expect_no_connection_error();
}

#[test]
fn final_response_twice_is_invalid_state() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(
        peer.conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), false),
        Err(SendError::InvalidState)
    );
}

#[test]
fn switching_protocols_is_refused_in_http2() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    assert_eq!(
        peer.conn
            .send_response(1, StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new(), false),
        Err(SendError::InvalidState)
    );
}

#[test]
fn second_push_gets_next_even_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let a: Uri = "https://example.com/a.css".parse().unwrap();
    let b: Uri = "https://example.com/b.js".parse().unwrap();
    let first = peer
        .conn
        .push_promise(1, &Method::GET, &a, &HeaderMap::new());
    let second = peer
        .conn
        .push_promise(1, &Method::GET, &b, &HeaderMap::new());
    assert_eq!((first, second), (Ok(2), Ok(4)));
}

#[test]
fn push_is_refused_when_client_allows_no_concurrent_streams() {
    let mut peer = Peer::connect_with(Limits::default(), &[(Settings::MAX_CONCURRENT_STREAMS, 0)]);
    peer.get(1);
    peer.expect_request(1);
    let uri: Uri = "https://example.com/a.css".parse().unwrap();
    assert_eq!(
        peer.conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
}

#[test]
fn push_is_refused_after_client_goaway() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.goaway(1, ErrorCode::NoError);
    let uri: Uri = "https://example.com/a.css".parse().unwrap();
    assert_eq!(
        peer.conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
}

#[test]
fn client_can_reset_a_pushed_stream() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let uri: Uri = "https://example.com/a.css".parse().unwrap();
    let promised = peer
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    peer.pump();
    peer.rst(promised, ErrorCode::Cancel);
    peer.expect_no_connection_error();
    let late = peer
        .conn
        .send_response(promised, StatusCode::OK, &HeaderMap::new(), true);
    assert_eq!(late, Err(SendError::StreamClosed));
}

#[test]
fn client_goaway_closes_after_open_streams_finish() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    peer.goaway(1, ErrorCode::NoError);
    assert!(!peer.conn.is_closed(), "closed with a response still owed");
    peer.respond(1, 200, b"bye");
    assert_eq!(peer.take_data(1).0, b"bye");
    peer.expect_closed();
}

#[test]
fn eof_resets_open_streams_and_closes() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.conn.receive_eof();
    peer.pump();
    assert!(
        peer.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Reset { stream: 1, .. })),
        "the application was not told stream 1 is over: {:?}",
        peer.events
    );
    peer.expect_closed();
}

#[test]
fn acknowledged_settings_do_not_time_out() {
    let mut limits = Limits::default();
    limits.h2.settings_timeout = secs(5);
    limits.h2.idle_timeout = secs(3600);
    let mut peer = Peer::connect(limits);
    peer.advance(secs(60));
    peer.expect_no_connection_error();
    assert!(!peer.conn.is_closed());
}

#[test]
fn connection_without_any_stream_closes_after_idle_timeout() {
    let mut limits = Limits::default();
    limits.h2.idle_timeout = secs(5);
    let mut peer = Peer::connect(limits);
    peer.advance(secs(6));
    assert_eq!(peer.goaways().last().map(|g| g.1), Some(ErrorCode::NoError));
    peer.expect_closed();
}

#[test]
fn data_on_upgraded_stream_one_is_stream_closed() {
    let mut peer = Peer::upgraded(Limits::default(), &Settings::new());
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[]);
    peer.settings_ack();
    peer.data(1, b"more", false);
    peer.expect_stream_or_connection_error(1, ErrorCode::StreamClosed);
}

#[test]
fn trailers_split_over_continuation_are_accepted() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.data(1, b"abc", false);
    let block = peer.block(&owned(&[("x-one", "1"), ("x-two", "2")]));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block.slice(..3),
    });
    peer.send(Frame::Continuation {
        stream: 1,
        end_headers: true,
        fragment: block.slice(3..),
    });
    peer.expect_request(1);
    let trailers = peer.expect_trailers(1);
    assert_eq!(trailers.get("x-two").unwrap(), "2");
}

#[test]
fn empty_data_with_end_stream_ends_the_body() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.data(1, b"abc", false);
    peer.data(1, b"", true);
    peer.expect_request(1);
    assert_eq!(peer.take_body(1), (b"abc".to_vec(), true));
    peer.expect_no_connection_error();
}

#[test]
fn plain_connect_is_accepted() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(
        1,
        &owned(&[(":method", "CONNECT"), (":authority", "example.com:443")]),
        false,
    );
    let (head, end_stream) = peer.expect_request(1);
    assert!(!end_stream);
    assert_eq!(head.method, Method::CONNECT);
    assert_eq!(
        head.uri.authority().map(|a| a.as_str()),
        Some("example.com:443")
    );
    assert_eq!(head.protocol, None);
}

#[test]
fn empty_path_is_malformed() {
    assert_malformed(owned(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", ""),
    ]));
}

#[test]
fn table_size_update_above_our_setting_is_compression_error() {
    let mut peer = Peer::connect(Limits::default());
    let mut block = Vec::new();
    h2_peer::hpack_int(8192, 5, 0x20, &mut block);
    block.extend_from_slice(&[0x82, 0x87, 0x84]);
    peer.raw_headers(1, block, true);
    peer.expect_connection_error(ErrorCode::CompressionError);
}

#[test]
fn response_may_finish_before_the_request_body() {
    let mut peer = Peer::connect(Limits::default());
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.respond(1, 200, b"early");
    assert_eq!(peer.take_data(1).0, b"early");
    peer.data(1, b"late body", false);
    peer.data(1, b"", true);
    peer.expect_no_connection_error();
    assert!(
        peer.rsts_on(1)
            .iter()
            .all(|code| *code == ErrorCode::NoError),
        "only RST_STREAM NO_ERROR may ask the client to stop (§8.1): {:?}",
        peer.rsts_on(1)
    );
}

#[test]
fn large_push_promise_uses_continuation() {
    let mut peer = Peer::connect(Limits::default());
    peer.get(1);
    peer.expect_request(1);
    let value: String = (0..30_000u32)
        .map(|i| char::from(b'!' + ((i * 7919) % 90) as u8))
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-large", HeaderValue::from_str(&value).unwrap());
    let uri: Uri = "https://example.com/big".parse().unwrap();
    let promised = peer
        .conn
        .push_promise(1, &Method::GET, &uri, &headers)
        .unwrap();
    peer.pump();
    let fields = peer.out.iter().find_map(|o| match o {
        Out::PushPromise {
            promised: p,
            fields,
            ..
        } if *p == promised => Some(fields.clone()),
        _ => None,
    });
    let fields = fields.expect("a PUSH_PROMISE");
    assert_eq!(field(&fields, "x-large"), Some(value.as_str()));
    assert_eq!(field(&fields, ":path"), Some("/big"));
}

#[test]
fn data_received_before_our_smaller_window_took_effect_is_accepted() {
    let mut limits = Limits::default();
    limits.h2.initial_window_size = 1000;
    let mut peer = Peer::new(limits);
    peer.send_raw(weft_core::h2::PREFACE);
    peer.settings(&[]);
    // Sent before the client applied our SETTINGS: 65 535 still holds (§6.5.3, §6.9.2).
    peer.post(1, &[]);
    peer.data(1, &[b'e'; 5000], false);
    peer.settings_ack();
    peer.expect_no_connection_error();
    assert!(peer.rsts_on(1).is_empty(), "{:?}", peer.rsts_on(1));
    peer.expect_request(1);
    let (body, _) = peer.take_body(1);
    assert_eq!(body.len(), 5000);
    // The client's window is now 65 535 - 5 000 + (1 000 - 65 535) = -4 000: releasing the
    // body must bring it back above zero, and the client may then send what it grants.
    peer.conn.release_capacity(1, 5000);
    peer.pump();
    let granted: i64 = peer
        .log
        .iter()
        .filter_map(|o| match o {
            Out::Frame(Frame::WindowUpdate {
                stream: 1,
                increment,
            }) => Some(i64::from(*increment)),
            _ => None,
        })
        .sum();
    let window = granted - 4000;
    assert!(window > 0, "stream window stuck at {window}");
    peer.data(1, &vec![b'f'; window as usize], true);
    peer.expect_no_connection_error();
    assert!(peer.rsts_on(1).is_empty());
}

/// The client's connection send window after it sent `sent` DATA bytes (§6.9).
fn client_connection_window(peer: &Peer, sent: i64) -> i64 {
    65_535 + peer.window_credit(0) - sent
}

/// Sends `len` bytes of DATA on `stream` in frames of at most 16 384.
fn send_body(peer: &mut Peer, stream: u32, len: usize) {
    let mut left = len;
    while left > 0 {
        let n = left.min(16_384);
        peer.data(stream, &vec![b'b'; n], false);
        left -= n;
    }
}

/// Stream 1 received 60 000 body bytes the application never released; `drop_stream` ends
/// it. The connection window must come back (all but less than half of it may be held back
/// to batch WINDOW_UPDATEs), and the client may then fill it on stream 3.
fn assert_dropped_body_returns_to_connection_window(drop_stream: impl FnOnce(&mut Peer)) {
    let mut limits = Limits::default();
    limits.h2.connection_window_size = 65_535;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    send_body(&mut peer, 1, 60_000);
    drop_stream(&mut peer);
    peer.pump();
    let window = client_connection_window(&peer, 60_000);
    assert!(window > 65_535 / 2, "connection window stuck at {window}");
    peer.post(3, &[]);
    send_body(&mut peer, 3, window as usize);
    peer.expect_no_connection_error();
}

#[test]
fn body_of_stream_reset_by_application_returns_to_connection_window() {
    assert_dropped_body_returns_to_connection_window(|peer| {
        peer.conn.reset(1, ErrorCode::Cancel);
    });
}

#[test]
fn body_of_stream_reset_by_client_returns_to_connection_window() {
    assert_dropped_body_returns_to_connection_window(|peer| {
        peer.rst(1, ErrorCode::Cancel);
        peer.expect_reset_event(1, ErrorCode::Cancel, true);
    });
}

#[test]
fn data_arriving_after_our_reset_returns_to_connection_window() {
    let mut limits = Limits::default();
    limits.h2.connection_window_size = 65_535;
    let mut peer = Peer::connect(limits);
    peer.post(1, &[]);
    peer.expect_request(1);
    peer.conn.reset(1, ErrorCode::Cancel);
    peer.pump();
    // In flight when our RST_STREAM left: ignored, but counted and given back (§6.9).
    send_body(&mut peer, 1, 60_000);
    let window = client_connection_window(&peer, 60_000);
    assert!(window > 65_535 / 2, "connection window stuck at {window}");
    peer.post(3, &[]);
    send_body(&mut peer, 3, window as usize);
    peer.expect_no_connection_error();
}

#[test]
fn smaller_header_table_size_of_ours_is_used_by_the_client() {
    let mut limits = Limits::default();
    limits.h2.header_table_size = 1024;
    let mut peer = Peer::connect(limits);
    for i in 0..5u32 {
        let stream = 2 * i + 1;
        let fields = request_fields("GET", "/", &[("x-repeat", "a value worth indexing")]);
        peer.headers(stream, &fields, true);
        let (head, _) = peer.expect_request(stream);
        assert_eq!(
            head.headers.get("x-repeat").unwrap(),
            "a value worth indexing"
        );
    }
    peer.expect_no_connection_error();
}

#[test]
fn headers_with_priority_fields_and_padding_are_accepted() {
    let mut peer = Peer::connect(Limits::default());
    let fragment = peer.block(&get_fields("/p"));
    peer.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: true,
        priority: Some(weft_core::h2::Priority {
            exclusive: true,
            dependency: 0,
            weight: 200,
        }),
        pad_len: Some(3),
        fragment,
    });
    let (head, _) = peer.expect_request(1);
    assert_eq!(head.uri.path(), "/p");
}

#[test]
fn field_name_with_space_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("x bad", "1")]));
}

#[test]
fn field_value_with_leading_whitespace_is_malformed() {
    assert_malformed(request_fields("GET", "/", &[("x-pad", " padded")]));
}

#[test]
fn path_without_leading_slash_is_malformed() {
    assert_malformed(owned(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", "index.html"),
    ]));
}

#[test]
fn asterisk_path_for_options_is_accepted() {
    let mut peer = Peer::connect(Limits::default());
    peer.headers(1, &request_fields("OPTIONS", "*", &[]), true);
    let (head, _) = peer.expect_request(1);
    assert_eq!(head.method, Method::OPTIONS);
    assert_eq!(head.uri.path(), "*");
}

#[test]
fn plain_connect_with_path_is_malformed() {
    assert_malformed(owned(&[
        (":method", "CONNECT"),
        (":authority", "example.com:443"),
        (":scheme", "https"),
        (":path", "/"),
    ]));
}

#[test]
fn extended_connect_without_path_is_malformed() {
    assert_malformed(owned(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":authority", "example.com"),
    ]));
}

/// Answers 300 requests with heads drawn from a small set (repeats, changing dates, sensitive
/// fields), and checks every block the client decodes is exactly the head it was sent for:
/// whatever the encoder reuses or indexes, the client's table stays in step.
fn assert_many_heads_decode(client_settings: &[(u16, u32)]) {
    let mut peer = Peer::connect_with(Limits::default(), client_settings);
    let choices: [&[(&'static str, &'static str)]; 5] = [
        &[("content-type", "text/html")],
        &[("content-type", "text/html")],
        &[
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        &[
            ("set-cookie", "id=1"),
            ("x-long", "a value long enough to be worth indexing"),
        ],
        &[],
    ];
    let statuses = [200u16, 200, 404, 304, 200];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let pick = (seed % 5) as usize;
        if i % 10 == 0 {
            let date = format!("Sun, 29 Nov 2026 03:{:02}:{:02} GMT", i / 60, i % 60);
            peer.conn.set_date(HeaderValue::from_str(&date).unwrap());
        }
        let stream = 2 * i + 1;
        peer.get(stream);
        peer.expect_request(stream);
        let status = StatusCode::from_u16(statuses[pick]).unwrap();
        peer.conn
            .send_response(stream, status, &header_map(choices[pick]), true)
            .unwrap();
        peer.pump();
        let (fields, _) = peer.expect_headers(stream);
        assert_eq!(
            fields.first().map(|(n, v)| (n.as_str(), v.as_str())),
            Some((":status", status.as_str())),
            "response {i}"
        );
        let mut got: Vec<(String, String)> = fields[1..]
            .iter()
            .filter(|(n, _)| n != "date")
            .cloned()
            .collect();
        got.sort();
        let mut want = owned(choices[pick]);
        want.sort();
        assert_eq!(got, want, "response {i}");
        let date = format!(
            "Sun, 29 Nov 2026 03:{:02}:{:02} GMT",
            (i / 10 * 10) / 60,
            (i / 10 * 10) % 60
        );
        assert_eq!(
            field_values(&fields, "date"),
            vec![date.as_str()],
            "response {i}"
        );
    }
    peer.expect_no_connection_error();
}

#[test]
fn many_response_heads_decode_exactly() {
    assert_many_heads_decode(&[]);
}

#[test]
fn many_response_heads_decode_exactly_with_a_tiny_client_table() {
    assert_many_heads_decode(&[(Settings::HEADER_TABLE_SIZE, 100)]);
}

#[test]
fn many_response_heads_decode_exactly_after_the_client_table_shrinks() {
    let mut peer = Peer::connect(Limits::default());
    for i in 0..5u32 {
        let stream = 2 * i + 1;
        peer.get(stream);
        peer.expect_request(stream);
        peer.conn
            .send_response(
                stream,
                StatusCode::OK,
                &header_map(&[("x-cached", "value one")]),
                true,
            )
            .unwrap();
        peer.pump();
        peer.expect_headers(stream);
    }
    // The table shrinks to nothing: what was indexed is gone (RFC 7541 §4.3).
    peer.settings(&[(Settings::HEADER_TABLE_SIZE, 0)]);
    for i in 5..10u32 {
        let stream = 2 * i + 1;
        peer.get(stream);
        peer.expect_request(stream);
        peer.conn
            .send_response(
                stream,
                StatusCode::OK,
                &header_map(&[("x-cached", "value one")]),
                true,
            )
            .unwrap();
        peer.pump();
        let (fields, _) = peer.expect_headers(stream);
        assert_eq!(field(&fields, "x-cached"), Some("value one"));
    }
    peer.expect_no_connection_error();
}
