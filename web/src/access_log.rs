//! [`AccessLog`]: one line per request, at `info` on the target `weft::access`, with the
//! method, path, protocol version, status, response bytes, duration, request id and peer
//! address, as `tracing` fields (so a JSON subscriber, [`crate::logging`], ships them as
//! fields).
//!
//! ```
//! use weft::access_log::AccessLog;
//! use weft::prelude::*;
//!
//! // First, so that it sees the final answer of every layer inside it.
//! let app = App::new().middleware(AccessLog::new()).get("/", || async { "hi" });
//! # let _ = app.build().unwrap();
//! ```
//!
//! # Fields
//! - `method`, `path` (without the query string, which may carry secrets), `version`;
//! - `status`: the answer's status code;
//! - `bytes`: the response body's length when it is known up front (a buffered body, a
//!   `Content-Length`), otherwise counted as the body streams, the line then being written
//!   when the body ends (or is dropped: a client that went away; `complete=false`);
//! - `duration_ms`: from the middleware's start to the line: to the response head for
//!   bodies of known length, to the body's end for streamed ones;
//! - `request_id`: the request's `x-request-id` header, or else the response's (a request-id
//!   middleware inside this one sets it), `-` without one;
//! - `peer`: the client's address from [`ConnectionInfo`], `-` when unknown (in-memory
//!   connections).
//!
//! Lines are written only when `weft::access` is enabled at `info`: `weft::access=off` in the
//! filter turns them off at the cost of one check per request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Version};
use http_body::{Body as _, Frame, SizeHint};
use weft_service::service::ConnectionInfo;

use crate::Request;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};

/// The `x-request-id` header.
const REQUEST_ID: &str = "x-request-id";

/// The access-log middleware; see the [module](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog {
    _private: (),
}

impl AccessLog {
    /// One `info` line per request on `weft::access`.
    pub fn new() -> Self {
        AccessLog { _private: () }
    }
}

/// What the line says, gathered before the body is sent.
struct Line {
    started: Instant,
    method: Method,
    path: String,
    version: Version,
    status: u16,
    request_id: Option<HeaderValue>,
    peer: Option<std::net::SocketAddr>,
}

impl Line {
    fn write(&self, bytes: u64, complete: bool) {
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-");
        let peer = match self.peer {
            Some(peer) => tracing::field::display(peer.to_string()),
            None => tracing::field::display("-".to_owned()),
        };
        tracing::info!(
            target: "weft::access",
            method = %self.method,
            path = %self.path,
            version = ?self.version,
            status = self.status,
            bytes,
            duration_ms = (duration_ms * 1000.0).round() / 1000.0,
            request_id,
            peer,
            complete,
            "{} {} {}",
            self.method,
            self.path,
            self.status
        );
    }
}

impl Middleware for AccessLog {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        if !tracing::enabled!(target: "weft::access", tracing::Level::INFO) {
            return Ok(next.run(request).await);
        }
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let version = request.version();
        let request_id = request.headers().get(REQUEST_ID).cloned();
        let peer = request
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|info| info.peer);
        let response = next.run(request).await;
        let line = Line {
            started,
            method,
            path,
            version,
            status: response.status().as_u16(),
            request_id: request_id.or_else(|| response.headers().get(REQUEST_ID).cloned()),
            peer,
        };
        if let Some(bytes) = response.body().size_hint().exact() {
            line.write(bytes, true);
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let counted = CountedBody {
            inner: body,
            bytes: 0,
            line: Some(line),
        };
        Ok(http::Response::from_parts(parts, crate::Body::new(counted)))
    }
}

/// A response body that counts what it yields and writes the access line at its end.
struct CountedBody {
    inner: crate::Body,
    bytes: u64,
    /// `None` once written.
    line: Option<Line>,
}

impl CountedBody {
    fn finish(&mut self, complete: bool) {
        if let Some(line) = self.line.take() {
            line.write(self.bytes, complete);
        }
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = weft_service::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}
