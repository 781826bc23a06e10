//! In-memory tests of the dispatcher: HTTP/1.1 exchanges, and the choice of protocol.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, Service};

use super::{DispatchConfig, Dispatcher};

/// A response body that panics when polled.
struct PanickingBody;

impl http_body::Body for PanickingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        panic!("deliberate panic in a response body");
    }
}

fn dispatcher<S: Service>(service: S) -> Dispatcher {
    Dispatcher::new(
        Arc::new(service),
        DispatchConfig::default(),
        ConnectionInfo::default(),
        Instant::now(),
    )
}

/// Feeds `request` in pieces of `piece` bytes, polling and collecting output as a driver does.
fn run_in_pieces(dispatcher: &mut Dispatcher, request: &[u8], piece: usize) -> Vec<u8> {
    let now = Instant::now();
    let mut cx = Context::from_waker(Waker::noop());
    let mut output = Vec::new();
    let mut unread = request;
    for _ in 0..64 {
        if !unread.is_empty() && dispatcher.wants_read() {
            let room = dispatcher.receive_capacity().min(piece).min(unread.len());
            let taken = dispatcher.receive(now, &unread[..room]);
            assert_eq!(
                taken, room,
                "reads bounded by receive_capacity are taken whole"
            );
            unread = &unread[taken..];
        }
        dispatcher.poll(&mut cx);
        while let Some(bytes) = dispatcher.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
    }
    output
}

fn run(dispatcher: &mut Dispatcher, request: &[u8]) -> Vec<u8> {
    run_in_pieces(dispatcher, request, usize::MAX)
}

fn echo_path(request: Request<Body>) -> std::future::Ready<Response<Body>> {
    std::future::ready(Response::new(Body::from(request.uri().path().to_owned())))
}

