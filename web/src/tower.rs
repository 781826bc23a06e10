//! tower interop (the `tower` feature): the tower ecosystem's layers and services in a weft
//! app, and a weft app in a tower stack.
//!
//! - **A weft app as a tower `Service`.** [`AppService`] implements
//!   [`tower::Service<http::Request<B>>`](::tower::Service) for any request body `B` of
//!   [`Bytes`]; any other weft [`Service`] does through [`TowerService`]. The response is
//!   `http::Response<weft::Body>`, the error [`Infallible`] (every failure is an answer), and
//!   `poll_ready` is always ready.
//! - **tower layers around weft routes.** [`TowerLayer`] is a weft [`Middleware`] that runs a
//!   tower [`Layer`] (tower-http's compression, tracing, CORS, timeouts …) around the rest of
//!   the weft chain, at app, group or route level:
//!   `.middleware(TowerLayer::new(CompressionLayer::new()))`.
//! - **a tower `Service` as a route.** [`service_route`] makes an [`Endpoint`] of a tower
//!   `Service`: `.endpoint(Method::GET, "/legacy", service_route(svc))`.
//!
//! Bodies are converted both ways with [`Body::new`], which boxes; a body that is a weft
//! [`Body`] already is passed through as it is.
//!
//! ```
//! use tower::ServiceExt;
//! use weft::prelude::*;
//!
//! let app = App::new().get("/", || async { "hello" }).build().unwrap();
//! let request = http::Request::get("/").body(String::new()).unwrap();
//! let response = futures_lite::future::block_on(app.oneshot(request)).unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! ```

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tower::{Layer, ServiceExt};
use bytes::Bytes;
use http::StatusCode;
use weft_service::body::BoxError;
use weft_service::service::{ResponseFuture, Service};

use crate::error::Error;
use crate::handler::{BoxFuture, Endpoint, Outcome};
use crate::middleware::{Middleware, Next};
use crate::{AppService, Body, Request, Response};

/// Any `http_body::Body` of `Bytes` as a weft [`Body`]: moved as it is when it is one
/// already, boxed with [`Body::new`] otherwise.
fn into_body<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut slot = Some(body);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
        Some(weft_body) => weft_body.take().unwrap_or_default(),
        None => match slot {
            Some(body) => Body::new(body),
            None => Body::default(),
        },
    }
}

/// A request of any body type as the framework's [`Request`].
fn into_request<B>(request: http::Request<B>) -> Request
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    request.map(into_body)
}

/// A response of any body type as the framework's [`Response`].
fn into_response<B>(response: http::Response<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(into_body)
}

/// A tower service's error as a weft error: `500`, its message hidden from the client.
fn service_error(error: impl Into<BoxError>) -> Error {
    Error::with_status(StatusCode::INTERNAL_SERVER_ERROR, error)
}

/// The future of a weft service called through tower: the service's answer, never an error.
pub struct TowerFuture {
    inner: ResponseFuture,
}

impl Future for TowerFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl std::fmt::Debug for TowerFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerFuture").finish_non_exhaustive()
    }
}

/// A built weft app is a tower service for any request body of [`Bytes`].
impl<B> ::tower::Service<http::Request<B>> for AppService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TowerFuture;

    /// Always ready: a weft service takes `&self` and has no backpressure of its own.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> TowerFuture {
        TowerFuture {
            inner: Service::call_boxed(self, into_request(request)),
        }
    }
}

/// Any weft [`Service`] as a tower service: `TowerService::new(service)`.
///
/// Cloning it is cloning an `Arc`, as tower's clone-per-request convention wants.
pub struct TowerService<S> {
    inner: Arc<S>,
}

impl<S: Service> TowerService<S> {
    /// Wraps a weft service.
    pub fn new(service: S) -> Self {
        TowerService {
            inner: Arc::new(service),
        }
    }

