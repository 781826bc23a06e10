//! The contract between a server and an application: a [`Service`] answers requests.
//!
//! Every runtime runs the same `Service`, so an application is written once and served by mio,
//! a thread pool, smol, async-std, tokio or a user's own event loop. The contract follows Poem
//! and hyper 1.0 rather than tower: `call(&self)`, no `poll_ready`, no clone per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};

use crate::body::Body;

/// The future of a request's answer, boxed: what a server stores per request in flight.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>;

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
///
/// # One allocation per request
/// A server keeps many requests in flight, each with its own future type, so it stores each
/// future boxed ([`ResponseFuture`]) and holds the service as `Arc<dyn DynService>`: the
/// dispatcher and every runtime are compiled once, not once per application. That box is the
/// only one: [`call_boxed`](Service::call_boxed) makes it, and a service whose futures are
/// boxed already (a router choosing among handlers of different types) overrides it to hand
/// its own box over instead of boxing again.
pub trait Service: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request<Body>)
    -> impl Future<Output = Response<Body>> + Send + 'static;

    /// Answers one request with the future boxed, as servers store it.
    ///
    /// Override this when [`call`](Service::call) returns a box already, so the server does not
    /// add a second one.
    fn call_boxed(&self, request: Request<Body>) -> ResponseFuture {
        Box::pin(self.call(request))
    }
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

/// A shared service is a service: `Arc<S>` answers as `S` does.
impl<S: Service> Service for Arc<S> {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        S::call(self, request)
    }

    fn call_boxed(&self, request: Request<Body>) -> ResponseFuture {
        S::call_boxed(self, request)
    }
}

/// The object-safe form of [`Service`], which servers hold as `Arc<dyn DynService>`.
///
/// Every `Service` is a `DynService`; implement `Service`, not this.
pub trait DynService: Send + Sync + 'static {
    /// Answers one request with a boxed future.
    fn call_dyn(&self, request: Request<Body>) -> ResponseFuture;
}

impl<S: Service> DynService for S {
    fn call_dyn(&self, request: Request<Body>) -> ResponseFuture {
        self.call_boxed(request)
    }
}

/// A service already erased is still a service, so it can be wrapped (by middleware) or served.
impl Service for Arc<dyn DynService> {
    fn call(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        // `**self`, the object: `self.call_dyn` would be this very `Arc`'s own `DynService`
        // (every `Service` is one), calling back here forever.
        (**self).call_dyn(request)
    }

    fn call_boxed(&self, request: Request<Body>) -> ResponseFuture {
        (**self).call_dyn(request)
    }
}

/// Erases a service's type for a server: `Arc<dyn DynService>` as dispatchers and runtimes take it.
///
/// An `Arc<dyn DynService>` given here is returned as it is, not wrapped again.
pub fn erase<S: Service>(service: S) -> Arc<dyn DynService> {
    // A service that is already erased would otherwise gain a second indirection per request.
    let any: Box<dyn std::any::Any> = Box::new(service);
    match any.downcast::<Arc<dyn DynService>>() {
        Ok(erased) => *erased,
        Err(any) => match any.downcast::<S>() {
            Ok(service) => Arc::new(*service),
            Err(_) => unreachable!("a Box<S> downcasts to S"),
        },
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
