//! Every rejection the framework makes comes out as problem+json, with a status and a code,
//! over HTTP/1.1 and HTTP/2 alike.

mod support;

use std::time::Duration;

use http::{Method, Request};
use serde::Deserialize;
use support::{Answer, call_with};
use weft::extract::{BodyLimits, Extension};
use weft::guard;
use weft::interceptor::Timeout;
use weft::multipart::{Multipart, MultipartLimits};
use weft::negotiate::{Accept, Negotiate};
use weft::pipe::{Input, ParseInt, Valid};
use weft::prelude::*;
use weft::test::TestClient;
use weft::websocket::WebSocketUpgrade;
use weft::{AppService, Body};

#[derive(Deserialize, garde::Validate)]
struct Item {
    #[garde(length(min = 1))]
    name: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Page {
    page: u32,
}

#[derive(Clone)]
struct Token;

fn app() -> AppService {
    App::new()
        .body_limits(BodyLimits {
            json: 32,
            form: 32,
            bytes: 32,
            multipart: {
                let mut limits = MultipartLimits::default();
                limits.max_field_bytes = 8;
                limits
            },
        })
        .post("/upload", |mut form: Multipart| async move {
            let mut names = Vec::new();
            while let Some(field) = form.next_field().await? {
                names.push(field.name().to_owned());
                field.bytes().await?;
            }
            Ok::<_, Error>(names.join(","))
        })
        .get("/typed/{id}", |Path(id): Path<u32>| async move {
            id.to_string()
        })
        .get("/query", |Query(p): Query<Page>| async move {
            p.page.to_string()
        })
        .post("/json", |Json(item): Json<Item>| async move { item.name })
        .post(
            "/valid",
            |Valid(Json(item)): Valid<Json<Item>>| async move { item.name },
        )
        .post(
            "/form",
            |Form(p): Form<Page>| async move { p.page.to_string() },
        )
        .post("/bytes", |body: bytes::Bytes| async move {
            body.len().to_string()
        })
        .post("/text", |body: String| async move { body })
        .get("/negotiated", |accept: Accept| async move {
            accept.respond(Negotiate::new().json(serde_json::json!({ "ok": true })))
        })
        .get("/ws", |upgrade: WebSocketUpgrade| async move {
            upgrade.on_upgrade(|_socket| async {})
        })
        .get("/needs-token", |_: Extension<Token>| async { "never" })
        .add_route(Route::get("/admin", || async { "never" }).guard(guard::roles(["admin"])))
        .add_route(Route::get("/closed", || async { "never" }).guard(guard::from_fn(|_| false)))
        .add_route(Route::get("/piped/{n}", || async { "never" }).pipe(Input::path("n"), ParseInt))
        .add_route(
            Route::get("/slow", || async {
                weft_service::runtime::sleep(Duration::from_secs(30)).await;
                "too late"
            })
            .interceptor(Timeout::new(Duration::from_millis(50))),
        )
        .get("/fails", || async {
            Err::<(), _>(std::io::Error::other("disk on fire"))
        })
        .get("/refuses", || async { Error::forbidden("not today") })
        .build()
        .unwrap()
}

struct Case {
    method: Method,
    uri: &'static str,
    headers: &'static [(&'static str, &'static str)],
    content_type: Option<&'static str>,
    body: &'static [u8],
    status: u16,
    code: &'static str,
}

fn case(method: Method, uri: &'static str, status: u16, code: &'static str) -> Case {
    Case {
        method,
        uri,
        headers: &[],
        content_type: None,
        body: b"",
        status,
        code,
    }
}

fn with_body(mut case: Case, content_type: &'static str, body: &'static [u8]) -> Case {
    case.content_type = Some(content_type);
    case.body = body;
    case
}

fn with_headers(mut case: Case, headers: &'static [(&'static str, &'static str)]) -> Case {
    case.headers = headers;
    case
}

fn cases() -> Vec<Case> {
    use Method as M;
    vec![
        case(M::GET, "/nowhere", 404, "route.not_found"),
        case(M::DELETE, "/typed/1", 405, "route.method_not_allowed"),
        case(M::GET, "/typed/x", 400, "path.invalid"),
        case(M::GET, "/query?page=x", 400, "query.invalid"),
        with_body(
            case(M::POST, "/json", 415, "json.media_type"),
            "text/plain",
            b"{}",
        ),
        with_body(
            case(M::POST, "/json", 400, "json.syntax"),
            "application/json",
            b"{",
        ),
        with_body(
            case(M::POST, "/json", 422, "json.data"),
            "application/json",
            b"{}",
        ),
        with_body(
            case(M::POST, "/json", 413, "json.too_large"),
            "application/json",
            br#"{"name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
        ),
        with_body(
            case(M::POST, "/valid", 400, "validation.failed"),
            "application/json",
            br#"{"name":""}"#,
        ),
        with_body(
            case(M::POST, "/form", 415, "form.media_type"),
            "text/plain",
            b"page=1",
        ),
        with_body(
            case(M::POST, "/form", 400, "form.invalid"),
            "application/x-www-form-urlencoded",
            b"page=x",
        ),
        with_body(
            case(M::POST, "/form", 413, "form.too_large"),
            "application/x-www-form-urlencoded",
            b"page=11111111111111111111111111111111111111",
        ),
        with_body(
            case(M::POST, "/bytes", 413, "body.too_large"),
            "application/octet-stream",
            b"0123456789012345678901234567890123456789",
        ),
        with_body(
            case(M::POST, "/text", 400, "body.not_utf8"),
            "text/plain",
            b"\xff\xfe",
        ),
        with_body(case(M::POST, "/upload", 415, "multipart.media_type"), "text/plain", b"x"),
        with_body(
            case(M::POST, "/upload", 400, "multipart.malformed"),
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n--b--\r\n",
        ),
        with_body(
            case(M::POST, "/upload", 413, "multipart.too_large"),
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n0123456789abcdef\r\n--b--\r\n",
        ),
        with_headers(
            case(M::GET, "/negotiated", 406, "negotiate.not_acceptable"),
            &[("accept", "image/png")],
        ),
        with_headers(
            case(M::GET, "/ws", 400, "websocket.handshake"),
            &[("connection", "upgrade"), ("upgrade", "websocket")],
        ),
        case(M::GET, "/needs-token", 500, "extension.missing"),
        case(M::GET, "/admin", 401, "auth.required"),
        case(M::GET, "/closed", 403, "guard.denied"),
        case(M::GET, "/piped/x", 400, "validation.failed"),
        case(M::GET, "/slow", 504, "handler.timeout"),
        case(M::GET, "/fails", 500, "internal_server_error"),
        case(M::GET, "/refuses", 403, "forbidden"),
    ]
}

fn walk(client: TestClient) {
    for case in cases() {
        let mut request = Request::builder().method(case.method.clone()).uri(case.uri);
        for (name, value) in case.headers {
            request = request.header(*name, *value);
        }
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let answer: Answer =
            call_with(client.clone(), request.body(Body::from(case.body)).unwrap());
        let problem = answer.problem(case.status, case.code);
        assert_eq!(
            problem["instance"],
            case.uri.split('?').next().unwrap(),
            "{problem}"
        );
        assert!(problem["title"].is_string(), "{problem}");
    }
}

#[test]
fn every_rejection_is_problem_json_over_http1() {
    walk(TestClient::new(app()));
}

#[test]
fn every_rejection_is_problem_json_over_http2() {
    walk(TestClient::new(app()).http2());
}
