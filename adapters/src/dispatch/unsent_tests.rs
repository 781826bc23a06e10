//! In-memory tests of output the socket refuses ([`Dispatcher::unsent`]): the dispatcher keeps
//! it, and ends the connection when it waits past `Limits::send_timeout`, whatever the
//! protocol (and once the protocol itself has finished).

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::{Request, Response, StatusCode};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, Service};
use weft_service::upgrade::{OnUpgrade, Upgraded};

use super::{DispatchConfig, Dispatcher};

const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn dispatcher<S: Service>(service: S, now: Instant) -> Dispatcher {
    let mut config = DispatchConfig::default();
    config.limits.send_timeout = SEND_TIMEOUT;
    // Shorter than the send timeout: the idle connection's own timer fires first, as it did
    // when a driver held the last bytes and waited for ever.
    config.limits.keep_alive_timeout = Duration::from_secs(2);
    Dispatcher::new(Arc::new(service), config, ConnectionInfo::default(), now)
}

fn hello(_request: Request<Body>) -> std::future::Ready<Response<Body>> {
    std::future::ready(Response::new(Body::from("hello, world")))
}

/// Feeds `input` and polls at `now`.
fn feed(dispatcher: &mut Dispatcher, now: Instant, input: &[u8]) {
    assert_eq!(dispatcher.receive(now, input), input.len());
    for _ in 0..8 {
        dispatcher.poll(&mut Context::from_waker(Waker::noop()));
    }
}

/// A write at `now` that the socket takes `accepted` bytes of: the rest goes back. Returns
/// what was written.
fn write(dispatcher: &mut Dispatcher, now: Instant, accepted: usize) -> Bytes {
    let mut bytes = dispatcher.poll_transmit(now).expect("output to write");
    let written = bytes.split_to(accepted.min(bytes.len()));
    dispatcher.unsent(now, bytes);
    written
}

/// Runs the timers due at `now`, as a driver does.
fn tick(dispatcher: &mut Dispatcher, now: Instant) {
    if dispatcher
        .poll_timeout()
        .is_some_and(|deadline| deadline <= now)
    {
        dispatcher.handle_timeout(now);
    }
}

#[test]
fn the_last_bytes_of_a_finished_response_refused_by_the_socket_time_out() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(hello, t0);
    feed(&mut dispatcher, t0, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    // The socket takes the head but not the body's last bytes.
    let written = write(&mut dispatcher, t0, 20);
    assert!(written.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(!dispatcher.is_closed(), "bytes wait to be written");
    assert!(!dispatcher.send_timed_out());
    let deadline = t0 + SEND_TIMEOUT;
    assert_eq!(dispatcher.poll_timeout(), Some(t0 + Duration::from_secs(2)));

    // The keep-alive timer ends the idle exchange: the bytes still wait, and keep time.
    let t1 = t0 + Duration::from_secs(2);
    tick(&mut dispatcher, t1);
    assert!(!dispatcher.is_closed(), "the refused bytes still wait");
    assert_eq!(dispatcher.poll_timeout(), Some(deadline));

    // Offered again and refused again: the clock does not restart.
    let t2 = t0 + Duration::from_secs(5);
    assert!(write(&mut dispatcher, t2, 0).is_empty());
    assert_eq!(dispatcher.poll_timeout(), Some(deadline));
    tick(&mut dispatcher, deadline - Duration::from_millis(1));
    assert!(!dispatcher.send_timed_out());

    tick(&mut dispatcher, deadline);
    assert!(dispatcher.send_timed_out());
    assert!(dispatcher.is_closed());
    assert_eq!(
        dispatcher.poll_transmit(deadline),
        None,
        "nothing more to write"
    );
    assert_eq!(dispatcher.poll_timeout(), None);
    assert!(!dispatcher.wants_read());
}

#[test]
fn a_socket_taking_part_of_the_output_restarts_the_clock() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(hello, t0);
    feed(
        &mut dispatcher,
        t0,
        b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    );
    write(&mut dispatcher, t0, 0);
    assert_eq!(dispatcher.poll_timeout(), Some(t0 + SEND_TIMEOUT));

    let t1 = t0 + Duration::from_secs(8);
    let mut output = write(&mut dispatcher, t1, 10).to_vec();
    assert_eq!(dispatcher.poll_timeout(), Some(t1 + SEND_TIMEOUT));
    tick(&mut dispatcher, t0 + SEND_TIMEOUT);
    assert!(!dispatcher.send_timed_out(), "it moved 2 s before");

    // The rest gets out before the new deadline: the connection closes as usual.
    let t2 = t1 + Duration::from_secs(9);
    output.extend_from_slice(&write(&mut dispatcher, t2, usize::MAX));
    assert!(output.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(output.ends_with(b"hello, world"));
    assert_eq!(dispatcher.poll_transmit(t2), None);
    assert!(dispatcher.is_closed());
    assert!(!dispatcher.send_timed_out());
    assert_eq!(dispatcher.poll_timeout(), None);
}

/// Polls `future` once, without a runtime.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_tunnel_whose_peer_reads_nothing_times_out() {
    let slot = Arc::new(Mutex::new(None::<OnUpgrade>));
    let take = Arc::clone(&slot);
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(
        move |mut request: Request<Body>| {
            *take.lock().unwrap() = OnUpgrade::from_request(&mut request);
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::OK;
            std::future::ready(response)
        },
        t0,
    );
    feed(
        &mut dispatcher,
        t0,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    );
    let head = write(&mut dispatcher, t0, usize::MAX);
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let on_upgrade = slot.lock().unwrap().take().expect("the handle");
    let Poll::Ready(Ok(mut io)) = poll_once(on_upgrade) else {
        panic!("not upgraded");
    };
    let io: &mut Upgraded = &mut io;

    // The application writes; the socket takes a little, then nothing.
    assert!(poll_once(io.write(Bytes::from_static(b"tunnelled bytes"))).is_ready());
    feed(&mut dispatcher, t0, b"");
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(&write(&mut dispatcher, t1, 4)[..], b"tunn");
    assert_eq!(dispatcher.poll_timeout(), Some(t1 + SEND_TIMEOUT));
    // The application closes its side: the tunnel waits for its bytes to get out.
    io.close();
    feed(&mut dispatcher, t1, b"");
    assert!(!dispatcher.is_closed());

    let deadline = t1 + SEND_TIMEOUT;
    tick(&mut dispatcher, deadline - Duration::from_millis(1));
    assert!(!dispatcher.send_timed_out());
    tick(&mut dispatcher, deadline);
    assert!(dispatcher.send_timed_out());
    assert!(dispatcher.is_closed());
    assert_eq!(dispatcher.poll_transmit(deadline), None);
}

