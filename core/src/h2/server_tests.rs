//! Unit tests of the server connection: an in-memory client builds frames with [`encode`] and
//! an HPACK [`Encoder`], feeds them to `receive`, and reads the answer back with [`decode`].

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::*;
use crate::Limits;
use crate::hpack::{Decoder, Encoder, HeaderField};

/// The client end of an in-memory connection.
struct Client {
    conn: ServerConnection,
    encoder: Encoder,
    decoder: Decoder,
    now: Instant,
    /// Server output not yet decoded into frames.
    pending: BytesMut,
}

fn limits() -> Limits {
    Limits::default()
}

impl Client {
    /// A connection whose preface and SETTINGS exchange is done and whose output is drained.
    fn connected(limits: Limits) -> Client {
        let mut client = Client::raw(limits);
        client.preface();
        client.send(settings_frame(&[]));
        client.send(Frame::Settings {
            ack: true,
            settings: Settings::new(),
        });
        client.frames();
        client
    }

    fn raw(limits: Limits) -> Client {
        let now = crate::test_clock::start();
        Client {
            conn: ServerConnection::new(limits, now),
            encoder: Encoder::new(4096),
            decoder: Decoder::new(4096, 1 << 20),
            now,
            pending: BytesMut::new(),
        }
    }

    fn preface(&mut self) {
        self.receive(PREFACE);
    }

    fn receive(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let taken = self.conn.receive(self.now, rest);
            assert!(taken > 0, "connection took nothing");
            rest = &rest[taken..];
        }
    }

    fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf).unwrap();
        self.receive(&buf);
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Bytes {
        let fields: Vec<HeaderField> = fields
            .iter()
            .map(|(n, v)| HeaderField::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let mut block = BytesMut::new();
        self.encoder.encode(&fields, &mut block);
        block.freeze()
    }

    fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let fragment = self.block(fields);
        self.send(Frame::Headers {
            stream,
            end_stream,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment,
        });
    }

    fn get(&mut self, stream: u32) {
        self.headers(stream, GET, true);
    }

    fn post(&mut self, stream: u32, extra: &[(&str, &str)]) {
        let mut fields = POST.to_vec();
        fields.extend_from_slice(extra);
        self.headers(stream, &fields, false);
    }

    fn data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        self.send(Frame::Data {
            stream,
            end_stream,
            pad_len: None,
            data: Bytes::copy_from_slice(data),
        });
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn frames(&mut self) -> Vec<Frame> {
        while let Some(bytes) = self.conn.poll_transmit(self.now) {
            self.pending.extend_from_slice(&bytes);
        }
        let mut frames = Vec::new();
        while let Some(frame) = decode(&mut self.pending, MAX_PAYLOAD_LEN).unwrap() {
            frames.push(frame);
        }
        frames
    }

    /// The fields of a complete block sent as one HEADERS frame.
    fn fields(&mut self, fragment: &Bytes) -> Vec<(String, String)> {
        self.decoder
            .decode(fragment)
            .unwrap()
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.to_vec()).unwrap(),
                    String::from_utf8(f.value.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(self.now);
    }
}

const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/"),
];

const POST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/upload"),
];

fn settings_frame(pairs: &[(u16, u32)]) -> Frame {
    Frame::Settings {
        ack: false,
        settings: pairs.iter().copied().collect(),
    }
}

fn goaway_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway { code, .. } => Some(*code),
        _ => None,
    })
}

fn rst_code(frames: &[Frame], id: u32) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        Frame::RstStream { stream, code } if *stream == id => Some(*code),
        _ => None,
    })
}

fn connection_error(events: &[ServerEvent]) -> Option<ErrorCode> {
    events.iter().find_map(|e| match e {
        ServerEvent::Error(error) => Some(error.code),
        _ => None,
    })
}

