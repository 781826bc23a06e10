//! `weft::test::TestClient` against a hand-written `Service` (no router): HTTP/1.1 and HTTP/2
//! exchanges, cookies, streamed bodies, runtime services, WebSocket, deadlines, and proof that
//! requests pass through the dispatcher.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use weft::test::{CloseCode, Message, TestClient, TestError};
use weft_service::body::Body;
use weft_service::runtime;
use weft_service::service::Service;
use weft_service::websocket::WebSocketUpgrade;

fn respond(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
}

fn json_response(value: &Value) -> Response<Body> {
    let mut response = respond(StatusCode::OK, value.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The application under test: a few routes matched by hand.
fn app() -> impl Service {
    |request: Request<Body>| async move {
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/echo" => {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let summary = json!({
                    "method": request.method().as_str(),
                    "path": request.uri().path(),
                    "query": request.uri().query(),
                    "host": header("host"),
                    "x-test": header("x-test"),
                    "cookie": header("cookie"),
                    "content-type": header("content-type"),
                    "version": format!("{:?}", request.version()),
                });
                let body = request.into_body().collect(1 << 20).await;
                let body = body.unwrap_or_default();
                let mut summary = summary;
                summary["body"] = Value::String(String::from_utf8_lossy(&body).into_owned());
                let mut response = json_response(&summary);
                response
                    .headers_mut()
                    .insert("x-served-by", http::HeaderValue::from_static("echo"));
                response
            }
            "/users" => {
                let body = request.into_body().collect(1 << 20).await;
                let mut user: Value =
                    serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_else(|_| json!({}));
                user["id"] = json!(7);
                let mut response = json_response(&user);
                *response.status_mut() = StatusCode::CREATED;
                response
            }
            "/login" => {
                let mut response = respond(StatusCode::NO_CONTENT, ());
                let headers = response.headers_mut();
                headers.append(
                    "set-cookie",
                    http::HeaderValue::from_static("session=abc123; Path=/; HttpOnly"),
                );
                headers.append(
                    "set-cookie",
                    http::HeaderValue::from_static("admin=yes; Path=/admin"),
                );
                response
            }
            "/logout" => {
                let mut response = respond(StatusCode::NO_CONTENT, ());
                response.headers_mut().append(
                    "set-cookie",
                    http::HeaderValue::from_static("session=; Path=/; Max-Age=0"),
                );
                response
            }
            "/stream" => {
                let (mut sender, body) = Body::channel(1024);
                runtime::spawn(async move {
                    for part in ["one ", "two ", "three"] {
                        runtime::sleep(Duration::from_millis(2)).await;
                        sender.send_data(Bytes::from(part));
                    }
                    sender.finish();
                });
                respond(StatusCode::OK, body)
            }
            "/slow" => {
                runtime::sleep(Duration::from_millis(20)).await;
                let answer = runtime::spawn_blocking(|| 6 * 7).await;
                let timed_out =
                    runtime::timeout(Duration::from_millis(5), std::future::pending::<()>())
                        .await
                        .is_err();
                json_response(&json!({ "answer": answer, "timed_out": timed_out }))
            }
            "/events" => {
                let (mut sender, body) = Body::channel(1024);
                runtime::spawn(async move {
                    // An endless event stream: it ends when the client goes away.
                    for n in 0.. {
                        if !sender.send_data(Bytes::from(format!("data: {n}\n\n"))) {
                            break;
                        }
                        runtime::sleep(Duration::from_millis(1)).await;
                    }
                });
                let mut response = respond(StatusCode::OK, body);
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/event-stream"),
                );
                response
            }
            "/never" => std::future::pending().await,
            "/panic" => panic!("the handler fails"),
            "/ws" => match WebSocketUpgrade::from_request(&request) {
                Err(rejection) => rejection.into_response(),
                Ok(upgrade) => upgrade.on_upgrade(|mut socket| async move {
                    while let Some(message) = socket.recv().await {
                        if message.as_text() == Some("bye") {
                            let _ = socket.close(CloseCode::NORMAL, "bye to you");
                            break;
                        }
                        if socket.send(message).await.is_err() {
                            break;
                        }
                    }
                }),
            },
            _ => respond(StatusCode::NOT_FOUND, "no such page"),
        }
    }
}

