//! Conditional requests (RFC 9110 §13): entity tags ([`ETag`]), modification dates
//! ([`LastModified`]), the evaluation of `If-Match`, `If-None-Match`, `If-Modified-Since` and
//! `If-Unmodified-Since` in the order of §13.2.2 ([`Validators::evaluate`]), and the
//! [`Conditional`] middleware that answers `304 Not Modified` and `412 Precondition Failed`
//! for any `GET` or `HEAD` route.
//!
//! # The middleware and unsafe methods
//! [`Conditional`] evaluates the preconditions against the response the route produced, so it
//! only handles `GET` and `HEAD`, where running the handler changes nothing. For `PUT`,
//! `PATCH`, `DELETE` and `POST`, a precondition must be checked **before** the change is
//! made, which only the handler can do: it builds the current [`Validators`] and calls
//! [`Validators::evaluate`] first (412 on [`Precondition::Failed`], see
//! [`precondition_failed`]).
//!
//! ```
//! use weft::prelude::*;
//! use weft::conditional::{Conditional, ETag, Precondition, Validators, precondition_failed};
//!
//! async fn update(method: Method, headers: HeaderMap, body: String) -> Result<String, Error> {
//!     let current = Validators::new(Some(ETag::strong("v1")), None);
//!     match current.evaluate(&method, &headers) {
//!         Precondition::Proceed => Ok(format!("stored {body}")),
//!         _ => Err(precondition_failed()),
//!     }
//! }
//!
//! let app = App::new()
//!     .middleware(Conditional::new().etag_from_body(64 * 1024))
//!     .get("/doc", || async { ([ETag::strong("v1").header()], "the document") })
//!     .put("/doc", update);
//! # let _ = app;
//! ```
//!
//! With [`Compression`](crate::compression::Compression), add compression first (outermost),
//! so that this middleware compares the handler's own validators.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, HeaderMap, HeaderName, HeaderValue,
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED, VARY,
};
use http::{Method, StatusCode};
use http_body::Body as _;
use sha1::{Digest, Sha1};
use weft_service::body::Body;

use crate::Request;
use crate::error::Error;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;
use crate::response::{IntoResponse, Response};

/// An entity tag (RFC 9110 §8.8.3): an opaque validator of a representation, strong (the
/// same bytes) or weak (`W/`, an equivalent representation).
///
/// As a response part, `([ETag::strong("v3").header()], body)` sets the `ETag` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag {
    weak: bool,
    /// The opaque tag, without quotes; only `etagc` characters.
    tag: String,
}

impl ETag {
    /// A strong tag. Characters outside `etagc` (`"`, spaces, controls) are percent-encoded,
    /// so any string makes a valid field.
    pub fn strong(tag: impl AsRef<str>) -> ETag {
        ETag {
            weak: false,
            tag: escape(tag.as_ref()),
        }
    }

    /// A weak tag (`W/"tag"`), escaped as [`strong`](Self::strong) is.
    pub fn weak(tag: impl AsRef<str>) -> ETag {
        ETag {
            weak: true,
            tag: escape(tag.as_ref()),
        }
    }

    /// A strong tag naming exactly `bytes`: their SHA-1, in hex. The same bytes always get the
    /// same tag, on every server of a deployment, with no state kept.
    pub fn from_bytes(bytes: &[u8]) -> ETag {
        let digest = Sha1::digest(bytes);
        let mut tag = String::with_capacity(40);
        for byte in digest {
            tag.push_str(&format!("{byte:02x}"));
        }
        ETag { weak: false, tag }
    }

    /// Parses one entity tag: `"tag"` or `W/"tag"`; `None` when malformed.
    pub fn parse(value: &str) -> Option<ETag> {
        match parse_one(value.trim().as_bytes()) {
            Some((etag, [])) => Some(etag),
            _ => None,
        }
    }

    /// Whether the tag is weak.
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The opaque tag, without the quotes and the `W/`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The strong comparison (RFC 9110 §8.8.3.2): both strong and the same tag. What
    /// `If-Match` uses.
    pub fn strong_eq(&self, other: &ETag) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// The weak comparison (RFC 9110 §8.8.3.2): the same tag, weak or not. What
    /// `If-None-Match` uses.
    pub fn weak_eq(&self, other: &ETag) -> bool {
        self.tag == other.tag
    }

    /// The `ETag` field, as a response part: `([etag.header()], body)`.
    pub fn header(&self) -> (HeaderName, HeaderValue) {
        (ETAG, self.to_header_value())
    }