fn requests(events: &[ServerEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Request { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect()
}

/// Expects the connection to have failed with `code`: an Error event, a GOAWAY, and closed.
fn assert_connection_error(client: &mut Client, code: ErrorCode) {
    let events = client.events();
    assert_eq!(connection_error(&events), Some(code), "events: {events:?}");
    let frames = client.frames();
    assert_eq!(goaway_code(&frames), Some(code), "frames: {frames:?}");
    assert!(client.conn.is_closed());
}

// ----- opening -----

#[test]
fn sends_settings_and_window_update_then_acks_client_settings() {
    let mut limits = limits();
    limits.h2.max_concurrent_streams = 7;
    limits.h2.connection_window_size = 1 << 20;
    let mut client = Client::raw(limits);
    let frames = client.frames();
    let Frame::Settings {
        ack: false,
        settings,
    } = &frames[0]
    else {
        panic!("first frame {:?}", frames[0]);
    };
    assert_eq!(settings.max_concurrent_streams(), Some(7));
    assert_eq!(settings.get(0x8), Some(1));
    assert_eq!(settings.max_header_list_size(), Some(16 * 1024));
    assert_eq!(
        frames[1],
        Frame::WindowUpdate {
            stream: 0,
            increment: (1 << 20) - 65_535
        }
    );
    client.preface();
    client.send(settings_frame(&[(Settings::MAX_FRAME_SIZE, 20_000)]));
    let frames = client.frames();
    assert!(matches!(&frames[..], [Frame::Settings { ack: true, .. }]));
    assert!(client.conn.wants_read());
}

#[test]
fn bad_preface_is_a_protocol_error() {
    let mut client = Client::raw(limits());
    client.frames();
    client.receive(b"GET / HTTP/1.1\r\n\r\n");
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
    assert!(!client.conn.wants_read());
}

#[test]
fn first_frame_must_be_settings() {
    let mut client = Client::raw(limits());
    client.preface();
    client.send(Frame::Ping {
        ack: false,
        data: [0; 8],
    });
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn preface_byte_at_a_time() {
    let mut client = Client::raw(limits());
    for byte in PREFACE.iter() {
        client.receive(&[*byte]);
    }
    client.send(settings_frame(&[]));
    assert!(client.events().is_empty());
    assert!(!client.conn.is_closed());
}

// ----- serving -----

#[test]
fn serves_a_get_with_a_body() {
    let mut client = Client::connected(limits());
    client
        .conn
        .set_date(HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
    client.get(1);
    let events = client.events();
    let [
        ServerEvent::Request {
            stream: 1,
            head,
            end_stream: true,
        },
    ] = &events[..]
    else {
        panic!("events {events:?}");
    };
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.uri.path(), "/");
    let mut headers = HeaderMap::new();
    headers.insert("content-length", HeaderValue::from_static("5"));
    client
        .conn
        .send_response(1, StatusCode::OK, &headers, false)
        .unwrap();
    assert_eq!(client.conn.send_capacity(1), 5);
    assert_eq!(client.conn.send_data(1, b"hello", true), Ok(5));
    let frames = client.frames();
    let Frame::Headers {
        stream: 1,
        end_stream: false,
        end_headers: true,
        fragment,
        ..
    } = &frames[0]
    else {
        panic!("frames {frames:?}");
    };
    let fields = client.fields(fragment);
    assert_eq!(fields[0], (":status".into(), "200".into()));
    assert!(fields.contains(&("date".into(), "Sun, 06 Nov 1994 08:49:37 GMT".into())));
    assert_eq!(
        frames[1],
        Frame::Data {
            stream: 1,
            end_stream: true,
            pad_len: None,
            data: Bytes::from_static(b"hello")
        }
    );
    // The stream is over.
    assert_eq!(
        client.conn.send_data(1, b"x", true),
        Err(SendError::StreamClosed)
    );
    assert_eq!(
        client
            .conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), true),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn response_send_rules() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    assert_eq!(
        client.conn.send_data(1, b"x", false),
        Err(SendError::InvalidState)
    );
    assert_eq!(
        client
            .conn
            .send_response(1, StatusCode::SWITCHING_PROTOCOLS, &HeaderMap::new(), false),
        Err(SendError::InvalidState)
    );
    client
        .conn
        .send_response(1, StatusCode::CONTINUE, &HeaderMap::new(), false)
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-length", HeaderValue::from_static("3"));
    assert_eq!(
        client.conn.send_response(1, StatusCode::OK, &headers, true),
        Err(SendError::ContentLengthMismatch)
    );
    client
        .conn
        .send_response(1, StatusCode::OK, &headers, false)
        .unwrap();
    assert_eq!(
        client.conn.send_data(1, b"abcd", false),
        Err(SendError::ContentLengthMismatch)
    );
    assert_eq!(
        client.conn.send_data(1, b"ab", true),
        Err(SendError::ContentLengthMismatch)
    );
    assert_eq!(client.conn.send_data(1, b"ab", false), Ok(2));
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    assert_eq!(
        client.conn.send_trailers(1, &trailers),
        Err(SendError::ContentLengthMismatch)
    );
    assert_eq!(client.conn.send_data(1, b"c", false), Ok(1));
    client.conn.send_trailers(1, &trailers).unwrap();
    let frames = client.frames();
    let last = frames.last().unwrap();
    assert!(
        matches!(
            last,
            Frame::Headers {
                end_stream: true,
                ..
            }
        ),
        "{frames:?}"
    );
    assert_eq!(
        client.conn.send_data(9, b"c", false),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn request_body_trailers_and_content_length() {
    let mut client = Client::connected(limits());
    client.post(1, &[("content-length", "5")]);
    client.data(1, b"hel", false);
    client.data(1, b"lo", false);
    let trailers = client.block(&[("x-checksum", "1")]);
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: true,
        priority: None,
        pad_len: None,
        fragment: trailers,
    });
    let events = client.events();
    assert!(matches!(
        &events[0],
        ServerEvent::Request {
            stream: 1,
            end_stream: false,
            ..
        }
    ));
    assert!(
        matches!(&events[1], ServerEvent::Data { data, end_stream: false, .. } if &data[..] == b"hel")
    );
    assert!(matches!(&events[2], ServerEvent::Data { data, .. } if &data[..] == b"lo"));
    assert!(
        matches!(&events[3], ServerEvent::Trailers { trailers, .. } if trailers["x-checksum"] == "1")
    );

    // Too much body for content-length: stream error PROTOCOL_ERROR, the application told.
    client.post(3, &[("content-length", "2")]);
    client.data(3, b"abc", true);
    let events = client.events();
    assert!(matches!(
        &events[1],
        ServerEvent::Reset {
            stream: 3,
            code: ErrorCode::ProtocolError,
            by_peer: false
        }
    ));
    assert_eq!(
        rst_code(&client.frames(), 3),
        Some(ErrorCode::ProtocolError)
    );
    // END_STREAM before content-length is reached.
    client.post(5, &[("content-length", "2")]);
    client.data(5, b"a", true);
    assert_eq!(
        rst_code(&client.frames(), 5),
        Some(ErrorCode::ProtocolError)
    );
    assert!(!client.conn.is_closed());
}

#[test]
fn window_update_only_after_half_the_window_is_released() {
    let mut limits = limits();
    limits.h2.initial_window_size = 1000;
    limits.h2.connection_window_size = 100_000;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.data(1, &[1; 400], false);
    client.events();
    client.conn.release_capacity(1, 400);
    assert!(
        client.frames().is_empty(),
        "no update below half the window"
    );
    client.data(1, &[1; 200], false);
    client.events();
    client.conn.release_capacity(1, 200);
    let frames = client.frames();
    assert_eq!(
        frames,
        vec![Frame::WindowUpdate {
            stream: 1,
            increment: 600
        }]
    );
    // Releasing more than was received changes nothing.
    client.conn.release_capacity(1, 10_000);
    assert!(client.frames().is_empty());
}

#[test]
fn padding_is_released_at_once() {
    let mut limits = limits();
    limits.h2.initial_window_size = 100;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.send(Frame::Data {
        stream: 1,
        end_stream: false,
        pad_len: Some(60),
        data: Bytes::from_static(b"abc"),
    });
    client.events();
    let frames = client.frames();
    assert_eq!(
        frames,
        vec![Frame::WindowUpdate {
            stream: 1,
            increment: 61
        }]
    );
}

#[test]
fn data_beyond_the_stream_window_is_a_flow_control_error() {
    let mut limits = limits();
    limits.h2.initial_window_size = 100;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.data(1, &[0; 101], false);
    let events = client.events();
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::FlowControlError,
            ..
        })
    ));
    assert_eq!(
        rst_code(&client.frames(), 1),
        Some(ErrorCode::FlowControlError)
    );
}

#[test]
fn data_beyond_the_connection_window_is_a_connection_error() {
    let mut limits = limits();
    limits.h2.connection_window_size = 0;
    let mut client = Client::connected(limits);
    // 65 535 bytes fit the default connection window; the 65 536th does not.
    for id in [1, 3] {
        client.post(id, &[]);
        client.data(id, &[0; 16_384], false);
        client.data(id, &[0; 16_383], false);
    }
    assert!(connection_error(&client.events()).is_none());
    client.data(1, &[0; 2], false);
    assert_connection_error(&mut client, ErrorCode::FlowControlError);
}

