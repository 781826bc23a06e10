//! CORS through the real dispatcher (HTTP/1.1 and HTTP/2): preflights answered without the
//! handler, refusals, credentials, exposed headers and `Vary`; and a preflight by real curl.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use weft::cors::Cors;
use weft::prelude::*;
use weft::test::{TestClient, TestResponse};

const ALLOWED: &str = "https://app.example.com";

fn cors() -> Cors {
    Cors::new()
        .allow_origins([ALLOWED])
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(["content-type", "x-token"])
        .allow_credentials(true)
        .expose_headers(["x-request-id"])
        .max_age(Duration::from_secs(600))
}

/// An app whose handlers count their calls, with `Cors` on the app.
fn app(calls: Arc<AtomicUsize>) -> weft::AppService {
    let (c1, c2) = (Arc::clone(&calls), calls);
    App::new()
        .middleware(cors())
        .get("/items", move || {
            let calls = Arc::clone(&c1);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                (
                    [(
                        http::HeaderName::from_static("x-request-id"),
                        http::HeaderValue::from_static("r1"),
                    )],
                    "items",
                )
            }
        })
        .delete("/items/{id}", move || {
            let calls = Arc::clone(&c2);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }
        })
        .build()
        .unwrap()
}

fn clients(app: &weft::AppService) -> [TestClient; 2] {
    [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ]
}

fn problem_code(response: &TestResponse) -> String {
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = response.json();
    problem["code"].as_str().unwrap().to_owned()
}

fn assert_no_cors_headers(response: &TestResponse) {
    for name in response.headers().keys() {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "unexpected {name}: {:?}",
            response.headers()
        );
    }
}

#[test]
fn preflight_is_answered_204_without_reaching_the_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&calls));
    for client in clients(&app) {
        let response = client
            .options("/items/7")
            .header("origin", ALLOWED)
            .header("access-control-request-method", "DELETE")
            .header("access-control-request-headers", "X-Token, content-type")
            .send();
        response
            .assert_status(204)
            .assert_header("access-control-allow-origin", ALLOWED)
            .assert_header("access-control-allow-credentials", "true")
            .assert_header("access-control-allow-methods", "GET, POST, DELETE")
            .assert_header("access-control-allow-headers", "content-type, x-token")
            .assert_header("access-control-max-age", "600");
        let vary = response.header_all("vary").join(", ").to_ascii_lowercase();
        for token in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            assert!(vary.contains(token), "{vary}");
        }
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no handler saw a preflight"
    );
}

