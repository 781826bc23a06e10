//! Per-route limits: [`RouteLimits`], a middleware setting a route's (or group's) body sizes
//! and handler time.
//!
//! These are on top of the server's own limits, which protect every connection whatever the
//! route (weft-core's head sizes, body framing and idle timeouts, set in
//! [`ServerConfig`](crate::ServerConfig) / the dispatcher's config): a route's limits can
//! only be stricter in effect, since the connection's limits have already applied by the
//! time the route is known.
//!
//! - **Body sizes.** A declared `Content-Length` over [`RouteLimits::max_body`] is refused
//!   with `413` before any byte of the body is read; a body without one (chunked, HTTP/2
//!   DATA frames) is cut at the same size by the extractors, which read through the
//!   [`BodyLimits`] this middleware sets for the route (a handler taking the raw
//!   [`Body`](crate::Body) stream must bound its own reading).
//! - **Time.** [`RouteLimits::timeout`] cancels the rest of the stack (inner middleware,
//!   guards, interceptors, the handler) after the duration, answering `504` (or the status
//!   set with [`RouteLimits::timeout_status`]), as [`Timeout`](crate::interceptor::Timeout)
//!   does for the handler alone.
//!
//! ```
//! use std::time::Duration;
//! use weft::limits::RouteLimits;
//! use weft::prelude::*;
//!
//! let upload = Route::post("/upload", |body: bytes::Bytes| async move { body.len().to_string() })
//!     .middleware(RouteLimits::new().max_body(10 * 1024 * 1024).timeout(Duration::from_secs(30)));
//! let app = App::new().add_route(upload);
//! # let _ = app;
//! ```

use std::time::Duration;

use http::StatusCode;
use http::header::CONTENT_LENGTH;

use crate::Request;
use crate::error::Error;
use crate::extract::BodyLimits;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;

/// A route's body sizes and handler time; see the [module documentation](self).
///
/// Without any setting it changes nothing: the app's [`BodyLimits`] and no time limit.
#[derive(Debug, Clone, Default)]
pub struct RouteLimits {
    body: Option<BodyLimits>,
    max_content_length: Option<u64>,
    timeout: Option<Duration>,
    timeout_status: Option<StatusCode>,
}

impl RouteLimits {
    /// No limit beyond the app's.
    pub fn new() -> RouteLimits {
        RouteLimits::default()
    }

    /// At most `bytes` of body, whatever the extractor: a larger `Content-Length` is refused
    /// at once, and every kind of [`BodyLimits`] (JSON, form, bytes, the multipart total,
    /// each field and file) is set to `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        let mut limits = self.body.take().unwrap_or_default();
        limits.json = bytes;
        limits.form = bytes;
        limits.bytes = bytes;
        let total = bytes as u64;
        limits.multipart.max_total_bytes = total;
        limits.multipart.max_field_bytes = limits.multipart.max_field_bytes.min(total);
        limits.multipart.max_file_bytes = limits.multipart.max_file_bytes.min(total);
        self.body = Some(limits);
        self.max_content_length = Some(total);
        self
    }

    /// The extractors' limits for this route, kind by kind (the `Content-Length` check of
    /// [`max_body`](Self::max_body) is not changed).
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.body = Some(limits);
        self
    }

    /// Refuses a declared `Content-Length` over `bytes` with `413` before reading.
    pub fn max_content_length(mut self, bytes: u64) -> Self {
        self.max_content_length = Some(bytes);
        self
    }

    /// The rest of the stack may run for at most `duration` (`504` after that). Uses the
    /// runtime's timer; outside a weft runtime no limit applies (and a warning is logged).
    pub fn timeout(mut self, duration: Duration) -> Self {
        self.timeout = Some(duration);
        self
    }

    /// Answers `status` (typically `503`) instead of `504` on timeout.
    pub fn timeout_status(mut self, status: StatusCode) -> Self {
        self.timeout_status = Some(status);
        self
    }

    /// The `413` for a declared length over `max`.
    fn too_large(declared: u64, max: u64) -> Error {
        Error::from_problem(
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .with_code("body.too_large")
                .with_detail(format!(
                    "the body of {declared} bytes is larger than the limit of {max} bytes"
                )),
        )
    }
}

impl Middleware for RouteLimits {
    async fn handle(&self, mut request: Request, next: Next) -> Outcome {
        if let Some(max) = self.max_content_length {
            let declared = request
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok());
            if let Some(declared) = declared.filter(|&declared| declared > max) {
                return Err(RouteLimits::too_large(declared, max));
            }
        }
        if let Some(limits) = &self.body {
            request.extensions_mut().insert(limits.clone());
        }
        let Some(duration) = self.timeout else {
            return Ok(next.run(request).await);
        };
        let Some(runtime) = weft_service::runtime::RuntimeHandle::try_current() else {
            tracing::warn!("RouteLimits timeout outside a weft runtime: no limit applies");
            return Ok(next.run(request).await);
        };
        match runtime.timeout(duration, next.run(request)).await {
            Ok(response) => Ok(response),
            Err(_elapsed) => Err(Error::from_problem(
                Problem::new(self.timeout_status.unwrap_or(StatusCode::GATEWAY_TIMEOUT))
                    .with_code("handler.timeout")
                    .with_detail(format!(
                        "the route did not answer within {} ms",
                        duration.as_millis()
                    )),
            )),
        }
    }
}