    /// The field value: `"tag"` or `W/"tag"`.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string()).expect("an entity tag holds only etagc characters")
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.tag)
    }
}

impl From<ETag> for HeaderValue {
    fn from(etag: ETag) -> HeaderValue {
        etag.to_header_value()
    }
}

/// `etagc` (RFC 9110 §8.8.3): `!`, `#`-`~`, and obs-text; anything else is percent-encoded
/// (and `%` too, so that distinct strings stay distinct).
fn escape(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for byte in tag.bytes() {
        if byte == b'!' || (0x23..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One entity tag at the start of `input`, and the rest.
fn parse_one(input: &[u8]) -> Option<(ETag, &[u8])> {
    let (weak, rest) = match input {
        [b'W', b'/', rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let [b'"', rest @ ..] = rest else {
        return None;
    };
    let end = rest.iter().position(|&b| b == b'"')?;
    let tag = &rest[..end];
    if !tag.iter().all(|&b| b == b'!' || b >= 0x23 && b != 0x7f) {
        return None;
    }
    // obs-text is kept as it is; a tag that is not UTF-8 is compared byte for byte through
    // a lossless mapping.
    let tag = tag.iter().map(|&b| b as char).collect();
    Some((ETag { weak, tag }, &rest[end + 1..]))
}

/// The value of `If-Match` or `If-None-Match`: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    /// `*`: any current representation.
    Any,
    /// The listed tags.
    List(Vec<ETag>),
}

impl EntityTags {
    /// Parses the fields `name` of `headers` (several lines make one list). `None` when there
    /// is none, `Some(Err(()))` when one is malformed.
    fn from_headers(headers: &HeaderMap, name: HeaderName) -> Option<Result<EntityTags, ()>> {
        let mut values = headers.get_all(name).iter().peekable();
        values.peek()?;
        let mut tags = Vec::new();
        for value in values {
            match EntityTags::parse(value.as_bytes()) {
                Some(EntityTags::Any) => return Some(Ok(EntityTags::Any)),
                Some(EntityTags::List(list)) => tags.extend(list),
                None => return Some(Err(())),
            }
        }
        Some(Ok(EntityTags::List(tags)))
    }

    /// Parses one field value: `*`, or a comma-separated list of entity tags (commas inside
    /// a tag's quotes are part of it). `None` when malformed.
    pub fn parse(value: &[u8]) -> Option<EntityTags> {
        let trimmed = value.trim_ascii();
        if trimmed == b"*" {
            return Some(EntityTags::Any);
        }
        let mut tags = Vec::new();
        let mut rest = trimmed;
        loop {
            rest = rest.trim_ascii_start();
            while let [b',', tail @ ..] = rest {
                rest = tail.trim_ascii_start();
            }
            if rest.is_empty() {
                break;
            }
            let (tag, tail) = parse_one(rest)?;
            tags.push(tag);
            rest = tail.trim_ascii_start();
            match rest {
                [] => break,
                [b',', ..] => {}
                _ => return None,
            }
        }
        Some(EntityTags::List(tags))
    }

    /// Whether `current` (the representation's tag; `None` when it has none but exists)
    /// matches, by the strong or the weak comparison.
    fn matches(&self, current: Option<&ETag>, strong: bool) -> bool {
        match (self, current) {
            (EntityTags::Any, _) => true,
            (EntityTags::List(_), None) => false,
            (EntityTags::List(tags), Some(current)) => tags.iter().any(|tag| {
                if strong {
                    tag.strong_eq(current)
                } else {
                    tag.weak_eq(current)
                }
            }),
        }
    }
}

/// A modification date for `Last-Modified`: `([LastModified(time).header()], body)` sets the
/// field (an HTTP date, whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastModified(pub SystemTime);

impl LastModified {
    /// The `Last-Modified` field, as a response part:
    /// `([LastModified(time).header()], body)`.
    pub fn header(&self) -> (HeaderName, HeaderValue) {
        (LAST_MODIFIED, self.to_header_value())
    }

    /// The field value, an IMF-fixdate (RFC 9110 §5.6.7).
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&httpdate::fmt_http_date(self.0))
            .expect("an HTTP date is a valid field value")
    }
}

/// Parses an HTTP date (IMF-fixdate, and the obsolete RFC 850 and asctime forms).
pub fn parse_http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// `time` rounded down to the whole second, the resolution of HTTP dates.
fn seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}

/// The validators of the selected representation, as preconditions are evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// Its entity tag.
    pub etag: Option<ETag>,
    /// Its last modification.
    pub last_modified: Option<SystemTime>,
    /// Whether there is a current representation at all: `If-Match: *` needs one,
    /// `If-None-Match: *` needs none.
    pub exists: bool,
}

