//! The HTTP/2 glue against an in-memory client made of the core's frame codec and HPACK.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use weft_core::h2::{ErrorCode, Frame, PREFACE, Settings};
use weft_core::hpack::{Decoder, Encoder, HeaderField};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, Service};
use weft_service::upgrade::OnUpgrade;

use super::super::{DispatchConfig, Dispatcher};

/// What the client saw from the server, field blocks decoded.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Headers {
        stream: u32,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    Data {
        stream: u32,
        data: Bytes,
        end_stream: bool,
    },
    Reset {
        stream: u32,
        code: ErrorCode,
    },
    GoAway {
        code: ErrorCode,
    },
    WindowUpdate {
        stream: u32,
    },
    Other,
}

/// The client's half of an HTTP/2 connection.
struct Client {
    encoder: Encoder,
    decoder: Decoder,
    /// Server output not yet decoded into whole frames.
    input: BytesMut,
}

impl Client {
    fn new() -> Self {
        Client {
            encoder: Encoder::new(4096),
            decoder: Decoder::new(4096, 1 << 20),
            input: BytesMut::new(),
        }
    }

    /// The preface, `settings`, and the acknowledgement of the server's SETTINGS.
    fn start(settings: Settings) -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend(frame(Frame::Settings {
            ack: false,
            settings,
        }));
        out.extend(frame(Frame::Settings {
            ack: true,
            settings: Settings::new(),
        }));
        out
    }

    fn request(&mut self, stream: u32, method: &str, path: &str, end_stream: bool) -> Vec<u8> {
        self.request_with(stream, method, path, &[], end_stream)
    }

    fn request_with(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&'static str, &'static str)],
        end_stream: bool,
    ) -> Vec<u8> {
        let mut fields = vec![
            HeaderField::new(":method", method.to_owned()),
            HeaderField::new(":scheme", "http"),
            HeaderField::new(":authority", "a"),
            HeaderField::new(":path", path.to_owned()),
        ];
        fields.extend(
            extra
                .iter()
                .map(|&(name, value)| HeaderField::new(name, value)),
        );
        let mut block = BytesMut::new();
        self.encoder.encode(&fields, &mut block);
        frame(Frame::Headers {
            stream,
            end_stream,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment: block.freeze(),
        })
    }

    /// A plain CONNECT to `authority` (RFC 9113 §8.5: `:method` and `:authority` only).
    fn connect(&mut self, stream: u32, authority: &str) -> Vec<u8> {
        let fields = vec![
            HeaderField::new(":method", "CONNECT"),
            HeaderField::new(":authority", authority.to_owned()),
        ];
        let mut block = BytesMut::new();
        self.encoder.encode(&fields, &mut block);
        frame(Frame::Headers {
            stream,
            end_stream: false,
            end_headers: true,
            priority: None,
            pad_len: None,
            fragment: block.freeze(),
        })
    }

    fn read(&mut self, bytes: &[u8]) -> Vec<Seen> {
        self.input.extend_from_slice(bytes);
        let mut seen = Vec::new();
        while let Some(frame) = weft_core::h2::decode(&mut self.input, 1 << 24).unwrap() {
            seen.push(match frame {
                Frame::Headers {
                    stream,
                    end_stream,
                    fragment,
                    ..
                } => Seen::Headers {
                    stream,
                    fields: self
                        .decoder
                        .decode(&fragment)
                        .unwrap()
                        .into_iter()
                        .map(|f| {
                            (
                                String::from_utf8(f.name.to_vec()).unwrap(),
                                String::from_utf8(f.value.to_vec()).unwrap(),
                            )
                        })
                        .collect(),
                    end_stream,
                },
                Frame::Data {
                    stream,
                    end_stream,
                    data,
                    ..
                } => Seen::Data {
                    stream,
                    data,
                    end_stream,
                },
                Frame::RstStream { stream, code } => Seen::Reset { stream, code },
                Frame::GoAway { code, .. } => Seen::GoAway { code },
                Frame::WindowUpdate { stream, .. } => Seen::WindowUpdate { stream },
                _ => Seen::Other,
            });
        }
        seen
    }
}

fn frame(frame: Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    weft_core::h2::encode(&frame, &mut out).unwrap();
    out.to_vec()
}

fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    frame(Frame::Data {
        stream,
        end_stream,
        pad_len: None,
        data: Bytes::copy_from_slice(bytes),
    })
}