#[test]
fn a_panicking_response_body_cuts_the_response_and_closes() {
    let mut dispatcher =
        dispatcher(|_request: Request<Body>| async { Response::new(Body::new(PanickingBody)) });
    let output = run(&mut dispatcher, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let output = String::from_utf8(output).unwrap();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
    assert!(output.contains("transfer-encoding: chunked"), "{output}");
    assert!(
        !output.ends_with("0\r\n\r\n"),
        "a cut response must not look complete: {output}"
    );
    assert!(dispatcher.is_closed());
}

#[test]
fn a_panicking_call_is_answered_500() {
    let mut dispatcher = dispatcher(
        |_request: Request<Body>| -> std::future::Ready<Response<Body>> {
            panic!("deliberate panic in Service::call");
        },
    );
    let output = run(&mut dispatcher, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    assert!(output.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    assert!(!dispatcher.is_closed(), "the connection lives on");
}

#[test]
fn an_http1_request_sharing_the_preface_first_letter_is_served_in_any_pieces() {
    let request = b"POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n";
    for piece in [1, 2, 3, 100] {
        let mut dispatcher = dispatcher(echo_path);
        let output = String::from_utf8(run_in_pieces(&mut dispatcher, request, piece)).unwrap();
        assert!(
            output.starts_with("HTTP/1.1 200 OK\r\n"),
            "{piece}: {output}"
        );
        assert!(output.ends_with("\r\n\r\n/p"), "{piece}: {output}");
    }
}

#[test]
fn a_preface_cut_short_by_eof_is_left_to_http1() {
    let mut dispatcher = dispatcher(echo_path);
    let now = Instant::now();
    assert_eq!(dispatcher.receive(now, b"PRI * HTTP/2"), 12);
    dispatcher.receive_eof();
    let mut cx = Context::from_waker(Waker::noop());
    dispatcher.poll(&mut cx);
    let mut output = Vec::new();
    while let Some(bytes) = dispatcher.poll_transmit(now) {
        output.extend_from_slice(&bytes);
    }
    assert!(output.starts_with(b"HTTP/1.1 400"), "{output:?}");
    assert!(dispatcher.is_closed());
}

#[test]
fn alpn_http1_never_waits_for_the_preface() {
    let mut info = ConnectionInfo::default();
    info.alpn = Some(b"http/1.1".to_vec());
    let mut dispatcher = Dispatcher::new(
        Arc::new(echo_path),
        DispatchConfig::default(),
        info,
        Instant::now(),
    );
    assert!(dispatcher.detecting.is_none());
    let output = run(&mut dispatcher, b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    assert!(output.ends_with(b"\r\n\r\n/x"));
}

/// Answers with the request body's size hint as the handler saw it: `exact=N` or `unknown`.
fn size_hint_service(request: Request<Body>) -> std::future::Ready<Response<Body>> {
    let hint = http_body::Body::size_hint(request.body());
    let text = match hint.exact() {
        Some(length) => format!("exact={length}"),
        None => "unknown".to_owned(),
    };
    std::future::ready(Response::new(Body::from(text)))
}

/// The size a handler sees for the body of `request`.
fn seen_size(request: &[u8]) -> String {
    let output = run(&mut dispatcher(size_hint_service), request);
    let output = String::from_utf8_lossy(&output);
    output
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_request_body_reports_its_content_length_as_its_size() {
    let request = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello";
    assert_eq!(seen_size(request), "exact=5");
}

#[test]
fn a_chunked_request_body_has_no_known_size() {
    let request =
        b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(seen_size(request), "unknown");
}

/// Answers every request with `status` and an empty body.
fn status_service(
    status: u16,
) -> impl Fn(Request<Body>) -> std::future::Ready<Response<Body>> + Send + Sync + 'static {
    move |_request: Request<Body>| {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        std::future::ready(response)
    }
}

#[test]
fn a_1xx_final_answer_becomes_500_and_the_connection_lives_on() {
    for status in [100, 102, 103] {
        let mut dispatcher = dispatcher(status_service(status));
        let output = run(
            &mut dispatcher,
            b"GET / HTTP/1.1\r\nhost: a\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n",
        );
        let output = String::from_utf8(output).unwrap();
        assert_eq!(
            output
                .matches("HTTP/1.1 500 Internal Server Error\r\n")
                .count(),
            2,
            "{status}: {output}"
        );
        assert!(!dispatcher.is_closed(), "{status}");
    }
}

#[test]
fn a_101_to_a_request_that_asked_no_upgrade_becomes_500() {
    let mut dispatcher = dispatcher(status_service(101));
    let output = run(&mut dispatcher, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    assert!(output.starts_with(b"HTTP/1.1 500 "), "{output:?}");
    assert!(!dispatcher.is_closed());
}

/// An endless response body that counts how often it was polled.
struct EndlessBody(Arc<std::sync::atomic::AtomicUsize>);

impl http_body::Body for EndlessBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"more")))))
    }
}

#[test]
fn bodiless_responses_drop_an_endless_body_unpolled_and_finish() {
    let cases: [(&[u8], u16); 3] = [
        (b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n", 200),
        (b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 204),
        (b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", 304),
    ];
    for (request, status) in cases {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&polls);
        let mut dispatcher = dispatcher(move |_request: Request<Body>| {
            let mut response = Response::new(Body::new(EndlessBody(Arc::clone(&counter))));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            std::future::ready(response)
        });
        let twice = [request, request].concat();
        let output = String::from_utf8(run(&mut dispatcher, &twice)).unwrap();
        let status_line = format!("HTTP/1.1 {status} ");
        assert_eq!(output.matches(&status_line).count(), 2, "{output}");
        assert!(!output.contains("more"), "{output}");
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(!dispatcher.is_closed(), "{status}: the connection lives on");
    }
}

/// A body that promises 10 bytes and ends after 5.
struct ShortBody(bool);

impl http_body::Body for ShortBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"short")))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(10)
    }
}

#[test]
fn a_body_shorter_than_its_length_closes_the_connection() {
    let mut dispatcher =
        dispatcher(|_request: Request<Body>| async { Response::new(Body::new(ShortBody(false))) });
    let output = run(
        &mut dispatcher,
        b"GET / HTTP/1.1\r\nhost: a\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n",
    );
    let output = String::from_utf8(output).unwrap();
    assert!(output.contains("content-length: 10\r\n"), "{output}");
    assert_eq!(output.matches("HTTP/1.1 200").count(), 1, "{output}");
    assert!(dispatcher.is_closed());
}

