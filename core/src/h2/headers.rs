//! Field sections of HTTP/2 as HTTP messages (RFC 9113 §8): the request a HEADERS block
//! carries, checked for every rule of §8.2 and §8.3, and the fields we send for a response,
//! trailers or a pushed request.
//!
//! Received fields come as [`HeaderField`]s whose bytes share the decoded header block; names,
//! values, the URI's parts and the `:protocol` keep sharing them (`from_maybe_shared`), so a
//! request costs no copy beyond custom field names (which [`HeaderName`] stores on its own).

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, Parts, PathAndQuery, Scheme};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::priority::PrioritySignal;
use crate::hpack::HeaderField;

/// A request received on an HTTP/2 stream, validated (RFC 9113 §8.3.1).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestHead {
    /// `:method`.
    pub method: Method,
    /// `:scheme`, `:authority` (or `host`) and `:path` as one URI; CONNECT has an
    /// authority-form URI.
    pub uri: Uri,
    /// The regular fields; several `cookie` fields joined with `"; "` (§8.2.3).
    pub headers: HeaderMap,
    /// `:protocol` of an extended CONNECT (RFC 8441 §4), e.g. `websocket`.
    pub protocol: Option<Protocol>,
    /// The `priority` field (RFC 9218 §5), defaults when absent.
    pub priority: PrioritySignal,
    /// `content-length`, when present: DATA must add up to it (§8.1.1).
    pub content_length: Option<u64>,
}

/// The `:protocol` pseudo-header of an extended CONNECT (RFC 8441 §4), put into a request's
/// extensions by [`RequestHead::into_request`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Protocol(pub Bytes);

impl RequestHead {
    /// The request as an [`http::Request`] (version HTTP/2) with `body`; the
    /// [`PrioritySignal`] and any [`Protocol`] go into its extensions.
    pub fn into_request<B>(self, body: B) -> http::Request<B> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = http::Version::HTTP_2;
        *request.headers_mut() = self.headers;
        request.extensions_mut().insert(self.priority);
        if let Some(protocol) = self.protocol {
            request.extensions_mut().insert(protocol);
        }
        request
    }
}

/// Why a field section is malformed (RFC 9113 §8.1.1): a stream error `PROTOCOL_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedHeaders {
    /// A pseudo-header after a regular field (§8.3).
    PseudoAfterRegular,
    /// A pseudo-header twice (§8.3).
    DuplicatePseudo,
    /// A pseudo-header this message kind does not define (§8.3), or `:protocol` without
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §4).
    UnknownPseudo,
    /// `:method`, `:scheme` or `:path` missing, or `:path` empty (§8.3.1).
    MissingPseudo,
    /// CONNECT with `:scheme`/`:path`, or without `:authority` (§8.5); extended CONNECT
    /// without `:scheme`/`:path` (RFC 8441 §4).
    BadConnect,
    /// A connection-specific field: `connection`, `keep-alive`, `proxy-connection`,
    /// `transfer-encoding`, `upgrade`, or `te` other than `trailers` (§8.2.2).
    ConnectionSpecific,
    /// A field name with uppercase or invalid characters (§8.2.1).
    InvalidName,
    /// A field value with NUL, CR, LF, or leading/trailing whitespace (§8.2.1).
    InvalidValue,
    /// `:authority` and `host` disagree, or the URI does not parse (§8.3.1).
    InvalidTarget,
    /// `content-length` not a number, or several that differ (RFC 9110 §8.6).
    InvalidContentLength,
    /// Pseudo-headers in trailers (§8.1).
    PseudoInTrailers,
    /// More fields than [`crate::Limits::max_headers`].
    TooManyFields,
}

/// The `priority` request field (RFC 9218 §5).
const PRIORITY: HeaderName = HeaderName::from_static("priority");