fn server<S: Service>(service: S, alpn: Option<&[u8]>) -> Dispatcher {
    let mut info = ConnectionInfo::default();
    info.alpn = alpn.map(<[u8]>::to_vec);
    Dispatcher::new(
        Arc::new(service),
        DispatchConfig::default(),
        info,
        Instant::now(),
    )
}

/// Gives `input` to the dispatcher as a driver would, polls, and returns what it wrote.
fn exchange(dispatcher: &mut Dispatcher, input: &[u8]) -> Vec<u8> {
    let now = Instant::now();
    let mut cx = Context::from_waker(Waker::noop());
    let mut unread = input;
    let mut output = Vec::new();
    for _ in 0..64 {
        dispatcher.poll(&mut cx);
        while let Some(bytes) = dispatcher.poll_transmit(now) {
            output.extend_from_slice(&bytes);
        }
        if !unread.is_empty() && dispatcher.wants_read() {
            let room = dispatcher.receive_capacity().min(unread.len());
            let taken = dispatcher.receive(now, &unread[..room]);
            unread = &unread[taken..];
        }
    }
    assert!(unread.is_empty(), "the connection stopped reading");
    output
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The response on `stream`: its head fields, its body, and whether it ended.
fn response_on(seen: &[Seen], stream: u32) -> (Vec<(String, String)>, Vec<u8>, bool) {
    let mut head = Vec::new();
    let mut body = Vec::new();
    let mut ended = false;
    for item in seen {
        match item {
            Seen::Headers {
                stream: s,
                fields,
                end_stream,
            } if *s == stream => {
                head = fields.clone();
                ended |= end_stream;
            }
            Seen::Data {
                stream: s,
                data,
                end_stream,
            } if *s == stream => {
                body.extend_from_slice(data);
                ended |= end_stream;
            }
            _ => {}
        }
    }
    (head, body, ended)
}

fn path_service(request: Request<Body>) -> std::future::Ready<Response<Body>> {
    std::future::ready(Response::new(Body::from(format!(
        "{} {:?}",
        request.uri().path(),
        request.version()
    ))))
}

/// Streams the request body back.
fn echo_service(request: Request<Body>) -> std::future::Ready<Response<Body>> {
    std::future::ready(Response::new(request.into_body()))
}

#[test]
fn prior_knowledge_is_served_as_http2() {
    let mut dispatcher = server(path_service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/one", true));
    input.extend(client.request(3, "GET", "/three", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, ":status"), Some("200"), "{seen:?}");
    assert_eq!(field(&head, "content-length"), Some("13"));
    assert!(field(&head, "date").is_some(), "a Date is added");
    assert_eq!(body, b"/one HTTP/2.0");
    assert!(ended);
    assert_eq!(response_on(&seen, 3).1, b"/three HTTP/2.0");
}

#[test]
fn alpn_h2_is_served_from_the_first_byte() {
    let mut dispatcher = server(path_service, Some(b"h2"));
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/tls", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(response_on(&seen, 1).1, b"/tls HTTP/2.0");
}

#[test]
fn a_head_request_gets_the_length_without_the_body() {
    let mut dispatcher = server(path_service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "HEAD", "/h", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, "content-length"), Some("11"), "{seen:?}");
    assert!(body.is_empty());
    assert!(ended);
}

#[test]
fn a_request_body_streams_through_the_handler_and_back() {
    let mut dispatcher = server(echo_service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "POST", "/echo", false));
    input.extend(data(1, b"hello ", false));
    input.extend(data(1, b"world", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, ":status"), Some("200"), "{seen:?}");
    assert_eq!(body, b"hello world");
    assert!(ended);
}