#[test]
fn send_data_takes_what_the_windows_allow() {
    let mut client = Client::connected(limits());
    client.send(settings_frame(&[(Settings::INITIAL_WINDOW_SIZE, 10)]));
    client.get(1);
    client.events();
    client.frames();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(client.conn.send_data(1, &[7; 25], true), Ok(10));
    assert_eq!(client.conn.send_capacity(1), 0);
    assert_eq!(client.conn.send_data(1, &[7; 15], true), Ok(0));
    client.send(Frame::WindowUpdate {
        stream: 1,
        increment: 100,
    });
    assert_eq!(client.conn.send_data(1, &[7; 15], true), Ok(15));
    let frames = client.frames();
    let sizes: Vec<(usize, bool)> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data {
                data, end_stream, ..
            } => Some((data.len(), *end_stream)),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![(10, false), (15, true)]);
}

#[test]
fn lower_initial_window_makes_the_send_window_negative() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(client.conn.send_data(1, &[0; 1000], false), Ok(1000));
    client.send(settings_frame(&[(Settings::INITIAL_WINDOW_SIZE, 500)]));
    // Window is 500 - 1000 = -500: WINDOW_UPDATE of 600 leaves 100.
    client.send(Frame::WindowUpdate {
        stream: 1,
        increment: 600,
    });
    assert_eq!(client.conn.send_capacity(1), 100);
}

#[test]
fn send_data_is_bounded_by_the_output_buffer() {
    let mut limits = limits();
    limits.max_buffered_output = 1000;
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let pending = client.conn.pending_output();
    let taken = client.conn.send_data(1, &[0; 5000], false).unwrap();
    assert_eq!(taken, 1000 - pending);
    assert_eq!(client.conn.send_data(1, &[0; 5000], false), Ok(0));
    client.frames();
    assert_eq!(client.conn.send_data(1, &[0; 5000], false), Ok(1000));
}

#[test]
fn large_response_head_is_split_into_continuations() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    let mut headers = HeaderMap::new();
    for i in 0..10 {
        let value = HeaderValue::from_str(&"v".repeat(3000 + i)).unwrap();
        headers.insert(
            http::HeaderName::from_bytes(format!("x-big-{i}").as_bytes()).unwrap(),
            value,
        );
    }
    client
        .conn
        .send_response(1, StatusCode::OK, &headers, true)
        .unwrap();
    let frames = client.frames();
    let mut block = BytesMut::new();
    for (i, frame) in frames.iter().enumerate() {
        match frame {
            Frame::Headers {
                fragment,
                end_headers: false,
                end_stream: true,
                ..
            } if i == 0 => block.extend_from_slice(fragment),
            Frame::Continuation {
                fragment,
                end_headers,
                ..
            } if i > 0 => {
                assert_eq!(*end_headers, i == frames.len() - 1);
                block.extend_from_slice(fragment);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(frames.len() >= 2);
    let fields = client.fields(&block.freeze());
    assert_eq!(fields.len(), 11);
}

#[test]
fn request_split_over_continuations() {
    let mut client = Client::connected(limits());
    let block = client.block(GET);
    let (a, b) = block.split_at(3);
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: Bytes::copy_from_slice(a),
    });
    assert!(client.events().is_empty());
    client.send(Frame::Continuation {
        stream: 1,
        end_headers: true,
        fragment: Bytes::copy_from_slice(b),
    });
    assert_eq!(requests(&client.events()), vec![1]);
}

#[test]
fn ping_is_acknowledged() {
    let mut client = Client::connected(limits());
    client.send(Frame::Ping {
        ack: false,
        data: *b"12345678",
    });
    assert_eq!(
        client.frames(),
        vec![Frame::Ping {
            ack: true,
            data: *b"12345678"
        }]
    );
}

#[test]
fn client_reset_is_reported() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.send(Frame::RstStream {
        stream: 1,
        code: ErrorCode::Cancel,
    });
    let events = client.events();
    assert!(matches!(
        events[1],
        ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::Cancel,
            by_peer: true
        }
    ));
    assert_eq!(
        client
            .conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), true),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn app_reset_sends_rst_stream_and_ignores_late_frames() {
    let mut client = Client::connected(limits());
    client.post(1, &[]);
    client.events();
    client.conn.reset(1, ErrorCode::Cancel);
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::Cancel));
    client.data(1, b"late", false);
    assert!(client.events().is_empty());
    assert!(client.frames().is_empty());
}

/// The two GOAWAYs of a graceful shutdown (§6.8) and the PING between them.
const FIRST_GOAWAY_ID: u32 = (1 << 31) - 1;

impl Client {
    /// Takes the output and expects the first GOAWAY (last-stream-id 2^31-1) and a PING;
    /// returns the PING's data.
    fn expect_first_goaway(&mut self) -> [u8; 8] {
        match &self.frames()[..] {
            [
                Frame::GoAway {
                    last_stream: FIRST_GOAWAY_ID,
                    code: ErrorCode::NoError,
                    ..
                },
                Frame::Ping { ack: false, data },
            ] => *data,
            other => panic!("expected GOAWAY 2^31-1 and a PING, got {other:?}"),
        }
    }

    /// Takes the output and expects exactly one GOAWAY `NO_ERROR`; returns its last-stream-id.
    fn expect_final_goaway(&mut self) -> u32 {
        match &self.frames()[..] {
            [
                Frame::GoAway {
                    last_stream,
                    code: ErrorCode::NoError,
                    ..
                },
            ] => *last_stream,
            other => panic!("expected the final GOAWAY, got {other:?}"),
        }
    }

    fn ping_ack(&mut self, data: [u8; 8]) {
        self.send(Frame::Ping { ack: true, data });
    }

    fn ok(&mut self, stream: u32) {
        self.conn
            .send_response(stream, StatusCode::OK, &HeaderMap::new(), true)
            .unwrap();
    }
}

#[test]
fn graceful_shutdown_sends_two_goaways_around_a_ping() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.conn.shutdown();
    assert!(
        client.frames().is_empty(),
        "shutdown twice sends nothing more"
    );
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 1);
    assert!(!client.conn.is_closed(), "stream 1 is still open");
    client.ok(1);
    assert!(!client.frames().is_empty());
    assert!(client.conn.is_closed());
}