#[test]
fn a_tunnel_cut_off_by_the_send_timeout_fails_the_applications_side() {
    let slot = Arc::new(Mutex::new(None::<OnUpgrade>));
    let take = Arc::clone(&slot);
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(
        move |mut request: Request<Body>| {
            *take.lock().unwrap() = OnUpgrade::from_request(&mut request);
            std::future::ready(Response::new(Body::empty()))
        },
        t0,
    );
    feed(
        &mut dispatcher,
        t0,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    );
    // Not even the `200` gets out.
    write(&mut dispatcher, t0, 0);
    let on_upgrade = slot.lock().unwrap().take().expect("the handle");
    let Poll::Ready(Ok(mut io)) = poll_once(on_upgrade) else {
        panic!("not upgraded");
    };
    tick(&mut dispatcher, t0 + SEND_TIMEOUT);
    assert!(dispatcher.send_timed_out());
    assert!(dispatcher.is_closed());
    assert_eq!(
        poll_once(io.read()),
        Poll::Ready(None),
        "the reading end ends"
    );
    let mut written = 0;
    for _ in 0..1000 {
        match poll_once(io.write(Bytes::from_static(&[0; 1024]))) {
            Poll::Ready(Ok(())) => written += 1,
            _ => break,
        }
    }
    assert!(
        written < 1000,
        "writes go nowhere but must not be accepted for ever"
    );
}