#[test]
fn a_panicking_handler_is_answered_500_and_other_streams_go_on() {
    let service = |request: Request<Body>| {
        if request.uri().path() == "/panic" {
            panic!("deliberate panic in a handler");
        }
        std::future::ready(Response::new(Body::from("fine")))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/panic", true));
    input.extend(client.request(3, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(field(&response_on(&seen, 1).0, ":status"), Some("500"));
    assert_eq!(response_on(&seen, 3).1, b"fine");
}

/// A handler that never answers, and tells when it was dropped.
struct Forever(Arc<AtomicBool>);

impl Future for Forever {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Response<Body>> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_reset_stream_drops_its_handler() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&dropped);
    let service = move |_request: Request<Body>| Forever(Arc::clone(&flag));
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/slow", true));
    exchange(&mut dispatcher, &input);
    assert!(!dropped.load(Ordering::SeqCst), "the handler runs");
    let reset = frame(Frame::RstStream {
        stream: 1,
        code: ErrorCode::Cancel,
    });
    exchange(&mut dispatcher, &reset);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the work stops with the stream"
    );
}

#[test]
fn a_response_waits_for_the_clients_window() {
    let service =
        |_request: Request<Body>| std::future::ready(Response::new(Body::from(vec![b'x'; 1000])));
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut settings = Settings::new();
    settings.push(Settings::INITIAL_WINDOW_SIZE, 100);
    let mut input = Client::start(settings);
    input.extend(client.request(1, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (_, body, ended) = response_on(&seen, 1);
    assert_eq!(body.len(), 100, "no more than the window");
    assert!(!ended);
    let more = frame(Frame::WindowUpdate {
        stream: 1,
        increment: 5000,
    });
    let seen = client.read(&exchange(&mut dispatcher, &more));
    let (_, rest, ended) = response_on(&seen, 1);
    assert_eq!(rest.len(), 900, "the rest once the window opened");
    assert!(ended);
}

#[test]
fn request_body_window_reopens_only_as_the_application_reads() {
    let slot: Arc<Mutex<Option<Body>>> = Arc::default();
    let keep = Arc::clone(&slot);
    let service = move |request: Request<Body>| {
        *keep.lock().unwrap() = Some(request.into_body());
        std::future::pending::<Response<Body>>()
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "POST", "/upload", false));
    let chunk = vec![b'u'; 16_384];
    for _ in 0..12 {
        input.extend(data(1, &chunk, false));
    }
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert!(
        !seen.contains(&Seen::WindowUpdate { stream: 1 }),
        "nothing read, no window given back: {seen:?}"
    );
    let mut body = slot
        .lock()
        .unwrap()
        .take()
        .expect("the handler got the body");
    let mut cx = Context::from_waker(Waker::noop());
    let mut read = 0;
    while let Poll::Ready(Some(Ok(frame))) =
        http_body::Body::poll_frame(Pin::new(&mut body), &mut cx)
    {
        read += frame.into_data().map_or(0, |d| d.len());
    }
    assert_eq!(read, 12 * 16_384);
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    assert!(
        seen.contains(&Seen::WindowUpdate { stream: 1 }),
        "the window reopens once read: {seen:?}"
    );
}

#[test]
fn shutdown_sends_goaway_and_finishes_the_open_stream() {
    let (sender, response_body) = Body::channel(64);
    let parked = Arc::new(Mutex::new(Some(response_body)));
    let service = move |_request: Request<Body>| {
        let body = parked.lock().unwrap().take().unwrap_or_default();
        std::future::ready(Response::new(body))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/long", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(field(&response_on(&seen, 1).0, ":status"), Some("200"));
    dispatcher.shutdown();
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::GoAway { code } if *code == ErrorCode::NoError)),
        "{seen:?}"
    );
    assert!(!dispatcher.is_closed(), "the open stream finishes first");
    let mut sender = sender;
    sender.send_data(Bytes::from_static(b"last words"));
    sender.finish();
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    let (_, body, ended) = response_on(&seen, 1);
    assert_eq!(body, b"last words");
    assert!(ended);
}

#[test]
fn an_h2c_upgrade_answers_101_and_serves_the_request_on_stream_1() {
    let mut dispatcher = server(path_service, None);
    let upgrade = b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                    Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    let mut input = upgrade.to_vec();
    input.extend(Client::start(Settings::new()));
    let output = exchange(&mut dispatcher, &input);
    let head_end = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP/1.1 head first")
        + 4;
    let head = String::from_utf8_lossy(&output[..head_end]).to_lowercase();
    assert!(
        head.starts_with("http/1.1 101 switching protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: h2c"), "{head}");
    let mut client = Client::new();
    let seen = client.read(&output[head_end..]);
    let (fields, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&fields, ":status"), Some("200"), "{seen:?}");
    assert_eq!(body, b"/up HTTP/2.0");
    assert!(ended);
}