/// Checks a decoded request field section and builds the request.
///
/// Every rule of RFC 9113 §8.2 and §8.3.1 is checked in one pass over `fields`, with the
/// extended CONNECT of RFC 8441 §4 when `extended_connect` (we sent
/// SETTINGS_ENABLE_CONNECT_PROTOCOL). Field values are held to [`HeaderValue`]'s rules, which
/// are stricter than §8.2.1 in one way: other control characters than HTAB are refused too.
pub(crate) fn request_head(
    fields: impl IntoIterator<Item = HeaderField, IntoIter: ExactSizeIterator>,
    extended_connect: bool,
    max_fields: usize,
) -> Result<RequestHead, MalformedHeaders> {
    let fields = fields.into_iter();
    if fields.len() > max_fields {
        return Err(MalformedHeaders::TooManyFields);
    }
    let mut pseudo = RequestPseudo::default();
    let mut headers =
        HeaderMap::try_with_capacity(fields.len()).map_err(|_| MalformedHeaders::TooManyFields)?;
    for field in fields {
        if is_pseudo(&field.name) {
            if !headers.is_empty() {
                return Err(MalformedHeaders::PseudoAfterRegular);
            }
            pseudo.set(field, extended_connect)?;
        } else {
            append_regular(&mut headers, field)?;
        }
    }
    let method = pseudo.method()?;
    let protocol = pseudo.protocol.take().map(Protocol);
    let uri = request_target(&method, protocol.is_some(), pseudo, &headers)?;
    join_cookies(&mut headers)?;
    let content_length = content_length(&headers)?;
    let priority =
        PrioritySignal::parse_lines(headers.get_all(PRIORITY).iter().map(|v| v.as_bytes()));
    Ok(RequestHead {
        method,
        uri,
        headers,
        protocol,
        priority,
        content_length,
    })
}

/// Checks a decoded trailer section (no pseudo-headers, same field rules).
pub(crate) fn trailers(
    fields: Vec<HeaderField>,
    max_fields: usize,
) -> Result<HeaderMap, MalformedHeaders> {
    if fields.len() > max_fields {
        return Err(MalformedHeaders::TooManyFields);
    }
    let mut headers =
        HeaderMap::try_with_capacity(fields.len()).map_err(|_| MalformedHeaders::TooManyFields)?;
    for field in fields {
        if is_pseudo(&field.name) {
            return Err(MalformedHeaders::PseudoInTrailers);
        }
        append_regular(&mut headers, field)?;
    }
    Ok(headers)
}

/// Appends the fields of a response head: `:status` first, then the headers minus the
/// connection-specific ones, `authorization`/`cookie`/`set-cookie` marked sensitive.
///
/// The server encodes a response head from [`status_digits`] and [`outgoing`] directly,
/// without these copies; this spells out the same fields.
#[cfg(test)]
pub(crate) fn response_fields(status: StatusCode, headers: &HeaderMap, out: &mut Vec<HeaderField>) {
    out.reserve(headers.len().saturating_add(1));
    out.push(HeaderField::new(
        Bytes::from_static(b":status"),
        status_bytes(status),
    ));
    append_outgoing(headers, out);
}

/// Appends the fields of a trailer section (connection-specific ones dropped).
pub(crate) fn trailer_fields(trailers: &HeaderMap, out: &mut Vec<HeaderField>) {
    out.reserve(trailers.len());
    append_outgoing(trailers, out);
}

/// Appends the fields of a pushed request (§8.4): `:method`, `:scheme`, `:authority`, `:path`
/// then the headers. Refuses requests that are not safe and cacheable (GET or HEAD) or have
/// no scheme and authority.
///
/// Another method is refused as [`MalformedHeaders::InvalidValue`] (of `:method`); a URI
/// without scheme or authority as [`MalformedHeaders::MissingPseudo`]. Nothing is appended
/// then.
pub(crate) fn push_request_fields(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    out: &mut Vec<HeaderField>,
) -> Result<(), MalformedHeaders> {
    let method: &'static [u8] = match *method {
        Method::GET => b"GET",
        Method::HEAD => b"HEAD",
        _ => return Err(MalformedHeaders::InvalidValue),
    };
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(MalformedHeaders::MissingPseudo);
    };
    let scheme = match scheme.as_str() {
        "https" => Bytes::from_static(b"https"),
        "http" => Bytes::from_static(b"http"),
        other => Bytes::copy_from_slice(other.as_bytes()),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.is_empty() { "/" } else { path };
    out.reserve(headers.len().saturating_add(4));
    out.push(HeaderField::new(
        Bytes::from_static(b":method"),
        Bytes::from_static(method),
    ));
    out.push(HeaderField::new(Bytes::from_static(b":scheme"), scheme));
    out.push(HeaderField::new(
        Bytes::from_static(b":authority"),
        Bytes::copy_from_slice(authority.as_str().as_bytes()),
    ));
    out.push(HeaderField::new(
        Bytes::from_static(b":path"),
        Bytes::copy_from_slice(path.as_bytes()),
    ));
    append_outgoing(headers, out);
    Ok(())
}

