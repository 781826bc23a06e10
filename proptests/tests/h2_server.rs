//! The HTTP/2 server connection (RFC 9113) does not depend on how its input is cut: a valid
//! client conversation (requests with bodies and trailers, PINGs, SETTINGS, WINDOW_UPDATE,
//! PRIORITY and PRIORITY_UPDATE) fed in pieces cut at arbitrary points yields the same events,
//! and, once the application has answered every request, the same frames on the wire, as the
//! same bytes fed at once.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use weft_core::Limits;
use weft_core::h2::{
    ErrorCode, Frame, PREFACE, PRIORITY_UPDATE, Priority, ServerConnection, ServerEvent, Settings,
    decode, encode,
};
use weft_core::hpack::{Decoder, Encoder, HeaderField};

// ----- generators -----

/// One request of the conversation.
#[derive(Debug, Clone)]
struct Request {
    post: bool,
    path: String,
    fields: Vec<(String, String)>,
    body: Vec<Vec<u8>>,
    trailers: bool,
    declare_length: bool,
}

/// One step of the client's side, between requests.
#[derive(Debug, Clone)]
enum Step {
    Request(Request),
    Ping([u8; 8]),
    ConnectionWindowUpdate(u32),
    Settings(u32),
    Priority,
    PriorityUpdate(u8, bool),
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<bool>(),
        "(/[a-z0-9._-]{1,8}){1,3}",
        vec(
            (
                select(vec![
                    "accept",
                    "user-agent",
                    "x-trace",
                    "cookie",
                    "priority",
                ]),
                "[a-zA-Z0-9 =;,/.-]{0,20}".prop_map(|v| v.trim().to_owned()),
            ),
            0..4,
        ),
        vec(vec(any::<u8>(), 0..200), 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(post, path, fields, body, trailers, declare_length)| Request {
                post,
                path,
                fields: fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
                body: if post { body } else { Vec::new() },
                trailers: post && trailers,
                declare_length,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => request().prop_map(Step::Request),
        1 => any::<[u8; 8]>().prop_map(Step::Ping),
        1 => (1..100_000_u32).prop_map(Step::ConnectionWindowUpdate),
        1 => (65_535..1_000_000_u32).prop_map(Step::Settings),
        1 => Just(Step::Priority),
        1 => (0..8_u8, any::<bool>()).prop_map(|(u, i)| Step::PriorityUpdate(u, i)),
    ]
}

// ----- the client's bytes -----

fn put(frame: &Frame, wire: &mut BytesMut) {
    encode(frame, wire).expect("small frame");
}

/// The whole conversation as client bytes: preface, SETTINGS, ACK, then the steps.
fn client_bytes(steps: &[Step]) -> Vec<u8> {
    let mut wire = BytesMut::from(&PREFACE[..]);
    let mut hpack = Encoder::new(4096);
    put(
        &Frame::Settings {
            ack: false,
            settings: Settings::new(),
        },
        &mut wire,
    );
    put(
        &Frame::Settings {
            ack: true,
            settings: Settings::new(),
        },
        &mut wire,
    );
    let mut stream = 1;
    for step in steps {
        match step {
            Step::Request(request) => {
                put_request(request, stream, &mut hpack, &mut wire);
                stream += 2;
            }
            Step::Ping(data) => put(
                &Frame::Ping {
                    ack: false,
                    data: *data,
                },
                &mut wire,
            ),
            Step::ConnectionWindowUpdate(increment) => put(
                &Frame::WindowUpdate {
                    stream: 0,
                    increment: *increment,
                },
                &mut wire,
            ),
            Step::Settings(window) => put(
                &Frame::Settings {
                    ack: false,
                    settings: [(Settings::INITIAL_WINDOW_SIZE, *window)]
                        .into_iter()
                        .collect(),
                },
                &mut wire,
            ),
            Step::Priority => put(
                &Frame::Priority {
                    stream,
                    priority: Priority {
                        exclusive: false,
                        dependency: 0,
                        weight: 15,
                    },
                },
                &mut wire,
            ),
            Step::PriorityUpdate(urgency, incremental) if stream > 1 => {
                let mut payload = (stream - 2).to_be_bytes().to_vec();
                let value = if *incremental {
                    format!("u={urgency}, i")
                } else {
                    format!("u={urgency}")
                };
                payload.extend_from_slice(value.as_bytes());
                put(
                    &Frame::Unknown {
                        kind: PRIORITY_UPDATE,
                        flags: 0,
                        stream: 0,
                        payload: Bytes::from(payload),
                    },
                    &mut wire,
                );
            }
            Step::PriorityUpdate(..) => {}
        }
    }
    wire.to_vec()
}

fn put_request(request: &Request, stream: u32, hpack: &mut Encoder, wire: &mut BytesMut) {
    let mut fields = vec![
        HeaderField::new(":method", if request.post { "POST" } else { "GET" }),
        HeaderField::new(":scheme", "https"),
        HeaderField::new(":authority", "example.com"),
        HeaderField::new(":path", request.path.clone()),
    ];
    let length: usize = request.body.iter().map(Vec::len).sum();
    if request.declare_length && request.post {
        fields.push(HeaderField::new("content-length", length.to_string()));
    }
    for (name, value) in &request.fields {
        fields.push(HeaderField::new(name.clone(), value.clone()));
    }
    let mut block = BytesMut::new();
    hpack.encode(&fields, &mut block);
    let bodiless = request.body.is_empty() && !request.trailers;
    put(
        &Frame::Headers {
            stream,
            end_stream: !request.post || bodiless,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment: block.freeze(),
        },
        wire,
    );
    if !request.post || bodiless {
        return;
    }
    let chunks = request.body.len();
    for (i, chunk) in request.body.iter().enumerate() {
        let last = i + 1 == chunks && !request.trailers;
        put(
            &Frame::Data {
                stream,
                end_stream: last,
                pad_len: None,
                data: Bytes::from(chunk.clone()),
            },
            wire,
        );
    }
    if request.trailers {
        let mut block = BytesMut::new();
        hpack.encode(&[HeaderField::new("x-checksum", "42")], &mut block);
        put(
            &Frame::Headers {
                stream,
                end_stream: true,
                end_headers: true,
                priority: None,
                pad_len: None,
                fragment: block.freeze(),
            },
            wire,
        );
    }
}

// ----- running a connection -----

/// An event as the property compares it (adjacent Data of a stream joined).
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Request {
        stream: u32,
        method: String,
        uri: String,
        fields: Vec<(String, Vec<u8>)>,
        end: bool,
    },
    Data {
        stream: u32,
        data: Vec<u8>,
        end: bool,
    },
    Trailers {
        stream: u32,
        fields: Vec<(String, Vec<u8>)>,
    },
    Reset {
        stream: u32,
        code: ErrorCode,
        by_peer: bool,
    },
    Priority {
        stream: u32,
        urgency: u8,
        incremental: bool,
    },
    GoAway(ErrorCode),
    Error(ErrorCode),
    Other(String),
}

