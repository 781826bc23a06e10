//! In-memory tests of the generic HTTP/1.1 upgrade and CONNECT hand-off
//! ([`weft_service::upgrade`]).

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use weft_service::body::Body;
use weft_service::service::ConnectionInfo;
use weft_service::upgrade::{OnUpgrade, UpgradeError, Upgraded};

use super::{DispatchConfig, Dispatcher};

type Slot = Arc<Mutex<Option<OnUpgrade>>>;

/// Takes the upgrade handle (when `take`) into `slot` and answers `status`.
fn service(
    slot: Slot,
    take: bool,
    status: StatusCode,
) -> impl Fn(Request<Body>) -> std::future::Ready<Response<Body>> + Send + Sync + 'static {
    move |mut request: Request<Body>| {
        if take {
            *slot.lock().unwrap() = OnUpgrade::from_request(&mut request);
        }
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            response
                .headers_mut()
                .insert("upgrade", "echo".parse().unwrap());
            response
                .headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
        }
        std::future::ready(response)
    }
}

fn dispatcher(slot: &Slot, take: bool, status: StatusCode) -> Dispatcher {
    Dispatcher::new(
        Arc::new(service(Arc::clone(slot), take, status)),
        DispatchConfig::default(),
        ConnectionInfo::default(),
        Instant::now(),
    )
}

/// Feeds `input`, polls, and returns the output.
fn exchange(dispatcher: &mut Dispatcher, input: &[u8]) -> Vec<u8> {
    let now = Instant::now();
    let mut cx = Context::from_waker(Waker::noop());
    if !input.is_empty() {
        assert!(dispatcher.wants_read());
        let taken = dispatcher.receive(now, input);
        assert_eq!(taken, input.len());
    }
    let mut output = Vec::new();
    for _ in 0..8 {
        dispatcher.poll(&mut cx);
        while let Some(bytes) = dispatcher.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
    }
    output
}

/// Polls `future` once, without a runtime.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

fn upgraded(slot: &Slot) -> Upgraded {
    let on_upgrade = slot
        .lock()
        .unwrap()
        .take()
        .expect("the handler took the handle");
    match poll_once(on_upgrade) {
        Poll::Ready(Ok(upgraded)) => upgraded,
        other => panic!("not upgraded: {other:?}"),
    }
}

const UPGRADE: &[u8] =
    b"GET /chat HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";

#[test]
fn an_accepted_upgrade_hands_the_raw_connection_over() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, true, StatusCode::SWITCHING_PROTOCOLS);
    let output = exchange(&mut dispatcher, &[UPGRADE, b"early bytes"].concat());
    let output = String::from_utf8(output).unwrap();
    assert!(
        output.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{output}"
    );
    assert!(
        output.ends_with("\r\n\r\n"),
        "nothing after the head: {output}"
    );

    let mut io = upgraded(&slot);
    assert_eq!(
        poll_once(io.read()),
        Poll::Ready(Some(Bytes::from_static(b"early bytes"))),
        "bytes sent after the request come first"
    );
    assert!(exchange(&mut dispatcher, b"ping").is_empty());
    assert_eq!(
        poll_once(io.read()),
        Poll::Ready(Some(Bytes::from_static(b"ping")))
    );
    assert!(poll_once(io.read()).is_pending());

    assert_eq!(
        poll_once(io.write(Bytes::from_static(b"pong"))),
        Poll::Ready(Ok(()))
    );
    assert_eq!(exchange(&mut dispatcher, b""), b"pong");
    assert!(!dispatcher.is_closed());

    dispatcher.receive_eof();
    assert!(exchange(&mut dispatcher, b"").is_empty());
    assert_eq!(poll_once(io.read()), Poll::Ready(None), "the peer closed");
    io.close();
    exchange(&mut dispatcher, b"");
    assert!(dispatcher.is_closed(), "closed once the application closed");
}