#[test]
fn stream_opened_between_the_goaways_is_served() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.get(3);
    assert_eq!(requests(&client.events()), vec![1, 3]);
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 3);
    client.ok(3);
    client.frames();
    assert!(!client.conn.is_closed());
    client.ok(1);
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn stream_opened_after_the_final_goaway_is_ignored() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 1);
    client.post(3, &[]);
    client.data(3, b"ignored", false);
    client.send(Frame::WindowUpdate {
        stream: 3,
        increment: 10,
    });
    client.send(Frame::RstStream {
        stream: 3,
        code: ErrorCode::Cancel,
    });
    client.send(Frame::Priority {
        stream: 3,
        priority: Priority {
            exclusive: false,
            dependency: 3,
            weight: 0,
        },
    });
    // Frames on a higher stream that never had HEADERS are ignored too, not protocol errors,
    // even when broken.
    client.data(7, b"x", true);
    client.send(Frame::WindowUpdate {
        stream: 9,
        increment: 0,
    });
    assert!(client.events().is_empty(), "stream after the final GOAWAY");
    assert!(client.frames().is_empty());
    assert!(!client.conn.is_closed());
    client.ok(1);
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn unanswered_shutdown_ping_still_ends_with_the_final_goaway() {
    let mut limits = limits();
    limits.h2.settings_timeout = Duration::from_secs(2);
    limits.h2.idle_timeout = Duration::from_secs(3600);
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    client.conn.shutdown();
    client.expect_first_goaway();
    assert_eq!(
        client.conn.poll_timeout(),
        Some(client.now + Duration::from_secs(2))
    );
    client.advance(Duration::from_secs(1));
    assert!(client.frames().is_empty(), "still waiting for the ACK");
    client.advance(Duration::from_secs(1));
    assert_eq!(client.expect_final_goaway(), 1);
    client.ok(1);
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn idle_connection_whose_client_never_acks_closes_at_the_bound() {
    let mut limits = limits();
    limits.h2.settings_timeout = Duration::from_secs(2);
    limits.h2.idle_timeout = Duration::from_secs(3600);
    let mut client = Client::connected(limits);
    client.conn.shutdown();
    client.expect_first_goaway();
    assert!(!client.conn.is_closed(), "a stream may still be in flight");
    client.advance(Duration::from_secs(2));
    assert_eq!(client.expect_final_goaway(), 0);
    assert!(client.conn.is_closed());
    assert_eq!(client.conn.poll_timeout(), None);
}

#[test]
fn shutdown_on_an_idle_connection_closes_on_the_ack() {
    let mut client = Client::connected(limits());
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 0);
    assert!(client.conn.is_closed());
}

#[test]
fn shutdown_ping_ack_is_not_counted_as_a_ping_flood() {
    let mut limits = limits();
    limits.h2.max_ping_frames = 0;
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 1);
    assert!(connection_error(&client.events()).is_none());
    // A second ACK answers nothing of ours: it is the client's PING traffic.
    client.ping_ack(ping);
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn other_ping_acks_do_not_end_the_shutdown_wait() {
    let mut client = Client::connected(limits());
    client.conn.shutdown();
    client.expect_first_goaway();
    client.ping_ack(*b"not-ours");
    assert!(client.frames().is_empty());
    assert!(!client.conn.is_closed());
}

#[test]
fn abort_closes_at_once() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.conn.abort(ErrorCode::InternalError);
    assert_eq!(
        goaway_code(&client.frames()),
        Some(ErrorCode::InternalError)
    );
    assert!(client.conn.is_closed());
    assert_eq!(
        client
            .conn
            .send_response(1, StatusCode::OK, &HeaderMap::new(), true),
        Err(SendError::Closed)
    );
}

#[test]
fn client_goaway_is_reported_and_closes_when_drained() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.send(Frame::GoAway {
        last_stream: 0,
        code: ErrorCode::NoError,
        debug: Bytes::new(),
    });
    let events = client.events();
    assert!(matches!(
        events[1],
        ServerEvent::GoAway {
            code: ErrorCode::NoError
        }
    ));
    assert!(!client.conn.is_closed());
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn connection_window_overflow_is_a_connection_error() {
    let mut client = Client::connected(limits());
    client.send(Frame::WindowUpdate {
        stream: 0,
        increment: (1 << 31) - 1,
    });
    assert_connection_error(&mut client, ErrorCode::FlowControlError);
}

#[test]
fn stream_window_overflow_is_a_stream_error() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.send(Frame::WindowUpdate {
        stream: 1,
        increment: (1 << 31) - 1,
    });
    let events = client.events();
    assert!(matches!(
        events[1],
        ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::FlowControlError,
            by_peer: false
        }
    ));
    assert_eq!(
        rst_code(&client.frames(), 1),
        Some(ErrorCode::FlowControlError)
    );
}

#[test]
fn eof_ends_everything() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.conn.receive_eof();
    let events = client.events();
    assert!(matches!(
        events[1],
        ServerEvent::Reset {
            stream: 1,
            by_peer: true,
            ..
        }
    ));
    assert!(!client.conn.wants_read());
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn input_is_bounded_and_output_pressure_stops_reading() {
    let mut limits = limits();
    limits.max_buffered_input = 100;
    limits.max_buffered_output = 50;
    let mut client = Client::raw(limits);
    // Our SETTINGS and WINDOW_UPDATE are more than 50 bytes: no reading until written.
    assert!(client.conn.pending_output() > 50);
    assert!(!client.conn.wants_read());
    assert_eq!(client.conn.receive(client.now, PREFACE), 0);
    client.frames();
    assert_eq!(client.conn.receive_capacity(), 16_384 + 9);
}

// ----- stream rules (§5.1) -----

#[test]
fn even_stream_from_client_is_a_protocol_error() {
    let mut client = Client::connected(limits());
    client.get(2);
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn decreasing_stream_id_is_a_protocol_error() {
    let mut client = Client::connected(limits());
    client.get(5);
    client.get(3);
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn data_on_idle_stream_is_a_protocol_error() {
    let mut client = Client::connected(limits());
    client.data(1, b"x", true);
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn headers_on_half_closed_remote_is_stream_closed() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.get(1);
    let events = client.events();
    assert!(matches!(
        events[1],
        ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::StreamClosed,
            ..
        }
    ));
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::StreamClosed));
}

#[test]
fn data_after_end_stream_on_closed_stream_is_stream_closed() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    client.frames();
    client.data(1, b"x", false);
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::StreamClosed));
    assert!(!client.conn.is_closed());
}

#[test]
fn self_dependency_is_a_stream_error() {
    let mut client = Client::connected(limits());
    client.send(Frame::Priority {
        stream: 3,
        priority: Priority {
            exclusive: false,
            dependency: 3,
            weight: 0,
        },
    });
    assert_eq!(
        rst_code(&client.frames(), 3),
        Some(ErrorCode::ProtocolError)
    );
    let fragment = client.block(GET);
    client.send(Frame::Headers {
        stream: 5,
        end_stream: true,
        end_headers: true,
        priority: Some(Priority {
            exclusive: false,
            dependency: 5,
            weight: 0,
        }),
        pad_len: None,
        fragment,
    });
    assert!(requests(&client.events()).is_empty());
    assert_eq!(
        rst_code(&client.frames(), 5),
        Some(ErrorCode::ProtocolError)
    );
    // The table stayed in sync: the next request decodes.
    client.get(7);
    assert_eq!(requests(&client.events()), vec![7]);
}

