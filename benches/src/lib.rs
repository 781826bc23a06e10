//! Fixtures and small drivers shared by the weft benchmarks (`benches/h1.rs`).
//!
//! They live in a library so that `cargo test -p weft-benches` checks, outside any timing loop,
//! that every fixture takes the path the benchmark claims to measure: a benchmark that silently
//! measured an error path would be worse than none.

use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use weft_core::Limits;
use weft_core::h1::{BodySize, RequestHead, ServerConnection, ServerEvent};

/// A navigation request as a current desktop Chrome sends it over HTTP/1.1 (15 fields, 734
/// bytes): client hints, fetch metadata, a referer and a small cookie.
pub const BROWSER_GET: &[u8] = b"GET /blog/2025/sans-io-http?utm_source=newsletter HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Windows\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: sid=3f9a1c2e7b5d4a60; theme=dark\r\n\
\r\n";

/// The smallest valid HTTP/1.1 request: what `response/encode` answers.
pub const TINY_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// The wire form of the empty answer the head benchmarks send back (on a connection without
/// a `Date` value, so that the answer is as small as a response can be).
pub const EMPTY_204: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

/// Size of the chunked request body, in bytes.
pub const CHUNKED_BODY_LEN: usize = 64 * 1024;

/// Size of the response body in `response/*`, in bytes.
pub const RESPONSE_BODY_LEN: usize = 1024;

/// A `Date` value as a driver would set it once a second.
pub const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// An upload of [`CHUNKED_BODY_LEN`] bytes in chunks of `chunk_size` bytes (no extensions,
/// no trailers).
///
/// # Panics
///
/// When `chunk_size` is 0 or does not divide [`CHUNKED_BODY_LEN`].
pub fn chunked_post(chunk_size: usize) -> Vec<u8> {
    assert!(chunk_size > 0 && CHUNKED_BODY_LEN % chunk_size == 0);
    let mut message = upload_head("Transfer-Encoding: chunked");
    let chunk: Vec<u8> = (0..chunk_size).map(|i| b'a' + (i % 26) as u8).collect();
    for _ in 0..CHUNKED_BODY_LEN / chunk_size {
        message.extend_from_slice(format!("{chunk_size:x}\r\n").as_bytes());
        message.extend_from_slice(&chunk);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b"0\r\n\r\n");
    message
}

/// The same upload as [`chunked_post`], framed by Content-Length: the baseline for what
/// chunked decoding costs on top of moving the bytes.
pub fn content_length_post() -> Vec<u8> {
    let mut message = upload_head(&format!("Content-Length: {CHUNKED_BODY_LEN}"));
    message.extend((0..CHUNKED_BODY_LEN).map(|i| b'a' + (i % 26) as u8));
    message
}

fn upload_head(framing: &str) -> Vec<u8> {
    format!(
        "POST /upload HTTP/1.1\r\nHost: api.example.com\r\n\
         Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    )
    .into_bytes()
}

/// Limits for the body benchmarks: the defaults, with room for a whole 64 KiB upload (chunk
/// framing included) to be received at once.
pub fn upload_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_body_size = 1024 * 1024;
    limits.max_buffered_input = 256 * 1024;
    limits
}