fn pairs(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn push_event(events: &mut Vec<Ev>, event: ServerEvent) {
    let ev = match event {
        ServerEvent::Request {
            stream,
            head,
            end_stream,
        } => Ev::Request {
            stream,
            method: head.method.to_string(),
            uri: head.uri.to_string(),
            fields: pairs(&head.headers),
            end: end_stream,
        },
        ServerEvent::Data {
            stream,
            data,
            end_stream,
        } => {
            if let Some(Ev::Data {
                stream: s,
                data: joined,
                end,
            }) = events.last_mut()
            {
                if *s == stream && !*end {
                    joined.extend_from_slice(&data);
                    *end = end_stream;
                    return;
                }
            }
            Ev::Data {
                stream,
                data: data.to_vec(),
                end: end_stream,
            }
        }
        ServerEvent::Trailers { stream, trailers } => Ev::Trailers {
            stream,
            fields: pairs(&trailers),
        },
        ServerEvent::Reset {
            stream,
            code,
            by_peer,
        } => Ev::Reset {
            stream,
            code,
            by_peer,
        },
        ServerEvent::PriorityUpdate { stream, priority } => Ev::Priority {
            stream,
            urgency: priority.urgency,
            incremental: priority.incremental,
        },
        ServerEvent::GoAway { code } => Ev::GoAway(code),
        ServerEvent::Error(error) => Ev::Error(error.code),
        other => Ev::Other(format!("{other:?}")),
    };
    events.push(ev);
}

/// A server frame as the property compares it: header blocks decoded.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Block {
        stream: u32,
        fields: Vec<(Bytes, Bytes)>,
    },
    Frame(Frame),
}

