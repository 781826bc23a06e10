//! Interceptors: code around the handler that may transform the request and the outcome
//! (NestJS's interceptors). They run after guards and see the handler's `Result` before the
//! exception filters do, so they can map errors too.
//!
//! Built-ins: [`Timing`] (a `Server-Timing` header and a log line per request),
//! [`Envelope`] (`{ "data": ..., "meta": ... }` around JSON responses), [`Cache`] (a per-route
//! response cache with a TTL) and [`Timeout`] (cancels the handler and answers 504 or 503).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use weft_service::body::Body;

use crate::Request;
use crate::error::Error;
use crate::handler::{BoxFuture, Outcome};
use crate::pipeline::Chain;
use crate::problem::Problem;

/// Code around a route's handler.
pub trait Interceptor: Send + Sync + 'static {
    /// Handles a request: usually calls `next.proceed(request)` and works on its outcome.
    fn intercept(&self, request: Request, next: Proceed) -> impl Future<Output = Outcome> + Send;
}

/// The rest of the route after an interceptor: inner interceptors, pipes, the handler.
pub struct Proceed {
    pub(crate) chain: Arc<Chain>,
    pub(crate) index: usize,
}

impl Proceed {
    /// Runs the rest of the route and returns its outcome, errors not yet rendered.
    pub async fn proceed(self, request: Request) -> Outcome {
        self.chain.intercept_from(self.index, request).await
    }
}

impl std::fmt::Debug for Proceed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proceed")
            .field("index", &self.index)
            .finish()
    }
}

/// An interceptor with its type erased.
pub(crate) trait DynInterceptor: Send + Sync + 'static {
    fn intercept_dyn(&self, request: Request, next: Proceed) -> BoxFuture<'_, Outcome>;
}

impl<I: Interceptor> DynInterceptor for I {
    fn intercept_dyn(&self, request: Request, next: Proceed) -> BoxFuture<'_, Outcome> {
        Box::pin(self.intercept(request, next))
    }
}

/// Measures each request: adds `Server-Timing: app;dur=<ms>` to the response and logs the
/// method, path, status and duration (`tracing`, target `weft::access`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing;

impl Interceptor for Timing {
    async fn intercept(&self, request: Request, next: Proceed) -> Outcome {
        let start = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let outcome = next.proceed(request).await;
        let elapsed = start.elapsed();
        let millis = elapsed.as_secs_f64() * 1000.0;
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.status_code(),
        };
        tracing::info!(target: "weft::access", %method, path, status = status.as_u16(), millis, "request");
        outcome.map(|mut response| {
            if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.3}")) {
                response
                    .headers_mut()
                    .append(HeaderName::from_static("server-timing"), value);
            }
            response
        })
    }
}

/// Wraps successful JSON responses as `{ "data": <the body>, "meta": { "status": .., "path": .. } }`.
/// Other responses and errors pass unchanged. Bodies over `limit` bytes (1 MiB by default)
/// are passed unwrapped rather than held.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    limit: usize,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope { limit: 1024 * 1024 }
    }
}

impl Envelope {
    /// An envelope for bodies up to `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Envelope { limit }
    }
}

fn is_plain_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