/// Six fields a typical dynamic response carries (the connection adds `date` and
/// `content-length`).
pub fn response_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let fields = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "private, max-age=0, must-revalidate"),
        (header::ETAG, "\"5f1e3a-400-65a1b2c3\""),
        (header::LAST_MODIFIED, "Sat, 05 Nov 1994 08:49:37 GMT"),
        (header::VARY, "Accept-Encoding"),
        (header::SERVER, "weft"),
    ];
    for (name, value) in fields {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

/// The response body of `response/*`.
pub fn response_body() -> Vec<u8> {
    (0..RESPONSE_BODY_LEN)
        .map(|i| b'A' + (i % 26) as u8)
        .collect()
}

/// A keep-alive connection with `Date` set, as a driver holds it between requests.
pub fn connection(limits: Limits, now: Instant) -> ServerConnection {
    let mut connection = ServerConnection::new(limits, now);
    connection.set_date(HeaderValue::from_static(DATE));
    connection
}

/// Takes one whole request with an empty body out of `connection` (already received): the
/// `Request` event, then `EndOfMessage`.
///
/// # Panics
///
/// On any other event: the fixture is not taking the path it is meant to.
pub fn take_bodiless_request(connection: &mut ServerConnection) -> Box<RequestHead> {
    let head = match connection.poll_event() {
        Some(ServerEvent::Request(head)) => head,
        other => panic!("expected a request, got {other:?}"),
    };
    match connection.poll_event() {
        Some(ServerEvent::EndOfMessage) => head,
        other => panic!("expected the end of the request, got {other:?}"),
    }
}

/// Answers the current request with an empty `204` and returns its wire bytes.
///
/// # Panics
///
/// When the connection refuses the response: it was not awaiting one.
pub fn answer_204(connection: &mut ServerConnection, empty: &HeaderMap, now: Instant) -> Bytes {
    connection
        .send_response(StatusCode::NO_CONTENT, empty, BodySize::EMPTY)
        .expect("a request awaits its response");
    connection.finish().expect("an empty body is complete");
    connection.poll_transmit(now).expect("the response head")
}

/// Answers the current request with `200`, `headers` and `body` (Content-Length framing), and
/// returns the wire bytes.
///
/// # Panics
///
/// When the connection refuses the response or does not take the whole body.
pub fn answer_200(
    connection: &mut ServerConnection,
    headers: &HeaderMap,
    body: &[u8],
    now: Instant,
) -> Bytes {
    connection
        .send_response(StatusCode::OK, headers, BodySize::Known(body.len() as u64))
        .expect("a request awaits its response");
    let taken = connection
        .send_data(body)
        .expect("the body fits its length");
    assert_eq!(taken, body.len(), "output buffer full");
    connection.finish().expect("the body is complete");
    connection.poll_transmit(now).expect("the response")
}

/// Receives a whole upload and drains its events, returning the body bytes seen.
///
/// # Panics
///
/// When the connection does not take the whole message at once, or reports anything but one
/// request, its body and its end.
pub fn drain_upload(connection: &mut ServerConnection, message: &[u8], now: Instant) -> usize {
    let taken = connection.receive(now, message);
    assert_eq!(taken, message.len(), "raise max_buffered_input");
    match connection.poll_event() {
        Some(ServerEvent::Request(head)) => drop(std::hint::black_box(head)),
        other => panic!("expected a request, got {other:?}"),
    }
    let mut body = 0;
    loop {
        match connection.poll_event() {
            Some(ServerEvent::Data(data)) => body += std::hint::black_box(data).len(),
            Some(ServerEvent::EndOfMessage) => return body,
            other => panic!("expected body data, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::h1::ReadStatus;

    #[test]
    fn browser_get_is_a_keep_alive_request() {
        assert_eq!(BROWSER_GET.len(), 734);
        let now = Instant::now();
        let mut conn = ServerConnection::new(Limits::default(), now);
        let empty = HeaderMap::new();
        for _ in 0..3 {
            assert_eq!(conn.receive(now, BROWSER_GET), BROWSER_GET.len());
            let head = take_bodiless_request(&mut conn);
            assert_eq!(head.headers.len(), 15);
            assert!(head.keep_alive);
            assert_eq!(&answer_204(&mut conn, &empty, now)[..], EMPTY_204);
            assert_eq!(conn.poll_event(), None);
            assert_eq!(conn.read_status(), ReadStatus::NeedData);
        }
    }

    #[test]
    fn uploads_carry_the_whole_body() {
        let now = Instant::now();
        let mut conn = connection(upload_limits(), now);
        let empty = HeaderMap::new();
        for message in [chunked_post(4096), chunked_post(16), content_length_post()] {
            for _ in 0..2 {
                assert_eq!(drain_upload(&mut conn, &message, now), CHUNKED_BODY_LEN);
                answer_204(&mut conn, &empty, now);
                assert_eq!(conn.read_status(), ReadStatus::NeedData);
            }
        }
    }

    #[test]
    fn response_has_the_fields_and_body() {
        let now = Instant::now();
        let mut conn = connection(Limits::default(), now);
        let headers = response_headers();
        let body = response_body();
        for _ in 0..2 {
            conn.receive(now, TINY_GET);
            take_bodiless_request(&mut conn);
            let wire = answer_200(&mut conn, &headers, &body, now);
            let text = std::str::from_utf8(&wire).unwrap();
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
            assert!(text.contains(&format!("\r\ndate: {DATE}\r\n")));
            assert!(text.contains("\r\ncontent-length: 1024\r\n"));
            assert_eq!(text.matches("\r\n").count(), 2 + 6 + 2);
            assert!(wire.ends_with(&body));
            assert_eq!(conn.read_status(), ReadStatus::NeedData);
        }
    }
}
