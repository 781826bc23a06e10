//! The application's side of a connection, whatever its protocol: calling the [`Service`] with
//! the connection's [`ConnectionInfo`], and turning a panicking handler into a `500`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode, header};
use weft_service::body::Body;
use weft_service::service::{ConnectionInfo, DynService, ResponseFuture};

use super::DispatchConfig;

/// The application's answer in progress.
pub(super) type HandlerFuture = ResponseFuture;

/// What every request on one connection is served with.
pub(super) struct App {
    pub(super) service: Arc<dyn DynService>,
    pub(super) info: ConnectionInfo,
    pub(super) config: DispatchConfig,
}

impl App {
    /// Starts the application on `request`, which gets the connection's [`ConnectionInfo`] in
    /// its extensions. A `call` that panics before returning its future is answered like one
    /// whose future panics: with a 500, the connection living on.
    pub(super) fn call(&self, mut request: Request<Body>) -> HandlerFuture {
        request.extensions_mut().insert(self.info.clone());
        match catch_unwind(AssertUnwindSafe(|| (*self.service).call_dyn(request))) {
            Ok(future) => future,
            Err(_) => Box::pin(std::future::ready(self.panic_response())),
        }
    }

    /// Polls a handler; a panic becomes a `500`.
    pub(super) fn poll_handler(
        &self,
        handler: &mut HandlerFuture,
        cx: &mut Context<'_>,
    ) -> Poll<Response<Body>> {
        match catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(polled) => polled,
            Err(_) => Poll::Ready(self.panic_response()),
        }
    }

    /// The answer to a handler that panicked.
    fn panic_response(&self) -> Response<Body> {
        tracing::error!(peer = ?self.info.peer, "request handler panicked; answering 500");
        let mut response = Response::new(Body::from("internal server error\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        response
    }
}