    /// The weft service inside.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Clone for TowerService<S> {
    fn clone(&self) -> Self {
        TowerService {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> std::fmt::Debug for TowerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerService")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S, B> ::tower::Service<http::Request<B>> for TowerService<S>
where
    S: Service,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TowerFuture;

    /// Always ready: a weft service takes `&self` and has no backpressure of its own.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> TowerFuture {
        TowerFuture {
            inner: self.inner.call_boxed(into_request(request)),
        }
    }
}

/// The rest of the weft chain, carried to [`NextService`] in the request's extensions
/// (tower services see only the request), and taken out of them there.
#[derive(Clone)]
struct NextHop(Next);

/// The innermost service of a [`TowerLayer`]'s stack: the rest of the weft chain (inner
/// middleware, guards, interceptors, pipes, the handler) as a tower service.
///
/// It answers `500` if the request reaching it lost the extension that carries the chain
/// (a tower layer that builds a new request instead of changing the one it got).
#[derive(Debug, Clone, Copy, Default)]
pub struct NextService {
    _private: (),
}

impl<B> ::tower::Service<http::Request<B>> for NextService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut request = into_request(request);
        match request.extensions_mut().remove::<NextHop>() {
            Some(NextHop(next)) => Box::pin(async move { Ok(next.run(request).await) }),
            None => {
                let error = Error::with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a tower layer dropped the request extensions weft's chain travels in",
                );
                let response = error.to_response(crate::problem::ErrorFormat::default());
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// A tower [`Layer`] as a weft [`Middleware`]: the layer wraps the rest of the weft chain
/// ([`NextService`]).
///
/// The layer is applied once, when the middleware is made, so a layer whose service holds
/// state (a concurrency limit, a rate limit) shares it across requests; the service is cloned
/// for each request, as tower expects. Request and response bodies are converted to and
/// from weft's [`Body`] (tower-http's compression answers with its own body type, boxed here).
/// An error of the tower service goes to the route's exception filters as a `500`.
///
/// The layered service must be `Clone + Send + Sync` (a weft middleware is shared by every
/// worker): a service that is not `Sync` can be made so with tower's `BoxCloneSyncService`.
///
/// ```
/// use tower_http::compression::CompressionLayer;
/// use weft::prelude::*;
/// use weft::tower::TowerLayer;
///
/// let app = App::new()
///     .middleware(TowerLayer::new(CompressionLayer::new()))
///     .get("/", || async { "hello" });
/// # let _ = app;
/// ```
pub struct TowerLayer<S> {
    service: S,
}

impl<S> TowerLayer<S> {
    /// Applies `layer` around the rest of the weft chain.
    pub fn new<L>(layer: L) -> Self
    where
        L: Layer<NextService, Service = S>,
    {
        TowerLayer {
            service: layer.layer(NextService::default()),
        }
    }
}

impl<S> std::fmt::Debug for TowerLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerLayer")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S: HttpService> Middleware for TowerLayer<S> {
    async fn handle(&self, mut request: Request, next: Next) -> Outcome {
        request.extensions_mut().insert(NextHop(next));
        self.service.call_once(request).await
    }
}

/// A tower service as a weft route's handler: `.endpoint(method, path, service_route(svc))`.
///
/// The service gets the request as weft has it (path parameters are in its extensions as the
/// router put them); its response body is boxed into weft's [`Body`], and its error goes to the
/// route's exception filters as a `500`. The service is cloned for each request, and must be
/// `Clone + Send + Sync` (`BoxCloneSyncService` rather than `BoxCloneService`).
pub fn service_route<S>(service: S) -> ServiceRoute<S> {
    ServiceRoute { service }
}

/// See [`service_route`].
#[derive(Clone)]
pub struct ServiceRoute<S> {
    service: S,
}

impl<S> std::fmt::Debug for ServiceRoute<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRoute")
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S: HttpService> Endpoint for ServiceRoute<S> {
    async fn handle(&self, request: Request) -> Outcome {
        self.service.call_once(request).await
    }
}

/// A tower HTTP service weft can call: cloned per request, its body and error boxed into
/// weft's. One name for the bounds that [`TowerLayer`] and [`ServiceRoute`] share.
pub trait HttpService: Clone + Send + Sync + 'static {
    /// Calls the service once and turns its answer into a weft outcome.
    fn call_once(&self, request: Request) -> impl std::future::Future<Output = Outcome> + Send;
}

impl<S, ResBody> HttpService for S
where
    S: ::tower::Service<Request, Response = http::Response<ResBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    async fn call_once(&self, request: Request) -> Outcome {
        match self.clone().oneshot(request).await {
            Ok(response) => Ok(into_response(response)),
            Err(error) => Err(service_error(error)),
        }
    }
}