#[test]
fn preflight_from_a_disallowed_origin_method_or_header_is_refused_403_without_cors_headers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&calls));
    for client in clients(&app) {
        let cases = [
            ("https://evil.example", "DELETE", None, "cors.origin"),
            (ALLOWED, "PUT", None, "cors.method"),
            (ALLOWED, "DELETE", Some("x-other"), "cors.header"),
        ];
        for (origin, method, header, code) in cases {
            let mut request = client
                .options("/items/7")
                .header("origin", origin)
                .header("access-control-request-method", method);
            if let Some(header) = header {
                request = request.header("access-control-request-headers", header);
            }
            let response = request.send();
            response.assert_status(403);
            assert_eq!(problem_code(&response), code);
            assert_no_cors_headers(&response);
            assert!(
                response
                    .header_all("vary")
                    .join(",")
                    .to_ascii_lowercase()
                    .contains("origin")
            );
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn allowed_origin_gets_cors_headers_credentials_and_exposed_headers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&calls));
    for client in clients(&app) {
        let response = client.get("/items").header("origin", ALLOWED).send();
        response
            .assert_status(200)
            .assert_text("items")
            .assert_header("access-control-allow-origin", ALLOWED)
            .assert_header("access-control-allow-credentials", "true")
            .assert_header("access-control-expose-headers", "x-request-id")
            .assert_header("vary", "Origin");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn disallowed_origin_on_a_simple_request_passes_through_without_cors_headers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(Arc::clone(&calls));
    for client in clients(&app) {
        let response = client
            .get("/items")
            .header("origin", "https://evil.example")
            .send();
        response.assert_status(200).assert_text("items");
        assert_no_cors_headers(&response);
        response.assert_header("vary", "Origin");
        // No origin at all: not a CORS request, no CORS headers, still Vary.
        let response = client.get("/items").send();
        assert_no_cors_headers(&response);
        response.assert_header("vary", "Origin");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn a_plain_options_without_request_method_is_not_a_preflight() {
    let app = app(Arc::new(AtomicUsize::new(0)));
    let response = TestClient::new(app)
        .options("/items")
        .header("origin", ALLOWED)
        .send();
    // The router's automatic OPTIONS answer; OPTIONS is not an allowed method, so no CORS
    // headers.
    response.assert_status(204);
    assert_no_cors_headers(&response);
    assert!(response.header("allow").unwrap().contains("GET"));
}

#[test]
fn any_origin_answers_star_and_mirrors_any_header() {
    let app = App::new()
        .middleware(Cors::new().allow_any_origin().allow_any_header())
        .get("/public", || async { "public" })
        .build()
        .unwrap();
    for client in clients(&app) {
        client
            .get("/public")
            .header("origin", "https://anyone.example")
            .send()
            .assert_header("access-control-allow-origin", "*")
            .assert_no_header("access-control-allow-credentials");
        client
            .options("/public")
            .header("origin", "null")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-a,x-b")
            .send()
            .assert_status(204)
            .assert_header("access-control-allow-origin", "*")
            .assert_header("access-control-allow-headers", "x-a, x-b");
    }
}

#[test]
fn predicate_origins_are_echoed() {
    let app = App::new()
        .middleware(
            Cors::new()
                .allow_origin_fn(|origin| origin.ends_with(".example.com"))
                .allow_credentials(true),
        )
        .get("/", || async { "ok" })
        .build()
        .unwrap();
    let client = TestClient::new(app);
    client
        .get("/")
        .header("origin", "https://a.example.com")
        .send()
        .assert_header("access-control-allow-origin", "https://a.example.com");
    let refused = client
        .get("/")
        .header("origin", "https://a.example.org")
        .send();
    assert_no_cors_headers(&refused);
}

#[test]
fn cors_at_group_and_route_level_only_covers_its_routes() {
    let app = App::new()
        .group("/api", |api| {
            api.middleware(Cors::new().allow_origin(ALLOWED))
                .get("/a", || async { "a" })
        })
        .add_route(Route::get("/b", || async { "b" }).middleware(Cors::new().allow_origin(ALLOWED)))
        .get("/c", || async { "c" })
        .build()
        .unwrap();
    let client = TestClient::new(app);
    for path in ["/api/a", "/b"] {
        client
            .get(path)
            .header("origin", ALLOWED)
            .send()
            .assert_header("access-control-allow-origin", ALLOWED);
        client
            .options(path)
            .header("origin", ALLOWED)
            .header("access-control-request-method", "GET")
            .send()
            .assert_status(204)
            .assert_header("access-control-allow-origin", ALLOWED);
    }
    let response = client.get("/c").header("origin", ALLOWED).send();
    assert_no_cors_headers(&response);
}

#[test]
#[should_panic(expected = "credentialed")]
fn any_origin_with_credentials_is_refused_at_start_up() {
    let _ = Cors::new().allow_credentials(true).allow_any_origin();
}

#[test]
#[should_panic(expected = "credentialed")]
fn credentials_with_any_origin_is_refused_at_start_up() {
    let _ = Cors::new().allow_any_origin().allow_credentials(true);
}

use support::curl;

#[test]
fn curl_preflight_on_a_loopback_server() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut config = weft::ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app(Arc::clone(&calls)).listen(config).unwrap();
    let url = format!("http://{}/items/1", server.local_addrs()[0]);
    for protocol in ["--http1.1", "--http2-prior-knowledge"] {
        let head = curl(&[
            protocol,
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            &format!("origin: {ALLOWED}"),
            "-H",
            "access-control-request-method: DELETE",
            &url,
        ])
        .to_ascii_lowercase();
        assert!(head.contains(" 204"), "{head}");
        assert!(
            head.contains(&format!("access-control-allow-origin: {ALLOWED}")),
            "{head}"
        );
        let refused = curl(&[
            protocol,
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            "origin: https://evil.example",
            "-H",
            "access-control-request-method: DELETE",
            &url,
        ]);
        assert!(refused.contains(" 403"), "{refused}");
        assert!(refused.contains("\"cors.origin\""), "{refused}");
        assert!(
            !refused
                .to_ascii_lowercase()
                .contains("access-control-allow")
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    server.shutdown();
    server.join().unwrap();
}
