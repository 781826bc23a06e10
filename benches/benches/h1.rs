//! HTTP/1.1 micro-benchmarks of `weft_core::h1::ServerConnection`, with httparse as the
//! baseline, all in one process so that their ratios mean something.
//!
//! What each benchmark times is spelled out next to it and in `benches/README.md`. The
//! connections run on virtual time: the clock is read once, at start-up, and that instant is
//! handed to every call that takes `now` (no timer ever fires within a run).

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http::HeaderMap;
use weft_benches::{
    BROWSER_GET, CHUNKED_BODY_LEN, EMPTY_204, TINY_GET, answer_200, answer_204, chunked_post,
    connection, content_length_post, drain_upload, response_body, response_headers,
    take_bodiless_request, upload_limits,
};
use weft_core::Limits;
use weft_core::h1::{BodySize, ServerConnection, ServerEvent};

/// Iterations per batch where each iteration needs its own prepared connection: enough to make
/// the clock reads around a batch negligible, few enough for the batch's connections to stay in
/// cache (64 connections with their buffers is well under 256 KiB).
const BATCH: BatchSize = BatchSize::NumIterations(64);

fn main() {
    let now = Instant::now();
    let mut criterion = Criterion::default().configure_from_args();
    head(&mut criterion, now);
    chunked(&mut criterion, now);
    response(&mut criterion, now);
    pieces(&mut criterion, now);
    criterion.final_summary();
}

/// A browser request head, through weft and through bare httparse.
fn head(c: &mut Criterion, now: Instant) {
    let mut group = c.benchmark_group("head");
    group.throughput(Throughput::Bytes(BROWSER_GET.len() as u64));
    let empty = HeaderMap::new();

    // One keep-alive connection, one whole exchange per iteration: receive (copy into the
    // connection's buffer), scan, parse and validate the head, the Request and EndOfMessage
    // events, a `204` with no fields, not even `date` (27 bytes out), and the drops of the head and of the
    // output. This is the per-request cost a driver pays for a bodiless request.
    group.bench_function("weft_server", |b| {
        let mut conn = ServerConnection::new(Limits::default(), now);
        b.iter(|| {
            let taken = conn.receive(now, black_box(BROWSER_GET));
            debug_assert_eq!(taken, BROWSER_GET.len());
            let head = take_bodiless_request(&mut conn);
            black_box(head);
            let wire = answer_204(&mut conn, &empty, now);
            debug_assert_eq!(&wire[..], EMPTY_204);
            black_box(wire)
        });
    });

    // Only the `poll_event` that yields the Request: head scan, httparse, validation, the
    // `http` types (Method, Uri, HeaderMap) and the Box. Each iteration gets a fresh connection
    // that has already received the request (set up untimed); the event is dropped untimed.
    for (name, max_headers) in [
        ("weft_server_parse_only", Limits::default().max_headers),
        // Past core's 128 stack slots for httparse, the slots come from a heap Vec.
        ("weft_server_parse_only_max_headers_200", 200),
    ] {
        let mut limits = Limits::default();
        limits.max_headers = max_headers;
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let mut conn = ServerConnection::new(limits.clone(), now);
                    assert_eq!(conn.receive(now, BROWSER_GET), BROWSER_GET.len());
                    conn
                },
                |conn| {
                    let event = conn.poll_event();
                    debug_assert!(matches!(event, Some(ServerEvent::Request(_))));
                    event
                },
                BATCH,
            );
        });
    }

    // The baseline: httparse alone, with 64 initialised header slots, as most users call it.
    group.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let status = request.parse(black_box(BROWSER_GET));
            debug_assert_eq!(status, Ok(httparse::Status::Complete(BROWSER_GET.len())));
            black_box(&request);
            black_box(status.is_ok())
        });
    });

    // httparse with uninitialised slots, as weft-core calls it: the floor for weft's parse.
    group.bench_function("httparse_uninit", |b| {
        b.iter(|| {
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
            let mut request = httparse::Request::new(&mut []);
            let status = request.parse_with_uninit_headers(black_box(BROWSER_GET), &mut slots);
            debug_assert_eq!(status, Ok(httparse::Status::Complete(BROWSER_GET.len())));
            black_box(&request);
            black_box(status.is_ok())
        });
    });
    group.finish();
}

