//! WebSocket on every runtime compiled in, against real clients: the Python `websockets`
//! client (`runtimes/tests/ws/echo.py`, with and without permessage-deflate, in cleartext and
//! over TLS), WebSocket over HTTP/2 by extended CONNECT (`h2_echo.py`: h2c with prior
//! knowledge, and TLS with ALPN `h2`), rooms and broadcast with 50 clients and a slow one
//! (`rooms.py`, under both slow-consumer policies), refused and malformed handshakes
//! (`refuse.py`), and our own raw client for what a library never sends (an unmasked frame,
//! an abrupt TCP close, unanswered heartbeat pings). The application is
//! [`support_ws::WsApp`].
//!
//! Each case in [`cases`] is a function of the runtime's `start`; [`every_runtime!`] makes one
//! `#[test]` per runtime per case (`mio::python_echo_with_deflate`), so a failure names both.
//! The Python clients need a python3 with `websockets` and `h2` (python3-websockets,
//! python3-h2); a case without one prints a `SKIPPED` line naming it and returns.
//!
//! Servers listen on 127.0.0.1:0; every wait is bounded, and no assertion is about time.
#![cfg_attr(
    not(any(
        feature = "smol",
        feature = "async-std",
        feature = "tokio",
        feature = "threadpool",
        feature = "mio",
        feature = "poll"
    )),
    allow(dead_code, unused_imports)
)]

mod support_ws;

#[macro_use]
mod every_runtime_macro;

/// The cases for one runtime, in a module named after it.
macro_rules! runtime_suite {
    ($feature:literal, $runtime:ident, { $($case:ident,)* }) => {
        #[cfg(feature = $feature)]
        mod $runtime {
            $(
                #[test]
                fn $case() {
                    super::cases::$case(weft_runtime::$runtime::start::<super::support_ws::WsApp>);
                }
            )*
        }
    };
}

every_runtime!({
    python_echo_with_deflate,
    python_echo_without_compression,
    python_echo_over_tls_with_deflate,
    python_echo_over_tls_without_compression,
    python_h2c_echo,
    python_h2c_echo_with_deflate,
    python_h2_over_tls_echo,
    python_rooms_disconnect_a_slow_consumer_with_1013,
    python_rooms_drop_messages_for_a_slow_consumer,
    python_refused_and_bad_handshakes,
    python_refused_and_bad_handshakes_over_tls,
    close_handshake_from_the_client_ends_the_handler,
    unmasked_client_frame_gets_close_1002,
    abrupt_tcp_close_ends_the_handler,
    abrupt_tcp_close_inside_a_frame_ends_the_handler,
    heartbeat_closes_a_silent_peer_with_1011,
    heartbeat_keeps_a_peer_that_answers,
});

mod cases {
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use crate::support_ws::raw::{CLOSE, PING, PONG, RawSocket, Received, TEXT};
    use crate::support_ws::{Ended, Start, TestCertificate, WAIT, WsServer, python};

    /// The clients in the fanout case of `rooms.py`.
    const ROOM_CLIENTS: &str = "50";