/// What a request's preconditions decide (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Carry out the method.
    Proceed,
    /// `304 Not Modified` (only for `GET` and `HEAD`): the client's copy is current.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

impl Validators {
    /// The validators of an existing representation.
    pub fn new(etag: Option<ETag>, last_modified: Option<SystemTime>) -> Validators {
        Validators {
            etag,
            last_modified,
            exists: true,
        }
    }

    /// No current representation (a resource about to be created): `If-None-Match: *`
    /// passes, `If-Match` fails.
    pub fn missing() -> Validators {
        Validators {
            etag: None,
            last_modified: None,
            exists: false,
        }
    }

    /// The validators a response carries (`ETag`, `Last-Modified`).
    pub fn from_headers(headers: &HeaderMap) -> Validators {
        Validators::new(
            headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .and_then(ETag::parse),
            headers.get(LAST_MODIFIED).and_then(parse_http_date),
        )
    }

    /// Evaluates the preconditions of a request (`method`, `request` headers) in the order
    /// of RFC 9110 §13.2.2:
    /// 1. `If-Match` (strong comparison; `*` needs a current representation): false → 412;
    /// 2. else `If-Unmodified-Since` (a valid date, and a `Last-Modified` to compare):
    ///    modified since → 412;
    /// 3. `If-None-Match` (weak comparison): a match → 304 for GET/HEAD, 412 otherwise;
    /// 4. else, for GET/HEAD, `If-Modified-Since` (a valid date not in the future, and a
    ///    `Last-Modified`): not modified since → 304.
    ///
    /// A malformed `If-Match` fails (refusing is the safe answer to a lock one cannot read);
    /// a malformed `If-None-Match` is ignored, as are invalid dates (§13.1.3, §13.1.4).
    pub fn evaluate(&self, method: &Method, request: &HeaderMap) -> Precondition {
        let current = if self.exists {
            self.etag.as_ref()
        } else {
            None
        };
        match EntityTags::from_headers(request, IF_MATCH) {
            Some(Ok(tags)) => {
                let any = tags == EntityTags::Any;
                if (any && !self.exists) || (!any && !tags.matches(current, true)) {
                    return Precondition::Failed;
                }
            }
            Some(Err(())) => return Precondition::Failed,
            None => {
                let since = request.get(IF_UNMODIFIED_SINCE).and_then(parse_http_date);
                if let (Some(since), Some(modified)) = (since, self.last_modified)
                    && seconds(modified) > since
                {
                    return Precondition::Failed;
                }
            }
        }
        let safe = method == Method::GET || method == Method::HEAD;
        // A malformed If-None-Match is ignored, as if absent.
        if let Some(Ok(tags)) = EntityTags::from_headers(request, IF_NONE_MATCH) {
            let matched = if tags == EntityTags::Any {
                self.exists
            } else {
                tags.matches(current, false)
            };
            return match (matched, safe) {
                (false, _) => Precondition::Proceed,
                (true, true) => Precondition::NotModified,
                (true, false) => Precondition::Failed,
            };
        }
        if safe {
            let since = request.get(IF_MODIFIED_SINCE).and_then(parse_http_date);
            if let (Some(since), Some(modified)) = (since, self.last_modified)
                && since <= SystemTime::now()
                && seconds(modified) <= since
            {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }

    /// A `304 Not Modified` carrying these validators (`ETag`, and `Last-Modified` when
    /// there is no tag), for a handler that found the client's copy current.
    pub fn not_modified(&self) -> Response {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Some(etag) = &self.etag {
            response.headers_mut().insert(ETAG, etag.to_header_value());
        } else if let Some(modified) = self.last_modified {
            response
                .headers_mut()
                .insert(LAST_MODIFIED, LastModified(modified).to_header_value());
        }
        response
    }
}

/// `412 Precondition Failed` as problem+json (code `precondition.failed`).
pub fn precondition_failed() -> Error {
    Error::from_problem(
        Problem::new(StatusCode::PRECONDITION_FAILED)
            .with_code("precondition.failed")
            .with_detail("a precondition of the request (If-Match, If-None-Match or If-Unmodified-Since) does not hold for the current representation"),
    )
}

/// The fields a `304` keeps from the `200` it stands for (RFC 9110 §15.4.5).
const KEPT_ON_304: [HeaderName; 6] = [CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, VARY];

/// Turns the `200` a route produced into the `304` that stands for it.
fn into_not_modified(response: Response) -> Response {
    let (parts, _) = response.into_parts();
    let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
    let headers = not_modified.headers_mut();
    for name in KEPT_ON_304 {
        for value in parts.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    // Last-Modified only guides caches when there is no tag.
    if !parts.headers.contains_key(ETAG)
        && let Some(modified) = parts.headers.get(LAST_MODIFIED)
    {
        headers.insert(LAST_MODIFIED, modified.clone());
    }
    not_modified
}

/// Answers `304 Not Modified` and `412 Precondition Failed` for `GET` and `HEAD` routes, from
/// the validators (`ETag`, `Last-Modified`) of the response the route produced; optionally
/// gives responses without a tag a strong one computed from their bytes.
///
/// Only successful (2xx) responses are considered: preconditions never turn an error into
/// a `304` (RFC 9110 §13.2.1). Other methods pass through untouched (see the
/// [module documentation](self) for why, and how handlers check them).
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    hash_up_to: Option<usize>,
}

impl Conditional {
    /// Evaluates preconditions; computes no tags.
    pub fn new() -> Self {
        Conditional { hash_up_to: None }
    }

    /// Gives a `200` without an `ETag`, whose body is known to be at most `max_bytes` long,
    /// a strong tag: the SHA-1 of its bytes ([`ETag::from_bytes`]). The body is read into
    /// memory to be hashed, so keep the bound modest; streamed bodies of unknown length are
    /// never hashed.
    pub fn etag_from_body(mut self, max_bytes: usize) -> Self {
        self.hash_up_to = Some(max_bytes);
        self
    }

    async fn tag(&self, response: Response) -> Result<Response, Error> {
        let Some(max) = self.hash_up_to else {
            return Ok(response);
        };
        let fits = response
            .body()
            .size_hint()
            .upper()
            .is_some_and(|upper| upper <= max as u64);
        if response.status() != StatusCode::OK || response.headers().contains_key(ETAG) || !fits {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let bytes = body.collect(max).await?;
        parts
            .headers
            .insert(ETAG, ETag::from_bytes(&bytes).to_header_value());
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }
}

impl Middleware for Conditional {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return Ok(next.run(request).await);
        }
        let conditions: HeaderMap = [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
        ]
        .into_iter()
        .flat_map(|name| {
            request
                .headers()
                .get_all(&name)
                .iter()
                .map(|value| (name.clone(), value.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
        let response = next.run(request).await;
        if !response.status().is_success() {
            return Ok(response);
        }
        let response = self.tag(response).await?;
        if conditions.is_empty() {
            return Ok(response);
        }
        match Validators::from_headers(response.headers()).evaluate(&method, &conditions) {
            Precondition::Proceed => Ok(response),
            Precondition::NotModified => Ok(into_not_modified(response)),
            Precondition::Failed => Err(precondition_failed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_the_rfc_9110_table() {
        // RFC 9110 §8.8.3.2.
        let cases = [
            (r#"W/"1""#, r#"W/"1""#, false, true),
            (r#"W/"1""#, r#"W/"2""#, false, false),
            (r#"W/"1""#, r#""1""#, false, true),
            (r#""1""#, r#""1""#, true, true),
        ];
        for (a, b, strong, weak) in cases {
            let (a, b) = (ETag::parse(a).unwrap(), ETag::parse(b).unwrap());
            assert_eq!(a.strong_eq(&b), strong, "{a} {b}");
            assert_eq!(a.weak_eq(&b), weak, "{a} {b}");
        }
    }

    #[test]
    fn lists_parse_with_commas_inside_quotes() {
        assert_eq!(EntityTags::parse(b" * "), Some(EntityTags::Any));
        assert_eq!(
            EntityTags::parse(br#""a,b", W/"c" ,, "d""#),
            Some(EntityTags::List(vec![
                ETag::strong("a,b"),
                ETag::weak("c"),
                ETag::strong("d")
            ]))
        );
        assert_eq!(EntityTags::parse(b"abc"), None);
        assert_eq!(EntityTags::parse(br#""a" "b""#), None);
        assert_eq!(EntityTags::parse(br#""unterminated"#), None);
        assert_eq!(ETag::parse(r#"W/"x"#), None);
    }

    #[test]
    fn tags_are_escaped_to_valid_fields() {
        assert_eq!(ETag::strong("a b\"c").to_string(), "\"a%20b%22c\"");
        assert_eq!(ETag::weak("v1").to_string(), "W/\"v1\"");
        assert_eq!(ETag::from_bytes(b"hello").tag().len(), 40);
    }
}
