//! Response compression and request decompression through `TestClient` (the real dispatcher,
//! HTTP/1.1 and HTTP/2), and through curl `--compressed` on a loopback port.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use weft::compression::{Compression, RequestDecompression};
use weft::prelude::*;
use weft::test::TestClient;
use weft::{AppService, ServerConfig};
use weft_service::runtime;

/// A text body of `n` bytes that compresses well, but not to nothing.
fn text(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        out.push_str(&format!(
            "line {i} of the compressible text {}\n",
            i * 7919 % 1000
        ));
        i += 1;
    }
    out.truncate(n);
    out
}

fn typed(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Whether the streaming handler may send its second chunk.
static RELEASE: AtomicBool = AtomicBool::new(false);

fn app() -> AppService {
    App::new()
        .middleware(Compression::new())
        .get("/text", || async { text(10_000) })
        .get("/small", || async { text(100) })
        .get("/png", || async { typed("image/png", text(10_000)) })
        .get("/svg", || async { typed("image/svg+xml", text(10_000)) })
        .get("/zip", || async { typed("application/zip", text(10_000)) })
        .get("/woff2", || async { typed("font/woff2", text(10_000)) })
        .get("/video", || async { typed("video/mp4", text(10_000)) })
        .get("/events", || async {
            typed("text/event-stream", text(10_000))
        })
        .get("/encoded", || async {
            let mut response = typed("text/plain", text(10_000));
            response
                .headers_mut()
                .insert("content-encoding", HeaderValue::from_static("x-custom"));
            response
        })
        .get("/range", || async {
            let mut response = typed("text/plain", text(10_000));
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response.headers_mut().insert(
                "content-range",
                HeaderValue::from_static("bytes 0-9999/20000"),
            );
            response
        })
        .get("/no-content", || async { StatusCode::NO_CONTENT })
        .get("/not-modified", || async {
            let mut response = typed("text/plain", "");
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        })
        .get("/no-transform", || async {
            let mut response = typed("text/plain", text(10_000));
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-transform"));
            response
        })
        .get("/etag", || async {
            let mut response = typed("text/plain", text(10_000));
            response
                .headers_mut()
                .insert("etag", HeaderValue::from_static("\"v1\""));
            response
        })
        .get("/missing", || async { Error::not_found("nothing here") })
        .get("/stream", || async {
            let (mut sender, body) = Body::channel(1 << 16);
            runtime::spawn(async move {
                sender.send_data(Bytes::from(text(3000)));
                while !RELEASE.load(Ordering::SeqCst) {
                    runtime::sleep(Duration::from_millis(1)).await;
                }
                sender.send_data(Bytes::from("the second chunk"));
                sender.finish();
            });
            typed("text/plain", body)
        })
        .get("/chunks", || async {
            let (mut sender, body) = Body::channel(1 << 16);
            runtime::spawn(async move {
                for i in 0..20 {
                    sender.send_data(Bytes::from(format!("{i}:{}", text(500))));
                    runtime::sleep(Duration::from_millis(1)).await;
                }
                sender.finish();
            });
            typed("text/plain", body)
        })
        .build()
        .unwrap()
}

fn clients(app: AppService) -> [TestClient; 2] {
    let client = TestClient::new(app);
    [client.clone().http1(), client.http2()]
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid zlib");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("valid brotli");
    out
}

fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => gunzip(bytes),
        "deflate" => inflate(bytes),
        "br" => unbrotli(bytes),
        other => panic!("unexpected coding {other}"),
    }
}

#[test]
fn each_coding_round_trips_byte_for_byte_on_both_protocols() {
    let original = text(10_000);
    for client in clients(app()) {
        for coding in ["gzip", "deflate", "br"] {
            let response = client.get("/text").header("accept-encoding", coding).send();
            response
                .assert_status(200)
                .assert_header("content-encoding", coding)
                .assert_header("vary", "accept-encoding")
                .assert_no_header("content-length");
            assert!(response.bytes().len() < original.len() / 2);
            assert_eq!(decode(coding, response.bytes()), original.as_bytes());
        }
    }
}

#[test]
fn q_values_choose_the_coding() {
    let cases = [
        ("gzip, deflate, br", Some("br")),
        ("gzip;q=1, br;q=0.5", Some("gzip")),
        ("deflate;q=0.9, gzip;q=0.8", Some("deflate")),
        ("*", Some("br")),
        ("*;q=0.5, br;q=0", Some("gzip")),
        ("br;q=0, gzip;q=0, deflate;q=0", None),
        ("identity", None),
        ("gzip;q=0.5, identity;q=1", None),
        ("zstd", None),
        ("", None),
    ];
    for client in clients(app()) {
        for (accept, expected) in cases {
            let response = client.get("/text").header("accept-encoding", accept).send();
            response.assert_status(200);
            assert_eq!(response.header("content-encoding"), expected, "{accept}");
            let body = match expected {
                Some(coding) => decode(coding, response.bytes()),
                None => response.bytes().to_vec(),
            };
            assert_eq!(body, text(10_000).as_bytes(), "{accept}");
        }
        // No Accept-Encoding at all: identity.
        let response = client.get("/text").send();
        response.assert_no_header("content-encoding");
        assert_eq!(response.bytes(), text(10_000).as_bytes());
    }
}