#[test]
fn a_stream_woken_from_elsewhere_is_driven_on_the_next_poll() {
    let (sender, response_body) = Body::channel(64);
    let parked = Arc::new(Mutex::new(Some(response_body)));
    let service = move |_request: Request<Body>| {
        let body = parked.lock().unwrap().take().unwrap_or_default();
        std::future::ready(Response::new(body))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/", true));
    client.read(&exchange(&mut dispatcher, &input));
    let mut sender = sender;
    sender.send_data(Bytes::from_static(b"later"));
    sender.finish();
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    assert_eq!(response_on(&seen, 1).1, b"later");
}

/// A response body that panics when polled.
struct PanickingBody;

impl http_body::Body for PanickingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        panic!("deliberate panic in a response body");
    }
}

#[test]
fn a_failing_response_body_resets_its_stream_only() {
    let service = |request: Request<Body>| {
        let body = if request.uri().path() == "/broken" {
            Body::new(PanickingBody)
        } else {
            Body::from("fine")
        };
        std::future::ready(Response::new(body))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/broken", true));
    input.extend(client.request(3, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert!(
        seen.contains(&Seen::Reset {
            stream: 1,
            code: ErrorCode::InternalError
        }),
        "{seen:?}"
    );
    assert!(
        !response_on(&seen, 1).2,
        "a cut response never looks complete"
    );
    assert_eq!(response_on(&seen, 3).1, b"fine");
    assert!(!dispatcher.is_closed());
}

#[test]
fn response_trailers_end_the_stream() {
    let service = |_request: Request<Body>| {
        let (mut sender, body) = Body::channel(64);
        sender.send_data(Bytes::from_static(b"data"));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        sender.send_trailers(trailers);
        sender.finish();
        std::future::ready(Response::new(body))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let trailer_block = seen.iter().rev().find_map(|s| match s {
        Seen::Headers {
            stream: 1,
            fields,
            end_stream: true,
        } => Some(fields.clone()),
        _ => None,
    });
    let trailer_block = trailer_block.expect("trailers end the stream");
    assert_eq!(field(&trailer_block, "x-checksum"), Some("42"));
    assert_eq!(response_on(&seen, 1).1, b"data");
}

#[test]
fn an_h2c_upgrade_with_a_body_is_served_over_http1() {
    let mut dispatcher = server(path_service, None);
    let request = b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                    Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\ncontent-length: 4\r\n\r\nbody";
    let output = String::from_utf8(exchange(&mut dispatcher, request)).unwrap();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
    assert!(output.ends_with("\r\n\r\n/up HTTP/1.1"), "{output}");
}

#[test]
fn expect_100_continue_is_answered_once_the_application_reads() {
    let mut dispatcher = server(echo_service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "POST", "/", &[("expect", "100-continue")], false));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let statuses: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Headers { fields, .. } => field(fields, ":status").map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, ["100", "200"], "{seen:?}");
    let seen = client.read(&exchange(
        &mut dispatcher,
        &data(1, b"sent after 100", true),
    ));
    assert_eq!(response_on(&seen, 1).1, b"sent after 100");
}

#[test]
fn a_body_shorter_than_its_content_length_resets_the_stream() {
    let service = |_request: Request<Body>| {
        let mut response = Response::new(Body::new(ThreeBytes(false)));
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, "10".parse().unwrap());
        std::future::ready(response)
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert!(
        seen.contains(&Seen::Reset {
            stream: 1,
            code: ErrorCode::InternalError
        }),
        "{seen:?}"
    );
    assert!(!response_on(&seen, 1).2, "never complete");
}

/// Three bytes, with no length known up front.
struct ThreeBytes(bool);

impl http_body::Body for ThreeBytes {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0 {
            return Poll::Ready(None);
        }
        self.0 = true;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"abc")))))
    }
}

#[test]
fn a_1xx_final_answer_becomes_500() {
    let service = |_request: Request<Body>| {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        std::future::ready(response)
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, _, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, ":status"), Some("500"), "{seen:?}");
    assert!(ended);
}

/// The frames a WebSocket client role writes for `send`.
fn ws_client_bytes(send: impl FnOnce(&mut weft_core::ws::Connection)) -> Vec<u8> {
    let now = Instant::now();
    let mut client = weft_core::ws::Connection::new(
        weft_core::ws::Role::Client { mask_seed: [3; 16] },
        weft_core::WsLimits::default(),
        now,
    );
    send(&mut client);
    let mut out = Vec::new();
    while let Some(bytes) = client.poll_transmit(now) {
        out.extend_from_slice(&bytes);
    }
    out
}

