//! One integration suite, run against every runtime compiled in: each case in [`cases`] is a
//! function of the runtime's `start`, and [`every_runtime!`] makes one `#[test]` per runtime
//! per case (`smol::pipelined_requests_are_answered_in_order`, `tokio::...`), so a failure
//! names both.
//!
//! Runtimes are cargo features of this crate; a workspace build enables all of them (weft-cli
//! does), while `cargo test -p weft-runtime` alone tests whichever were asked for — possibly
//! none.
//!
//! The clients are our own (a blocking socket and the core's client role) and `curl`. Servers
//! listen on 127.0.0.1:0; every wait is bounded, no sleep stands in for an assertion and no
//! assertion is about how long something took.
#![cfg_attr(
    not(any(feature = "smol", feature = "async-std", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

mod support;

#[macro_use]
mod every_runtime_macro;

/// The cases for one runtime, in a module named after it.
macro_rules! runtime_suite {
    ($feature:literal, $runtime:ident, { $($(#[$attr:meta])* $case:ident,)* }) => {
        #[cfg(feature = $feature)]
        mod $runtime {
            $(
                #[test]
                $(#[$attr])*
                fn $case() {
                    super::cases::$case(weft_runtime::$runtime::start::<super::support::TestApp>);
                }
            )*
        }
    };
}

every_runtime!({
    get_post_head_and_chunked_bodies_over_raw_tcp,
    pipelined_requests_are_answered_in_order,
    curl_get_and_post,
    curl_chunked_upload_and_chunked_download,
    curl_http10_gets_length_or_close_delimited_bodies,
    expect_continue_gets_100_before_the_body,
    curl_keep_alive_reuses_one_connection,
    echoes_100_mib_streamed_both_ways_on_one_connection,
    serves_1000_concurrent_connections,
    slowloris_is_cut_off_by_the_head_timeout,
    a_client_that_stops_reading_is_cut_off_by_the_send_timeout,
    a_finished_response_the_client_never_reads_is_cut_off_by_the_send_timeout,
    idle_keep_alive_connection_is_closed_after_its_timeout,
    connection_limit_holds_the_next_client_back_until_one_closes,
    graceful_shutdown_finishes_the_request_in_flight_and_closes_idle_connections,
    panicking_handler_answers_500_and_the_server_lives_on,
    panic_in_service_call_answers_500_and_the_connection_lives_on,
    tls_serves_curl_with_a_verified_certificate_and_alpn,
    curl_gets_the_configured_page_with_a_414,
    curl_http1_and_http2_requests_reach_the_application_in_one_shape,
    curl_tunnels_through_an_accepted_connect,
});

mod cases {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    use http::{Method, StatusCode};
    use socket2::{Domain, Protocol, Socket, Type};

    use crate::support::{
        Client, HELLO, Pattern, Start, TestServer, WAIT, assert_closed, curl, is_reset,
        open_file_limit, stream_body,
    };

    /// Cases heavy on CPU or descriptors (1000 connections, 100 MiB) run one at a time, so
    /// they neither starve the rest of the suite nor add up their descriptors.
    fn heavy() -> MutexGuard<'static, ()> {
        static HEAVY: Mutex<()> = Mutex::new(());
        HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The head of a `curl -i` response (interim `1xx` heads skipped), lowercased, and its body.
    fn split_response(out: &[u8]) -> (String, &[u8]) {
        let mut rest = out;
        loop {
            let end = rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or_else(|| {
                    panic!("no response head in {:?}", String::from_utf8_lossy(out))
                });
            let head = String::from_utf8_lossy(&rest[..end + 4]).to_ascii_lowercase();
            rest = &rest[end + 4..];
            if !head.starts_with("http/1.1 1") {
                return (head, rest);
            }
        }
    }

    pub(crate) fn get_post_head_and_chunked_bodies_over_raw_tcp(start: Start) {
        let server = TestServer::with_defaults(start);
        // All on one keep-alive connection.
        let mut client = server.client();

        let reply = client.get("/hello");
        reply.assert_ok(HELLO);
        assert_eq!(reply.version, http::Version::HTTP_11);
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.header("content-length"), Some("13"));
        assert!(reply.header("date").is_some(), "{reply:?}");
        assert!(reply.keep_alive);

        let reply = client.request(
            Method::POST,
            "/echo",
            &[("content-type", "application/x-test")],
            b"posted body",
        );
        reply.assert_ok("posted body");
        assert_eq!(reply.header("content-type"), Some("application/x-test"));

        let reply = client.request(Method::POST, "/echo", &[], b"");
        reply.assert_ok("");

        client.queue_chunked(Method::POST, "/echo", &[b"one ", b"two ", b"three"]);
        client.flush();
        client.read_response().assert_ok("one two three");

        let reply = client.get("/stream?n=5");
        reply.assert_ok(&stream_body(5));
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));

        let reply = client.request(Method::HEAD, "/hello", &[], b"");
        reply.assert_ok("");
        assert_eq!(reply.header("content-length"), Some("13"));

        assert_eq!(client.get("/missing").status, StatusCode::NOT_FOUND);
        client.get("/hello").assert_ok(HELLO);
        server.stop();
    }

    pub(crate) fn pipelined_requests_are_answered_in_order(start: Start) {
        let server = TestServer::with_defaults(start);
        let mut client = server.client();
        client.queue(Method::GET, "/hello", &[], b"");
        client.queue(
            Method::POST,
            "/echo",
            &[("content-type", "text/plain")],
            b"pipelined body",
        );
        client.queue(Method::GET, "/stream?n=3", &[], b"");
        // The three requests leave in one write.
        client.flush();
        client.read_response().assert_ok(HELLO);
        client.read_response().assert_ok("pipelined body");
        let third = client.read_response();
        third.assert_ok(&stream_body(3));
        assert_eq!(third.header("transfer-encoding"), Some("chunked"));
        server.stop();
    }

    pub(crate) fn curl_get_and_post(start: Start) {
        let server = TestServer::with_defaults(start);
        let out = curl(&["-i", &server.url("/hello")], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: text/plain\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 13\r\n"), "{head}");
        assert_eq!(body, HELLO.as_bytes());

        let out = curl(
            &[
                "-i",
                "-d",
                "posted by curl",
                "-H",
                "Content-Type: application/x-test",
                &server.url("/echo"),
            ],
            b"",
        );
        let (head, body) = split_response(&out.stdout);
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/x-test\r\n"),
            "{head}"
        );
        assert_eq!(body, b"posted by curl");
        server.stop();
    }

    pub(crate) fn curl_chunked_upload_and_chunked_download(start: Start) {
        let server = TestServer::with_defaults(start);
        let payload: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let out = curl(
            &[
                "-v",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                "@-",
                &server.url("/echo"),
            ],
            &payload,
        );
        assert!(
            out.stderr.contains("> Transfer-Encoding: chunked"),
            "curl sent a chunked body: {}",
            out.stderr
        );
        assert!(out.stdout == payload, "the chunked upload came back whole");

        let out = curl(&["-i", &server.url("/stream?n=50")], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{head}"
        );
        assert_eq!(body, stream_body(50).as_bytes());
        server.stop();
    }

    pub(crate) fn curl_http10_gets_length_or_close_delimited_bodies(start: Start) {
        let server = TestServer::with_defaults(start);
        let out = curl(&["-i", "--http1.0", &server.url("/hello")], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(head.contains(" 200 ok\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 13\r\n"), "{head}");
        assert_eq!(body, HELLO.as_bytes());

        // Unknown length: HTTP/1.0 has no chunked coding, so the body ends with the connection.
        let out = curl(&["-i", "--http1.0", &server.url("/stream?n=4")], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(body, stream_body(4).as_bytes());

        let out = curl(
            &["--http1.0", "-d", "one-oh body", &server.url("/echo")],
            b"",
        );
        assert_eq!(out.text(), "one-oh body");
        server.stop();
    }

    pub(crate) fn expect_continue_gets_100_before_the_body(start: Start) {
        let server = TestServer::with_defaults(start);
        // Our client waits for the 100 before it sends the body.
        let mut client = server.client();
        client.queue_head(Method::PUT, "/echo", &[("expect", "100-continue")], 8);
        client.flush();
        assert_eq!(client.read_informational(), StatusCode::CONTINUE);
        client.send_body(b"go ahead");
        client.read_response().assert_ok("go ahead");
        client.get("/hello").assert_ok(HELLO);

        // curl, forced on a small body.
        let out = curl(
            &[
                "-v",
                "-H",
                "Expect: 100-continue",
                "-d",
                "small",
                &server.url("/echo"),
            ],
            b"",
        );
        assert!(
            out.stderr.contains("< HTTP/1.1 100 Continue"),
            "{}",
            out.stderr
        );
        assert_eq!(out.text(), "small");

        // curl asks on its own for a large body.
        let payload: Vec<u8> = (0..2u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
        let out = curl(
            &["-v", "--data-binary", "@-", &server.url("/echo")],
            &payload,
        );
        assert!(
            out.stderr.contains("> Expect: 100-continue"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("< HTTP/1.1 100 Continue"),
            "{}",
            out.stderr
        );
        assert!(out.stdout == payload, "the 2 MiB body came back whole");
        server.stop();
    }

    pub(crate) fn curl_keep_alive_reuses_one_connection(start: Start) {
        let server = TestServer::with_defaults(start);
        let out = curl(
            &[
                "-w",
                "%{num_connects} %{http_code}\\n",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                &server.url("/hello"),
                &server.url("/stream?n=2"),
                &server.url("/hello"),
            ],
            b"",
        );
        // One new connection for the first transfer, none for the others.
        assert_eq!(out.text(), "1 200\n0 200\n0 200\n");
        server.stop();
    }

    pub(crate) fn echoes_100_mib_streamed_both_ways_on_one_connection(start: Start) {
        const LENGTH: u64 = 100 << 20;
        let _heavy = heavy();
        let server = TestServer::start(start, |config| {
            config.dispatch.limits.max_body_size = LENGTH;
        });
        let pattern = Arc::new(Pattern::new());
        let mut client = server.client();
        client.queue_head(Method::POST, "/echo", &[], LENGTH);
        client.flush();
        // The body is written by a thread of its own while this one reads the echo: neither
        // side could hold 100 MiB in the socket buffers.
        let mut socket = client.stream.try_clone().unwrap();
        let writer = {
            let pattern = Arc::clone(&pattern);
            thread::spawn(move || {
                let mut offset = 0;
                while offset < LENGTH {
                    let len = (LENGTH - offset).min(Pattern::MAX_PIECE as u64) as usize;
                    socket.write_all(pattern.piece(offset, len))?;
                    offset += len as u64;
                }
                std::io::Result::Ok(())
            })
        };
        let (mut received, mut first_mismatch) = (0u64, None);
        let reply = client.read_response_with(|data| {
            if first_mismatch.is_none() && !pattern.matches(received, data) {
                first_mismatch = Some(received);
            }
            received += data.len() as u64;
        });
        writer
            .join()
            .unwrap()
            .expect("the request body is written whole");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(received, LENGTH, "echoed length");
        assert_eq!(
            first_mismatch, None,
            "offset of the first wrong echoed byte"
        );
        server.client().get("/hello").assert_ok(HELLO);
        server.stop();
    }

    /// 1000, or fewer when this process may not open two descriptors per connection (both
    /// ends live here) with room to spare for the rest of the suite.
    fn concurrent_connections() -> usize {
        const WANTED: usize = 1000;
        const SPARE: usize = 512;
        match open_file_limit() {
            Some(limit) if limit < 2 * WANTED + SPARE => {
                let fewer = limit.saturating_sub(SPARE) / 2;
                eprintln!("open-file limit {limit}: testing {fewer} connections, not {WANTED}");
                fewer.max(1)
            }
            _ => WANTED,
        }
    }

    pub(crate) fn serves_1000_concurrent_connections(start: Start) {
        let _heavy = heavy();
        let count = concurrent_connections();
        let server = TestServer::with_defaults(start);
        let mut clients: Vec<Client> = (0..count).map(|_| server.client()).collect();
        for client in &mut clients {
            client.queue(Method::GET, "/hello", &[], b"");
            client.flush();
        }
        // All are open at once; each is answered.
        for client in &mut clients {
            client.read_response().assert_ok(HELLO);
        }
        drop(clients);
        server.stop();
    }

    /// A client with a 4 KiB receive buffer asks for 1 GiB and never reads: the server's
    /// output backs up into the core, which gives up after `send_timeout` (1 s here). The
    /// response body is dropped having produced a bounded amount, and the client, reading at
    /// last, finds the connection closed after a bounded amount.
    pub(crate) fn a_client_that_stops_reading_is_cut_off_by_the_send_timeout(start: Start) {
        const BOUND: u64 = 64 * 1024 * 1024;
        let server = TestServer::start(start, |config| {
            config.dispatch.limits.send_timeout = Duration::from_secs(1);
        });
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect_timeout(&server.addr.into(), WAIT).unwrap();
        let mut stream = TcpStream::from(socket);
        stream
            .write_all(b"GET /huge HTTP/1.1\r\nhost: example.com\r\n\r\n")
            .unwrap();
        assert!(
            server.app.wait_for_huge_bodies_dropped(1),
            "the server still produces the response {WAIT:?} after the client stopped \
             reading ({} bytes produced, send timeout 1 s)",
            server.app.huge_bytes_produced()
        );
        let produced = server.app.huge_bytes_produced();
        assert!(
            produced < BOUND,
            "{produced} bytes produced for a client that reads none"
        );
        // Reading now drains what the kernel still holds, then the end (EOF or reset).
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut read, mut buf) = (0u64, vec![0; 64 * 1024]);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => read += n as u64,
                Err(error) if is_reset(&error) => break,
                Err(error) => panic!("the connection was not closed ({read} bytes read): {error}"),
            }
            assert!(
                read < BOUND,
                "the server kept sending after its send timeout"
            );
        }
        assert!(
            read <= produced + 1024,
            "{read} bytes read, {produced} produced"
        );
    }

    /// The whole response is produced at once (it fits in the server's output buffer) but not
    /// in the kernel's buffers: its end waits in the server, the protocol finished, for a
    /// client that reads nothing. The send timeout must still end the connection, which frees
    /// its slot under `max_connections`.
    pub(crate) fn a_finished_response_the_client_never_reads_is_cut_off_by_the_send_timeout(
        start: Start,
    ) {
        const LEN: usize = 8 * 1024 * 1024;
        let server = TestServer::start(start, |config| {
            config.max_connections = 1;
            config.dispatch.limits.send_timeout = Duration::from_secs(1);
            // Only the send timeout may end the connection within the test's waits.
            config.dispatch.limits.keep_alive_timeout = Duration::from_secs(60);
            config.dispatch.limits.max_buffered_output = 4 * LEN;
        });
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect_timeout(&server.addr.into(), WAIT).unwrap();
        let mut stalled = TcpStream::from(socket);
        stalled
            .write_all(format!("GET /sized?bytes={LEN} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes())
            .unwrap();

        // Served only once the stalled connection gave its slot back.
        let mut next = server.client();
        next.queue(Method::GET, "/hello", &[], b"");
        next.flush();
        next.stream.set_read_timeout(Some(WAIT)).unwrap();
        next.read_response().assert_ok(HELLO);

        // Reading now drains what the kernel still holds, then the end (EOF or reset): not
        // the rest of the body, which the server dropped.
        stalled.set_read_timeout(Some(WAIT)).unwrap();
        let (mut received, mut buf) = (Vec::new(), vec![0; 64 * 1024]);
        loop {
            match stalled.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(error) if is_reset(&error) => break,
                Err(error) => panic!(
                    "the connection was not closed ({} bytes read): {error}",
                    received.len()
                ),
            }
        }
        if !received.is_empty() {
            let head = String::from_utf8_lossy(&received[..received.len().min(200)]);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(
                head.contains(&format!("content-length: {LEN}\r\n")),
                "{head}"
            );
        }
        assert!(
            received.len() < LEN,
            "the whole response got through ({} bytes): the test proves nothing here",
            received.len()
        );
        next.get("/hello").assert_ok(HELLO);
        server.stop();
    }

    pub(crate) fn slowloris_is_cut_off_by_the_head_timeout(start: Start) {
        let server = TestServer::start(start, |config| {
            config.dispatch.limits.head_timeout = Duration::from_secs(1);
        });
        let mut stream = TcpStream::connect_timeout(&server.addr, WAIT).unwrap();
        // Each read waits this long for an answer before the next byte goes out.
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let head = b"GET /hello HTTP/1.1\r\nhost: example.com\r\nx-slow: ";
        let deadline = Instant::now() + WAIT;
        let (mut sent, mut answer, mut buf) = (0, Vec::new(), [0; 1024]);
        loop {
            assert!(
                Instant::now() < deadline,
                "a client sending one head byte per 300 ms was not cut off within {WAIT:?} \
                 (head timeout 1 s, {sent} bytes sent)"
            );
            let byte = head.get(sent).copied().unwrap_or(b'a');
            match stream.write(&[byte]) {
                Ok(_) => sent += 1,
                Err(error) if is_reset(&error) => break,
                Err(error) => panic!("write: {error}"),
            }
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    stream.set_read_timeout(Some(WAIT)).unwrap();
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => answer.extend_from_slice(&buf[..n]),
                            Err(error) if is_reset(&error) => break,
                            Err(error) => {
                                panic!("the server did not close after answering: {error}")
                            }
                        }
                    }
                    break;
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) if is_reset(&error) => break,
                Err(error) => panic!("read: {error}"),
            }
        }
        // Cut off: with a 408, or (when the answer was lost to a reset) just closed.
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
            "{answer}"
        );
        // The server itself is fine.
        server.client().get("/hello").assert_ok(HELLO);
        server.stop();
    }

    pub(crate) fn idle_keep_alive_connection_is_closed_after_its_timeout(start: Start) {
        let server = TestServer::start(start, |config| {
            config.dispatch.limits.keep_alive_timeout = Duration::from_millis(500);
        });
        let mut client = server.client();
        let reply = client.get("/hello");
        reply.assert_ok(HELLO);
        assert!(reply.keep_alive);
        client.assert_closed_by_server();
        server.stop();
    }

    pub(crate) fn connection_limit_holds_the_next_client_back_until_one_closes(start: Start) {
        let server = TestServer::start(start, |config| {
            config.max_connections = 2;
            // Neither open connection may time out while the third waits.
            config.dispatch.limits.keep_alive_timeout = Duration::from_secs(60);
        });
        let mut first = server.client();
        first.get("/hello").assert_ok(HELLO);
        let mut second = server.client();
        second.get("/hello").assert_ok(HELLO);

        // The kernel completes the handshake (backlog), but the server does not accept.
        let mut third = server.client();
        third.queue(Method::GET, "/hello", &[], b"");
        third.flush();
        third
            .stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        match third.stream.peek(&mut [0]) {
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("a third connection was served past max_connections = 2: {other:?}"),
        }
        third.stream.set_read_timeout(Some(WAIT)).unwrap();

        drop(first);
        third.read_response().assert_ok(HELLO);
        second.get("/hello").assert_ok(HELLO);
        server.stop();
    }

    pub(crate) fn graceful_shutdown_finishes_the_request_in_flight_and_closes_idle_connections(
        start: Start,
    ) {
        let server = TestServer::with_defaults(start);
        let mut idle = server.client();
        let reply = idle.get("/hello");
        reply.assert_ok(HELLO);
        assert!(reply.keep_alive);

        let mut slow = server.client();
        slow.queue(Method::GET, "/slow?ms=1500", &[], b"");
        slow.flush();
        assert!(
            server.app.wait_for_slow_requests(1),
            "the slow request reached its handler"
        );
        server.begin_shutdown();

        idle.assert_closed_by_server();
        // Once shutdown began, a new connection is refused, or closed unanswered. A connect
        // racing the listener's close can also be reset by the kernel.
        match TcpStream::connect_timeout(&server.addr, WAIT) {
            Err(error) => assert!(
                matches!(
                    error.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ),
                "{error}"
            ),
            Ok(mut late) => {
                let _ = late.write_all(b"GET /hello HTTP/1.1\r\nhost: example.com\r\n\r\n");
                assert_closed(&mut late, WAIT);
            }
        }

        let reply = slow.read_response();
        reply.assert_ok("slept");
        assert_eq!(reply.header("connection"), Some("close"));
        slow.assert_closed_by_server();

        let addr = server.addr;
        server.stop();
        match TcpStream::connect_timeout(&addr, WAIT) {
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => {}
            other => panic!("the stopped server still takes connections: {other:?}"),
        }
    }

    pub(crate) fn panicking_handler_answers_500_and_the_server_lives_on(start: Start) {
        let server = TestServer::with_defaults(start);
        let mut client = server.client();
        let reply = client.get("/panic");
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
        assert!(reply.keep_alive, "the connection lives on: {reply:?}");
        client.get("/hello").assert_ok(HELLO);

        // More panics than worker threads, then other connections.
        let mut other = server.client();
        for _ in 0..4 {
            assert_eq!(
                other.get("/panic").status,
                StatusCode::INTERNAL_SERVER_ERROR
            );
        }
        other.get("/hello").assert_ok(HELLO);
        server.client().get("/hello").assert_ok(HELLO);
        client.get("/hello").assert_ok(HELLO);
        server.stop();
    }

    /// The `Service` contract: "A handler that panics is answered with `500`, and the
    /// connection and the server live on" — also when the panic comes from `call` itself rather
    /// than from the future it returns (a hand-written `Service` may do work before `async`).
    pub(crate) fn panic_in_service_call_answers_500_and_the_connection_lives_on(start: Start) {
        let server = TestServer::with_defaults(start);
        let mut client = server.client();
        let reply = client.get("/panic-in-call");
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
        client.get("/hello").assert_ok(HELLO);
        server.client().get("/hello").assert_ok(HELLO);
        server.stop();
    }

    /// TLS with a self-signed certificate made by rcgen: curl verifies it (`--cacert`), ALPN
    /// agrees on `http/1.1`, TLS 1.2 still works, and a body crosses intact.
    pub(crate) fn tls_serves_curl_with_a_verified_certificate_and_alpn(start: Start) {
        let certificate = super::support::TestCertificate::new();
        let files = certificate.files.clone();
        let server = TestServer::start(start, move |config| config.tls = Some(files));
        let port = server.addr.port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let cacert = certificate.files.cert.to_str().unwrap().to_owned();
        let url = |path: &str| format!("https://localhost:{port}{path}");
        let out = curl(
            &[
                "--cacert",
                &cacert,
                "--resolve",
                &resolve,
                &url("/connection"),
            ],
            b"",
        );
        // ALPN offers h2 first, and curl takes it.
        assert_eq!(out.text(), "tls=true alpn=h2");
        let out = curl(
            &[
                "--cacert",
                &cacert,
                "--resolve",
                &resolve,
                "--http1.1",
                &url("/connection"),
            ],
            b"",
        );
        assert_eq!(out.text(), "tls=true alpn=http/1.1");
        let out = curl(
            &[
                "--cacert",
                &cacert,
                "--resolve",
                &resolve,
                "--tls-max",
                "1.2",
                &url("/hello"),
            ],
            b"",
        );
        assert_eq!(out.text(), HELLO);
        let body = vec![b'x'; 1 << 20];
        let out = curl(
            &[
                "--cacert",
                &cacert,
                "--resolve",
                &resolve,
                "--data-binary",
                "@-",
                &url("/echo"),
            ],
            &body,
        );
        assert_eq!(out.stdout.len(), body.len());
        assert!(out.stdout == body, "the echoed body differs");
        server.stop();
    }

    pub(crate) fn curl_gets_the_configured_page_with_a_414(start: Start) {
        use weft_core::h1::{ErrorPage, ErrorPages};
        const PAGE: &str = "<!doctype html><title>Too long</title><p>That address is too long.";
        let server = TestServer::start(start, |config| {
            config.dispatch.limits.max_request_target_len = 64;
            config.dispatch.error_pages = ErrorPages::from_fn(|status| {
                (status == StatusCode::URI_TOO_LONG).then(|| {
                    ErrorPage::new(
                        status,
                        http::HeaderValue::from_static("text/html; charset=utf-8"),
                        PAGE,
                    )
                })
            });
        });
        let long = format!("/{}", "a".repeat(100));
        let out = curl(&["-i", &server.url(&long)], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(head.starts_with("http/1.1 414 uri too long\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(body, PAGE.as_bytes());
        // Within the limit, the application answers as usual.
        let out = curl(&["-i", &server.url("/hello")], b"");
        let (head, body) = split_response(&out.stdout);
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert_eq!(body, HELLO.as_bytes());
        server.stop();
    }

    pub(crate) fn curl_http1_and_http2_requests_reach_the_application_in_one_shape(start: Start) {
        let server = TestServer::with_defaults(start);
        let url = server.url("/target?x=1");
        let http1 = curl(&["--http1.1", &url], b"");
        let http2 = curl(&["--http2-prior-knowledge", &url], b"");
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let expected = format!("/target?x=1|{authority}|http|{authority}|Origin");
        assert_eq!(String::from_utf8_lossy(&http1.stdout), expected);
        assert_eq!(String::from_utf8_lossy(&http2.stdout), expected);
        // Checks the second one was HTTP/2 indeed.
        let out = curl(&["--http2-prior-knowledge", "-i", &url], b"");
        assert!(out.stdout.starts_with(b"HTTP/2 200"), "{:?}", out.stdout);
        server.stop();
    }

    pub(crate) fn curl_tunnels_through_an_accepted_connect(start: Start) {
        let server = TestServer::with_defaults(start);
        let proxy = server.url("");
        // `-p -x`: curl asks our server to CONNECT to the origin, then speaks HTTP through
        // the tunnel; the test application plays that origin.
        let out = curl(
            &["-i", "-p", "-x", &proxy, "http://origin.test:8080/page"],
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(
            text.starts_with("http/1.1 200 ok\r\n"),
            "the CONNECT is accepted: {text}"
        );
        assert!(
            text.ends_with("\r\n\r\ntunneled to origin.test:8080"),
            "{text}"
        );
        // The proxy's 200 and the origin's 200 both came back.
        assert_eq!(text.matches("http/1.1 200 ok\r\n").count(), 2, "{text}");
        server.stop();
    }
}
