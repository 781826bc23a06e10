//! The contract between a server and an application: a [`Service`] answers requests.
//!
//! Every runtime runs the same `Service`, so an application is written once and served by mio,
//! a thread pool, smol, async-std, tokio or a user's own event loop. The contract follows Poem
//! and hyper 1.0 rather than tower: `call(&self)`, no `poll_ready`, no clone per request.

use std::future::Future;

use http::{Request, Response};

use crate::body::Body;

/// Answers HTTP requests.
///
/// Errors are responses: an application turns its failures into the status code they deserve.
/// A handler that panics is answered with `500 Internal Server Error` by the runtime, and the
/// connection and the server live on.
///
/// The returned future is `'static` so that any executor can run it: clone what it needs from
/// `self` (typically an `Arc` of shared state) before the `async` block.
///
/// Any `Fn(Request<Body>) -> impl Future<Output = Response<Body>>` is a `Service`:
///
/// ```
/// use weft_service::body::Body;
/// use weft_service::service::Service;
///
/// fn app() -> impl Service {
///     |request: http::Request<Body>| async move {
///         http::Response::new(Body::from(format!("you asked for {}", request.uri())))
///     }
/// }
/// # let _ = app();
/// ```
pub trait Service: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request<Body>)
    -> impl Future<Output = Response<Body>> + Send + 'static;
}

impl<F, Fut> Service for F
where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        self(request)
    }
}

/// What the server knows about the connection a request arrived on; runtimes put it in every
/// request's extensions (`request.extensions().get::<ConnectionInfo>()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's address, when the transport has one.
    pub peer: Option<core::net::SocketAddr>,
    /// Our address the peer connected to.
    pub local: Option<core::net::SocketAddr>,
    /// Whether the connection is encrypted with TLS.
    pub tls: bool,
    /// The protocol agreed through TLS ALPN, such as `http/1.1`.
    pub alpn: Option<Vec<u8>>,
}

impl ConnectionInfo {
    /// Information for a plain TCP connection between `peer` and `local`.
    pub fn tcp(peer: Option<core::net::SocketAddr>, local: Option<core::net::SocketAddr>) -> Self {
        ConnectionInfo {
            peer,
            local,
            tls: false,
            alpn: None,
        }
    }
}