/// Echoes WebSocket messages; counts sockets whose `recv` ended.
fn ws_echo_service(
    ended: Arc<AtomicBool>,
) -> impl Fn(Request<Body>) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send>>
+ Send
+ Sync
+ 'static {
    move |request: Request<Body>| {
        let ended = Arc::clone(&ended);
        Box::pin(async move {
            let upgrade = match weft_service::websocket::WebSocketUpgrade::from_request(&request) {
                Ok(upgrade) => upgrade,
                Err(rejection) => return rejection.into_response(),
            };
            upgrade.on_upgrade(move |mut socket| async move {
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
                ended.store(true, Ordering::SeqCst);
            })
        })
    }
}

const WS_CONNECT: &[(&str, &str)] = &[(":protocol", "websocket"), ("sec-websocket-version", "13")];

#[test]
fn an_extended_connect_carries_a_websocket_until_its_close_handshake() {
    let ended = Arc::new(AtomicBool::new(false));
    let mut dispatcher = server(ws_echo_service(Arc::clone(&ended)), None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "CONNECT", "/ws", WS_CONNECT, false));
    input.extend(data(
        1,
        &ws_client_bytes(|ws| ws.send_text("over h2").unwrap()),
        false,
    ));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, body, ended_stream) = response_on(&seen, 1);
    assert_eq!(field(&head, ":status"), Some("200"), "{seen:?}");
    assert!(
        field(&head, "sec-websocket-accept").is_none(),
        "no key over HTTP/2"
    );
    assert_eq!(body, b"\x81\x07over h2", "the echo, unmasked");
    assert!(!ended_stream);
    let close = ws_client_bytes(|ws| ws.close(weft_core::ws::CloseCode::NORMAL, "").unwrap());
    let seen = client.read(&exchange(&mut dispatcher, &data(1, &close, false)));
    let (_, body, ended_stream) = response_on(&seen, 1);
    assert_eq!(body, b"\x88\x02\x03\xe8", "our Close answers theirs");
    assert!(
        ended_stream,
        "END_STREAM is the socket's TCP close (RFC 8441 §5)"
    );
    assert!(ended.load(Ordering::SeqCst), "the handler's recv ended");
}

#[test]
fn a_reset_websocket_stream_ends_the_handlers_receive() {
    let ended = Arc::new(AtomicBool::new(false));
    let mut dispatcher = server(ws_echo_service(Arc::clone(&ended)), None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "CONNECT", "/ws", WS_CONNECT, false));
    client.read(&exchange(&mut dispatcher, &input));
    assert!(!ended.load(Ordering::SeqCst));
    let reset = frame(Frame::RstStream {
        stream: 1,
        code: ErrorCode::Cancel,
    });
    exchange(&mut dispatcher, &reset);
    // The handler was dropped with the stream, its socket finished: nothing is left running.
    assert!(!dispatcher.is_closed(), "the connection lives on");
    let input = client.request_with(3, "CONNECT", "/ws", WS_CONNECT, false);
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(
        field(&response_on(&seen, 3).0, ":status"),
        Some("200"),
        "{seen:?}"
    );
}

#[test]
fn a_plain_connect_to_the_websocket_route_is_refused_400() {
    let mut dispatcher = server(ws_echo_service(Arc::new(AtomicBool::new(false))), None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "GET", "/ws", &[("sec-websocket-version", "13")], true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(
        field(&response_on(&seen, 1).0, ":status"),
        Some("400"),
        "{seen:?}"
    );
}

#[test]
fn a_request_body_reports_its_content_length_as_its_size() {
    let service = |request: Request<Body>| {
        let hint = http_body::Body::size_hint(request.body());
        std::future::ready(Response::new(Body::from(format!("{:?}", hint.exact()))))
    };
    let mut dispatcher = server(service, None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "POST", "/", &[("content-length", "5")], false));
    input.extend(data(1, b"hello", true));
    input.extend(client.request(3, "POST", "/", false));
    input.extend(data(3, b"hello", true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(response_on(&seen, 1).1, b"Some(5)", "{seen:?}");
    assert_eq!(response_on(&seen, 3).1, b"None", "{seen:?}");
}

fn shape_over_http2(path: &str, extra: &[(&'static str, &'static str)], tls: bool) -> String {
    let mut info = ConnectionInfo::default();
    info.tls = tls;
    let mut dispatcher = Dispatcher::new(
        Arc::new(super::super::tests::shape_service),
        DispatchConfig::default(),
        info,
        Instant::now(),
    );
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request_with(1, "GET", path, extra, true));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (_, body, ended) = response_on(&seen, 1);
    assert!(ended);
    String::from_utf8(body).unwrap()
}

#[test]
fn http2_requests_get_the_same_shape_as_http1() {
    // The client helper sends `:scheme http` and `:authority a`, and no `host`.
    assert_eq!(
        shape_over_http2("/a?b=c", &[], false),
        "/a?b=c|a|http|a|Origin",
        "origin-form URI, Host added from :authority"
    );
    assert_eq!(
        shape_over_http2("/a", &[("host", "a")], true),
        "/a|a|http|a|Origin",
        "one Host when the client sent it too; the scheme is the client's :scheme"
    );
}

/// Takes the CONNECT's upgrade handle into `slot` when `take`, and answers `200`.
fn connect_service(
    slot: Arc<Mutex<Option<OnUpgrade>>>,
    take: bool,
) -> impl Fn(Request<Body>) -> std::future::Ready<Response<Body>> + Send + Sync + 'static {
    move |mut request: Request<Body>| {
        if take {
            *slot.lock().unwrap() = OnUpgrade::from_request(&mut request);
        }
        std::future::ready(Response::new(Body::from("not the tunnel")))
    }
}

