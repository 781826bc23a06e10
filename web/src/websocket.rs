//! WebSocket in the framework: take [`WebSocketUpgrade`] as an extractor, decide (check the
//! user, pick a subprotocol), and return [`WebSocketUpgrade::on_upgrade`]'s response; the
//! server switches protocols and runs the socket's handler, over HTTP/1.1 (`101`) or HTTP/2
//! (RFC 8441 extended CONNECT) on every runtime. A [`Hub`] broadcasts to many sockets.
//!
//! ```
//! use weft::websocket::{Message, WebSocketUpgrade};
//!
//! async fn echo(upgrade: WebSocketUpgrade) -> weft::Response {
//!     upgrade.on_upgrade(|mut socket| async move {
//!         while let Some(message) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//! # let _ = weft::App::new().get("/ws", echo).build().unwrap();
//! ```
//!
//! A request that is not a valid handshake is refused before the handler runs, with problem+json
//! (code `websocket.handshake`): `400`, or `426 Upgrade Required` with
//! `Sec-WebSocket-Version: 13` for a version we do not speak (RFC 6455 §4.2.2). An HTTP/2
//! WebSocket arrives as an extended `CONNECT` (`:protocol websocket`), which the router hands
//! to the path's `GET` route: one `get` route serves WebSockets over both protocols.

pub mod hub;

use http::StatusCode;
use http::request::Parts;

pub use hub::{Delivery, Hub, SlowConsumer};
pub use weft_core::ws::{CloseCode, Message};
pub use weft_service::websocket::{
    Closed, HandshakeRejection, Heartbeat, Outgoing, QueueSizes, SocketId, SocketLink,
    TrySendError, WebSocket, WebSocketSender, WebSocketUpgrade,
};

use crate::error::{Error, HttpError};
use crate::extract::FromRequestParts;
use crate::problem::Problem;

/// The request is not a valid WebSocket handshake: problem+json with code
/// `websocket.handshake`, and the status (and headers) RFC 6455 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeError(pub HandshakeRejection);

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HandshakeError {}

impl HttpError for HandshakeError {
    fn status(&self) -> StatusCode {
        self.0.0.status()
    }

    fn problem(&self) -> Problem {
        Problem::new(self.status())
            .with_code("websocket.handshake")
            .with_detail(self.to_string())
    }
}

/// The handshake of the request, checked; rejected with [`HandshakeError`].
impl FromRequestParts for WebSocketUpgrade {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        // The check reads a whole request: lend it the head, then take the head back.
        let head = std::mem::replace(parts, http::Request::new(()).into_parts().0);
        let request = http::Request::from_parts(head, ());
        let checked = WebSocketUpgrade::from_request(&request);
        *parts = request.into_parts().0;
        checked.map_err(|rejection| {
            let mut error = Error::http(HandshakeError(rejection));
            for (name, value) in rejection.0.response_headers().iter() {
                error.set_header(name.clone(), value.clone());
            }
            error
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
    use weft_service::service::Service;
    use weft_service::websocket::PendingSocket;

    use super::*;
    use crate::{App, Request, Response};

    fn app() -> crate::AppService {
        async fn echo(upgrade: WebSocketUpgrade) -> Response {
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }
        App::new().get("/ws", echo).build().unwrap()
    }

    fn handshake(version: &'static str) -> Request {
        let mut request = Request::new(crate::Body::empty());
        *request.uri_mut() = "/ws".parse().unwrap();
        let headers = request.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(http::header::HOST, HeaderValue::from_static("example.com"));
        headers.insert(
            http::header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers.insert(
            http::header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(version),
        );
        request
    }

    fn problem(response: Response) -> serde_json::Value {
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            crate::problem::PROBLEM_JSON
        );
        let bytes = block_on(response.into_body().collect(1 << 16)).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_valid_handshake_is_answered_with_the_upgrade() {
        let mut response = block_on(app().call(handshake("13")));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[http::header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(PendingSocket::take_from(&mut response).is_some());
    }

    #[test]
    fn the_extractor_leaves_the_head_for_the_next_ones() {
        async fn both(upgrade: WebSocketUpgrade, headers: http::HeaderMap) -> Response {
            let host = headers.get(http::header::HOST).cloned();
            let mut response = upgrade.on_upgrade(|_socket| async {});
            if let Some(host) = host {
                response.headers_mut().insert("x-host", host);
            }
            response
        }
        let service = App::new().get("/ws", both).build().unwrap();
        let response = block_on(service.call(handshake("13")));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["x-host"], "example.com");
    }

    #[test]
    fn a_plain_get_is_a_400_problem() {
        let mut request = Request::new(crate::Body::empty());
        *request.uri_mut() = "/ws".parse().unwrap();
        let response = block_on(app().call(request));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(problem(response)["code"], "websocket.handshake");
    }

    #[test]
    fn an_unknown_version_is_a_426_problem_naming_ours() {
        let response = block_on(app().call(handshake("8")));
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(
            response.headers()[http::header::SEC_WEBSOCKET_VERSION],
            "13"
        );
        assert_eq!(problem(response)["code"], "websocket.handshake");
    }
}