#[test]
fn rejections_carry_the_configured_error_page() {
    use weft_core::h1::{ErrorPage, ErrorPages};
    let mut config = DispatchConfig::default();
    config.limits.max_request_target_len = 16;
    config.error_pages = ErrorPages::from_fn(|status| {
        Some(ErrorPage::new(
            status,
            http::HeaderValue::from_static("text/html"),
            format!("<p>{}</p>", status.as_u16()),
        ))
    });
    let long = format!("GET /{} HTTP/1.1\r\nhost: a\r\n\r\n", "x".repeat(32));
    let cases: [(&[u8], &str); 3] = [
        (long.as_bytes(), "414"),
        (b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", "400"),
        (b"GET / HTTP/2.5\r\nhost: a\r\n\r\n", "505"),
    ];
    for (request, status) in cases {
        let mut dispatcher = Dispatcher::new(
            Arc::new(echo_path),
            config.clone(),
            ConnectionInfo::default(),
            Instant::now(),
        );
        let output = String::from_utf8(run(&mut dispatcher, request)).unwrap();
        assert!(
            output.starts_with(&format!("HTTP/1.1 {status} ")),
            "{output}"
        );
        assert!(
            output.contains("\r\ncontent-type: text/html\r\n"),
            "{output}"
        );
        assert!(
            output.ends_with(&format!("\r\n\r\n<p>{status}</p>")),
            "{output}"
        );
        assert!(dispatcher.is_closed());
    }
    let mut dispatcher = dispatcher(echo_path);
    let output = String::from_utf8(run(&mut dispatcher, long.as_bytes())).unwrap();
    assert!(
        output.contains("/x"),
        "the default target limit takes it: {output}"
    );
}

/// Answers `uri|host|scheme|authority|form`, the request's shape as the handler saw it.
pub(super) fn shape_service(request: Request<Body>) -> std::future::Ready<Response<Body>> {
    use weft_service::request::RequestTarget;
    let host = request
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .map(|value| value.to_str().unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(",");
    let target = request.extensions().get::<RequestTarget>();
    let text = match target {
        Some(target) => format!(
            "{}|{host}|{}|{}|{:?}",
            request.uri(),
            target.scheme(),
            target.authority().as_ref().map_or("-", |a| a.as_str()),
            target.form()
        ),
        None => format!("{}|{host}|no RequestTarget", request.uri()),
    };
    std::future::ready(Response::new(Body::from(text)))
}

fn shape_over_http1(request: &[u8], tls: bool) -> String {
    let mut info = ConnectionInfo::default();
    info.tls = tls;
    let mut dispatcher = Dispatcher::new(
        Arc::new(shape_service),
        DispatchConfig::default(),
        info,
        Instant::now(),
    );
    let output = String::from_utf8(run(&mut dispatcher, request)).unwrap();
    let (_, body) = output.split_once("\r\n\r\n").expect("a response");
    body.to_owned()
}

#[test]
fn http1_requests_get_their_target_in_one_shape() {
    assert_eq!(
        shape_over_http1(
            b"GET /a?b=c HTTP/1.1\r\nhost: example.com:8080\r\n\r\n",
            false
        ),
        "/a?b=c|example.com:8080|http|example.com:8080|Origin"
    );
    assert_eq!(
        shape_over_http1(b"GET /a HTTP/1.1\r\nhost: example.com\r\n\r\n", true),
        "/a|example.com|https|example.com|Origin",
        "TLS makes the scheme https"
    );
    assert_eq!(
        shape_over_http1(
            b"GET http://example.com/a?b HTTP/1.1\r\nhost: other.example\r\n\r\n",
            false
        ),
        "/a?b|example.com|http|example.com|Absolute",
        "an absolute-form target's authority wins over Host (RFC 9112 §3.2.2)"
    );
    assert_eq!(
        shape_over_http1(b"OPTIONS * HTTP/1.1\r\nhost: example.com\r\n\r\n", false),
        "*|example.com|http|example.com|Asterisk"
    );
    assert_eq!(
        shape_over_http1(b"GET /old HTTP/1.0\r\n\r\n", false),
        "/old||http|-|Origin",
        "no Host, no authority"
    );
}