#[test]
fn identity_refused_with_nothing_acceptable_is_406_problem_json() {
    for client in clients(app()) {
        for accept in ["zstd, identity;q=0", "*;q=0"] {
            let response = client.get("/text").header("accept-encoding", accept).send();
            response
                .assert_status(406)
                .assert_header("content-type", "application/problem+json");
            let problem: serde_json::Value = response.json();
            assert_eq!(problem["code"], "encoding.not_acceptable");
        }
        // Identity refused but gzip acceptable: even a small body is compressed.
        let response = client
            .get("/small")
            .header("accept-encoding", "gzip, identity;q=0")
            .send();
        response.assert_header("content-encoding", "gzip");
        assert_eq!(gunzip(response.bytes()), text(100).as_bytes());
        // An error response keeps its own status.
        client
            .get("/missing")
            .header("accept-encoding", "*;q=0")
            .send()
            .assert_status(404);
    }
}

#[test]
fn every_skip_rule_leaves_the_body_alone() {
    for client in clients(app()) {
        for path in [
            "/small",
            "/png",
            "/zip",
            "/woff2",
            "/video",
            "/events",
            "/range",
            "/no-transform",
        ] {
            let response = client
                .get(path)
                .header("accept-encoding", "gzip, br")
                .send();
            response.assert_no_header("content-encoding");
            let expected = if path == "/small" {
                text(100)
            } else {
                text(10_000)
            };
            assert_eq!(response.bytes(), expected.as_bytes(), "{path}");
        }
        let response = client
            .get("/encoded")
            .header("accept-encoding", "gzip")
            .send();
        response.assert_header("content-encoding", "x-custom");
        assert_eq!(response.bytes(), text(10_000).as_bytes());
        client
            .get("/no-content")
            .header("accept-encoding", "gzip")
            .send()
            .assert_status(204)
            .assert_no_header("content-encoding");
        client
            .get("/not-modified")
            .header("accept-encoding", "gzip")
            .send()
            .assert_status(304)
            .assert_no_header("content-encoding");
        client
            .head("/text")
            .header("accept-encoding", "gzip")
            .send()
            .assert_status(200)
            .assert_no_header("content-encoding");
        // SVG is an image worth compressing.
        let response = client.get("/svg").header("accept-encoding", "gzip").send();
        response.assert_header("content-encoding", "gzip");
        assert_eq!(gunzip(response.bytes()), text(10_000).as_bytes());
    }
}

#[test]
fn a_strong_etag_becomes_weak_when_compressed() {
    for client in clients(app()) {
        client
            .get("/etag")
            .header("accept-encoding", "br")
            .send()
            .assert_header("etag", "W/\"v1\"");
        client.get("/etag").send().assert_header("etag", "\"v1\"");
    }
}

#[test]
fn a_streamed_chunk_is_readable_compressed_before_the_next_is_sent() {
    for coding in ["gzip", "deflate", "br"] {
        for client in clients(app()) {
            RELEASE.store(false, Ordering::SeqCst);
            let mut stream = client
                .get("/stream")
                .header("accept-encoding", coding)
                .send_streaming();
            assert_eq!(stream.header("content-encoding"), Some(coding));
            // The decoder must yield the first chunk whole from what has arrived, while the
            // handler still holds the second back.
            let mut compressed = Vec::new();
            let first = text(3000);
            let mut decoded = Vec::new();
            while decoded.len() < first.len() {
                let chunk = stream.next_chunk().expect("the first chunk, compressed");
                compressed.extend_from_slice(&chunk);
                decoded = decode_partial(coding, &compressed);
            }
            assert_eq!(decoded, first.as_bytes(), "{coding}");
            RELEASE.store(true, Ordering::SeqCst);
            let response = stream.finish();
            let whole = decode(coding, response.bytes());
            assert_eq!(whole, format!("{first}the second chunk").as_bytes());
        }
    }
}

/// Decodes as much of a truncated stream as it holds.
fn decode_partial(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut reader: Box<dyn Read> = match coding {
        "gzip" => Box::new(flate2::read::GzDecoder::new(bytes)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(bytes)),
        _ => Box::new(brotli::Decompressor::new(bytes, 4096)),
    };
    // A truncated stream ends in an error (or an early EOF) once what it holds is read.
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buffer[..n]);
    }
    out
}

