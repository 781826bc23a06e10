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

#[test]
fn a_request_body_reports_its_content_length_as_its_size() {
    let mut dispatcher = dispatcher(size_hint_service);
    let output = run(
        &mut dispatcher,
        b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello",
    );
    let output = String::from_utf8_lossy(&output);
    assert!(output.ends_with("\r\n\r\nexact=5"), "{output}");
}

#[test]
fn a_chunked_request_body_has_no_known_size() {
    let mut dispatcher = dispatcher(size_hint_service);
    let output = run(
        &mut dispatcher,
        b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let output = String::from_utf8_lossy(&output);
    assert!(output.ends_with("\r\n\r\nunknown"), "{output}");
}