#[test]
fn priority_frames_and_unknown_frames_are_ignored() {
    let mut client = Client::connected(limits());
    client.send(Frame::Priority {
        stream: 9,
        priority: Priority {
            exclusive: true,
            dependency: 1,
            weight: 5,
        },
    });
    client.send(Frame::Unknown {
        kind: 0xfa,
        flags: 0,
        stream: 1,
        payload: Bytes::from_static(b"?"),
    });
    client.get(1);
    assert_eq!(requests(&client.events()), vec![1]);
    assert!(client.frames().is_empty());
}

#[test]
fn priority_update_is_reported() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"u=1, i");
    client.send(Frame::Unknown {
        kind: PRIORITY_UPDATE,
        flags: 0,
        stream: 0,
        payload: payload.into(),
    });
    let events = client.events();
    let [
        ServerEvent::PriorityUpdate {
            stream: 1,
            priority,
        },
    ] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(priority.urgency, 1);
    assert!(priority.incremental);
    client.send(Frame::Unknown {
        kind: PRIORITY_UPDATE,
        flags: 0,
        stream: 1,
        payload: Bytes::from_static(&[0, 0, 0, 1]),
    });
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn frame_inside_a_field_block_is_a_protocol_error() {
    let mut client = Client::connected(limits());
    let block = client.block(GET);
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: block,
    });
    client.send(Frame::Ping {
        ack: false,
        data: [0; 8],
    });
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn streams_past_the_concurrency_limit_are_refused() {
    let mut limits = limits();
    limits.h2.max_concurrent_streams = 2;
    let mut client = Client::connected(limits);
    client.get(1);
    client.get(3);
    client.get(5);
    assert_eq!(requests(&client.events()), vec![1, 3]);
    assert_eq!(
        rst_code(&client.frames(), 5),
        Some(ErrorCode::RefusedStream)
    );
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    client.get(7);
    assert_eq!(requests(&client.events()), vec![7]);
}

#[test]
fn trailers_without_end_stream_are_a_stream_error() {
    let mut client = Client::connected(limits());
    client.post(1, &[]);
    client.headers(1, &[("x-trailer", "1")], false);
    let events = client.events();
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::ProtocolError,
            ..
        })
    ));
}

#[test]
fn malformed_request_is_reset_without_an_event() {
    let mut client = Client::connected(limits());
    client.headers(1, &[(":method", "GET"), (":path", "/")], true);
    assert!(client.events().is_empty());
    assert_eq!(
        rst_code(&client.frames(), 1),
        Some(ErrorCode::ProtocolError)
    );
}

#[test]
fn hpack_garbage_is_a_compression_error() {
    let mut client = Client::connected(limits());
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: true,
        priority: None,
        pad_len: None,
        fragment: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    });
    assert_connection_error(&mut client, ErrorCode::CompressionError);
}

#[test]
fn oversized_header_list_gets_431() {
    let mut limits = limits();
    limits.max_head_size = 200;
    let mut client = Client::connected(limits);
    let big = "x".repeat(150);
    let mut fields = GET.to_vec();
    fields.push(("x-big", &big));
    client.headers(1, &fields, true);
    assert!(client.events().is_empty());
    let frames = client.frames();
    let Some(Frame::Headers {
        stream: 1,
        end_stream: true,
        fragment,
        ..
    }) = frames.first()
    else {
        panic!("{frames:?}");
    };
    let fields = client.fields(&fragment.clone());
    assert_eq!(fields[0], (":status".into(), "431".into()));
    client.get(3);
    assert_eq!(requests(&client.events()), vec![3]);
}

#[test]
fn upgraded_connection_answers_stream_one() {
    let settings = Settings::from_payload(&[0, 4, 0, 0, 0, 5]).unwrap();
    let now = crate::test_clock::start();
    let mut conn = ServerConnection::upgraded(limits(), now, &settings);
    conn.send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    // The client's initial window of 5 applies.
    assert_eq!(conn.send_data(1, b"0123456789", true), Ok(5));
    let mut client = Client {
        conn,
        encoder: Encoder::new(4096),
        decoder: Decoder::new(4096, 1 << 20),
        now,
        pending: BytesMut::new(),
    };
    client.preface();
    client.send(settings_frame(&[]));
    client.get(3);
    assert_eq!(requests(&client.events()), vec![3]);
}

#[test]
fn push_promise_reserves_an_even_stream() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    let uri: http::Uri = "https://example.com/style.css".parse().unwrap();
    let promised = client
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    assert_eq!(promised, 2);
    let next = client
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    assert_eq!(next, 4);
    assert_eq!(
        client
            .conn
            .push_promise(1, &Method::POST, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
    client
        .conn
        .send_response(2, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(client.conn.send_data(2, b"body", true), Ok(4));
    let frames = client.frames();
    assert!(matches!(
        frames[0],
        Frame::PushPromise {
            stream: 1,
            promised: 2,
            ..
        }
    ));
    assert!(matches!(frames[2], Frame::Headers { stream: 2, .. }));
    assert!(matches!(
        frames[3],
        Frame::Data {
            stream: 2,
            end_stream: true,
            ..
        }
    ));

    let mut client = Client::connected(limits());
    client.send(settings_frame(&[(Settings::ENABLE_PUSH, 0)]));
    client.get(1);
    client.events();
    assert_eq!(
        client
            .conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
}

#[test]
fn max_streams_per_connection_drains() {
    let mut limits = limits();
    limits.h2.max_streams_per_connection = 2;
    let mut client = Client::connected(limits);
    client.get(1);
    client.get(3);
    let ping = client.expect_first_goaway();
    // Sent before the client saw the GOAWAY: refused, so it can retry elsewhere (§8.7).
    client.get(5);
    assert_eq!(requests(&client.events()), vec![1, 3]);
    assert_eq!(
        rst_code(&client.frames(), 5),
        Some(ErrorCode::RefusedStream)
    );
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 3, "5 was not processed");
    client.get(7);
    assert!(client.events().is_empty());
    assert!(client.frames().is_empty(), "7 is ignored, not refused");
    for id in [1, 3] {
        client.ok(id);
    }
    client.frames();
    assert!(client.conn.is_closed());
}

#[test]
fn last_stream_id_then_any_new_stream_is_a_connection_error() {
    let mut client = Client::connected(limits());
    client.get((1 << 31) - 1);
    client.events();
    client.get(1);
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

// ----- timers -----

#[test]
fn settings_must_be_acknowledged_in_time() {
    let mut limits = limits();
    limits.h2.settings_timeout = Duration::from_secs(1);
    let mut client = Client::raw(limits);
    client.preface();
    client.send(settings_frame(&[]));
    client.frames();
    let deadline = client.conn.poll_timeout().unwrap();
    assert_eq!(deadline, client.now + Duration::from_secs(1));
    client.advance(Duration::from_secs(1));
    assert_connection_error(&mut client, ErrorCode::SettingsTimeout);
}

#[test]
fn idle_connection_is_closed() {
    let mut limits = limits();
    limits.h2.idle_timeout = Duration::from_secs(5);
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    client.advance(Duration::from_secs(10));
    assert!(!client.conn.is_closed(), "a stream is open");
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    client.frames();
    client.advance(Duration::from_secs(4));
    assert!(!client.conn.is_closed());
    client.advance(Duration::from_secs(1));
    assert_eq!(goaway_code(&client.frames()), Some(ErrorCode::NoError));
    assert!(client.conn.is_closed());
}

#[test]
fn stalled_stream_is_cancelled() {
    let mut limits = limits();
    limits.h2.send_stall_timeout = Duration::from_secs(3);
    let mut client = Client::connected(limits);
    client.send(settings_frame(&[(Settings::INITIAL_WINDOW_SIZE, 0)]));
    client.get(1);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(client.conn.send_data(1, b"x", true), Ok(0));
    client.frames();
    client.advance(Duration::from_secs(3));
    let events = client.events();
    assert!(matches!(
        events[..],
        [ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::Cancel,
            by_peer: false
        }]
    ));
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::Cancel));
    assert!(!client.conn.is_closed());
}

