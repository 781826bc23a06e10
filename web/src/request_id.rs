//! Request ids and W3C Trace Context: the [`RequestIds`] middleware, the [`RequestId`] and
//! [`TraceContext`] extractors.
//!
//! Each request gets an id: the client's (or the proxy's) `X-Request-Id` when it is well
//! formed (1 to 128 visible ASCII characters, RFC 5234 `VCHAR`), else a new UUID v7 (time
//! ordered, so ids sort by arrival). The id goes into the request's extensions, onto the
//! response as `X-Request-Id`, and onto every log line of the request: the rest of the stack
//! runs inside a `tracing` span `request` with a `request_id` field (and `trace_id` when the
//! request has a trace).
//!
//! A valid `traceparent` (W3C Trace Context §3.2) is taken as the parent of this request's
//! work: the [`TraceContext`] keeps its trace id and flags, with a new span id of our own
//! for the calls the handler makes downstream ([`TraceContext::traceparent`]); the response
//! carries that `traceparent` back. An invalid `traceparent` is ignored, as the spec says
//! (§3.2.2): the request starts a new trace.
//!
//! ```
//! use weft::prelude::*;
//! use weft::request_id::{RequestId, RequestIds, TraceContext};
//!
//! let app = App::new().middleware(RequestIds::new()).get(
//!     "/",
//!     |id: RequestId, trace: TraceContext| async move {
//!         format!("{id} {}", trace.traceparent())
//!     },
//! );
//! # let _ = app;
//! ```

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use tracing::Instrument;

use crate::Request;
use crate::error::Error;
use crate::extract::FromRequestParts;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};

/// The `X-Request-Id` header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The W3C `tracestate` header.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The id of a request, set by [`RequestIds`].
///
/// As an extractor it is rejected with `500` when the middleware is not on the route (a bug
/// of the app; take `Option<RequestId>` to allow it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new UUID v7 id.
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::now_v7().to_string().into())
    }

    /// `text` as an id, if it is 1 to `max` visible ASCII characters (`!` to `~`).
    pub fn parse(text: &[u8], max: usize) -> Option<RequestId> {
        let valid = !text.is_empty()
            && text.len() <= max
            && text.iter().all(|byte| (b'!'..=b'~').contains(byte));
        // Visible ASCII is UTF-8.
        valid.then(|| RequestId(String::from_utf8_lossy(text).into()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequestParts for RequestId {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts.extensions.get::<RequestId>().cloned().ok_or_else(|| {
            Error::from_problem(
                crate::Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR)
                    .with_code("extension.missing")
                    .with_detail(
                        "the request has no id: is the RequestIds middleware on this route?",
                    ),
            )
        })
    }
}

/// The W3C Trace Context of a request (Trace Context §3): the trace it belongs to, the
/// caller's span (when the request came with a valid `traceparent`), our own span, the
/// flags and the caller's `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: Option<[u8; 8]>,
    span_id: [u8; 8],
    flags: u8,
    state: Option<HeaderValue>,
}

/// Random bytes, never all zero (Trace Context §3.2.2.3, §3.2.2.4 forbid zero ids).
fn random_id<const N: usize>() -> [u8; N] {
    loop {
        let random = uuid::Uuid::new_v4();
        let mut id = [0; N];
        // A v4 UUID has 122 random bits; the version and variant nibbles are skipped.
        let bytes = random.as_bytes();
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = bytes[(i + 9) % 16] ^ bytes[i % 6];
        }
        if id.iter().any(|&b| b != 0) {
            return id;
        }
    }
}

fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        // Trace Context §3.2.2: lowercase hex only.
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = digit(text[2 * i])? << 4 | digit(text[2 * i + 1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl TraceContext {
    /// A new trace, with no parent: a random trace id and span id, not sampled.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: random_id(),
            parent_id: None,
            span_id: random_id(),
            flags: 0,
            state: None,
        }
    }

    /// The child of a valid `traceparent` value (Trace Context §3.2), with a new span id;
    /// `None` when it is invalid: a version other than `00` (or `ff`, forbidden), a trace id
    /// or parent id that is not lowercase hex of the right length or is all zeros, flags that
    /// are not two hex digits. A later version is read as `00` when its first four fields
    /// are (§3.2.4), as the spec asks.
    pub fn from_traceparent(value: &[u8]) -> Option<TraceContext> {
        let version: [u8; 1] = hex(value.get(..2)?)?;
        match version[0] {
            0x00 if value.len() == 55 => {}
            0xff | 0x00 => return None,
            _ if value.len() == 55 || (value.len() > 55 && value[55] == b'-') => {}
            _ => return None,
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let trace_id: [u8; 16] = hex(&value[3..35])?;
        let parent_id: [u8; 8] = hex(&value[36..52])?;
        let flags: [u8; 1] = hex(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id: Some(parent_id),
            span_id: random_id(),
            flags: flags[0],
            state: None,
        })
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The caller's span id (16 hex digits), when the request came with a valid
    /// `traceparent`.
    pub fn parent_id(&self) -> Option<String> {
        self.parent_id.as_ref().map(|id| to_hex(id))
    }

    /// Our span id (16 hex digits): the parent of the calls made downstream.
    pub fn span_id(&self) -> String {
        to_hex(&self.span_id)
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The `tracestate` the caller sent, to pass on unchanged (Trace Context §3.3).
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.state.as_ref()
    }

    /// The `traceparent` for calls made downstream on behalf of this request: version 00,
    /// this trace, our span id, the caller's flags.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }
}

impl FromRequestParts for TraceContext {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts.extensions.get::<TraceContext>().cloned().ok_or_else(|| {
            Error::from_problem(
                crate::Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR)
                    .with_code("extension.missing")
                    .with_detail(
                        "the request has no trace context: is the RequestIds middleware on this route?",
                    ),
            )
        })
    }
}

