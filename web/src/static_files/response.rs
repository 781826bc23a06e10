//! One request answered: the path below the mount, resolution and hashing on the blocking
//! pool, then preconditions, ranges and headers.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, HeaderMap, HeaderValue, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE, VARY,
};
use http::{Method, StatusCode};
use weft_service::body::Body;
use weft_service::file::{FileIdentity, FileRegion};
use weft_service::runtime::RuntimeHandle;

use super::body::{Piece, PiecesBody};
use super::listing::{self, Entry};
use super::path::{self, PathError};
use super::range::{self, ByteRange, Evaluated};
use super::resolve::{self, Opened, Resolved};
use super::{StaticFiles, mime};
use crate::Request;
use crate::compression::AcceptEncoding;
use crate::conditional::{ETag, LastModified, Precondition, Validators, precondition_failed};
use crate::error::Error;
use crate::extract::PathParams;
use crate::handler::Outcome;
use crate::problem::Problem;
use crate::response::{IntoResponse, Response};

/// What the blocking part found.
enum Prepared {
    File(Box<Opened>, ETag),
    Listing(Vec<Entry>),
    RedirectToSlash,
    NotFound,
    Forbidden,
    Failed(std::io::Error),
}

/// Answers `request` from `files`.
pub(super) async fn serve(files: &StaticFiles, redirect_root: bool, request: Request) -> Outcome {
    let root = files.root().map_err(|error| {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "static.root_unavailable",
            error.to_string(),
        )
    })?;
    let remainder = remainder(&request).ok_or_else(not_found)?;
    let safe = path::sanitize(remainder).map_err(path_error)?;
    let accept = if files.precompressed {
        AcceptEncoding::from_headers(request.headers())
    } else {
        AcceptEncoding::parse("")
    };
    let config = files.config(root.to_owned());
    let etags = files.etags.clone();
    let prepared =
        blocking(
            move || match resolve::resolve(&config, &safe, &accept, redirect_root) {
                Resolved::File(mut opened) => {
                    let metadata = opened.metadata.clone();
                    match etags.etag(&opened.disk_path, &mut opened.file, &metadata) {
                        Ok(tag) => Prepared::File(opened, tag),
                        Err(error) => Prepared::Failed(error),
                    }
                }
                Resolved::Listing(entries) => Prepared::Listing(entries),
                Resolved::RedirectToSlash => Prepared::RedirectToSlash,
                Resolved::NotFound => Prepared::NotFound,
                Resolved::Forbidden => Prepared::Forbidden,
            },
        )
        .await;
    match prepared {
        Prepared::File(opened, etag) => file_response(files, opened, etag, &request),
        Prepared::Listing(entries) => Ok(listing_response(files, &request, &entries)),
        Prepared::RedirectToSlash => Ok(redirect_to_slash(&request)),
        Prepared::NotFound => Err(not_found()),
        Prepared::Forbidden => Err(forbidden()),
        Prepared::Failed(error) => Err(Error::from(error)),
    }
}

/// Runs `work` on the runtime's blocking pool, or here when there is no runtime.
async fn blocking<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match RuntimeHandle::try_current() {
        Some(runtime) => runtime.spawn_blocking(work).await,
        None => work(),
    }
}

/// The raw (still encoded) request path below the mount point: the route's pattern up to
/// its `{*path}` (without the slash) is the mount's own, matched literally.
fn remainder(request: &Request) -> Option<&str> {
    let pattern = request.extensions().get::<PathParams>()?.pattern()?;
    let literal = pattern.split("{*path}").next().unwrap_or("");
    let literal = literal.trim_end_matches('/');
    request.uri().path().strip_prefix(literal)
}

fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Error {
    Error::from_problem(Problem::new(status).with_code(code).with_detail(detail))
}

fn not_found() -> Error {
    problem(StatusCode::NOT_FOUND, "static.not_found", "no such file")
}

fn forbidden() -> Error {
    problem(
        StatusCode::FORBIDDEN,
        "static.forbidden_path",
        "this path may not be served",
    )
}

fn path_error(error: PathError) -> Error {
    match error {
        PathError::Traversal => problem(
            StatusCode::FORBIDDEN,
            "static.forbidden_path",
            error.to_string(),
        ),
        PathError::MalformedEncoding | PathError::ControlByte | PathError::TooDeep => problem(
            StatusCode::BAD_REQUEST,
            "static.bad_path",
            error.to_string(),
        ),
    }
}

