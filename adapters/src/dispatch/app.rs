//! The application's side of a connection, whatever its protocol: calling the [`Service`] with
//! the connection's [`ConnectionInfo`] (and the server's runtime handle and shutdown signal),
//! the runtime entered, and turning a panicking handler into a `500`.

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
        let extensions = request.extensions_mut();
        extensions.insert(self.info.clone());
        if let Some(runtime) = &self.config.runtime {
            extensions.insert(runtime.shutdown_signal());
            extensions.insert(runtime.clone());
        }
        let called =
            self.enter(|| catch_unwind(AssertUnwindSafe(|| (*self.service).call_dyn(request))));
        match called {
            Ok(future) => future,
            Err(_) => Box::pin(std::future::ready(self.panic_response())),
        }
    }

    /// Runs application code with the server's runtime entered, if it has one.
    pub(super) fn enter<R>(&self, inside: impl FnOnce() -> R) -> R {
        match &self.config.runtime {
            Some(runtime) => runtime.enter(inside),
            None => inside(),
        }
    }

    /// Polls a handler; a panic becomes a `500`.
    pub(super) fn poll_handler(
        &self,
        handler: &mut HandlerFuture,
        cx: &mut Context<'_>,
    ) -> Poll<Response<Body>> {
        match self.enter(|| catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx)))) {
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