/// Gives each request an id and a trace context (see the [module documentation](self)).
///
/// Add it first on the app, so that the span covers every other layer's log lines.
#[derive(Debug, Clone)]
pub struct RequestIds {
    header: HeaderName,
    max_len: usize,
    trust_incoming: bool,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

impl RequestIds {
    /// Ids in `X-Request-Id`, incoming ones of up to 128 characters accepted.
    pub fn new() -> RequestIds {
        RequestIds {
            header: X_REQUEST_ID,
            max_len: 128,
            trust_incoming: true,
        }
    }

    /// Reads and writes the id in `header` instead (`X-Correlation-Id`, ...).
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Accepts incoming ids of at most `max` characters (128 by default); longer ones are
    /// replaced.
    pub fn max_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Always generates the id, ignoring the incoming one (for a server facing clients
    /// directly, whose ids would otherwise land unchecked in the logs).
    pub fn ignore_incoming(mut self) -> Self {
        self.trust_incoming = false;
        self
    }
}

impl Middleware for RequestIds {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let (mut parts, body) = request.into_parts();
        let incoming = parts
            .headers
            .get(&self.header)
            .filter(|_| self.trust_incoming)
            .and_then(|value| RequestId::parse(value.as_bytes(), self.max_len));
        let id = incoming.unwrap_or_else(RequestId::generate);
        let mut trace = parts
            .headers
            .get(TRACEPARENT)
            .and_then(|value| TraceContext::from_traceparent(value.as_bytes()));
        if let Some(trace) = &mut trace {
            trace.state = parts.headers.get(TRACESTATE).cloned();
        }
        let trace = trace.unwrap_or_else(TraceContext::new_root);
        let id_value = HeaderValue::from_str(id.as_str()).ok();
        if let Some(value) = &id_value {
            // Handlers that forward the request see the id they answer with.
            parts.headers.insert(self.header.clone(), value.clone());
        }
        let traceparent = HeaderValue::from_str(&trace.traceparent()).ok();
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            trace_id = %trace.trace_id(),
        );
        parts.extensions.insert(id);
        parts.extensions.insert(trace);
        let mut response = next
            .run(Request::from_parts(parts, body))
            .instrument(span)
            .await;
        if let Some(value) = id_value {
            response.headers_mut().insert(self.header.clone(), value);
        }
        if let Some(value) = traceparent {
            response.headers_mut().insert(TRACEPARENT, value);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_the_parent_of_a_new_span() {
        let trace = TraceContext::from_traceparent(VALID.as_bytes()).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id().as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(trace.span_id(), "00f067aa0ba902b7");
        assert_eq!(trace.flags(), 1);
        let down = trace.traceparent();
        assert!(down.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(down.ends_with("-01"));
        assert!(TraceContext::from_traceparent(down.as_bytes()).is_some());
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                TraceContext::from_traceparent(bad.as_bytes()).is_none(),
                "{bad}"
            );
        }
        // A later version with more fields is read as version 00.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert!(TraceContext::from_traceparent(later.as_bytes()).is_some());
    }

    #[test]
    fn request_ids_are_visible_ascii_of_bounded_length() {
        assert!(RequestId::parse(b"abc-123_~!", 128).is_some());
        assert!(RequestId::parse(b"", 128).is_none());
        assert!(RequestId::parse(b"has space", 128).is_none());
        assert!(RequestId::parse("caf\u{e9}".as_bytes(), 128).is_none());
        assert!(RequestId::parse(&[b'a'; 129], 128).is_none());
        assert!(RequestId::parse(&[b'a'; 128], 128).is_some());
        let generated = RequestId::generate();
        let uuid = uuid::Uuid::parse_str(generated.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
    }
}
