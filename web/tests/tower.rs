//! tower interop: tower-http layers around weft routes, a weft app driven as a tower
//! `Service`, tower services as weft routes. In process, no sockets.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::block_on;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use http_body_util::BodyExt;
use tower::{Service as _, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use weft::extract::PathParams;
use weft::prelude::*;
use weft::tower::{TowerLayer, TowerService, service_route};

/// Long enough for gzip to be worth it (tower-http skips bodies under 32 bytes).
fn long_text() -> String {
    "weft and warp, ".repeat(200)
}

async fn text() -> String {
    long_text()
}

fn body_bytes(response: weft::Response) -> Bytes {
    block_on(response.into_body().collect(1 << 20)).expect("the body reads")
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("the body is gzip");
    text
}

fn get(app: &weft::AppService, uri: &str, gzip: bool) -> weft::Response {
    let mut request = http::Request::get(uri);
    if gzip {
        request = request.header(ACCEPT_ENCODING, "gzip");
    }
    let request = request.body(Body::empty()).unwrap();
    block_on(app.clone().oneshot(request)).unwrap()
}

#[test]
fn compression_layer_gzips_weft_routes_when_asked() {
    let app = App::new()
        .middleware(TowerLayer::new(CompressionLayer::new()))
        .get("/text", text)
        .build()
        .unwrap();

    let response = get(&app, "/text", true);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
    let compressed = body_bytes(response);
    assert!(compressed.len() < long_text().len());
    assert_eq!(gunzip(&compressed), long_text());

    let plain = get(&app, "/text", false);
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(body_bytes(plain), long_text().as_bytes());
}

#[test]
fn compression_layer_on_one_route_leaves_the_others_alone() {
    let app = App::new()
        .get("/plain", text)
        .group("/zipped", |group| {
            group
                .middleware(TowerLayer::new(CompressionLayer::new()))
                .get("/text", text)
        })
        .build()
        .unwrap();

    let zipped = get(&app, "/zipped/text", true);
    assert_eq!(zipped.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(gunzip(&body_bytes(zipped)), long_text());

    let plain = get(&app, "/plain", true);
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(body_bytes(plain), long_text().as_bytes());
}

#[test]
fn trace_layer_sees_every_weft_response() {
    let seen = Arc::new(AtomicU16::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (on_response_seen, on_request_count) = (Arc::clone(&seen), Arc::clone(&requests));
    let trace = TraceLayer::new_for_http()
        .on_request(move |_: &http::Request<Body>, _: &tracing::Span| {
            on_request_count.fetch_add(1, Ordering::SeqCst);
        })
        .on_response(
            move |response: &http::Response<Body>, _: Duration, _: &tracing::Span| {
                on_response_seen.store(response.status().as_u16(), Ordering::SeqCst);
            },
        );
    let app = App::new()
        .middleware(TowerLayer::new(trace))
        .get("/hello/{name}", |Path(name): Path<String>| async move {
            format!("hello, {name}")
        })
        .build()
        .unwrap();

    let response = get(&app, "/hello/ada", false);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.load(Ordering::SeqCst), 200);
    assert_eq!(body_bytes(response), "hello, ada");

    // The app's 404 goes through the app's middleware too.
    let missing = get(&app, "/nowhere", false);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(seen.load(Ordering::SeqCst), 404);
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[test]
fn tower_layer_runs_between_weft_middlewares_in_order() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (outer, inner, layer) = (Arc::clone(&order), Arc::clone(&order), Arc::clone(&order));
    let app = App::new()
        .middleware(weft::middleware::from_fn(move |request, next: Next| {
            outer.lock().unwrap().push("weft outer");
            next.run(request)
        }))
        .middleware(TowerLayer::new(tower::layer::layer_fn(move |service| {
            layer.lock().unwrap().push("tower layer built");
            tower::service_fn({
                let mut service: weft::tower::NextService = service;
                let order = Arc::clone(&layer);
                move |request: weft::Request| {
                    order.lock().unwrap().push("tower");
                    service.call(request)
                }
            })
        })))
        .middleware(weft::middleware::from_fn(move |request, next: Next| {
            inner.lock().unwrap().push("weft inner");
            next.run(request)
        }))
        .get("/", || async { "ok" })
        .build()
        .unwrap();

    let response = get(&app, "/", false);
    assert_eq!(body_bytes(response), "ok");
    assert_eq!(
        *order.lock().unwrap(),
        ["tower layer built", "weft outer", "tower", "weft inner"]
    );
}

#[test]
fn app_is_a_tower_service_for_foreign_bodies() {
    let app = App::new()
        .post(
            "/echo/{id}",
            |Path(id): Path<u32>, body: String| async move { format!("{id}: {body}") },
        )
        .build()
        .unwrap();

    // A body type that is not weft's: http-body-util's `Full`.
    let request = http::Request::post("/echo/7")
        .body(http_body_util::Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let response = block_on(app.clone().oneshot(request)).unwrap();
    let status = response.status();
    let body = body_bytes(response);
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(body, "7: payload");

    // poll_ready is always ready.
    let mut service = app.clone();
    let ready = block_on(ServiceExt::<http::Request<String>>::ready(&mut service));
    assert!(ready.is_ok());
}

#[test]
fn any_weft_service_is_a_tower_service() {
    let service = TowerService::new(|request: weft::Request| async move {
        http::Response::new(Body::from(format!(
            "{} {}",
            request.method(),
            request.uri()
        )))
    });
    let request = http::Request::put("/x?y=1").body(String::new()).unwrap();
    let response = block_on(service.oneshot(request)).unwrap();
    assert_eq!(body_bytes(response), "PUT /x?y=1");
}

#[test]
fn weft_app_inside_a_tower_stack() {
    let app = App::new().get("/text", text).build().unwrap();
    let stacked = tower::ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .service(app);
    let request = http::Request::get("/text")
        .header(ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let response = block_on(stacked.oneshot(request)).unwrap();
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
    let compressed = block_on(response.into_body().collect()).unwrap().to_bytes();
    assert_eq!(gunzip(&compressed), long_text());
}

#[test]
fn tower_service_answers_a_weft_route_with_its_path_params() {
    let svc = tower::service_fn(|request: weft::Request| async move {
        let id = request
            .extensions()
            .get::<PathParams>()
            .and_then(|params| params.get("id"))
            .unwrap_or("none")
            .to_owned();
        Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from(
            format!("item {id}"),
        ))))
    });
    let app = App::new()
        .endpoint(Method::GET, "/items/{id}", service_route(svc))
        .build()
        .unwrap();

    let response = get(&app, "/items/42", false);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response), "item 42");
}

#[test]
fn tower_service_error_becomes_a_500_problem() {
    let svc = tower::service_fn(|_: weft::Request| async move {
        Err::<http::Response<Body>, _>(std::io::Error::other("database on fire"))
    });
    let app = App::new()
        .endpoint(Method::GET, "/broken", service_route(svc))
        .build()
        .unwrap();

    let response = get(&app, "/broken", false);
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = String::from_utf8(body_bytes(response).to_vec()).unwrap();
    assert!(
        !body.contains("database on fire"),
        "5xx details stay hidden: {body}"
    );
}
