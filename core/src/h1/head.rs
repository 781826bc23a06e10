//! Request and response heads: parsed once by httparse, validated against RFC 9110/9112, and
//! turned into `http` types without copying field values.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::error::H1Error;
use super::framing::{BodyFraming, FramingFields, RequestFraming, ResponseFraming};
use crate::Limits;

/// The form of a request-target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`, the usual form.
    Origin,
    /// `http://host/path`, as sent to proxies.
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// A parsed and validated request head.
///
/// Field names are lower-cased by the `http` crate, and look-ups are case-insensitive; the
/// names exactly as the client wrote them are kept for proxies and for those who need them
/// ([`RequestHead::original_header_names`]).
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request-target as a URI.
    pub uri: Uri,
    /// The form the request-target was written in.
    pub target_form: TargetForm,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The header fields, values sharing memory with the received bytes.
    pub headers: HeaderMap,
    /// How the request body is framed.
    pub body: BodyFraming,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expects_continue: bool,
    /// Whether the client asks to switch protocols (`Connection: upgrade` plus `Upgrade`), or to
    /// open a tunnel (CONNECT).
    pub wants_upgrade: bool,
    /// Whether the client allows the connection to persist after this exchange.
    pub keep_alive: bool,
    raw: Bytes,
}

/// A parsed and validated response head, as the client role sees it.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The reason phrase, which carries no meaning (RFC 9112 §4).
    pub reason: Bytes,
    /// The header fields.
    pub headers: HeaderMap,
    /// How the response body is framed, given the request it answers.
    pub body: BodyFraming,
    /// Whether the server allows the connection to persist after this exchange.
    pub keep_alive: bool,
    raw: Bytes,
}

impl RequestHead {
    /// The field names in the order and case the client sent them, one per field line.
    pub fn original_header_names(&self) -> impl Iterator<Item = &[u8]> {
        original_names(&self.raw)
    }

    /// The head exactly as received (without leading empty lines), ending in the blank line.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Turns the head into an `http::Request` carrying `body`.
    pub fn into_request<B>(self, body: B) -> http::Request<B> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        request
    }
}

impl ResponseHead {
    /// The field names in the order and case the server sent them.
    pub fn original_header_names(&self) -> impl Iterator<Item = &[u8]> {
        original_names(&self.raw)
    }

    /// Turns the head into an `http::Response` carrying `body`.
    pub fn into_response<B>(self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Field names of a validated head: the part before ':' of every line after the first.
fn original_names(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        line.iter()
            .position(|&b| b == b':')
            .map(|colon| &line[..colon])
    })
}

/// Header slots kept on the stack; a larger `max_headers` falls back to the heap.
const STACK_HEADER_SLOTS: usize = 128;

/// Runs `parse` with `max_headers` uninitialised httparse header slots.
fn with_header_slots<'b, R>(
    max_headers: usize,
    parse: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if max_headers <= STACK_HEADER_SLOTS {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADER_SLOTS];
        parse(&mut slots[..max_headers])
    } else {
        let mut slots = Vec::with_capacity(max_headers);
        slots.resize_with(max_headers, MaybeUninit::uninit);
        parse(&mut slots)
    }
}

/// Parses a complete request head: `raw` runs from the request line to the blank line.
pub(crate) fn parse_request(raw: Bytes, limits: &Limits) -> Result<RequestHead, H1Error> {
    let raw = &raw;
    with_header_slots(limits.max_headers, |slots| {
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(raw, slots) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(classify_request_error(raw, None)),
            Err(e) => return Err(classify_request_error(raw, Some(e))),
        }
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(classify_request_error(raw, None));
        };
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| H1Error::InvalidMethod)?;
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if target.len() > limits.max_request_target_len {
            return Err(H1Error::RequestTargetTooLong);
        }
        let (uri, target_form) = parse_target(&method, raw.slice_ref(target.as_bytes()))?;
        let mut framing = FramingFields::default();
        let headers = collect_headers(raw, req.headers, &mut framing)?;
        let RequestFraming {
            body,
            keep_alive,
            expects_continue,
            wants_upgrade,
        } = framing.request(version)?;
        Ok(RequestHead {
            wants_upgrade: wants_upgrade || method == Method::CONNECT,
            method,
            uri,
            target_form,
            version,
            headers,
            body,
            expects_continue,
            keep_alive,
            raw: raw.clone(),
        })
    })
}