#[test]
fn output_handed_back_comes_first_and_whole() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(hello, t0);
    feed(&mut dispatcher, t0, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let mut all = dispatcher.poll_transmit(t0).unwrap();
    let whole = all.clone();
    let first = all.split_to(7);
    dispatcher.unsent(t0, all);
    // A second request's answer queues behind the bytes handed back.
    feed(&mut dispatcher, t0, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let mut output = first.to_vec();
    while let Some(mut bytes) = dispatcher.poll_transmit(t0) {
        output.extend_from_slice(&bytes);
        bytes.advance(bytes.len());
        dispatcher.unsent(t0, bytes);
    }
    assert_eq!(output, [&whole[..], &whole[..]].concat());
    assert_eq!(dispatcher.poll_timeout(), Some(t0 + Duration::from_secs(2)));
}

/// A body of `len` bytes, given as one `Bytes`.
fn big(len: usize) -> impl Fn(Request<Body>) -> std::future::Ready<Response<Body>> + Clone {
    move |_request| {
        let body = Bytes::from((0..len).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
        std::future::ready(Response::new(Body::from(body)))
    }
}

/// Every piece `poll_transmit_vectored` hands out at `now`, the socket taking `accepted` bytes
/// of them: returns those bytes and how many pieces there were.
fn write_vectored(dispatcher: &mut Dispatcher, now: Instant, accepted: usize) -> (Vec<u8>, usize) {
    let mut pieces = Vec::new();
    let count = dispatcher.poll_transmit_vectored(now, &mut pieces, 64);
    assert_eq!(count, pieces.len());
    let all: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
    let taken = accepted.min(all.len());
    dispatcher.unsent_vectored(now, &mut pieces, taken);
    assert!(pieces.is_empty(), "everything was handed back or written");
    (all[..taken].to_vec(), count)
}

#[test]
fn a_large_bytes_body_is_its_own_piece_once_vectored() {
    let t0 = Instant::now();
    let request = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    for (vectored, expected_pieces) in [(false, 1), (true, 2)] {
        let mut dispatcher = dispatcher(big(4096), t0);
        dispatcher.set_vectored_output(vectored);
        feed(&mut dispatcher, t0, request);
        let mut pieces = Vec::new();
        assert_eq!(
            dispatcher.poll_transmit_vectored(t0, &mut pieces, 64),
            expected_pieces
        );
        let expected: Vec<u8> = (0..4096).map(|i| b'a' + (i % 26) as u8).collect();
        let wire: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert!(wire.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(wire.ends_with(&expected), "the body comes last");
        assert!(
            std::str::from_utf8(&wire)
                .unwrap()
                .contains("content-length: 4096\r\n")
        );
        dispatcher.unsent_vectored(t0, &mut pieces, wire.len());
        assert_eq!(dispatcher.poll_transmit(t0), None);
    }
}

#[test]
fn pieces_handed_back_in_part_come_first_in_order() {
    let t0 = Instant::now();
    let request = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    let mut reference = dispatcher(big(2048), t0);
    feed(&mut reference, t0, request);
    let mut whole = Vec::new();
    while let Some(bytes) = reference.poll_transmit(t0) {
        whole.extend_from_slice(&bytes);
    }
    // The socket takes the head and a few body bytes, then a piece at a time: whatever the
    // cut, the bytes come out once each, in order.
    for first in [0, 5, 40, 100, 1000, whole.len()] {
        let mut dispatcher = dispatcher(big(2048), t0);
        dispatcher.set_vectored_output(true);
        feed(&mut dispatcher, t0, request);
        let (mut out, pieces) = write_vectored(&mut dispatcher, t0, first);
        assert_eq!(pieces, 2);
        let mut rounds = 0;
        while out.len() < whole.len() {
            let (more, _) = write_vectored(&mut dispatcher, t0, 700);
            out.extend_from_slice(&more);
            rounds += 1;
            assert!(rounds < 10, "the output never drained");
        }
        assert_eq!(out, whole, "cut after {first} bytes");
        assert_eq!(dispatcher.poll_transmit(t0), None);
    }
}

#[test]
fn pieces_refused_whole_time_out_and_taken_in_part_restart_the_clock() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(big(4096), t0);
    dispatcher.set_vectored_output(true);
    feed(&mut dispatcher, t0, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let t1 = t0 + SEND_TIMEOUT / 2;
    write_vectored(&mut dispatcher, t1, 10);
    // Part taken at t1: the timeout runs from there, and refusals after do not move it.
    let t2 = t1 + SEND_TIMEOUT / 2;
    write_vectored(&mut dispatcher, t2, 0);
    // The idle connection's own timer has fired meanwhile; the output still waits.
    tick(&mut dispatcher, t2);
    let deadline = t1 + SEND_TIMEOUT;
    tick(&mut dispatcher, deadline - Duration::from_millis(1));
    assert!(!dispatcher.send_timed_out());
    assert!(!dispatcher.is_closed());
    tick(&mut dispatcher, deadline);
    assert!(dispatcher.send_timed_out());
    assert!(dispatcher.is_closed());
    let mut pieces = Vec::new();
    assert_eq!(dispatcher.poll_transmit_vectored(t2, &mut pieces, 64), 0);
}

#[test]
fn a_pipelined_batch_is_answered_in_one_vectored_write() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(hello, t0);
    dispatcher.set_vectored_output(true);
    let batch = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n".repeat(16);
    // One read's worth, one poll: every request answered before the driver writes.
    assert_eq!(dispatcher.receive(t0, &batch), batch.len());
    dispatcher.poll(&mut Context::from_waker(Waker::noop()));
    let mut pieces = Vec::new();
    let count = dispatcher.poll_transmit_vectored(t0, &mut pieces, 64);
    let wire: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
    let text = std::str::from_utf8(&wire).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 16);
    assert_eq!(text.matches("hello, world").count(), 16);
    // Small bodies are copied: the whole batch is one piece.
    assert_eq!(count, 1);
    dispatcher.unsent_vectored(t0, &mut pieces, wire.len());
    assert_eq!(dispatcher.poll_transmit(t0), None);
}

#[test]
fn the_max_bounds_the_pieces_and_the_rest_follows() {
    let t0 = Instant::now();
    let mut dispatcher = dispatcher(big(1024), t0);
    dispatcher.set_vectored_output(true);
    let batch = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n".repeat(4);
    assert_eq!(dispatcher.receive(t0, &batch), batch.len());
    dispatcher.poll(&mut Context::from_waker(Waker::noop()));
    let mut all = Vec::new();
    let mut pieces = Vec::new();
    let mut calls = 0;
    while dispatcher.poll_transmit_vectored(t0, &mut pieces, 3) > 0 {
        assert!(pieces.len() <= 3);
        let len: usize = pieces.iter().map(Bytes::len).sum();
        all.extend(pieces.iter().flat_map(|p| p.iter().copied()));
        dispatcher.unsent_vectored(t0, &mut pieces, len);
        calls += 1;
        assert!(calls < 10);
    }
    // Four heads and four bodies of their own.
    assert_eq!(calls, 3);
    let text = String::from_utf8(all).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4);
}