/// Polls `future` once, without a runtime.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_plain_connect_taken_through_on_upgrade_tunnels_data_both_ways() {
    let slot = Arc::default();
    let mut dispatcher = server(connect_service(Arc::clone(&slot), true), None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.connect(1, "example.com:443"));
    input.extend(data(1, b"ping", false));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    let (head, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, ":status"), Some("200"), "{seen:?}");
    assert!(body.is_empty() && !ended, "the tunnel stays open: {seen:?}");

    let on_upgrade = slot
        .lock()
        .unwrap()
        .take()
        .expect("the handler took the handle");
    let Poll::Ready(Ok(mut tunnel)) = poll_once(on_upgrade) else {
        panic!("the tunnel is open once the 200 is out");
    };
    assert_eq!(
        poll_once(tunnel.read()),
        Poll::Ready(Some(Bytes::from_static(b"ping")))
    );
    assert!(matches!(
        poll_once(tunnel.write(Bytes::from_static(b"pong"))),
        Poll::Ready(Ok(()))
    ));
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    assert_eq!(response_on(&seen, 1).1, b"pong", "{seen:?}");

    // The client ends its side: the tunnel reads the end; closing ours ends the stream.
    let seen = client.read(&exchange(&mut dispatcher, &data(1, b"", true)));
    assert_eq!(poll_once(tunnel.read()), Poll::Ready(None), "{seen:?}");
    tunnel.close();
    let seen = client.read(&exchange(&mut dispatcher, &[]));
    assert!(response_on(&seen, 1).2, "the stream ended: {seen:?}");
}

#[test]
fn a_plain_connect_answered_2xx_without_taking_the_handle_gets_500() {
    let slot = Arc::default();
    let mut dispatcher = server(connect_service(slot, false), None);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.connect(1, "example.com:443"));
    let seen = client.read(&exchange(&mut dispatcher, &input));
    assert_eq!(
        field(&response_on(&seen, 1).0, ":status"),
        Some("500"),
        "{seen:?}"
    );
}

#[test]
fn over_http2_a_file_body_is_sent_in_data_frames_not_handed_to_the_driver() {
    let path = std::env::temp_dir().join(format!("weft-h2-file-{}", std::process::id()));
    let content: Vec<u8> = (0..5000u32).map(|i| (i % 239) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let served = path.clone();
    let service = move |_request: Request<Body>| {
        let file = Arc::new(std::fs::File::open(&served).unwrap());
        let region = weft_service::file::FileRegion::new(file, 0, 5000).unwrap();
        std::future::ready(Response::new(Body::file(region)))
    };
    let mut dispatcher = server(service, None);
    dispatcher.set_transmit_files(true);
    let mut client = Client::new();
    let mut input = Client::start(Settings::new());
    input.extend(client.request(1, "GET", "/f", true));
    let output = exchange(&mut dispatcher, &input);
    assert!(dispatcher.poll_transmit_file(Instant::now()).is_none());
    let seen = client.read(&output);
    std::fs::remove_file(path).unwrap();
    let (head, body, ended) = response_on(&seen, 1);
    assert_eq!(field(&head, "content-length"), Some("5000"));
    assert_eq!(body, content);
    assert!(ended);
}
