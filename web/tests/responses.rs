//! Response shapes through the real dispatcher: text, HTML, JSON, bytes, status and header
//! tuples, redirects, streamed bodies and files (read on the runtime's blocking pool).

use http::header::{HeaderName, HeaderValue};
use weft::file::FileResponse;
use weft::prelude::*;
use weft::test::TestClient;

fn app(file: std::path::PathBuf) -> weft::AppService {
    App::new()
        .get("/text", || async { "plain" })
        .get("/html", || async { Html("<b>bold</b>") })
        .get("/json", || async {
            Json(serde_json::json!({ "ok": true }))
        })
        .get("/bytes", || async {
            bytes::Bytes::from_static(b"\x00\x01")
        })
        .get("/created", || async {
            (
                StatusCode::CREATED,
                [(
                    HeaderName::from_static("x-id"),
                    HeaderValue::from_static("7"),
                )],
                "made",
            )
        })
        .get("/stream", || async {
            let (mut sender, body) = Body::channel(4);
            weft_service::runtime::spawn(async move {
                for i in 0..5 {
                    std::future::poll_fn(|cx| sender.poll_capacity(cx)).await;
                    sender.send_data(bytes::Bytes::from(format!("part {i}\n")));
                }
                sender.finish();
            });
            Response::stream("text/plain", body)
        })
        .get("/file", move || {
            let file = file.clone();
            async move { FileResponse::open(file).map(|f| f.attachment("data.bin")) }
        })
        .get("/missing-file", || async {
            FileResponse::open("/no/such/file")
        })
        .build()
        .unwrap()
}

#[test]
fn every_shape_over_both_protocols() {
    let path = std::env::temp_dir().join(format!("weft-responses-{}", std::process::id()));
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let client = TestClient::new(app(path.clone()));
    for client in [client.clone(), client.http2()] {
        client
            .get("/text")
            .send()
            .assert_status(200)
            .assert_header("content-type", "text/plain; charset=utf-8")
            .assert_text("plain");
        client
            .get("/html")
            .send()
            .assert_header("content-type", "text/html; charset=utf-8");
        client
            .get("/json")
            .send()
            .assert_header("content-type", "application/json")
            .assert_json(&serde_json::json!({ "ok": true }));
        assert_eq!(client.get("/bytes").send().bytes().as_ref(), b"\x00\x01");
        client
            .get("/created")
            .send()
            .assert_status(201)
            .assert_header("x-id", "7")
            .assert_text("made");
        let stream = client.get("/stream").send();
        assert_eq!(stream.text(), "part 0\npart 1\npart 2\npart 3\npart 4\n");
        let file = client.get("/file").send();
        file.assert_status(200)
            .assert_header("content-length", "300000")
            .assert_header("content-type", "application/octet-stream");
        assert!(
            file.header("content-disposition")
                .unwrap()
                .contains("data.bin")
        );
        assert_eq!(file.bytes().as_ref(), content.as_slice());
        let missing = client.get("/missing-file").send();
        missing
            .assert_status(404)
            .assert_header("content-type", "application/problem+json");
    }
    std::fs::remove_file(&path).unwrap();
}
