//! A client connection reading arbitrary server bytes, in arbitrary splits, for requests with
//! arbitrary methods. Properties: no panic; once an error is reported nothing else follows;
//! splitting the input never changes the events (body pieces compared joined).
#![no_main]

use bytes::BytesMut;
use http::{HeaderMap, Method, Uri};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::Limits;
use weft_core::h1::{BodySize, ClientConnection, ClientEvent};

#[derive(Arbitrary, Debug)]
struct Input {
    methods: Vec<u8>,
    response: Vec<u8>,
    splits: Vec<u8>,
    eof: bool,
}

/// Events with body pieces joined, so splits can be compared.
#[derive(Debug, PartialEq)]
enum Seen {
    Head(u16, Vec<(String, Vec<u8>)>),
    Body(BytesMut),
    Trailers(usize),
    End,
    Upgraded,
    Error(String),
}

fn run(input: &Input, splits: &[u8]) -> Vec<Seen> {
    let mut client = ClientConnection::new(Limits::default());
    let uri = Uri::from_static("http://example.com/");
    for &m in input.methods.iter().take(8) {
        let method = match m % 5 {
            0 => Method::GET,
            1 => Method::HEAD,
            2 => Method::POST,
            3 => Method::CONNECT,
            _ => Method::OPTIONS,
        };
        let size = if method == Method::POST { BodySize::Unknown } else { BodySize::EMPTY };
        if client.send_request(&method, &uri, &HeaderMap::new(), size).is_ok() {
            let _ = client.finish();
        }
    }
    let mut seen = Vec::new();
    let mut rest = &input.response[..];
    let mut split_index = 0;
    for _ in 0..100_000 {
        let want = match splits.get(split_index) {
            Some(&n) => usize::from(n).max(1),
            None => rest.len(),
        };
        split_index += 1;
        let taken = client.receive(&rest[..want.min(rest.len())]);
        rest = &rest[taken..];
        if rest.is_empty() && input.eof {
            client.receive_eof();
        }
        let mut any = false;
        while let Some(event) = client.poll_event() {
            any = true;
            assert!(!matches!(seen.last(), Some(Seen::Error(_))), "event after an error");
            match event {
                ClientEvent::Response(h) | ClientEvent::Informational(h) => seen.push(Seen::Head(
                    h.status.as_u16(),
                    h.headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
                )),
                ClientEvent::Data(d) => match seen.last_mut() {
                    Some(Seen::Body(body)) => body.extend_from_slice(&d),
                    _ => seen.push(Seen::Body(BytesMut::from(&d[..]))),
                },
                ClientEvent::Trailers(t) => seen.push(Seen::Trailers(t.len())),
                ClientEvent::EndOfMessage => seen.push(Seen::End),
                ClientEvent::Upgraded { .. } => seen.push(Seen::Upgraded),
                ClientEvent::Error(e) => seen.push(Seen::Error(e.to_string())),
                _ => {}
            }
        }
        if rest.is_empty() && !any && taken == 0 {
            break;
        }
    }
    seen
}

fuzz_target!(|input: Input| {
    let whole = run(&input, &[]);
    let split = run(&input, &input.splits);
    assert_eq!(whole, split, "splitting the input changed the events");
});