#[test]
fn an_upgraded_connection_reads_only_while_the_application_has_room() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, true, StatusCode::SWITCHING_PROTOCOLS);
    exchange(&mut dispatcher, UPGRADE);
    let mut io = upgraded(&slot);
    let buffer = DispatchConfig::default().request_body_buffer;
    let mut fed = 0;
    while dispatcher.wants_read() {
        let room = dispatcher.receive_capacity();
        assert!(room > 0);
        fed += dispatcher.receive(Instant::now(), &vec![b'x'; room]);
        assert!(fed <= 2 * buffer, "the tunnel kept reading: {fed}");
    }
    let mut read = 0;
    while let Poll::Ready(Some(bytes)) = poll_once(io.read()) {
        read += bytes.len();
    }
    assert_eq!(read, fed);
    exchange(&mut dispatcher, b"");
    assert!(
        dispatcher.wants_read(),
        "room again once the application read"
    );
}

#[test]
fn dropping_the_upgraded_connection_closes_it() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, true, StatusCode::SWITCHING_PROTOCOLS);
    exchange(&mut dispatcher, UPGRADE);
    drop(upgraded(&slot));
    exchange(&mut dispatcher, b"");
    assert!(dispatcher.is_closed());
}

#[test]
fn a_101_without_taking_the_handle_becomes_500() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, false, StatusCode::SWITCHING_PROTOCOLS);
    let output = exchange(&mut dispatcher, UPGRADE);
    assert!(output.starts_with(b"HTTP/1.1 500 "), "{output:?}");
    assert!(
        !dispatcher.is_closed(),
        "an ordinary answer: the connection lives on"
    );
}

#[test]
fn an_upgrade_answered_otherwise_resolves_the_handle_to_not_upgraded() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, true, StatusCode::OK);
    let output = exchange(&mut dispatcher, UPGRADE);
    assert!(output.starts_with(b"HTTP/1.1 200 OK\r\n"), "{output:?}");
    let on_upgrade = slot.lock().unwrap().take().unwrap();
    assert!(matches!(
        poll_once(on_upgrade),
        Poll::Ready(Err(UpgradeError::NotUpgraded))
    ));
}

const CONNECT: &[u8] = b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n";

#[test]
fn an_accepted_connect_becomes_a_tunnel() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, true, StatusCode::OK);
    let output = String::from_utf8(exchange(&mut dispatcher, CONNECT)).unwrap();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
    assert!(!output.contains("content-length"), "{output}");
    let mut io = upgraded(&slot);
    assert!(exchange(&mut dispatcher, b"\x16\x03\x01").is_empty());
    assert_eq!(
        poll_once(io.read()),
        Poll::Ready(Some(Bytes::from_static(b"\x16\x03\x01")))
    );
    assert_eq!(
        poll_once(io.write(Bytes::from_static(b"reply"))),
        Poll::Ready(Ok(()))
    );
    io.close();
    assert_eq!(exchange(&mut dispatcher, b""), b"reply");
    assert!(dispatcher.is_closed());
}

#[test]
fn a_connect_answered_2xx_without_taking_the_handle_becomes_500() {
    let slot = Slot::default();
    let mut dispatcher = dispatcher(&slot, false, StatusCode::OK);
    let output = exchange(&mut dispatcher, CONNECT);
    assert!(output.starts_with(b"HTTP/1.1 500 "), "{output:?}");
}

#[test]
fn only_requests_that_ask_to_switch_carry_the_handle() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let mut dispatcher = Dispatcher::new(
        Arc::new(move |request: Request<Body>| {
            record
                .lock()
                .unwrap()
                .push((request.method().clone(), OnUpgrade::is_requested(&request)));
            std::future::ready(Response::new(Body::empty()))
        }),
        DispatchConfig::default(),
        ConnectionInfo::default(),
        Instant::now(),
    );
    exchange(
        &mut dispatcher,
        &[b"GET / HTTP/1.1\r\nhost: a\r\n\r\n".as_slice(), UPGRADE].concat(),
    );
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, [(Method::GET, false), (Method::GET, true)]);
}