/// The pseudo-header fields of a request (§8.3.1), as received.
#[derive(Debug, Default)]
struct RequestPseudo {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: Option<Bytes>,
}

impl RequestPseudo {
    /// Records one pseudo-header: each at most once (§8.3), `:protocol` only with extended
    /// CONNECT enabled (RFC 8441 §4), and no response pseudo-header (`:status`).
    fn set(&mut self, field: HeaderField, extended_connect: bool) -> Result<(), MalformedHeaders> {
        let slot = match &field.name[..] {
            b":method" => &mut self.method,
            b":scheme" => &mut self.scheme,
            b":authority" => &mut self.authority,
            b":path" => &mut self.path,
            b":protocol" if extended_connect => &mut self.protocol,
            _ => return Err(MalformedHeaders::UnknownPseudo),
        };
        if slot.is_some() {
            return Err(MalformedHeaders::DuplicatePseudo);
        }
        *slot = Some(field.value);
        Ok(())
    }

    fn method(&self) -> Result<Method, MalformedHeaders> {
        let method = self
            .method
            .as_ref()
            .ok_or(MalformedHeaders::MissingPseudo)?;
        Method::from_bytes(method).map_err(|_| MalformedHeaders::InvalidValue)
    }
}

/// The request's URI from its pseudo-headers and `host` (§8.3.1, §8.5, RFC 8441 §4).
fn request_target(
    method: &Method,
    extended: bool,
    pseudo: RequestPseudo,
    headers: &HeaderMap,
) -> Result<Uri, MalformedHeaders> {
    let connect = *method == Method::CONNECT;
    if extended && !connect {
        return Err(MalformedHeaders::BadConnect);
    }
    if connect && !extended {
        return connect_target(pseudo, headers);
    }
    if connect && (pseudo.scheme.is_none() || pseudo.path.is_none() || pseudo.authority.is_none()) {
        return Err(MalformedHeaders::BadConnect);
    }
    let scheme = pseudo.scheme.ok_or(MalformedHeaders::MissingPseudo)?;
    let path = pseudo.path.ok_or(MalformedHeaders::MissingPseudo)?;
    if path.is_empty() {
        return Err(MalformedHeaders::MissingPseudo);
    }
    let scheme = Scheme::try_from(&scheme[..]).map_err(|_| MalformedHeaders::InvalidTarget)?;
    check_path(method, &scheme, &path)?;
    let path =
        PathAndQuery::from_maybe_shared(path).map_err(|_| MalformedHeaders::InvalidTarget)?;
    let mut parts = Parts::default();
    if let Some(authority) = authority(pseudo.authority, headers)? {
        parts.scheme = Some(scheme);
        parts.authority = Some(authority);
    }
    parts.path_and_query = Some(path);
    Uri::from_parts(parts).map_err(|_| MalformedHeaders::InvalidTarget)
}

/// A plain CONNECT (§8.5): `:authority` only, with a port, as an authority-form URI.
fn connect_target(pseudo: RequestPseudo, headers: &HeaderMap) -> Result<Uri, MalformedHeaders> {
    if pseudo.scheme.is_some() || pseudo.path.is_some() || pseudo.authority.is_none() {
        return Err(MalformedHeaders::BadConnect);
    }
    let authority = authority(pseudo.authority, headers)?;
    if authority.as_ref().and_then(Authority::port_u16).is_none() {
        return Err(MalformedHeaders::InvalidTarget); // §8.5: host and port
    }
    let mut parts = Parts::default();
    parts.authority = authority;
    Uri::from_parts(parts).map_err(|_| MalformedHeaders::InvalidTarget)
}

