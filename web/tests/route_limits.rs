//! Per-route limits through the real dispatcher (`TestClient`, HTTP/1.1 and HTTP/2): a body
//! over a route's limit is `413` (a declared `Content-Length` before the handler runs),
//! other routes keep the app's limits, and a route's time limit answers `504`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use weft::extract::BodyLimits;
use weft::limits::RouteLimits;
use weft::prelude::*;
use weft::test::{TestClient, TestResponse};

fn app(calls: Arc<AtomicUsize>) -> App {
    let counted = move |body: bytes::Bytes| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { body.len().to_string() }
    };
    let json_limits = BodyLimits {
        json: 10,
        ..BodyLimits::default()
    };
    App::new()
        .add_route(Route::post("/small", counted).middleware(RouteLimits::new().max_body(16)))
        .post("/big", |body: bytes::Bytes| async move {
            body.len().to_string()
        })
        .add_route(
            Route::post("/json", |Json(value): Json<serde_json::Value>| async move {
                value.to_string()
            })
            .middleware(RouteLimits::new().body_limits(json_limits)),
        )
        .add_route(
            Route::get("/slow", || async {
                std::future::pending::<()>().await;
                "never"
            })
            .middleware(RouteLimits::new().timeout(Duration::from_millis(20))),
        )
        .add_route(
            Route::get("/unavailable", || async {
                std::future::pending::<()>().await;
                "never"
            })
            .middleware(
                RouteLimits::new()
                    .timeout(Duration::from_millis(20))
                    .timeout_status(StatusCode::SERVICE_UNAVAILABLE),
            ),
        )
}

fn clients(calls: &Arc<AtomicUsize>) -> [TestClient; 2] {
    let client = TestClient::new(app(Arc::clone(calls)).build().unwrap());
    [client.clone(), client.http2()]
}

fn problem(response: &TestResponse, status: u16, code: &str) {
    response.assert_status(status);
    response.assert_header("content-type", "application/problem+json");
    let problem: serde_json::Value = response.json();
    assert_eq!(problem["code"], code, "{problem}");
}

#[test]
fn a_declared_length_over_the_routes_limit_is_413_before_the_handler_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    for client in clients(&calls) {
        let response = client.post("/small").body(vec![b'x'; 100]).send();
        problem(&response, 413, "body.too_large");
        client
            .post("/small")
            .body(vec![b'x'; 16])
            .send()
            .assert_status(200)
            .assert_text("16");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "only the bodies within the limit"
    );
}

#[test]
fn other_routes_keep_the_apps_limits() {
    let calls = Arc::new(AtomicUsize::new(0));
    for client in clients(&calls) {
        client
            .post("/big")
            .body(vec![b'x'; 100_000])
            .send()
            .assert_status(200)
            .assert_text("100000");
    }
}

#[test]
fn a_routes_body_limits_bound_its_extractors() {
    let calls = Arc::new(AtomicUsize::new(0));
    for client in clients(&calls) {
        let response = client
            .post("/json")
            .json(&serde_json::json!({ "name": "a name longer than ten bytes" }))
            .send();
        problem(&response, 413, "json.too_large");
        client
            .post("/json")
            .json(&serde_json::json!([1]))
            .send()
            .assert_status(200)
            .assert_text("[1]");
    }
}

#[test]
fn a_route_over_its_time_limit_is_answered_504_or_the_status_set() {
    let calls = Arc::new(AtomicUsize::new(0));
    for client in clients(&calls) {
        problem(&client.get("/slow").send(), 504, "handler.timeout");
        problem(&client.get("/unavailable").send(), 503, "handler.timeout");
    }
}