impl Interceptor for Envelope {
    async fn intercept(&self, request: Request, next: Proceed) -> Outcome {
        let path = request.uri().path().to_owned();
        let response = next.proceed(request).await?;
        if !response.status().is_success() || !is_plain_json(response.headers()) {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let bytes = body
            .collect(self.limit)
            .await
            .map_err(|error| Error::with_status(StatusCode::INTERNAL_SERVER_ERROR, error))?;
        let data: serde_json::Value = serde_json::from_slice(&bytes)?;
        let wrapped = serde_json::json!({
            "data": data,
            "meta": { "status": parts.status.as_u16(), "path": path },
        });
        let bytes = serde_json::to_vec(&wrapped)?;
        parts.headers.remove(CONTENT_LENGTH);
        Ok(http::Response::from_parts(parts, Body::from(bytes)))
    }
}

/// Cancels the handler when it runs longer than the duration, answering `504 Gateway
/// Timeout` (or the status set with [`Timeout::status`]). Uses the runtime's timer; outside
/// a weft runtime the handler runs without a limit (and a warning is logged).
#[derive(Debug, Clone, Copy)]
pub struct Timeout {
    duration: Duration,
    status: StatusCode,
}

impl Timeout {
    /// Handlers may run for at most `duration`.
    pub fn new(duration: Duration) -> Self {
        Timeout {
            duration,
            status: StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Answers `status` (typically 503) instead of 504.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl Interceptor for Timeout {
    async fn intercept(&self, request: Request, next: Proceed) -> Outcome {
        let Some(runtime) = weft_service::runtime::RuntimeHandle::try_current() else {
            tracing::warn!("Timeout interceptor outside a weft runtime: no limit applies");
            return next.proceed(request).await;
        };
        match runtime.timeout(self.duration, next.proceed(request)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(Error::from_problem(
                Problem::new(self.status)
                    .with_code("handler.timeout")
                    .with_detail(format!(
                        "the handler did not answer within {} ms",
                        self.duration.as_millis()
                    )),
            )),
        }
    }
}

/// A per-route cache of successful `GET` responses, by path and query, for `ttl`.
///
/// Only `200` responses without `Set-Cookie`, whose body is at most `max_body` bytes, are
/// kept; at most `max_entries` (expired ones are dropped first, then the oldest). Responses
/// say `X-Cache: hit` or `miss`.
#[derive(Clone)]
pub struct Cache {
    ttl: Duration,
    max_entries: usize,
    max_body: usize,
    entries: Arc<Mutex<HashMap<String, Cached>>>,
}

#[derive(Clone)]
struct Cached {
    stored: Instant,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache keeping responses for `ttl` (1 000 entries of up to 1 MiB by default).
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            max_entries: 1000,
            max_body: 1024 * 1024,
            entries: Arc::default(),
        }
    }

    /// Keeps at most `max` entries.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// Keeps only bodies up to `max` bytes.
    pub fn max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    fn lookup(&self, key: &str) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|cached| cached.stored.elapsed() < self.ttl)
            .cloned()
    }

    fn store(&self, key: String, cached: Cached) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, c| c.stored.elapsed() < ttl);
        }
        if entries.len() >= self.max_entries {
            let oldest = entries
                .iter()
                .min_by_key(|(_, c)| c.stored)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        if self.max_entries > 0 {
            entries.insert(key, cached);
        }
    }
}

fn x_cache(value: &'static str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-cache"),
        HeaderValue::from_static(value),
    )
}

impl Interceptor for Cache {
    async fn intercept(&self, request: Request, next: Proceed) -> Outcome {
        if request.method() != Method::GET {
            return next.proceed(request).await;
        }
        let key = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        if let Some(cached) = self.lookup(&key) {
            let mut response = http::Response::new(Body::from(cached.body));
            *response.status_mut() = cached.status;
            *response.headers_mut() = cached.headers;
            let (name, value) = x_cache("hit");
            response.headers_mut().insert(name, value);
            return Ok(response);
        }
        let mut response = next.proceed(request).await?;
        let cacheable = response.status() == StatusCode::OK
            && !response.headers().contains_key(http::header::SET_COOKIE)
            && http_body::Body::size_hint(response.body())
                .upper()
                .is_some_and(|n| n <= self.max_body as u64);
        let (name, value) = x_cache("miss");
        response.headers_mut().insert(name, value);
        if !cacheable {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let body = body
            .collect(self.max_body)
            .await
            .map_err(|error| Error::with_status(StatusCode::INTERNAL_SERVER_ERROR, error))?;
        self.store(
            key,
            Cached {
                stored: Instant::now(),
                status: parts.status,
                headers: parts.headers.clone(),
                body: body.clone(),
            },
        );
        Ok(http::Response::from_parts(parts, Body::from(body)))
    }
}