/// A 64 KiB upload received in one piece, chunked and not.
fn chunked(c: &mut Criterion, now: Instant) {
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(CHUNKED_BODY_LEN as u64));
    let empty = HeaderMap::new();

    // One keep-alive connection, one upload per iteration: receive the whole message (a copy
    // into the connection's buffer), the Request event, every Data event (one per chunk, each
    // a `Bytes` sharing the buffer), EndOfMessage, then an empty `204` so that the connection
    // takes the next upload. Throughput counts body bytes, not wire bytes.
    let uploads = [
        ("4k", chunked_post(4096)),
        ("16b", chunked_post(16)),
        // The same body framed by Content-Length (one Data event): what moving the bytes costs.
        ("baseline_content_length", content_length_post()),
    ];
    for (name, message) in &uploads {
        group.bench_function(*name, |b| {
            let mut conn = connection(upload_limits(), now);
            b.iter(|| {
                let body = drain_upload(&mut conn, black_box(message), now);
                debug_assert_eq!(body, CHUNKED_BODY_LEN);
                black_box(answer_204(&mut conn, &empty, now))
            });
        });
    }
    group.finish();
}

/// A 200 response with typical fields and a 1 KiB body.
fn response(c: &mut Criterion, now: Instant) {
    let mut group = c.benchmark_group("response");
    let headers = response_headers();
    let body = response_body();
    let wire_len = {
        let mut conn = connection(Limits::default(), now);
        conn.receive(now, TINY_GET);
        take_bodiless_request(&mut conn);
        answer_200(&mut conn, &headers, &body, now).len()
    };
    group.throughput(Throughput::Bytes(wire_len as u64));

    // Only the answer: send_response (status line, date, six fields, content-length),
    // send_data (1 KiB copied into the output), finish, poll_transmit. A response needs a
    // request awaiting it, and a keep-alive connection holds one at a time, so each iteration
    // gets its own connection, prepared untimed: one whole exchange first (so its output
    // buffer is allocated and reusable, as on a connection in steady state), then a request
    // received and read up to EndOfMessage. The output `Bytes` is dropped untimed.
    group.bench_function("encode", |b| {
        b.iter_batched_ref(
            || {
                let mut conn = connection(Limits::default(), now);
                conn.receive(now, TINY_GET);
                take_bodiless_request(&mut conn);
                drop(answer_200(&mut conn, &headers, &body, now));
                conn.receive(now, TINY_GET);
                take_bodiless_request(&mut conn);
                conn
            },
            |conn| answer_200(conn, black_box(&headers), black_box(&body), now),
            BATCH,
        );
    });

    // The same answer on one keep-alive connection, each to its own 27-byte request: receive,
    // the Request and EndOfMessage events, then the answer as above, all timed.
    group.bench_function("exchange", |b| {
        let mut conn = connection(Limits::default(), now);
        b.iter(|| {
            conn.receive(now, black_box(TINY_GET));
            black_box(take_bodiless_request(&mut conn));
            black_box(answer_200(&mut conn, &headers, &body, now))
        });
    });
    group.finish();
}

/// Where copying a response body into the output stops paying: one keep-alive exchange per
/// iteration (a 27-byte request, a `200` with `content-length` and `date`), its body given as
/// a `Bytes` of each size, either copied into the output buffer (`send_data`, one piece) or
/// queued as a piece of its own (`send_data_bytes` above `PIECE_MIN`: two pieces, the head and
/// the body), all of it taken by `poll_transmit_vectored` into a reused `Vec`, as the
/// event-loop driver does before its `writev`. What the kernel then does with one iovec more
/// (a few tens of nanoseconds) is not in these figures.
fn pieces(c: &mut Criterion, now: Instant) {
    let mut group = c.benchmark_group("pieces");
    let empty = HeaderMap::new();
    for size in [128usize, 512, 2048, 8192] {
        let body: Bytes = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        for (name, by_piece) in [("copied", false), ("piece", true)] {
            group.bench_function(format!("{name}/{size}"), |b| {
                let mut conn = connection(Limits::default(), now);
                let mut out = Vec::with_capacity(4);
                b.iter(|| {
                    conn.receive(now, black_box(TINY_GET));
                    black_box(take_bodiless_request(&mut conn));
                    conn.send_response(http::StatusCode::OK, &empty, BodySize::Known(size as u64))
                        .unwrap();
                    let taken = if by_piece {
                        conn.send_data_bytes(black_box(&body))
                    } else {
                        conn.send_data(black_box(&body))
                    };
                    debug_assert_eq!(taken, Ok(size));
                    conn.finish().unwrap();
                    conn.poll_transmit_vectored(now, &mut out, 64);
                    black_box(&out);
                    out.clear();
                });
            });
        }
    }
    group.finish();
}