/// Parses a complete response head answering a request made with `request_method`.
pub(crate) fn parse_response(
    raw: Bytes,
    request_method: &Method,
    limits: &Limits,
) -> Result<ResponseHead, H1Error> {
    let raw = &raw;
    with_header_slots(limits.max_headers, |slots| {
        let mut res = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, raw, slots);
        match parsed {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(H1Error::InvalidStatusLine),
            Err(httparse::Error::Version) => return Err(classify_version(status_line(raw))),
            Err(e) => return Err(classify_field_error(raw, e, H1Error::InvalidStatusLine)),
        }
        let (Some(code), Some(minor)) = (res.code, res.version) else {
            return Err(H1Error::InvalidStatusLine);
        };
        let status = StatusCode::from_u16(code).map_err(|_| H1Error::InvalidStatusLine)?;
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let reason = raw.slice_ref(res.reason.unwrap_or("").as_bytes());
        let mut framing = FramingFields::default();
        let headers = collect_headers(raw, res.headers, &mut framing)?;
        let ResponseFraming { body, keep_alive } =
            framing.response(version, status, request_method)?;
        Ok(ResponseHead {
            status,
            version,
            reason,
            headers,
            body,
            keep_alive,
            raw: raw.clone(),
        })
    })
}

/// Builds the header map, sharing value bytes with `raw`, while noting framing fields.
fn collect_headers(
    raw: &Bytes,
    fields: &[httparse::Header<'_>],
    framing: &mut FramingFields,
) -> Result<HeaderMap, H1Error> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| H1Error::InvalidHeaderName)?;
        framing.observe(&name, field.value);
        let value = HeaderValue::from_maybe_shared(raw.slice_ref(field.value))
            .map_err(|_| H1Error::InvalidHeaderValue)?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Checks the request-target against its method (RFC 9112 §3.2) and parses it.
fn parse_target(method: &Method, target: Bytes) -> Result<(Uri, TargetForm), H1Error> {
    let form = match target.first() {
        _ if method == Method::CONNECT => TargetForm::Authority,
        Some(b'/') => TargetForm::Origin,
        Some(b'*') if target.len() == 1 => TargetForm::Asterisk,
        _ => TargetForm::Absolute,
    };
    if form == TargetForm::Asterisk && method != Method::OPTIONS {
        return Err(H1Error::TargetFormMismatch);
    }
    // RFC 9112 §3.2: no form of request-target has a fragment (the `http` crate would drop it
    // silently, and the application would see another target than the one sent).
    if target.contains(&b'#') {
        return Err(H1Error::InvalidRequestTarget);
    }
    let uri = Uri::from_maybe_shared(target).map_err(|_| H1Error::InvalidRequestTarget)?;
    let parts_fit = match form {
        TargetForm::Origin => uri.scheme().is_none() && uri.authority().is_none(),
        TargetForm::Asterisk => true,
        TargetForm::Absolute => {
            // `host:port` is authority-form, which only CONNECT may use (RFC 9112 §3.2.3).
            if uri.scheme().is_none() && uri.authority().is_some_and(|a| a.port().is_some()) {
                return Err(H1Error::TargetFormMismatch);
            }
            // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
            let userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
            uri.scheme().is_some() && uri.authority().is_some() && !userinfo
        }
        // RFC 9112 §3.2.3: authority-form = uri-host ":" port, and nothing else.
        TargetForm::Authority => {
            let authority_only = uri.scheme().is_none() && uri.path_and_query().is_none();
            let has_port = uri.authority().is_some_and(|a| a.port().is_some());
            let no_userinfo = uri.authority().is_some_and(|a| !a.as_str().contains('@'));
            if !(authority_only && has_port && no_userinfo) {
                return Err(H1Error::TargetFormMismatch);
            }
            true
        }
    };
    if parts_fit {
        Ok((uri, form))
    } else {
        Err(H1Error::InvalidRequestTarget)
    }
}

