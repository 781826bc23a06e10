//! `weft::health`: liveness and readiness through the test client on HTTP/1.1 and HTTP/2:
//! 503 before the app started, after a failing or slow check and while the server drains;
//! 200 with every check's result otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weft::health::{Health, HealthExt};
use weft::middleware::map_request;
use weft::prelude::*;
use weft::test::TestClient;
use weft_service::runtime::{ShutdownSignal, ShutdownSource};

fn clients(app: &weft::AppService) -> [TestClient; 2] {
    [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ]
}

#[test]
fn liveness_is_ok_even_before_start_and_readiness_waits_for_start() {
    let app = App::new().health(Health::new()).build().unwrap();
    for client in clients(&app) {
        let live = client.get("/health").send();
        assert_eq!(live.status(), StatusCode::OK);
        assert_eq!(
            live.json::<serde_json::Value>(),
            serde_json::json!({"status": "ok"})
        );
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ready.header("content-type"),
            Some("application/problem+json")
        );
        let problem: serde_json::Value = ready.json();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["code"], "health.starting");
    }
    app.start().unwrap();
    for client in clients(&app) {
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::OK, "{}", ready.text());
        assert_eq!(ready.json::<serde_json::Value>()["status"], "ok");
    }
    app.stop();
    for client in clients(&app) {
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json::<serde_json::Value>()["code"], "health.draining");
    }
}

#[test]
fn a_failing_check_makes_readiness_503_with_every_result() {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    let app = App::new()
        .health(
            Health::new()
                .check("cache", || Ok::<_, std::io::Error>(()))
                .check_async("db", move || {
                    let up = flag.load(Ordering::SeqCst);
                    async move {
                        if up {
                            Ok(())
                        } else {
                            Err("connection refused")
                        }
                    }
                }),
        )
        .build()
        .unwrap();
    app.start().unwrap();
    for client in clients(&app) {
        healthy.store(true, Ordering::SeqCst);
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::OK);
        let body: serde_json::Value = ready.json();
        assert_eq!(body["checks"]["cache"]["status"], "ok");
        assert_eq!(body["checks"]["db"]["status"], "ok");

        healthy.store(false, Ordering::SeqCst);
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ready.header("content-type"),
            Some("application/problem+json")
        );
        let problem: serde_json::Value = ready.json();
        assert_eq!(problem["code"], "health.check_failed");
        assert_eq!(problem["checks"]["cache"]["status"], "ok");
        assert_eq!(problem["checks"]["db"]["status"], "fail");
        assert_eq!(problem["checks"]["db"]["error"], "connection refused");
        // Liveness does not run checks.
        assert_eq!(client.get("/health").send().status(), StatusCode::OK);
    }
}

#[test]
fn a_slow_check_times_out() {
    let app = App::new()
        .health(
            Health::new()
                .timeout(Duration::from_millis(50))
                .check_async("slow", || async {
                    weft_service::runtime::sleep(Duration::from_secs(10)).await;
                    Ok::<_, std::io::Error>(())
                }),
        )
        .build()
        .unwrap();
    app.start().unwrap();
    for client in clients(&app) {
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let problem: serde_json::Value = ready.json();
        assert_eq!(problem["checks"]["slow"]["status"], "timeout");
    }
}

/// A shutdown source already triggered: the server has begun draining.
struct Draining;

impl ShutdownSource for Draining {
    fn is_triggered(&self) -> bool {
        true
    }
    fn wait(&self) -> weft_service::runtime::BoxFuture<()> {
        Box::pin(std::future::ready(()))
    }
}

#[test]
fn readiness_is_503_while_the_server_drains() {
    let app = App::new()
        // What the server does once it drains: the request carries a triggered signal.
        .middleware(map_request(|mut request| {
            request
                .extensions_mut()
                .insert(ShutdownSignal::new(Draining));
            request
        }))
        .health(Health::new())
        .build()
        .unwrap();
    app.start().unwrap();
    for client in clients(&app) {
        let ready = client.get("/ready").send();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json::<serde_json::Value>()["code"], "health.draining");
        assert_eq!(client.get("/health").send().status(), StatusCode::OK);
    }
}

#[test]
fn paths_are_configurable_and_the_group_nests() {
    let app = App::new()
        .nest(
            Health::new()
                .liveness_path("/livez")
                .readiness_path("/readyz")
                .group(),
        )
        .build()
        .unwrap();
    app.start().unwrap();
    for client in clients(&app) {
        assert_eq!(client.get("/livez").send().status(), StatusCode::OK);
        assert_eq!(client.get("/readyz").send().status(), StatusCode::OK);
        assert_eq!(client.get("/health").send().status(), StatusCode::NOT_FOUND);
    }
}
