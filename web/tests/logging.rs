//! `weft::logging` and `weft::access_log`: the access line through the test client on
//! HTTP/1.1 and HTTP/2, captured as JSON by a subscriber `Logging` built, with every field;
//! bytes counted for streamed bodies; files written into a directory, rotated by name.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use weft::access_log::AccessLog;
use weft::logging::{LogFormat, Logging, Rotation};
use weft::prelude::*;
use weft::test::TestClient;

/// Lines written by the process-wide subscriber of these tests.
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

/// Installs (once) a JSON subscriber writing into a buffer, and returns the buffer. The
/// handlers run on other threads than the test, so it is global.
fn captured() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let guard = Logging::new()
                .filter("weft::access=info")
                .json()
                .writer(move || writer.clone())
                .init()
                .expect("the only subscriber of this test binary");
            std::mem::forget(guard);
            captured
        })
        .clone()
}

/// The access lines whose path is `path`, as JSON.
fn access_lines(captured: &Captured, path: &str) -> Vec<serde_json::Value> {
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|line| line["target"] == "weft::access" && line["path"] == path)
        .collect()
}

fn app() -> weft::AppService {
    App::new()
        .middleware(AccessLog::new())
        .get("/hello/{name}", |Path(name): Path<String>| async move {
            format!("hello, {name}")
        })
        .get("/stream", || async {
            let (mut sender, body) = Body::channel(1024);
            weft_service::runtime::spawn(async move {
                for _ in 0..3 {
                    sender.send_data(Bytes::from_static(b"0123456789"));
                }
                sender.finish();
            });
            Response::new(body)
        })
        .build()
        .unwrap()
}

#[test]
fn the_access_line_has_every_field_on_http1_and_http2() {
    let captured = captured();
    let app = app();
    for (client, path, version) in [
        (TestClient::new(app.clone()), "/hello/http1", "HTTP/1.1"),
        (
            TestClient::new(app.clone()).http2(),
            "/hello/http2",
            "HTTP/2.0",
        ),
    ] {
        let response = client
            .get(&format!("{path}?token=secret"))
            .header("x-request-id", "req-42")
            .send();
        assert_eq!(response.status(), StatusCode::OK);
        let lines = access_lines(&captured, path);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["version"], version);
        assert_eq!(line["status"], 200);
        assert_eq!(line["bytes"], response.bytes().len() as u64);
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        assert_eq!(line["request_id"], "req-42");
        assert_eq!(line["peer"], "127.0.0.1:50000");
        assert_eq!(line["complete"], true);
        // The query string (which may hold secrets) is not logged.
        assert!(!line.to_string().contains("secret"), "{line}");
    }
}

#[test]
fn a_streamed_body_is_counted_and_a_missing_request_id_is_a_dash() {
    let captured = captured();
    let app = app();
    for client in [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ] {
        let before = access_lines(&captured, "/stream").len();
        let response = client.get("/stream").send();
        assert_eq!(response.bytes().len(), 30);
        // The line is written when the body ends, which may be just after the client saw it.
        let mut lines = access_lines(&captured, "/stream");
        for _ in 0..100 {
            if lines.len() > before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            lines = access_lines(&captured, "/stream");
        }
        let line = &lines[before];
        assert_eq!(line["bytes"], 30);
        assert_eq!(line["request_id"], "-");
        assert_eq!(line["status"], 200);
    }
}

#[test]
fn the_response_request_id_is_used_when_the_request_has_none() {
    let captured = captured();
    let app = App::new()
        .middleware(AccessLog::new())
        .get("/id", || async {
            let mut response = "ok".into_response();
            response
                .headers_mut()
                .insert("x-request-id", http::HeaderValue::from_static("made-here"));
            response
        })
        .build()
        .unwrap();
    TestClient::new(app).get("/id").send();
    let lines = access_lines(&captured, "/id");
    assert_eq!(lines[0]["request_id"], "made-here");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-logging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn files_are_written_into_the_directory_named_by_rotation() {
    for (rotation, name_len) in [
        (Rotation::Daily, "app.YYYY-MM-DD.log".len()),
        (Rotation::Hourly, "app.YYYY-MM-DD-HH.log".len()),
        (Rotation::Never, "app.log".len()),
    ] {
        let dir = temp_dir(&format!("{rotation:?}"));
        let (dispatch, guard) = Logging::new()
            .filter("info")
            .format(LogFormat::Compact)
            .file(&dir, "app", rotation)
            .build()
            .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(answer = 42, "into the file");
        });
        // Dropping the guard flushes the background writer.
        drop(guard);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{rotation:?}: {files:?}");
        assert!(files[0].starts_with("app") && files[0].ends_with(".log"));
        assert_eq!(files[0].len(), name_len, "{rotation:?}: {}", files[0]);
        let text = std::fs::read_to_string(dir.join(&files[0])).unwrap();
        assert!(
            text.contains("into the file") && text.contains("answer=42"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_filter_comes_from_the_environment_and_a_bad_one_falls_back() {
    // No variable is set here (set_var is unsafe with threads): one nobody sets, and PATH.
    let (_, guard) = Logging::new()
        .env_vars(["WEFT_TEST_LOG_UNSET_VARIABLE"])
        .level("debug")
        .writer(std::io::sink)
        .build()
        .unwrap();
    assert_eq!(guard.filter(), "debug");
    assert!(guard.filter_warning().is_none());
    // PATH is set and is not a filter: the default is used, with a warning.
    let (_, guard) = Logging::new()
        .env_vars(["PATH"])
        .level("warn")
        .writer(std::io::sink)
        .build()
        .unwrap();
    assert_eq!(guard.filter(), "warn");
    assert!(guard.filter_warning().unwrap().starts_with("PATH="));
    assert!(Logging::new().filter("[[[").build().is_err());
}