/// `:path` of an `http` or `https` URI starts with `/`, or is `*` for OPTIONS (§8.3.1).
fn check_path(method: &Method, scheme: &Scheme, path: &[u8]) -> Result<(), MalformedHeaders> {
    let web = *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS;
    let valid = !web || path.starts_with(b"/") || (path == b"*" && *method == Method::OPTIONS);
    if valid {
        Ok(())
    } else {
        Err(MalformedHeaders::InvalidTarget)
    }
}

/// The request's authority: `:authority`, else `host`; both must agree when both are present
/// (§8.3.1), and neither may carry userinfo.
fn authority(
    pseudo: Option<Bytes>,
    headers: &HeaderMap,
) -> Result<Option<Authority>, MalformedHeaders> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(MalformedHeaders::InvalidTarget);
    }
    let authority = match (pseudo, host) {
        (Some(pseudo), Some(host)) if !pseudo.eq_ignore_ascii_case(host.as_bytes()) => {
            return Err(MalformedHeaders::InvalidTarget);
        }
        (Some(pseudo), _) => Authority::from_maybe_shared(pseudo),
        (None, Some(host)) => Authority::try_from(host.as_bytes()),
        (None, None) => return Ok(None),
    };
    match authority {
        Ok(authority) if !authority.as_str().contains('@') => Ok(Some(authority)),
        _ => Err(MalformedHeaders::InvalidTarget),
    }
}

/// Whether a field name is a pseudo-header's (§8.3).
fn is_pseudo(name: &[u8]) -> bool {
    name.first() == Some(&b':')
}

/// Checks one regular field (§8.2.1, §8.2.2) and adds it.
fn append_regular(headers: &mut HeaderMap, field: HeaderField) -> Result<(), MalformedHeaders> {
    let name =
        HeaderName::from_lowercase(&field.name).map_err(|_| MalformedHeaders::InvalidName)?;
    let value = field_value(field.value)?;
    if is_connection_specific(&name, &value) {
        return Err(MalformedHeaders::ConnectionSpecific);
    }
    headers
        .try_append(name, value)
        .map_err(|_| MalformedHeaders::TooManyFields)?;
    Ok(())
}

/// A field value without leading or trailing whitespace (§8.2.1), nor NUL, CR, LF or other
/// control characters ([`HeaderValue`]), sharing the received bytes.
fn field_value(value: Bytes) -> Result<HeaderValue, MalformedHeaders> {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    if value.first().is_some_and(is_space) || value.last().is_some_and(is_space) {
        return Err(MalformedHeaders::InvalidValue);
    }
    HeaderValue::from_maybe_shared(value).map_err(|_| MalformedHeaders::InvalidValue)
}

/// Fields that belong to one HTTP/1.1 connection and have no place in HTTP/2 (§8.2.2); `te`
/// may only say `trailers`.
fn is_connection_specific(name: &HeaderName, value: &HeaderValue) -> bool {
    if *name == header::TE {
        return !value.as_bytes().eq_ignore_ascii_case(b"trailers");
    }
    *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// Joins several `cookie` fields into one with `"; "` for HTTP/1.1-minded applications
/// (§8.2.3).
fn join_cookies(headers: &mut HeaderMap) -> Result<(), MalformedHeaders> {
    let cookies = headers.get_all(header::COOKIE);
    if cookies.iter().nth(1).is_none() {
        return Ok(());
    }
    let mut joined = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(cookie.as_bytes());
    }
    let joined = HeaderValue::from_maybe_shared(Bytes::from(joined))
        .map_err(|_| MalformedHeaders::InvalidValue)?;
    headers.insert(header::COOKIE, joined);
    Ok(())
}