#[test]
fn stalled_connection_window_is_a_connection_error() {
    let mut limits = limits();
    limits.h2.send_stall_timeout = Duration::from_secs(3);
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(client.conn.send_data(1, &[0; 70_000], false), Ok(65_535));
    client.frames();
    client.advance(Duration::from_secs(3));
    assert_connection_error(&mut client, ErrorCode::FlowControlError);
}

// ----- defences -----

fn calm_limits() -> Limits {
    let mut limits = limits();
    limits.h2.max_client_resets = 3;
    limits.h2.max_error_resets = 3;
    limits.h2.max_stream_errors_total = 5;
    limits.h2.max_continuation_frames = 2;
    limits.h2.max_settings_frames = 3;
    limits.h2.max_ping_frames = 3;
    limits.h2.max_empty_frames = 3;
    limits.h2.max_window_update_frames = 3;
    limits.h2.max_priority_frames = 3;
    limits.h2.flood_window = Duration::from_secs(10);
    limits
}

#[test]
fn rapid_reset_is_enhance_your_calm() {
    let mut client = Client::connected(calm_limits());
    for i in 0..3 {
        let id = 1 + 2 * i;
        client.get(id);
        client.send(Frame::RstStream {
            stream: id,
            code: ErrorCode::Cancel,
        });
    }
    assert!(connection_error(&client.events()).is_none());
    client.get(7);
    client.send(Frame::RstStream {
        stream: 7,
        code: ErrorCode::Cancel,
    });
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn resets_after_the_response_do_not_count() {
    let mut client = Client::connected(calm_limits());
    for i in 0..6 {
        let id = 1 + 2 * i;
        client.post(id, &[]);
        client.events();
        client
            .conn
            .send_response(id, StatusCode::OK, &HeaderMap::new(), true)
            .unwrap();
        client.send(Frame::RstStream {
            stream: id,
            code: ErrorCode::NoError,
        });
    }
    assert!(connection_error(&client.events()).is_none());
}

#[test]
fn rapid_reset_budget_is_per_window() {
    let mut client = Client::connected(calm_limits());
    for i in 0..6 {
        let id = 1 + 2 * i;
        if i == 3 {
            client.now += Duration::from_secs(10);
        }
        client.get(id);
        client.send(Frame::RstStream {
            stream: id,
            code: ErrorCode::Cancel,
        });
    }
    assert!(connection_error(&client.events()).is_none());
}

#[test]
fn made_you_reset_is_enhance_your_calm() {
    let mut client = Client::connected(calm_limits());
    for i in 0..4 {
        let id = 1 + 2 * i;
        client.get(id);
        // WINDOW_UPDATE overflow: a stream error we answer with RST_STREAM.
        client.send(Frame::WindowUpdate {
            stream: id,
            increment: (1 << 31) - 1,
        });
    }
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn reset_stream_counts_until_the_application_is_told() {
    let mut limits = limits();
    limits.h2.max_concurrent_streams = 1;
    let mut client = Client::connected(limits);
    client.get(1);
    client.send(Frame::WindowUpdate {
        stream: 1,
        increment: (1 << 31) - 1,
    });
    // The reset is not taken yet: stream 1 still counts, stream 3 is refused.
    client.get(3);
    assert_eq!(
        rst_code(&client.frames(), 3),
        Some(ErrorCode::RefusedStream)
    );
    let events = client.events();
    assert!(matches!(events[1], ServerEvent::Reset { stream: 1, .. }));
    client.get(5);
    assert_eq!(requests(&client.events()), vec![5]);
}

#[test]
fn stream_errors_have_a_lifetime_budget() {
    let mut limits = calm_limits();
    limits.h2.max_error_resets = 100;
    let mut client = Client::connected(limits);
    for i in 0..6 {
        client.now += Duration::from_secs(20);
        client.headers(1 + 2 * i, &[(":method", "GET")], true);
    }
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn continuation_flood_is_enhance_your_calm() {
    let mut client = Client::connected(calm_limits());
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: Bytes::from_static(b"\x82"),
    });
    for _ in 0..3 {
        client.send(Frame::Continuation {
            stream: 1,
            end_headers: false,
            fragment: Bytes::from_static(b"\x82"),
        });
    }
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn oversized_encoded_block_is_enhance_your_calm() {
    let mut limits = limits();
    limits.max_head_size = 100;
    let mut client = Client::connected(limits);
    client.send(Frame::Headers {
        stream: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        pad_len: None,
        fragment: Bytes::from(vec![0x82; 60]),
    });
    client.send(Frame::Continuation {
        stream: 1,
        end_headers: false,
        fragment: Bytes::from(vec![0x82; 60]),
    });
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

fn assert_flood(frame: Frame) {
    let mut client = Client::connected(calm_limits());
    client.get(1);
    client.post(3, &[]);
    for _ in 0..3 {
        client.send(frame.clone());
    }
    let events = client.events();
    assert!(connection_error(&events).is_none(), "{frame:?}: {events:?}");
    client.send(frame.clone());
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn control_frame_floods_are_enhance_your_calm() {
    // The connected client already sent one SETTINGS and one ACK in this window.
    let mut client = Client::connected(calm_limits());
    client.send(settings_frame(&[]));
    client.send(settings_frame(&[]));
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);

    assert_flood(Frame::Ping {
        ack: false,
        data: [1; 8],
    });
    assert_flood(Frame::WindowUpdate {
        stream: 1,
        increment: 1,
    });
    assert_flood(Frame::Priority {
        stream: 1,
        priority: Priority {
            exclusive: false,
            dependency: 0,
            weight: 1,
        },
    });
    assert_flood(Frame::Data {
        stream: 3,
        end_stream: false,
        pad_len: None,
        data: Bytes::new(),
    });
}

#[test]
fn head_response_body_is_dropped() {
    let mut client = Client::connected(limits());
    client.headers(
        1,
        &[
            (":method", "HEAD"),
            (":scheme", "https"),
            (":authority", "a"),
            (":path", "/"),
        ],
        true,
    );
    client.events();
    let mut headers = HeaderMap::new();
    headers.insert("content-length", HeaderValue::from_static("100"));
    client
        .conn
        .send_response(1, StatusCode::OK, &headers, false)
        .unwrap();
    assert_eq!(client.conn.send_data(1, &[1; 100], true), Ok(100));
    let frames = client.frames();
    assert!(
        matches!(frames[..], [Frame::Headers { end_stream: false, .. }, Frame::Data { end_stream: true, ref data, .. }] if data.is_empty()),
        "{frames:?}"
    );
}

#[test]
fn declared_body_over_the_limit_gets_413() {
    let mut limits = limits();
    limits.max_body_size = 10;
    let mut client = Client::connected(limits);
    client.post(1, &[("content-length", "11")]);
    assert!(client.events().is_empty());
    let frames = client.frames();
    let Some(Frame::Headers {
        stream: 1,
        end_stream: true,
        fragment,
        ..
    }) = frames.first()
    else {
        panic!("{frames:?}");
    };
    let fields = client.fields(&fragment.clone());
    assert_eq!(fields[0], (":status".into(), "413".into()));
    // The client is asked to stop sending, and what it sent anyway is ignored.
    assert_eq!(rst_code(&frames, 1), Some(ErrorCode::NoError));
    client.data(1, b"late", true);
    assert!(client.events().is_empty());
    assert!(client.frames().is_empty());
}

#[test]
fn streamed_body_over_the_limit_is_cancelled() {
    let mut limits = limits();
    limits.max_body_size = 10;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.data(1, &[0; 8], false);
    client.data(1, &[0; 8], false);
    let events = client.events();
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Reset {
            stream: 1,
            code: ErrorCode::Cancel,
            by_peer: false
        })
    ));
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::Cancel));
}