    /// The Python clients run one at a time: they are heavy on CPU (1 MiB messages, 50
    /// clients), and the machine is shared with the rest of the suite.
    fn heavy() -> MutexGuard<'static, ()> {
        static HEAVY: Mutex<()> = Mutex::new(());
        HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `script` against a fresh server (TLS when `tls`, with `--cafile` added), with
    /// `args(server)` as its arguments.
    fn python(
        start: Start,
        case: &str,
        script: &str,
        tls: bool,
        args: impl FnOnce(&WsServer) -> Vec<String>,
    ) {
        if !python::available(case) {
            return;
        }
        let _heavy = heavy();
        let certificate = tls.then(TestCertificate::new);
        let server = WsServer::start(start, certificate.as_ref().map(|c| c.files.clone()));
        let mut args = args(&server);
        if let Some(certificate) = &certificate {
            args.extend(["--cafile".to_owned(), certificate.cert_path().to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python::run_script(script, &args);
        server.stop();
    }

    /// An echo client script (`echo.py` over HTTP/1.1, `h2_echo.py` over HTTP/2) against
    /// `/ws`, with permessage-deflate offered or not.
    fn echo_script(start: Start, case: &str, script: &str, tls: bool, compression: &str) {
        python(start, case, script, tls, |server| {
            vec![
                server.url("/ws"),
                "--compression".to_owned(),
                compression.to_owned(),
            ]
        });
    }

    fn echo_py(start: Start, case: &str, tls: bool, compression: &str) {
        echo_script(start, case, "echo.py", tls, compression);
    }

    pub(crate) fn python_echo_with_deflate(start: Start) {
        echo_py(start, "python_echo_with_deflate", false, "deflate");
    }

    pub(crate) fn python_echo_without_compression(start: Start) {
        echo_py(start, "python_echo_without_compression", false, "none");
    }

    pub(crate) fn python_echo_over_tls_with_deflate(start: Start) {
        echo_py(start, "python_echo_over_tls_with_deflate", true, "deflate");
    }

    pub(crate) fn python_echo_over_tls_without_compression(start: Start) {
        echo_py(
            start,
            "python_echo_over_tls_without_compression",
            true,
            "none",
        );
    }

    fn h2_echo_py(start: Start, case: &str, tls: bool, compression: &str) {
        echo_script(start, case, "h2_echo.py", tls, compression);
    }

    pub(crate) fn python_h2c_echo(start: Start) {
        h2_echo_py(start, "python_h2c_echo", false, "none");
    }

    pub(crate) fn python_h2c_echo_with_deflate(start: Start) {
        h2_echo_py(start, "python_h2c_echo_with_deflate", false, "deflate");
    }

    pub(crate) fn python_h2_over_tls_echo(start: Start) {
        h2_echo_py(start, "python_h2_over_tls_echo", true, "none");
    }

    pub(crate) fn python_rooms_disconnect_a_slow_consumer_with_1013(start: Start) {
        let case = "python_rooms_disconnect_a_slow_consumer_with_1013";
        python(start, case, "rooms.py", false, |server| {
            vec![server.url("/room"), ROOM_CLIENTS.to_owned()]
        });
    }

    pub(crate) fn python_rooms_drop_messages_for_a_slow_consumer(start: Start) {
        let case = "python_rooms_drop_messages_for_a_slow_consumer";
        python(start, case, "rooms.py", false, |server| {
            vec![
                server.url("/room-drop"),
                ROOM_CLIENTS.to_owned(),
                "--policy".to_owned(),
                "drop".to_owned(),
            ]
        });
    }

    pub(crate) fn python_refused_and_bad_handshakes(start: Start) {
        python(
            start,
            "python_refused_and_bad_handshakes",
            "refuse.py",
            false,
            |server| vec![server.url("")],
        );
    }

    pub(crate) fn python_refused_and_bad_handshakes_over_tls(start: Start) {
        python(
            start,
            "python_refused_and_bad_handshakes_over_tls",
            "refuse.py",
            true,
            |server| vec![server.url("")],
        );
    }

    /// Waits for the one echo handler of `server` to end; how it ended.
    fn handler_ended(server: &WsServer) -> Ended {
        let ended = server.app.ended().wait_for(1, WAIT);
        assert_eq!(
            ended.len(),
            1,
            "expected the handler to end within {WAIT:?} (its recv returning None): {ended:?}"
        );
        ended[0].clone()
    }

    /// Sends a text and checks its echo: an unmasked, final text frame with the same payload
    /// (pings before it are answered).
    fn echo_once(socket: &mut RawSocket, text: &[u8]) {
        socket.send(TEXT, text);
        let mut frame = socket.expect_frame("the echo");
        while frame.opcode == PING {
            socket.send(PONG, &frame.payload);
            frame = socket.expect_frame("the echo");
        }
        assert_eq!(
            (frame.opcode, frame.fin, frame.masked, frame.rsv),
            (TEXT, true, false, 0),
            "the echo's frame: {frame:?}"
        );
        assert_eq!(frame.payload, text, "the echo's payload");
    }

    pub(crate) fn close_handshake_from_the_client_ends_the_handler(start: Start) {
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/ws");
        echo_once(&mut socket, b"hello");
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        socket.send(CLOSE, &close);
        let answer = socket.expect_close(WAIT);
        assert_eq!(answer.close_code(), Some(1000), "the answer: {answer:?}");
        assert!(!answer.masked, "a server frame is never masked: {answer:?}");
        socket.expect_eof();
        let ended = handler_ended(&server);
        assert!(ended.recv_returned_none, "{ended:?}");
        assert_eq!(ended.messages, 1, "{ended:?}");
        assert_eq!(ended.close, Some((1000, "bye".to_owned())), "{ended:?}");
        server.stop();
    }

    pub(crate) fn unmasked_client_frame_gets_close_1002(start: Start) {
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/ws");
        echo_once(&mut socket, b"masked first");
        // RFC 6455 §5.1: a server MUST close the connection on an unmasked client frame.
        socket.send_frame(true, TEXT, b"not masked", None);
        let close = socket.expect_close(WAIT);
        assert_eq!(close.close_code(), Some(1002), "the Close: {close:?}");
        // Answer the Close, then the server must close the TCP connection.
        socket.send(CLOSE, &1002u16.to_be_bytes());
        socket.expect_eof();
        let ended = handler_ended(&server);
        assert!(ended.recv_returned_none, "{ended:?}");
        assert_eq!(
            ended.messages, 1,
            "the unmasked frame is no message: {ended:?}"
        );
        assert_eq!(
            ended.close.as_ref().map(|(code, _)| *code),
            Some(1002),
            "{ended:?}"
        );
        server.stop();
    }

    pub(crate) fn abrupt_tcp_close_ends_the_handler(start: Start) {
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/ws");
        echo_once(&mut socket, b"then silence");
        socket.drop_abruptly();
        let ended = handler_ended(&server);
        assert!(ended.recv_returned_none, "{ended:?}");
        assert_eq!(ended.messages, 1, "{ended:?}");
        assert_eq!(
            ended.close.as_ref().map(|(code, _)| *code),
            Some(1006),
            "a peer gone without a Close is 1006: {ended:?}"
        );
        server.stop();
    }

    pub(crate) fn abrupt_tcp_close_inside_a_frame_ends_the_handler(start: Start) {
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/ws");
        echo_once(&mut socket, b"one");
        // Half of a 1000-byte masked frame, then the connection goes.
        let frame = crate::support_ws::raw::encode(true, TEXT, &[b'x'; 1000], Some([1, 2, 3, 4]));
        std::io::Write::write_all(&mut socket.stream, &frame[..500]).expect("write half a frame");
        socket.drop_abruptly();
        let ended = handler_ended(&server);
        assert!(ended.recv_returned_none, "{ended:?}");
        assert_eq!(ended.messages, 1, "{ended:?}");
        assert_eq!(
            ended.close.as_ref().map(|(code, _)| *code),
            Some(1006),
            "{ended:?}"
        );
        server.stop();
    }

    pub(crate) fn heartbeat_closes_a_silent_peer_with_1011(start: Start) {
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/heartbeat");
        let ping = socket.expect_frame("the heartbeat's ping");
        assert_eq!(ping.opcode, PING, "expected a ping first: {ping:?}");
        // No pong: the server gives up on us.
        let close = socket.expect_close(WAIT);
        assert_eq!(close.close_code(), Some(1011), "the Close: {close:?}");
        socket.send(CLOSE, &1011u16.to_be_bytes());
        socket.expect_eof();
        let ended = handler_ended(&server);
        assert!(ended.recv_returned_none, "{ended:?}");
        assert_eq!(
            ended.close.as_ref().map(|(code, _)| *code),
            Some(1011),
            "{ended:?}"
        );
        server.stop();
    }

    pub(crate) fn heartbeat_keeps_a_peer_that_answers(start: Start) {
        /// Pings answered before the test is satisfied: several heartbeat timeouts' worth.
        const PINGS: usize = 4;
        let server = WsServer::start(start, None);
        let mut socket = RawSocket::connect(server.addr, "/heartbeat");
        for answered in 0..PINGS {
            match socket.read() {
                Received::Frame(frame) if frame.opcode == PING => {
                    socket.send(PONG, &frame.payload);
                }
                other => panic!("after {answered} pongs, expected a ping, got {other:?}"),
            }
        }
        echo_once(&mut socket, b"still open");
        socket.send(CLOSE, &1000u16.to_be_bytes());
        let close = socket.expect_close(WAIT);
        assert_eq!(close.close_code(), Some(1000), "{close:?}");
        socket.expect_eof();
        let ended = handler_ended(&server);
        assert_eq!(
            ended.close.as_ref().map(|(code, _)| *code),
            Some(1000),
            "{ended:?}"
        );
        server.stop();
    }
}