/// The declared body length: digits only, and several `content-length` fields must agree
/// (RFC 9110 §8.6).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, MalformedHeaders> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let parsed =
            parse_decimal(value.as_bytes()).ok_or(MalformedHeaders::InvalidContentLength)?;
        if length.is_some_and(|length| length != parsed) {
            return Err(MalformedHeaders::InvalidContentLength);
        }
        length = Some(parsed);
    }
    Ok(length)
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = d.is_ascii_digit().then(|| u64::from(d - b'0'))?;
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// Appends outgoing regular fields, minus the connection-specific ones (§8.2.2), with the
/// secrets marked never-indexed (RFC 7541 §7.1.3).
fn append_outgoing(headers: &HeaderMap, out: &mut Vec<HeaderField>) {
    for (name, value, sensitive) in outgoing(headers) {
        out.push(HeaderField {
            name: name_bytes(name),
            value: Bytes::copy_from_slice(value.as_bytes()),
            sensitive,
        });
    }
}

/// The outgoing regular fields of `headers` (§8.2.2: minus the connection-specific ones),
/// each with whether it is a secret to send never-indexed (RFC 7541 §7.1.3).
pub(crate) fn outgoing(
    headers: &HeaderMap,
) -> impl Iterator<Item = (&HeaderName, &HeaderValue, bool)> {
    headers
        .iter()
        .filter(|(name, value)| !is_connection_specific(name, value))
        .map(|(name, value)| {
            let sensitive = value.is_sensitive()
                || *name == header::AUTHORIZATION
                || *name == header::COOKIE
                || *name == header::SET_COOKIE
                || *name == header::PROXY_AUTHORIZATION;
            (name, value, sensitive)
        })
}

/// A field name as bytes: common response names come from static memory, the rest is copied
/// (a [`HeaderName`] cannot hand out its bytes).
fn name_bytes(name: &HeaderName) -> Bytes {
    let common: &'static str = match name.as_str() {
        "accept-ranges" => "accept-ranges",
        "access-control-allow-origin" => "access-control-allow-origin",
        "age" => "age",
        "alt-svc" => "alt-svc",
        "cache-control" => "cache-control",
        "content-encoding" => "content-encoding",
        "content-language" => "content-language",
        "content-length" => "content-length",
        "content-range" => "content-range",
        "content-security-policy" => "content-security-policy",
        "content-type" => "content-type",
        "date" => "date",
        "etag" => "etag",
        "expires" => "expires",
        "last-modified" => "last-modified",
        "link" => "link",
        "location" => "location",
        "server" => "server",
        "set-cookie" => "set-cookie",
        "strict-transport-security" => "strict-transport-security",
        "vary" => "vary",
        "x-content-type-options" => "x-content-type-options",
        "x-frame-options" => "x-frame-options",
        other => return Bytes::copy_from_slice(other.as_bytes()),
    };
    Bytes::from_static(common.as_bytes())
}

/// Every status code from 000 to 999 as three ASCII digits, so `:status` costs no allocation.
static STATUS_DIGITS: [u8; 3000] = all_status_digits();

const fn all_status_digits() -> [u8; 3000] {
    let mut table = [0u8; 3000];
    let mut code = 0;
    while code < 1000 {
        table[code * 3] = b'0' + (code / 100) as u8;
        table[code * 3 + 1] = b'0' + (code / 10 % 10) as u8;
        table[code * 3 + 2] = b'0' + (code % 10) as u8;
        code += 1;
    }
    table
}

/// The `:status` value: three digits (§8.3.2).
#[cfg(test)]
fn status_bytes(status: StatusCode) -> Bytes {
    Bytes::from_static(status_digits(status))
}

/// The `:status` value as three digits (§8.3.2), from static memory.
pub(crate) fn status_digits(status: StatusCode) -> &'static [u8] {
    let start = usize::from(status.as_u16()).saturating_mul(3);
    // A StatusCode is 100 to 999: the fallback is never taken.
    STATUS_DIGITS
        .get(start..start.saturating_add(3))
        .unwrap_or(b"500")
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