/// Both protocols' clients for the same application.
fn clients() -> [TestClient; 2] {
    let client = TestClient::new(app());
    [client.clone(), client.with_new_cookie_jar().http2()]
}

#[test]
fn get_with_headers_and_query_on_both_protocols() {
    for (client, version) in clients().into_iter().zip(["HTTP/1.1", "HTTP/2.0"]) {
        let response = client
            .get("/echo")
            .query(&[("page", "2"), ("q", "a b")])
            .header("x-test", "yes")
            .send();
        response
            .assert_status(200)
            .assert_status(StatusCode::OK)
            .assert_header("content-type", "application/json")
            .assert_header("x-served-by", "echo")
            .assert_json_includes(&json!({
                "method": "GET",
                "path": "/echo",
                "query": "page=2&q=a+b",
                "host": "localhost",
                "x-test": "yes",
                "body": "",
            }));
        assert_eq!(format!("{:?}", response.version()), version);
        assert_eq!(response.json::<Value>()["version"], json!(version));
    }
}

#[test]
fn the_host_comes_from_the_client_or_an_absolute_uri() {
    for client in clients() {
        client
            .get("http://example.com/echo?x=1")
            .send()
            .assert_json_includes(
                &json!({ "host": "example.com", "path": "/echo", "query": "x=1" }),
            );
        client
            .clone()
            .host("api.test:8080")
            .get("echo")
            .send()
            .assert_json_includes(&json!({ "host": "api.test:8080", "path": "/echo" }));
    }
}

#[test]
fn post_json_on_both_protocols() {
    for client in clients() {
        client
            .post("/users")
            .json(&json!({ "name": "ada" }))
            .send()
            .assert_status(201)
            .assert_json(&json!({ "name": "ada", "id": 7 }));
        client
            .put("/echo")
            .form(&[("a", "1"), ("b", "two")])
            .send()
            .assert_status(200)
            .assert_json_includes(&json!({
                "method": "PUT",
                "content-type": "application/x-www-form-urlencoded",
                "body": "a=1&b=two",
            }));
        client
            .patch("/echo")
            .body("raw bytes")
            .send()
            .assert_json_includes(&json!({ "method": "PATCH", "body": "raw bytes" }));
    }
}

#[test]
fn every_method_and_head_has_no_body() {
    for client in clients() {
        client
            .delete("/echo")
            .send()
            .assert_json_includes(&json!({ "method": "DELETE" }));
        client
            .options("/echo")
            .send()
            .assert_json_includes(&json!({ "method": "OPTIONS" }));
        client
            .request(http::Method::from_bytes(b"PURGE").unwrap(), "/echo")
            .send()
            .assert_json_includes(&json!({ "method": "PURGE" }));
        let head = client.head("/echo").send();
        head.assert_status(200)
            .assert_header("content-type", "application/json");
        assert!(head.bytes().is_empty(), "a HEAD response has no body");
        client
            .get("/nowhere")
            .send()
            .assert_status(404)
            .assert_text("no such page");
    }
}

#[test]
fn cookies_round_trip_with_paths_on_both_protocols() {
    for client in clients() {
        client.post("/login").send().assert_status(204);
        assert_eq!(client.cookie("session").as_deref(), Some("abc123"));
        client
            .get("/echo")
            .send()
            .assert_json_includes(&json!({ "cookie": "session=abc123" }));
        let admin = client.get("/admin/echo").send();
        admin.assert_status(404);
        // The admin cookie goes to /admin paths only: the echo route shows it there.
        let cookie = client.get("/echo").header("cookie", "own=1").send();
        cookie.assert_json_includes(&json!({ "cookie": "own=1; session=abc123" }));
        client.post("/logout").send().assert_status(204);
        assert_eq!(client.cookie("session"), None);
        client
            .get("/echo")
            .send()
            .assert_json_includes(&json!({ "cookie": null }));
    }
}

