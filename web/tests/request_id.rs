//! Request ids and W3C Trace Context through the real dispatcher (`TestClient`, HTTP/1.1 and
//! HTTP/2): incoming ids accepted or replaced, new ones UUID v7, on the response and on every
//! log line of the request (captured with a `tracing` subscriber); `traceparent` valid and
//! invalid.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use weft::interceptor::Timing;
use weft::prelude::*;
use weft::request_id::{RequestId, RequestIds, TraceContext};
use weft::test::TestClient;

fn app() -> App {
    App::new()
        .middleware(RequestIds::new())
        .interceptor(Timing)
        .get("/id", |id: RequestId| async move {
            tracing::info!("handling");
            id.to_string()
        })
        .get("/trace", |trace: TraceContext| async move {
            serde_json::json!({
                "trace_id": trace.trace_id(),
                "parent_id": trace.parent_id(),
                "span_id": trace.span_id(),
                "traceparent": trace.traceparent(),
            })
            .to_string()
        })
}

fn clients() -> [TestClient; 2] {
    logs();
    let client = TestClient::new(app().build().unwrap());
    [client.clone(), client.http2()]
}

#[test]
fn a_well_formed_incoming_id_is_kept() {
    for client in clients() {
        let response = client
            .get("/id")
            .header("x-request-id", "req-42.abc")
            .send();
        response.assert_status(200).assert_text("req-42.abc");
        response.assert_header("x-request-id", "req-42.abc");
    }
}

#[test]
fn a_malformed_or_overlong_incoming_id_is_replaced_by_a_uuid_v7() {
    for client in clients() {
        for bad in ["has space".to_owned(), "x".repeat(129)] {
            let response = client
                .get("/id")
                .header("x-request-id", bad.as_str())
                .send();
            response.assert_status(200);
            let id = response.header("x-request-id").unwrap();
            assert_ne!(id, bad);
            assert_eq!(response.text(), id);
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        }
    }
}

#[test]
fn without_an_incoming_id_a_uuid_v7_is_generated_per_request() {
    for client in clients() {
        let first = client.get("/id").send();
        let second = client.get("/id").send();
        let a = first.header("x-request-id").unwrap();
        let b = second.header("x-request-id").unwrap();
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        }
    }
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The log lines of every test of this file: one global subscriber, installed before any
/// request. (A per-test `with_default` subscriber races with the other tests' threads over
/// `tracing`'s callsite interest cache: a span first seen without it stays disabled.)
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

#[test]
fn every_log_line_of_the_request_carries_its_id() {
    for (client, id) in clients().into_iter().zip(["logged-id-h1", "logged-id-h2"]) {
        client
            .get("/id")
            .header("x-request-id", id)
            .send()
            .assert_status(200);
        let logs = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
        let ours: Vec<_> = logs
            .lines()
            .filter(|line| line.contains(&format!("request_id={id}")))
            .collect();
        // The handler's line and the access line of `Timing`, both inside the span.
        assert!(ours.iter().any(|l| l.contains("handling")), "{logs}");
        assert!(ours.iter().any(|l| l.contains("weft::access")), "{logs}");
        assert_eq!(ours.len(), 2, "{logs}");
    }
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_valid_traceparent_is_propagated_with_a_child_span() {
    for client in clients() {
        let response = client
            .get("/trace")
            .header("traceparent", TRACEPARENT)
            .send();
        response.assert_status(200);
        let trace: serde_json::Value = serde_json::from_str(response.text()).unwrap();
        assert_eq!(trace["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace["parent_id"], "00f067aa0ba902b7");
        let span = trace["span_id"].as_str().unwrap();
        assert_eq!(span.len(), 16);
        assert_ne!(span, "00f067aa0ba902b7");
        let back = response.header("traceparent").unwrap();
        assert_eq!(back, trace["traceparent"]);
        assert_eq!(
            back,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span}-01")
        );
    }
}

#[test]
fn an_invalid_traceparent_is_ignored_for_a_new_trace() {
    for client in clients() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let response = client.get("/trace").header("traceparent", bad).send();
            response.assert_status(200);
            let trace: serde_json::Value = serde_json::from_str(response.text()).unwrap();
            assert_ne!(
                trace["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_ne!(
                trace["trace_id"], "00000000000000000000000000000000",
                "{bad}"
            );
            assert!(trace["parent_id"].is_null(), "{bad}");
            let back = response.header("traceparent").unwrap();
            assert!(back.starts_with(&format!("00-{}-", trace["trace_id"].as_str().unwrap())));
        }
    }
}