/// `308` to the path with a slash; the query kept. Leading slashes are collapsed so that
/// the target can never be read as another host (`//evil.example`).
fn redirect_to_slash(request: &Request) -> Response {
    let path = request.uri().path();
    let mut location = format!("/{}/", path.trim_start_matches('/'));
    if let Some(query) = request.uri().query() {
        location.push('?');
        location.push_str(query);
    }
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn listing_response(files: &StaticFiles, request: &Request, entries: &[Entry]) -> Response {
    let title = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
    let page = listing::render(&title, entries);
    let mut response = Response::new(Body::from(page));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(value) = files.cache_control.for_html() {
        headers.insert(CACHE_CONTROL, value.clone());
    }
    response
}

/// The headers every answer about the file carries, `304` included.
fn validator_headers(
    files: &StaticFiles,
    opened: &Opened,
    etag: &ETag,
    modified: Option<SystemTime>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ETAG, etag.to_header_value());
    if let Some(modified) = modified {
        headers.insert(LAST_MODIFIED, LastModified(modified).to_header_value());
    }
    let name = opened
        .logical
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    if let Some(value) = files
        .cache_control
        .for_file(name, mime::is_html(&opened.logical))
    {
        headers.insert(CACHE_CONTROL, value.clone());
    }
    if opened.vary {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers
}

fn file_response(
    files: &StaticFiles,
    opened: Box<Opened>,
    etag: ETag,
    request: &Request,
) -> Outcome {
    let modified = opened.metadata.modified().ok();
    let mut headers = validator_headers(files, &opened, &etag, modified);
    let validators = Validators::new(Some(etag.clone()), modified);
    match validators.evaluate(request.method(), request.headers()) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().extend(headers);
            return Ok(response);
        }
        Precondition::Failed => return Err(precondition_failed()),
    }
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_TYPE, mime::content_type(&opened.logical));
    if let Some(coding) = opened.coding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
    }
    let len = opened.metadata.len();
    // The regions carry the identity the validators were computed from: a file changed in
    // place afterwards ends the body with an error instead of mixing versions.
    let identity = FileIdentity::from_metadata(&opened.metadata);
    let file = Arc::new(opened.file);
    let region = |offset: u64, len: u64| {
        FileRegion::with_identity(Arc::clone(&file), offset, len, identity).map_err(Error::from)
    };
    let (status, body, length) = match requested_ranges(request, &etag, modified, len) {
        None => (StatusCode::OK, Body::file(region(0, len)?), len),
        Some(Evaluated::Unsatisfiable) => return Err(unsatisfiable(len)),
        Some(Evaluated::Satisfiable(ranges)) => match ranges.as_slice() {
            [single] => {
                headers.insert(CONTENT_RANGE, header(&single.content_range(len)));
                let body = Body::file(region(single.start, single.len())?);
                (StatusCode::PARTIAL_CONTENT, body, single.len())
            }
            several => {
                let content_type = headers[CONTENT_TYPE].clone();
                let mut regions = Vec::with_capacity(several.len());
                for range in several {
                    regions.push((*range, region(range.start, range.len())?));
                }
                let (boundary, body) = multipart(regions, &content_type, len);
                headers.insert(
                    CONTENT_TYPE,
                    header(&format!("multipart/byteranges; boundary={boundary}")),
                );
                let length = body.len();
                (StatusCode::PARTIAL_CONTENT, Body::new(body), length)
            }
        },
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    Ok(response)
}

fn header(value: &str) -> HeaderValue {
    // Built from numbers, tokens and an already valid content type.
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The ranges to send: `None` for the whole file (no `Range`, a malformed one, a `HEAD`, or
/// an `If-Range` that does not match).
fn requested_ranges(
    request: &Request,
    etag: &ETag,
    modified: Option<SystemTime>,
    len: u64,
) -> Option<Evaluated> {
    if request.method() != Method::GET {
        return None;
    }
    let value = request.headers().get(RANGE)?.to_str().ok()?;
    if let Some(if_range) = request.headers().get(IF_RANGE)
        && !if_range_matches(if_range, etag, modified)
    {
        return None;
    }
    let specs = range::parse(value).ok()?;
    Some(range::evaluate(&specs, len))
}

/// `If-Range` (RFC 9110 §13.1.5): a strong tag equal to the current one, or a date equal
/// to `Last-Modified` when that date is a strong validator (over a second old).
fn if_range_matches(value: &HeaderValue, etag: &ETag, modified: Option<SystemTime>) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        return ETag::parse(text).is_some_and(|tag| tag.strong_eq(etag));
    }
    let (Some(date), Some(modified)) = (crate::conditional::parse_http_date(value), modified)
    else {
        return false;
    };
    let seconds = |time: SystemTime| time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok();
    let old_enough = SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age.as_secs() >= 1);
    old_enough && seconds(date).is_some() && seconds(date) == seconds(modified)
}

fn unsatisfiable(len: u64) -> Error {
    problem(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "static.range_not_satisfiable",
        "no requested range is within the file",
    )
    .with_header(CONTENT_RANGE, header(&format!("bytes */{len}")))
    .with_header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))
}

/// The body of a `multipart/byteranges` answer (RFC 9110 §14.6) and its boundary.
fn multipart(
    regions: Vec<(ByteRange, FileRegion)>,
    content_type: &HeaderValue,
    len: u64,
) -> (String, PiecesBody) {
    let boundary = boundary();
    let content_type = content_type.to_str().unwrap_or("application/octet-stream");
    let mut pieces = Vec::with_capacity(regions.len() * 2 + 1);
    for (range, region) in regions {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(len)
        );
        pieces.push(Piece::Bytes(Bytes::from(head)));
        pieces.push(Piece::Region(region));
    }
    pieces.push(Piece::Bytes(Bytes::from(format!("\r\n--{boundary}--\r\n"))));
    (boundary, PiecesBody::new(pieces))
}

/// A random boundary: no file content can be made to contain it on purpose.
fn boundary() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Without randomness, a fixed but unusual boundary; still valid framing.
        return "weft-byteranges-boundary-3c1f".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
