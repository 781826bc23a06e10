//! Sends requests to an app through `weft::test::TestClient` (the real dispatcher and the
//! HTTP/1.1 protocol core, in memory), with small helpers for problem+json answers.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use futures_lite::future::block_on;
use http::{Method, Request, StatusCode};
use weft::test::TestClient;
use weft::{AppService, Body};

pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with `status` and `code`, and returns it.
    pub fn problem(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert_eq!(problem["code"], code, "problem: {problem}");
        problem
    }
}

/// Sends `request` over HTTP/1.1.
pub fn call(app: &AppService, request: Request<Body>) -> Answer {
    call_with(TestClient::new(app.clone()), request)
}

/// Sends `request` with `client` (HTTP/1.1 or HTTP/2).
pub fn call_with(client: TestClient, request: Request<Body>) -> Answer {
    let (parts, body) = request.into_parts();
    let body: Bytes = block_on(body.collect(64 * 1024 * 1024)).expect("a readable request body");
    let mut test_request = client.request(parts.method, &parts.uri.to_string());
    for (name, value) in &parts.headers {
        test_request = test_request.header(name.clone(), value.clone());
    }
    let response = test_request.body(body).send();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().clone(),
    }
}

pub fn request(method: Method, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

pub fn get(app: &AppService, uri: &str) -> Answer {
    call(app, request(Method::GET, uri).body(Body::empty()).unwrap())
}

pub fn send(app: &AppService, method: Method, uri: &str, content_type: &str, body: &str) -> Answer {
    call(
        app,
        request(method, uri)
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
}

/// Runs `curl -sS --max-time 10 ARGS...` (scripts/test installs curl) and returns what it
/// wrote to stdout; fails the test if curl fails.
pub fn curl_bytes(args: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (scripts/test installs it)");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// [`curl_bytes`] as text.
pub fn curl(args: &[&str]) -> String {
    String::from_utf8_lossy(&curl_bytes(args)).into_owned()
}
