//! The framework's compression (`weft::compression`): random bodies, split into random chunks,
//! come back byte for byte through each coding, and every compressed frame decodes to exactly
//! the input sent so far (the per-chunk flush); the `Accept-Encoding` parser never panics and
//! never picks a coding the client refused.

use std::io::Read;
use std::pin::Pin;

use bytes::Bytes;
use futures_lite::future::block_on;
use http::header::{ACCEPT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Response};
use http_body::Body as _;
use proptest::prelude::*;
use weft::Body;
use weft::compression::{AcceptEncoding, Choice, Coding, Compression};

/// As much of a (possibly truncated) compressed stream as decodes.
fn decode_partial(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut reader: Box<dyn Read + '_> = match coding {
        "gzip" => Box::new(flate2::read::GzDecoder::new(bytes)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(bytes)),
        _ => Box::new(brotli::Decompressor::new(bytes, 4096)),
    };
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buffer[..n]);
    }
    out
}

fn decode_whole(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let result = match coding {
        "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(bytes).read_to_end(&mut out),
        _ => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out),
    };
    result.expect("a complete, valid stream");
    out
}

/// Bodies that compress (repetitive text) and that do not (random bytes).
fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let chunk = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        ("[a-c ]{0,40}", 1usize..40).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ];
    prop::collection::vec(chunk, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn chunked_bodies_round_trip_and_flush_per_chunk(
        chunks in chunks(),
        coding in prop::sample::select(vec!["gzip", "deflate", "br"]),
    ) {
        let (mut sender, body) = Body::channel(1 << 20);
        for chunk in &chunks {
            prop_assert!(sender.send_data(Bytes::from(chunk.clone())));
        }
        sender.finish();
        let mut response = Response::new(body);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut request = HeaderMap::new();
        request.insert(ACCEPT_ENCODING, HeaderValue::from_static(coding));
        let response = Compression::new()
            .min_size(0)
            .apply(&Method::GET, &request, response)
            .expect("an acceptable coding");
        prop_assert_eq!(response.headers()["content-encoding"].to_str().unwrap(), coding);
        let mut body = response.into_body();
        let mut compressed = Vec::new();
        let mut sent = Vec::new();
        let mut inputs = chunks.iter().filter(|c| !c.is_empty());
        loop {
            let frame = block_on(std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)));
            let Some(frame) = frame else { break };
            let data = frame.expect("no body error").into_data().expect("data only");
            compressed.extend_from_slice(&data);
            match inputs.next() {
                Some(input) => {
                    sent.extend_from_slice(input);
                    prop_assert_eq!(decode_partial(coding, &compressed), sent.clone());
                }
                None => prop_assert!(body.is_end_stream() || data.len() < 64),
            }
        }
        prop_assert_eq!(decode_whole(coding, &compressed), chunks.concat());
    }

    #[test]
    fn arbitrary_accept_encoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let accept = AcceptEncoding::parse(&text);
        let choice = accept.choose(&Coding::ALL);
        if let Choice::Encode(coding) = choice {
            prop_assert!(accept.quality(coding) > 0.0);
        }
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, value);
            let _ = AcceptEncoding::from_headers(&headers).choose(&[Coding::Gzip]);
        }
    }

    #[test]
    fn a_refused_coding_is_never_chosen(
        text in "[a-z*;=q0-9., -]{0,60}",
        refused in prop::sample::select(vec!["br", "gzip", "deflate"]),
    ) {
        let header = format!("{text}, {refused};q=0");
        let accept = AcceptEncoding::parse(&header);
        let refused = Coding::from_token(refused).unwrap();
        // The refusal may be overridden only by the same coding named with a higher q earlier.
        if accept.quality(refused) == 0.0 {
            prop_assert_ne!(accept.choose(&Coding::ALL), Choice::Encode(refused));
        }
    }
}
