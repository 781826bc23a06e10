//! multipart/form-data bodies (RFC 7578): arbitrary bytes after a fixed boundary, fed whole and
//! in arbitrary splits. Properties: no panic; no part's data and no body's data exceeds its
//! limit; the parser never stalls (after `poll_event` says "need data", `receive` takes a byte);
//! splitting never changes the parts, their joined data or the verdict.
//!
//! Input layout (simple, so seeds are easy to write by hand): byte 0 holds flags (bit 0: small
//! limits; bits 1-2: the boundary), byte 1 the number `n` (mod 32) of split sizes that follow,
//! then `n` split sizes, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::multipart::{Event, MultipartLimits, Parser};

const BOUNDARIES: [&str; 4] = [
    "b",
    "XyZ",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "a b'()+_,-./:=?",
];

#[derive(Debug, PartialEq)]
enum Seen {
    Start(String, Option<String>, Option<String>, usize),
    Data(Vec<u8>),
    End,
    Finished,
    Error(String),
}

fn run(boundary: &str, limits: &MultipartLimits, body: &[u8], splits: &[u8]) -> Vec<Seen> {
    let mut parser = Parser::new(boundary, limits.clone()).expect("a valid boundary");
    let mut seen = Vec::new();
    let mut rest = body;
    let mut split_index = 0;
    let (mut part_bytes, mut part_is_file, mut total) = (0u64, false, 0u64);
    loop {
        let want = match splits.get(split_index) {
            Some(&n) => usize::from(n).max(1),
            None => rest.len(),
        };
        split_index += 1;
        let taken = parser.receive(&rest[..want.min(rest.len())]);
        assert!(taken <= want.min(rest.len()));
        rest = &rest[taken..];
        if rest.is_empty() {
            parser.receive_eof();
        }
        let mut any = false;
        while let Some(event) = parser.poll_event() {
            any = true;
            match event {
                Ok(Event::PartStart(head)) => {
                    part_bytes = 0;
                    part_is_file = head.is_file();
                    seen.push(Seen::Start(
                        head.name,
                        head.filename,
                        head.content_type,
                        head.headers.len(),
                    ));
                }
                Ok(Event::Data(data)) => {
                    assert!(!data.is_empty());
                    part_bytes += data.len() as u64;
                    total += data.len() as u64;
                    let limit = if part_is_file {
                        limits.max_file_bytes
                    } else {
                        limits.max_field_bytes
                    };
                    assert!(part_bytes <= limit, "a part's data exceeds its limit");
                    assert!(
                        total <= limits.max_total_bytes,
                        "the data exceeds the body limit"
                    );
                    match seen.last_mut() {
                        Some(Seen::Data(joined)) => joined.extend_from_slice(&data),
                        _ => seen.push(Seen::Data(data.to_vec())),
                    }
                }
                Ok(Event::PartEnd) => seen.push(Seen::End),
                Ok(Event::End) => seen.push(Seen::Finished),
                Err(error) => {
                    let _ = error.status();
                    seen.push(Seen::Error(error.to_string()));
                }
            }
        }
        if parser.is_finished() {
            return seen;
        }
        assert!(!rest.is_empty(), "at EOF the parser must finish");
        // Once poll_event says it needs data, receive takes some (or the limit stops the body).
        assert!(taken > 0 || any, "the parser stalled");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let Some((&count, data)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 32).min(data.len());
    let (splits, body) = data.split_at(count);
    let boundary = BOUNDARIES[usize::from(flags >> 1) % BOUNDARIES.len()];
    let mut limits = MultipartLimits::default();
    if flags & 1 == 1 {
        limits.max_header_bytes = 64;
        limits.max_headers = 3;
        limits.max_parts = 4;
        limits.max_field_bytes = 16;
        limits.max_file_bytes = 40;
        limits.max_total_bytes = 300;
        limits.max_buffered_input = 8;
    }
    let whole = run(boundary, &limits, body, &[]);
    let split = run(boundary, &limits, body, splits);
    assert_eq!(whole, split, "splitting the body changed the outcome");
});