#[test]
fn cookies_follow_their_path_and_can_be_turned_off() {
    let client = TestClient::new(|request: Request<Body>| async move {
        let cookie = request
            .headers()
            .get("cookie")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let mut response = Response::new(Body::from(cookie.unwrap_or_default()));
        if request.uri().path() == "/admin/login" {
            response.headers_mut().append(
                "set-cookie",
                http::HeaderValue::from_static("token=t1"), // default path: /admin
            );
        }
        response
    });
    client.get("/admin/login").send().assert_text("");
    client.get("/admin/page").send().assert_text("token=t1");
    client.get("/administrator").send().assert_text("");
    client.get("/").send().assert_text("");
    let without = client.clone().without_cookies();
    without.get("/admin/page").send().assert_text("");
    assert_eq!(without.cookie("token"), None);
    client.add_cookie(weft::test::Cookie::new("added", "1"));
    assert_eq!(client.cookie("added").as_deref(), Some("1"));
}

#[test]
fn streamed_body_arrives_whole_and_in_pieces() {
    let [http1, http2] = clients();
    let response = http1.get("/stream").send();
    response
        .assert_status(200)
        .assert_header("transfer-encoding", "chunked")
        .assert_text("one two three");
    assert!(!response.chunks().is_empty());
    assert_eq!(response.chunks().concat(), b"one two three");

    let response = http2.get("/stream").send();
    response.assert_status(200).assert_text("one two three");
    assert_eq!(response.chunks().concat(), b"one two three");
}

#[test]
fn an_endless_event_stream_is_read_piece_by_piece() {
    for client in clients() {
        let mut stream = client.get("/events").send_streaming();
        assert_eq!(stream.status(), StatusCode::OK);
        assert_eq!(stream.header("content-type"), Some("text/event-stream"));
        let mut text = String::new();
        while !text.contains("data: 2\n\n") {
            text.push_str(&stream.next_text().expect("the stream goes on"));
        }
        assert!(
            text.starts_with("data: 0\n\ndata: 1\n\ndata: 2\n\n"),
            "{text}"
        );
    }
}

