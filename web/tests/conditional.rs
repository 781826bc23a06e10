//! Conditional requests through `TestClient` (HTTP/1.1 and HTTP/2): the 304/412 matrix of
//! RFC 9110 §13.2.2, the fields a 304 keeps, body-hashed ETags, handler-side checks for
//! unsafe methods, and the order with compression.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::HeaderValue;
use weft::AppService;
use weft::compression::Compression;
use weft::conditional::{
    Conditional, ETag, LastModified, Precondition, Validators, precondition_failed,
};
use weft::prelude::*;
use weft::test::TestClient;

/// 2020-01-01T00:00:00Z, safely in the past (an If-Modified-Since in the future is ignored).
fn modified() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_577_836_800)
}

fn date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

fn document() -> Response {
    let mut response = (
        [
            ETag::strong("v1").header(),
            LastModified(modified()).header(),
        ],
        "the document ".repeat(100),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
    headers.insert("vary", HeaderValue::from_static("accept-language"));
    headers.insert("content-location", HeaderValue::from_static("/doc.en"));
    headers.insert(
        "expires",
        HeaderValue::from_static("Thu, 01 Jan 2099 00:00:00 GMT"),
    );
    headers.insert("set-cookie", HeaderValue::from_static("seen=1"));
    response
}

async fn update(method: Method, headers: HeaderMap) -> Result<&'static str, Error> {
    let current = Validators::new(Some(ETag::strong("v1")), Some(modified()));
    match current.evaluate(&method, &headers) {
        Precondition::Proceed => Ok("updated"),
        _ => Err(precondition_failed()),
    }
}

fn app() -> AppService {
    App::new()
        .middleware(Compression::new())
        .middleware(Conditional::new().etag_from_body(1024))
        .get("/doc", || async { document() })
        .put("/doc", update)
        .get("/weak", || async { ([ETag::weak("w1").header()], "weak") })
        .get("/dated", || async {
            ([LastModified(modified()).header()], "dated ".repeat(300))
        })
        .get("/plain", || async { "hello" })
        .get("/big", || async { "x".repeat(2000) })
        .get("/missing", || async { Error::not_found("gone") })
        .build()
        .unwrap()
}

fn clients() -> [TestClient; 2] {
    let client = TestClient::new(app());
    [client.clone().http1(), client.http2()]
}

fn status(client: &TestClient, method: Method, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = client.request(method, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().status().as_u16()
}

/// A path, the request's precondition fields, the status expected.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);

#[test]
fn the_precondition_matrix_of_rfc_9110() {
    let lm = date(modified());
    let before = date(modified() - Duration::from_secs(1));
    let after = date(modified() + Duration::from_secs(3600));
    let cases: Vec<Case<'_>> = vec![
        ("/doc", vec![], 200),
        // If-None-Match: the weak comparison.
        ("/doc", vec![("if-none-match", "\"v1\"")], 304),
        ("/doc", vec![("if-none-match", "W/\"v1\"")], 304),
        ("/doc", vec![("if-none-match", "\"v2\"")], 200),
        ("/doc", vec![("if-none-match", "\"v2\", \"v1\"")], 304),
        ("/doc", vec![("if-none-match", "*")], 304),
        ("/doc", vec![("if-none-match", "garbage")], 200),
        ("/weak", vec![("if-none-match", "\"w1\"")], 304),
        // If-Match: the strong comparison.
        ("/doc", vec![("if-match", "\"v1\"")], 200),
        ("/doc", vec![("if-match", "W/\"v1\"")], 412),
        ("/doc", vec![("if-match", "\"v2\"")], 412),
        ("/doc", vec![("if-match", "*")], 200),
        ("/doc", vec![("if-match", "garbage")], 412),
        ("/weak", vec![("if-match", "W/\"w1\"")], 412),
        // If-Modified-Since.
        ("/doc", vec![("if-modified-since", lm.as_str())], 304),
        ("/doc", vec![("if-modified-since", after.as_str())], 304),
        ("/doc", vec![("if-modified-since", before.as_str())], 200),
        ("/doc", vec![("if-modified-since", "yesterday")], 200),
        ("/dated", vec![("if-modified-since", lm.as_str())], 304),
        // If-Unmodified-Since.
        ("/doc", vec![("if-unmodified-since", lm.as_str())], 200),
        ("/doc", vec![("if-unmodified-since", before.as_str())], 412),
        ("/doc", vec![("if-unmodified-since", "yesterday")], 200),
        // Precedence (§13.2.2): If-Match over If-Unmodified-Since...
        (
            "/doc",
            vec![
                ("if-match", "\"v1\""),
                ("if-unmodified-since", before.as_str()),
            ],
            200,
        ),
        // ... If-None-Match over If-Modified-Since ...
        (
            "/doc",
            vec![
                ("if-none-match", "\"v2\""),
                ("if-modified-since", after.as_str()),
            ],
            200,
        ),
        // ... and If-Match first of all.
        (
            "/doc",
            vec![("if-match", "\"v2\""), ("if-none-match", "\"v1\"")],
            412,
        ),
        (
            "/doc",
            vec![
                ("if-unmodified-since", before.as_str()),
                ("if-none-match", "\"v1\""),
            ],
            412,
        ),
        // Errors are never preconditioned.
        ("/missing", vec![("if-none-match", "*")], 404),
        ("/missing", vec![("if-match", "\"v1\"")], 404),
    ];
    for client in clients() {
        for (path, headers, expected) in &cases {
            assert_eq!(
                status(&client, Method::GET, path, headers),
                *expected,
                "GET {path} {headers:?}"
            );
        }
        assert_eq!(
            status(
                &client,
                Method::HEAD,
                "/doc",
                &[("if-none-match", "\"v1\"")]
            ),
            304
        );
        assert_eq!(
            status(&client, Method::HEAD, "/doc", &[("if-match", "\"v2\"")]),
            412
        );
    }
}