#[test]
fn connection_window_comes_back_when_a_stream_ends_unreleased() {
    let mut limits = limits();
    limits.h2.connection_window_size = 100_000;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    for _ in 0..4 {
        client.data(1, &[0; 15_000], false);
    }
    client.events();
    client.conn.reset(1, ErrorCode::Cancel);
    let frames = client.frames();
    assert!(
        frames.contains(&Frame::WindowUpdate {
            stream: 0,
            increment: 60_000
        }),
        "{frames:?}"
    );
    // Releasing on the gone stream gives nothing twice.
    client.conn.release_capacity(1, 60_000);
    assert!(client.frames().is_empty());
}

#[test]
fn data_on_a_reserved_stream_is_a_protocol_error() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    let uri: http::Uri = "https://example.com/a.js".parse().unwrap();
    let promised = client
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    client.frames();
    client.data(promised, b"x", false);
    assert_connection_error(&mut client, ErrorCode::ProtocolError);
}

#[test]
fn push_needs_an_open_parent_and_respects_the_peer_limit() {
    let mut client = Client::connected(limits());
    client.send(settings_frame(&[(Settings::MAX_CONCURRENT_STREAMS, 1)]));
    client.get(1);
    client.events();
    let uri: http::Uri = "https://example.com/a.js".parse().unwrap();
    client
        .conn
        .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
        .unwrap();
    assert_eq!(
        client
            .conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::PushRefused)
    );
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    assert_eq!(
        client
            .conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new()),
        Err(SendError::StreamClosed)
    );
}

#[test]
fn priority_update_for_an_unknown_stream_is_ignored() {
    let mut client = Client::connected(limits());
    let mut payload = 9u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"u=0");
    client.send(Frame::Unknown {
        kind: PRIORITY_UPDATE,
        flags: 0,
        stream: 0,
        payload: payload.into(),
    });
    assert!(client.events().is_empty());
    assert!(!client.conn.is_closed());
}

#[test]
fn events_wait_in_input_until_polled() {
    let mut client = Client::connected(limits());
    for i in 0..40 {
        client.get(1 + 2 * i);
    }
    // Not all 40 requests were decoded ahead of the application, yet all arrive in order.
    let events = client.events();
    assert_eq!(
        requests(&events),
        (0..40).map(|i| 1 + 2 * i).collect::<Vec<_>>()
    );
}

#[test]
fn out_of_range_limits_are_clamped_in_settings() {
    let mut limits = limits();
    limits.h2.max_frame_size = 100;
    limits.h2.initial_window_size = u32::MAX;
    limits.h2.connection_window_size = u32::MAX;
    let mut client = Client::raw(limits);
    let frames = client.frames();
    let Frame::Settings { settings, .. } = &frames[0] else {
        panic!("{frames:?}");
    };
    assert_eq!(settings.max_frame_size(), Some(16_384));
    assert_eq!(settings.initial_window_size(), Some((1 << 31) - 1));
    assert_eq!(
        frames[1],
        Frame::WindowUpdate {
            stream: 0,
            increment: (1 << 31) - 1 - 65_535
        }
    );
}

#[test]
fn refused_pushes_are_not_rapid_resets() {
    let mut client = Client::connected(calm_limits());
    client.get(1);
    client.events();
    let uri: http::Uri = "https://example.com/a.js".parse().unwrap();
    for _ in 0..6 {
        let promised = client
            .conn
            .push_promise(1, &Method::GET, &uri, &HeaderMap::new())
            .unwrap();
        client.send(Frame::RstStream {
            stream: promised,
            code: ErrorCode::Cancel,
        });
        let events = client.events();
        assert!(
            matches!(events[..], [ServerEvent::Reset { by_peer: true, .. }]),
            "{events:?}"
        );
    }
    assert!(!client.conn.is_closed());
}