#[test]
fn a_finite_stream_ends_and_finishes_as_a_response() {
    for client in clients() {
        let mut stream = client.get("/stream").send_streaming();
        let first = stream.next_chunk().expect("a first piece");
        assert!(b"one two three".starts_with(&first), "{first:?}");
        let mut rest = Vec::new();
        while let Some(chunk) = stream.next_chunk() {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!([&first[..], &rest].concat(), b"one two three");
        assert_eq!(stream.next_chunk(), None, "the end stays the end");
        stream
            .finish()
            .assert_status(200)
            .assert_text("one two three");
    }
}

#[test]
fn send_async_runs_inside_other_executors() {
    for client in clients() {
        let response = futures_lite::future::block_on(client.get("/slow").send_async());
        response.assert_json(&json!({ "answer": 42, "timed_out": true }));
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let response = tokio.block_on(client.post("/users").json(&json!({})).send_async());
        response.assert_status(201).assert_json(&json!({ "id": 7 }));
        let error = tokio
            .block_on(
                client
                    .get("/never")
                    .deadline(Duration::from_millis(50))
                    .try_send_async(),
            )
            .expect_err("no answer");
        assert!(matches!(error, TestError::Deadline { .. }), "{error}");
    }
}

#[test]
fn handlers_have_runtime_services() {
    for client in clients() {
        client
            .get("/slow")
            .send()
            .assert_status(200)
            .assert_json(&json!({ "answer": 42, "timed_out": true }));
    }
}

#[test]
fn websocket_echo_and_close() {
    for client in clients() {
        // An HTTP/2 client opens its WebSocket over HTTP/1.1.
        let mut socket = client.websocket("/ws");
        socket.send_text("hello");
        assert_eq!(socket.recv_text(), "hello");
        socket.send_binary([1, 2, 3]);
        assert_eq!(socket.recv(), Some(Message::binary(vec![1, 2, 3])));
        socket.ping(b"are you there");
        socket.send_text("again");
        assert_eq!(socket.recv_text(), "again");
        let closed = socket.close();
        assert_eq!(closed.map(|(code, _)| code), Some(CloseCode::NORMAL));
        assert_eq!(socket.recv(), None);
    }
}

#[test]
fn websocket_closed_by_the_server() {
    let client = TestClient::new(app());
    let mut socket = client.websocket("/ws");
    socket.send_text("bye");
    assert_eq!(socket.recv(), None);
    let (code, reason) = socket.close_reason().cloned().expect("closed");
    assert_eq!(code, CloseCode::NORMAL);
    assert_eq!(reason, "bye to you");
}

#[test]
fn websocket_refusal_is_the_applications_answer() {
    let client = TestClient::new(app());
    let refused = client.get("/nowhere").try_websocket().expect_err("refused");
    refused.assert_status(404);
    // A plain GET to the socket's path is refused by WebSocketUpgrade.
    client.get("/ws").send().assert_status(400);
}

#[test]
#[should_panic(expected = "GET /never: no complete response within the test deadline")]
fn a_handler_that_never_answers_fails_the_test_at_the_deadline() {
    let client = TestClient::new(app()).deadline(Duration::from_millis(200));
    client.get("/never").send();
}

#[test]
fn the_deadline_is_an_error_for_try_send_on_both_protocols() {
    for client in clients() {
        let error = client
            .get("/never")
            .deadline(Duration::from_millis(100))
            .try_send()
            .expect_err("no answer");
        assert!(matches!(error, TestError::Deadline { .. }), "{error}");
    }
}

#[test]
fn requests_pass_through_the_dispatcher() {
    let client = TestClient::new(app());
    // The dispatcher's HTTP/1.1 connection refuses an oversized head before the application.
    let huge = "x".repeat(200 * 1024);
    client
        .get("/echo")
        .header("x-huge", huge.as_str())
        .send()
        .assert_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // HTTP/2 refuses it at the protocol level (GOAWAY), not with a response.
    let refused = client
        .clone()
        .http2()
        .get("/echo")
        .header("x-huge", huge.as_str())
        .try_send();
    match refused {
        Err(TestError::Connection { reason, .. }) => {
            assert!(reason.contains("header size limit"), "{reason}");
        }
        other => panic!("expected the HTTP/2 connection to refuse the head, got {other:?}"),
    }
    // A panicking handler is answered 500 by the dispatcher.
    for client in clients() {
        client.get("/panic").send().assert_status(500);
    }
}

#[test]
fn the_dispatch_config_applies() {
    let mut config = weft::test::DispatchConfig::default();
    config.limits.max_body_size = 16;
    let client = TestClient::with_config(app(), config);
    client
        .post("/echo")
        .body("small")
        .send()
        .assert_json_includes(&json!({ "body": "small" }));
    client
        .post("/echo")
        .body("x".repeat(1000))
        .send()
        .assert_status(StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
#[should_panic(expected = "expected status 201 Created, got 200 OK")]
fn failed_assertions_say_what_was_expected() {
    TestClient::new(app())
        .get("/echo")
        .send()
        .assert_status(201);
}

#[test]
#[should_panic(expected = "first difference at $.method")]
fn failed_json_assertions_show_the_path() {
    TestClient::new(app())
        .get("/echo")
        .send()
        .assert_json_includes(&json!({ "method": "POST" }));
}

#[test]
fn clients_and_sockets_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_and_sync::<TestClient>();
    send::<weft::test::TestRequest>();
    send::<weft::test::TestResponse>();
    send::<weft::test::TestWebSocket>();
}