#[test]
fn a_304_keeps_the_cache_fields_and_drops_the_body() {
    for client in clients() {
        let response = client.get("/doc").header("if-none-match", "\"v1\"").send();
        response
            .assert_status(304)
            .assert_header("etag", "\"v1\"")
            .assert_header("cache-control", "max-age=60")
            .assert_header("content-location", "/doc.en")
            .assert_header("expires", "Thu, 01 Jan 2099 00:00:00 GMT")
            .assert_no_header("set-cookie")
            .assert_no_header("content-type")
            .assert_no_header("last-modified");
        assert!(response.bytes().is_empty());
        let vary = response.header_all("vary").join(", ");
        assert!(vary.contains("accept-language"), "{vary}");
        assert!(vary.contains("accept-encoding"), "{vary}");
        // Without a tag, Last-Modified is what guides the cache.
        client
            .get("/dated")
            .header("if-modified-since", date(modified()))
            .send()
            .assert_status(304)
            .assert_header("last-modified", &date(modified()));
    }
}

#[test]
fn a_412_is_problem_json() {
    for client in clients() {
        let response = client.get("/doc").header("if-match", "\"v0\"").send();
        response
            .assert_status(412)
            .assert_header("content-type", "application/problem+json");
        let problem: serde_json::Value = response.json();
        assert_eq!(problem["code"], "precondition.failed");
        assert_eq!(problem["status"], 412);
    }
}

#[test]
fn small_bodies_get_a_strong_tag_from_their_bytes() {
    let expected = ETag::from_bytes(b"hello").to_string();
    for client in clients() {
        let response = client.get("/plain").send();
        response
            .assert_status(200)
            .assert_header("etag", &expected)
            .assert_text("hello");
        client
            .get("/plain")
            .header("if-none-match", expected.as_str())
            .send()
            .assert_status(304);
        // HEAD runs the GET route: the same tag, so a HEAD can revalidate too.
        client
            .head("/plain")
            .send()
            .assert_status(200)
            .assert_header("etag", &expected);
        client
            .get("/big")
            .send()
            .assert_status(200)
            .assert_no_header("etag");
    }
}

#[test]
fn unsafe_methods_are_checked_by_the_handler_before_the_change() {
    for client in clients() {
        client
            .put("/doc")
            .header("if-match", "\"v1\"")
            .send()
            .assert_status(200)
            .assert_text("updated");
        client
            .put("/doc")
            .header("if-match", "\"v0\"")
            .send()
            .assert_status(412);
        client
            .put("/doc")
            .header("if-none-match", "*")
            .send()
            .assert_status(412);
        client
            .put("/doc")
            .header(
                "if-unmodified-since",
                date(modified() - Duration::from_secs(60)),
            )
            .send()
            .assert_status(412);
    }
    let missing = Validators::missing();
    let mut headers = HeaderMap::new();
    headers.insert("if-none-match", HeaderValue::from_static("*"));
    assert_eq!(
        missing.evaluate(&Method::PUT, &headers),
        Precondition::Proceed
    );
    headers.clear();
    headers.insert("if-match", HeaderValue::from_static("*"));
    assert_eq!(
        missing.evaluate(&Method::PUT, &headers),
        Precondition::Failed
    );
}

#[test]
fn compressed_responses_weaken_the_tag_and_still_revalidate() {
    for client in clients() {
        let response = client.get("/doc").header("accept-encoding", "gzip").send();
        response
            .assert_status(200)
            .assert_header("etag", "W/\"v1\"")
            .assert_header("content-encoding", "gzip");
        let mut body = String::new();
        flate2::read::GzDecoder::new(&response.bytes()[..])
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "the document ".repeat(100));
        // The weak tag the client got revalidates (weak comparison)...
        client
            .get("/doc")
            .header("accept-encoding", "gzip")
            .header("if-none-match", "W/\"v1\"")
            .send()
            .assert_status(304);
    }
}