#[test]
fn a_many_chunk_stream_round_trips() {
    let expected: String = (0..20).map(|i| format!("{i}:{}", text(500))).collect();
    for client in clients(app()) {
        for coding in ["gzip", "deflate", "br"] {
            let response = client
                .get("/chunks")
                .header("accept-encoding", coding)
                .send();
            assert!(response.chunks().len() > 1, "streamed in pieces");
            assert_eq!(decode(coding, response.bytes()), expected.as_bytes());
        }
    }
}

fn upload_app() -> AppService {
    App::new()
        .middleware(RequestDecompression::new().max_size(1 << 20))
        .post("/echo", |body: Bytes| async move { body })
        .build()
        .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn brotli_encode(bytes: &[u8]) -> Vec<u8> {
    let mut writer = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    writer.write_all(bytes).unwrap();
    writer.into_inner()
}

#[test]
fn compressed_request_bodies_are_decoded() {
    let original = text(50_000);
    for client in clients(upload_app()) {
        for (coding, body) in [
            ("gzip", gzip(original.as_bytes())),
            ("deflate", zlib(original.as_bytes())),
            ("br", brotli_encode(original.as_bytes())),
        ] {
            let response = client
                .post("/echo")
                .header("content-encoding", coding)
                .body(body)
                .send();
            response.assert_status(200);
            assert_eq!(response.bytes(), original.as_bytes(), "{coding}");
        }
        // No coding: as it is.
        let response = client.post("/echo").body("plain").send();
        response.assert_status(200).assert_text("plain");
    }
}

#[test]
fn a_gzip_bomb_is_refused_413_without_inflating_it() {
    // 100 MiB of zeros, about 100 KiB compressed.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    for client in clients(upload_app()) {
        let started = std::time::Instant::now();
        let response = client
            .post("/echo")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send();
        response
            .assert_status(413)
            .assert_header("content-type", "application/problem+json");
        let problem: serde_json::Value = response.json();
        assert_eq!(problem["code"], "body.decoded_too_large");
        // Inflating all 100 MiB would take far longer than inflating the 1 MiB limit.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn the_ratio_check_refuses_a_bomb_under_the_size_limit() {
    let app = App::new()
        .middleware(RequestDecompression::new().max_ratio(50))
        .post("/echo", |body: Bytes| async move { body.len().to_string() })
        .build()
        .unwrap();
    let bomb = gzip(&vec![0u8; 4 << 20]);
    for client in clients(app) {
        client
            .post("/echo")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .assert_status(413);
    }
}

#[test]
fn unknown_request_codings_are_415_and_corrupt_ones_400() {
    for client in clients(upload_app()) {
        let response = client
            .post("/echo")
            .header("content-encoding", "zstd")
            .body("abc")
            .send();
        response
            .assert_status(415)
            .assert_header("accept-encoding", "br, gzip, deflate");
        let problem: serde_json::Value = response.json();
        assert_eq!(problem["code"], "encoding.unsupported");
        let response = client
            .post("/echo")
            .header("content-encoding", "gzip")
            .body("not gzip at all")
            .send();
        response.assert_status(400);
        let problem: serde_json::Value = response.json();
        assert_eq!(problem["code"], "body.decoding");
    }
}

use support::curl_bytes as curl;

#[test]
fn curl_compressed_decodes_gzip_deflate_and_br_byte_for_byte() {
    let version = std::process::Command::new("curl")
        .arg("-V")
        .output()
        .expect("curl");
    let features = String::from_utf8_lossy(&version.stdout).to_lowercase();
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app().listen(config).unwrap();
    let base = format!("http://{}", server.local_addrs()[0]);
    let original = text(10_000);
    let expected_chunks: String = (0..20).map(|i| format!("{i}:{}", text(500))).collect();
    let mut codings = vec!["gzip", "deflate"];
    if features.contains("brotli") {
        codings.push("br");
    }
    for protocol in ["--http1.1", "--http2-prior-knowledge"] {
        for coding in &codings {
            // `-D -` shows the head, to check the coding was really used.
            let head = curl(&[
                protocol,
                "-o",
                "/dev/null",
                "-D",
                "-",
                "-H",
                &format!("accept-encoding: {coding}"),
                &format!("{base}/text"),
            ]);
            let head = String::from_utf8_lossy(&head).to_lowercase();
            assert!(
                head.contains(&format!("content-encoding: {coding}")),
                "{protocol} {coding}: {head}"
            );
            let body = curl(&[
                protocol,
                "--compressed",
                "-H",
                &format!("accept-encoding: {coding}"),
                &format!("{base}/text"),
            ]);
            assert_eq!(body, original.as_bytes(), "{protocol} {coding}");
            let body = curl(&[
                protocol,
                "--compressed",
                "-H",
                &format!("accept-encoding: {coding}"),
                &format!("{base}/chunks"),
            ]);
            assert_eq!(body, expected_chunks.as_bytes(), "{protocol} {coding}");
        }
    }
    server.shutdown();
    server.join().unwrap();
}
