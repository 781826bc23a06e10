//! One exchange over HTTP/2 (prior knowledge, cleartext) with the `h2` crate's client role,
//! which weft-core lacks; its I/O is the link's pipe ([`PipeIo`]), polled on the test's
//! thread like everything else.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Request, Version};

use super::exchange::Progress;
use super::link::{PipeIo, SharedPipe};
use super::request::Prepared;

/// Fields that are specific to an HTTP/1.1 connection: HTTP/2 forbids them (RFC 9113
/// §8.2.2), and `Host` becomes `:authority`.
const CONNECTION_SPECIFIC: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HeaderName::from_static("keep-alive"),
    header::HeaderName::from_static("proxy-connection"),
];

/// The client side of an HTTP/2 exchange: a future that makes the connection over `pipe`,
/// sends `request` on a stream and reads the response into `progress`.
pub(crate) fn start(
    request: &Prepared,
    pipe: SharedPipe,
    progress: Progress,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
    let message = build(request);
    let body = request.body.clone();
    Box::pin(async move {
        let (send, connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(PipeIo(pipe))
            .await
            .map_err(|error| format!("the HTTP/2 handshake failed: {error}"))?;
        // The connection must be polled for anything to move; it only ends on an error here
        // (or when the server goes away, which fails the exchange's stream too).
        let connection = async move {
            match connection.await {
                Err(error) => Err(format!("the HTTP/2 connection failed: {error}")),
                Ok(()) => std::future::pending().await,
            }
        };
        let exchange = async move {
            let mut send = send
                .ready()
                .await
                .map_err(|error| format!("the HTTP/2 connection refused a stream: {error}"))?;
            let (response, mut stream) = send
                .send_request(message, body.is_empty())
                .map_err(|error| format!("the request cannot be sent: {error}"))?;
            if !body.is_empty() {
                stream
                    .send_data(body, true)
                    .map_err(|error| format!("the request body cannot be sent: {error}"))?;
            }
            let response = response
                .await
                .map_err(|error| format!("no response head: {error}"))?;
            let (parts, mut data) = response.into_parts();
            {
                let mut received = progress.lock();
                received.status = Some(parts.status);
                received.version = Some(parts.version);
                received.headers = parts.headers;
            }
            while let Some(chunk) = data.data().await {
                let chunk = chunk.map_err(|error| format!("the body failed: {error}"))?;
                let _ = data.flow_control().release_capacity(chunk.len());
                progress.lock().chunks.push(chunk);
            }
            let trailers = data
                .trailers()
                .await
                .map_err(|error| format!("the trailers failed: {error}"))?;
            progress.lock().trailers = trailers;
            Ok::<(), String>(())
        };
        futures_lite::future::or(exchange, connection).await
    })
}

/// The request as the `h2` crate takes it: an absolute URI whose authority is the `Host`.
fn build(request: &Prepared) -> Request<()> {
    let uri = format!("http://{}{}", request.authority, request.target);
    let mut message = Request::new(());
    *message.method_mut() = request.method.clone();
    *message.version_mut() = Version::HTTP_2;
    *message.uri_mut() = match uri.parse() {
        Ok(uri) => uri,
        Err(error) => panic!("{}: not a request target: {error}", request.label),
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        if !CONNECTION_SPECIFIC.contains(name) {
            headers.append(name, value.clone());
        }
    }
    *message.headers_mut() = headers;
    message
}
