//! Chunked request bodies (RFC 9112 §7.1): arbitrary bytes after a chunked request head, fed
//! whole and in arbitrary splits. Properties: no panic; the decoded body never exceeds the
//! body limit; splitting never changes the body, the trailers or the verdict.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use weft_core::Limits;
use weft_core::h1::{ServerConnection, ServerEvent};

#[derive(Arbitrary, Debug)]
struct Input {
    body: Vec<u8>,
    splits: Vec<u8>,
    small_limits: bool,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    ended: bool,
    error: Option<String>,
}

const HEAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n";

fn run(input: &Input, splits: &[u8], limits: &Limits) -> Outcome {
    let now = Instant::now();
    let mut server = ServerConnection::new(limits.clone(), now);
    let mut wire = HEAD.to_vec();
    wire.extend_from_slice(&input.body);
    let mut outcome = Outcome { body: Vec::new(), trailers: Vec::new(), ended: false, error: None };
    let mut rest = &wire[..];
    let mut split_index = 0;
    for _ in 0..100_000 {
        let want = match splits.get(split_index) {
            Some(&n) => usize::from(n).max(1),
            None => rest.len(),
        };
        split_index += 1;
        let taken = server.receive(now, &rest[..want.min(rest.len())]);
        rest = &rest[taken..];
        let mut any = false;
        while let Some(event) = server.poll_event() {
            any = true;
            match event {
                ServerEvent::Data(d) => outcome.body.extend_from_slice(&d),
                ServerEvent::Trailers(t) => outcome
                    .trailers
                    .extend(t.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))),
                ServerEvent::EndOfMessage => outcome.ended = true,
                ServerEvent::Error(e) => outcome.error = Some(e.to_string()),
                _ => {}
            }
        }
        assert!(outcome.body.len() as u64 <= limits.max_body_size);
        if outcome.ended || outcome.error.is_some() || (rest.is_empty() && !any) || (taken == 0 && !any) {
            break;
        }
    }
    outcome
}

fuzz_target!(|input: Input| {
    let mut limits = Limits::default();
    if input.small_limits {
        limits.max_body_size = 300;
        limits.max_chunk_line_len = 16;
        limits.max_chunk_extensions_size = 40;
        limits.max_trailer_size = 64;
    }
    let whole = run(&input, &[], &limits);
    let split = run(&input, &input.splits, &limits);
    assert_eq!(whole, split, "splitting the body changed the outcome");
});