/// The first line of a head, without its CRLF.
fn status_line(raw: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\r', raw).unwrap_or(raw.len());
    &raw[..end]
}

/// Names the rule a request head broke, from httparse's error and a second look at the bytes.
/// Only runs on the error path, so it may re-scan.
fn classify_request_error(raw: &[u8], error: Option<httparse::Error>) -> H1Error {
    // The request line runs to its LF; a CR anywhere before its final CRLF is a bare CR.
    let line = &raw[..memchr::memchr(b'\n', raw).unwrap_or(raw.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\r') {
        return H1Error::BareCarriageReturn;
    }
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next();
    let version = parts.next();
    let start_line_error = if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) {
        H1Error::InvalidMethod
    } else if target.is_none_or(|t| t.is_empty() || t.iter().any(|&b| !is_target_byte(b))) {
        H1Error::InvalidRequestTarget
    } else if let Some(version) = version {
        classify_version(version)
    } else {
        H1Error::InvalidVersion
    };
    match error {
        Some(httparse::Error::Token | httparse::Error::Version) | None => start_line_error,
        // httparse reports bytes after the version (`HTTP/1.1x`, `HTTP/1.1 `) as NewLine.
        Some(e) => classify_field_error(raw, e, start_line_error),
    }
}

/// `HTTP/2.0` is well-formed but unsupported (505); anything else not `HTTP/1.x` is malformed.
fn classify_version(version: &[u8]) -> H1Error {
    // For a status line the version is the first token.
    let version = version
        .split(|&b| b == b' ')
        .find(|t| t.starts_with(b"HTTP/"))
        .unwrap_or(version);
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
        {
            H1Error::UnsupportedVersion
        }
        _ => H1Error::InvalidVersion,
    }
}

/// Names the rule broken in the field lines (or the start line, as `start_line_error`).
fn classify_field_error(raw: &[u8], error: httparse::Error, start_line_error: H1Error) -> H1Error {
    let mut lines = raw.split(|&b| b == b'\n');
    let start = lines.next().unwrap_or_default();
    let cr_inside = |l: &[u8]| {
        l.iter()
            .take(l.len().saturating_sub(1))
            .any(|&b| b == b'\r')
    };
    if cr_inside(start) {
        return H1Error::BareCarriageReturn;
    }
    for (index, line) in lines.enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.contains(&b'\r') {
            return H1Error::BareCarriageReturn;
        }
        if matches!(line[0], b' ' | b'\t') {
            return if index == 0 {
                H1Error::WhitespaceAfterStartLine
            } else {
                H1Error::ObsoleteLineFolding
            };
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return H1Error::InvalidHeaderName;
        };
        let name = &line[..colon];
        if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
            return H1Error::WhitespaceBeforeColon;
        }
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return H1Error::InvalidHeaderName;
        }
        if line[colon + 1..]
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return H1Error::InvalidHeaderValue;
        }
    }
    match error {
        httparse::Error::TooManyHeaders => H1Error::TooManyHeaders,
        httparse::Error::HeaderName => H1Error::InvalidHeaderName,
        httparse::Error::HeaderValue => H1Error::InvalidHeaderValue,
        // No field line holds a bare CR, so the start line ended badly.
        _ => start_line_error,
    }
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes of a request-target that cannot be why httparse refused it: visible ASCII. It takes
/// bytes over 0x7f only when the target is valid UTF-8, so on this error path they are the
/// fault.
fn is_target_byte(b: u8) -> bool {
    b.is_ascii_graphic()
}