fn decode_output(output: &[u8]) -> Vec<Out> {
    let mut buf = BytesMut::from(output);
    let mut hpack = Decoder::new(4096, 1 << 20);
    let mut out = Vec::new();
    while let Some(frame) = decode(&mut buf, 16_384).expect("server wrote a valid frame") {
        match frame {
            Frame::Headers {
                stream,
                end_headers: true,
                fragment,
                ..
            } => {
                let fields = hpack.decode(&fragment).expect("valid block");
                out.push(Out::Block {
                    stream,
                    fields: fields.into_iter().map(|f| (f.name, f.value)).collect(),
                });
            }
            other => out.push(Out::Frame(other)),
        }
    }
    assert!(buf.is_empty(), "server output ends mid-frame");
    out
}

/// Feeds `wire` cut at `cuts`, then answers every request and releases every body byte;
/// returns the events and the decoded server output.
fn run(wire: &[u8], cuts: &[usize]) -> (Vec<Ev>, Vec<Out>) {
    let now = Instant::now();
    let mut conn = ServerConnection::new(Limits::default(), now);
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let mut at = 0;
    for point in points {
        while at < point {
            let end = point.min(at + conn.receive_capacity());
            let taken = if conn.wants_read() {
                conn.receive(now, &wire[at..end])
            } else {
                0
            };
            at += taken;
            while let Some(event) = conn.poll_event() {
                push_event(&mut events, event);
            }
            while let Some(bytes) = conn.poll_transmit(now) {
                output.extend_from_slice(&bytes);
            }
            assert!(
                taken > 0,
                "connection stopped taking valid input at byte {at}"
            );
        }
    }
    for event in &events {
        match event {
            Ev::Data { stream, data, .. } if !data.is_empty() => {
                conn.release_capacity(*stream, data.len());
            }
            Ev::Request { stream, .. } => {
                let body = format!("response {stream}");
                conn.send_response(*stream, StatusCode::OK, &HeaderMap::new(), false)
                    .expect("respond");
                let taken = conn
                    .send_data(*stream, body.as_bytes(), true)
                    .expect("body");
                assert_eq!(taken, body.len());
            }
            _ => {}
        }
    }
    while let Some(event) = conn.poll_event() {
        push_event(&mut events, event);
    }
    while let Some(bytes) = conn.poll_transmit(now) {
        output.extend_from_slice(&bytes);
    }
    (events, decode_output(&output))
}

/// A case feeds a few kilobytes; 256 of them unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conversation_is_independent_of_input_splits(
        steps in vec(step(), 1..12),
        cuts in vec(any::<usize>(), 1..24),
    ) {
        let wire = client_bytes(&steps);
        let (whole_events, whole_output) = run(&wire, &[]);
        let requests = steps.iter().filter(|s| matches!(s, Step::Request(_))).count();
        let surfaced = whole_events.iter().filter(|e| matches!(e, Ev::Request { .. })).count();
        prop_assert_eq!(surfaced, requests, "events: {:?}", whole_events);
        prop_assert!(
            !whole_events.iter().any(|e| matches!(e, Ev::Error(_) | Ev::Reset { .. })),
            "valid conversation failed: {:?}", whole_events
        );
        let (split_events, split_output) = run(&wire, &cuts);
        prop_assert_eq!(split_events, whole_events);
        prop_assert_eq!(split_output, whole_output);
    }
}