#[test]
fn silent_request_body_is_cancelled() {
    let mut limits = limits();
    limits.body_idle_timeout = Duration::from_secs(5);
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.get(3);
    client.events();
    client.advance(Duration::from_secs(3));
    client.data(1, b"progress", false);
    assert_eq!(client.events().len(), 1);
    client.advance(Duration::from_secs(3));
    assert!(client.events().is_empty(), "progress restarted the clock");
    client.advance(Duration::from_secs(2));
    let events = client.events();
    assert!(
        matches!(
            events[..],
            [ServerEvent::Reset {
                stream: 1,
                code: ErrorCode::Cancel,
                by_peer: false
            }]
        ),
        "{events:?}"
    );
    assert_eq!(rst_code(&client.frames(), 1), Some(ErrorCode::Cancel));
    // Stream 3 had no body to wait for.
    client
        .conn
        .send_response(3, StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
}

#[test]
fn a_websocket_tunnel_may_stay_silent() {
    let mut limits = limits();
    limits.body_idle_timeout = Duration::from_secs(5);
    let mut client = Client::connected(limits);
    client.headers(
        1,
        &[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", "/ws"),
            (":authority", "a"),
            ("sec-websocket-version", "13"),
        ],
        false,
    );
    client.post(3, &[]);
    client.events();
    client
        .conn
        .send_response(1, StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    client.advance(Duration::from_secs(6));
    let events = client.events();
    // The ordinary request body is cancelled; the tunnel is left to its own heartbeat.
    assert!(
        matches!(
            events[..],
            [ServerEvent::Reset {
                stream: 3,
                code: ErrorCode::Cancel,
                ..
            }]
        ),
        "{events:?}"
    );
    // The client reads what we sent (else `send_timeout` would end the connection).
    client.frames();
    client.advance(Duration::from_secs(60));
    assert!(client.events().is_empty());
    client.data(1, b"still here", false);
    assert!(matches!(
        client.events()[..],
        [ServerEvent::Data { stream: 1, .. }]
    ));
}

#[test]
fn body_blocked_on_our_window_is_not_silent() {
    let mut limits = limits();
    limits.body_idle_timeout = Duration::from_secs(5);
    limits.h2.initial_window_size = 100;
    let mut client = Client::connected(limits);
    client.post(1, &[]);
    client.data(1, &[0; 100], false);
    client.events();
    client.advance(Duration::from_secs(20));
    assert!(client.events().is_empty());
    // Once the application reads, the client has window again and the clock runs.
    client.conn.release_capacity(1, 100);
    client.advance(Duration::from_secs(4));
    assert!(client.events().is_empty());
    client.advance(Duration::from_secs(2));
    assert!(matches!(
        client.events()[..],
        [ServerEvent::Reset { stream: 1, .. }]
    ));
}

#[test]
fn frames_received_before_eof_are_still_handled() {
    let mut client = Client::connected(limits());
    for i in 0..30 {
        client.get(1 + 2 * i);
    }
    client.conn.receive_eof();
    assert!(!client.conn.wants_read());
    let events = client.events();
    assert_eq!(requests(&events).len(), 30);
    let resets = events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Reset { by_peer: true, .. }))
        .count();
    assert_eq!(resets, 30);
    client.frames();
    assert!(client.conn.is_closed());
}

// ----- GOAWAY identifiers and stream errors on streams we never saw -----

fn goaway_last_stream(frames: &[Frame]) -> Option<u32> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway { last_stream, .. } => Some(*last_stream),
        _ => None,
    })
}

#[test]
fn goaway_after_the_final_one_never_names_a_higher_stream() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client.conn.shutdown();
    let ping = client.expect_first_goaway();
    client.ping_ack(ping);
    assert_eq!(client.expect_final_goaway(), 1);
    client.get(3);
    client.conn.abort(ErrorCode::InternalError);
    assert_eq!(goaway_last_stream(&client.frames()), Some(1));
}

#[test]
fn connection_error_goaway_does_not_name_refused_streams() {
    let mut limits = limits();
    limits.h2.max_concurrent_streams = 1;
    let mut client = Client::connected(limits);
    client.get(1);
    client.get(3);
    assert_eq!(requests(&client.events()), vec![1]);
    assert_eq!(
        rst_code(&client.frames(), 3),
        Some(ErrorCode::RefusedStream)
    );
    client.get(4);
    let frames = client.frames();
    assert_eq!(goaway_code(&frames), Some(ErrorCode::ProtocolError));
    assert_eq!(
        goaway_last_stream(&frames),
        Some(1),
        "3 was refused: retryable"
    );
}

#[test]
fn zero_window_increment_on_an_idle_stream_is_a_connection_error() {
    let mut client = Client::connected(limits());
    client.get(1);
    client.events();
    client.send(Frame::WindowUpdate {
        stream: 5,
        increment: 0,
    });
    let frames = client.frames();
    assert_eq!(
        rst_code(&frames, 5),
        None,
        "no RST_STREAM on an idle stream"
    );
    assert_eq!(goaway_code(&frames), Some(ErrorCode::ProtocolError));
}

#[test]
fn zero_window_increment_on_an_open_stream_is_a_stream_error() {
    let mut client = Client::connected(limits());
    client.post(1, &[]);
    client.events();
    client.send(Frame::WindowUpdate {
        stream: 1,
        increment: 0,
    });
    let frames = client.frames();
    assert_eq!(rst_code(&frames, 1), Some(ErrorCode::ProtocolError));
    assert_eq!(goaway_code(&frames), None);
}

#[test]
fn repeated_client_goaway_is_reported_once_and_counted() {
    let mut limits = limits();
    limits.h2.max_empty_frames = 2;
    let mut client = Client::connected(limits);
    client.get(1);
    client.events();
    let goaway = |code| Frame::GoAway {
        last_stream: 0,
        code,
        debug: Bytes::new(),
    };
    client.send(goaway(ErrorCode::NoError));
    client.send(goaway(ErrorCode::NoError));
    client.send(goaway(ErrorCode::InternalError));
    let codes: Vec<ErrorCode> = client
        .events()
        .iter()
        .filter_map(|e| match e {
            ServerEvent::GoAway { code } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![ErrorCode::NoError, ErrorCode::InternalError]);
    assert!(!client.conn.is_closed(), "stream 1 is still open");
    client.send(goaway(ErrorCode::InternalError));
    assert_connection_error(&mut client, ErrorCode::EnhanceYourCalm);
}

#[test]
fn late_data_on_a_stream_we_reset_is_ignored_after_many_other_streams_closed() {
    let mut client = Client::connected(limits());
    client.post(1, &[]);
    client.events();
    client.conn.reset(1, ErrorCode::Cancel);
    // 200 streams open and close before the client's in-flight DATA on 1 arrives.
    for id in (3..=401).step_by(2) {
        client.get(id);
        client.events();
        client.ok(id);
    }
    client.frames();
    client.data(1, b"in flight", false);
    let frames = client.frames();
    assert_eq!(rst_code(&frames, 1), None, "frames: {frames:?}");
    assert!(client.events().is_empty());
}
