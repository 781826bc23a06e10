//! One request answered: the path below the mount, then a fresh entry of the open-file cache
//! or resolution and hashing on the blocking pool, then preconditions, ranges and headers.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, HeaderMap, HeaderValue, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE, VARY,
};
use http::{Method, StatusCode};
use weft_service::body::Body;
use weft_service::file::{FileIdentity, FileRegion};
use weft_service::runtime::spawn_blocking_or_inline;

use super::body::{Piece, PiecesBody};
use super::listing::{self, Entry};
use super::open_cache::{Key, Lookup, OpenCache, Served, Source};
use super::path::{self, PathError};
use super::range::{self, ByteRange, Evaluated};
use super::resolve::{self, Opened, Resolved};
use super::validators::{self, EtagCache, Version};
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
    File(Found),
    Listing(Vec<Entry>),
    RedirectToSlash,
    NotFound,
    Forbidden,
    Failed(std::io::Error),
}

/// A file resolved on the blocking pool.
enum Found {
    /// The cached entry, checked and unchanged.
    Unchanged(Arc<Served>),
    /// Opened now: its tag, and its content when small enough to hold in memory.
    Opened(Box<Opened>, ETag, Option<Bytes>),
}

/// Answers `request` from `files`: from the open-file `cache` when it holds a fresh entry (no
/// blocking hop), else by resolving the path on the blocking pool.
pub(super) async fn serve(
    files: &StaticFiles,
    cache: &OpenCache,
    redirect_root: bool,
    request: Request,
) -> Outcome {
    let root = files.root().map_err(|error| {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "static.root_unavailable",
            error.to_string(),
        )
    })?;
    let remainder = remainder(&request).ok_or_else(not_found)?;
    let accept = if files.precompressed {
        AcceptEncoding::from_headers(request.headers())
    } else {
        AcceptEncoding::parse("")
    };
    // Keyed by the raw path: an entry exists only for a path that was sanitised and resolved
    // to a file, so a hit needs neither again.
    let key = cache
        .settings()
        .is_enabled()
        .then(|| Key::new(remainder, redirect_root, &accept));
    let previous = match key.as_ref().map(|key| cache.get(key, Instant::now())) {
        Some(Lookup::Fresh(served)) => return file_response(&served, &request),
        Some(Lookup::Stale(served)) => Some(served),
        Some(Lookup::Missing) | None => None,
    };
    let safe = path::sanitize(remainder).map_err(path_error)?;
    let had_entry = previous.is_some();
    let prepared = prepare(files, root, safe, accept, redirect_root, cache, previous).await;
    if had_entry
        && !matches!(prepared, Prepared::File(_))
        && let Some(key) = &key
    {
        // The path no longer names a file: the stale entry (and its handle) goes.
        cache.remove(key);
    }
    match prepared {
        Prepared::File(found) => {
            let served = match found {
                Found::Unchanged(served) => served,
                Found::Opened(opened, etag, content) => {
                    Arc::new(served(files, *opened, etag, content))
                }
            };
            if let Some(key) = key {
                cache.insert(key, Arc::clone(&served), Instant::now());
            }
            file_response(&served, &request)
        }
        Prepared::Listing(entries) => Ok(listing_response(files, &request, &entries)),
        Prepared::RedirectToSlash => Ok(redirect_to_slash(&request)),
        Prepared::NotFound => Err(not_found()),
        Prepared::Forbidden => Err(forbidden()),
        Prepared::Failed(error) => Err(Error::from(error)),
    }
}

/// Resolves `safe` on the blocking pool, keeping `previous` when it still describes the file.
async fn prepare(
    files: &StaticFiles,
    root: &std::path::Path,
    safe: path::SafePath,
    accept: AcceptEncoding,
    redirect_root: bool,
    cache: &OpenCache,
    previous: Option<Arc<Served>>,
) -> Prepared {
    let config = files.config(root.to_owned());
    let etags = files.etags.clone();
    let content_limit = cache.settings().content_limit();
    spawn_blocking_or_inline(move || {
        match resolve::resolve(&config, &safe, &accept, redirect_root) {
            Resolved::File(opened) => found(opened, &etags, previous, content_limit),
            Resolved::Listing(entries) => Prepared::Listing(entries),
            Resolved::RedirectToSlash => Prepared::RedirectToSlash,
            Resolved::NotFound => Prepared::NotFound,
            Resolved::Forbidden => Prepared::Forbidden,
        }
    })
    .await
}

/// The file resolution found (blocking): the `previous` entry when the same file is still
/// there unchanged, else its tag and, up to `content_limit` bytes, its content.
fn found(
    mut opened: Box<Opened>,
    etags: &EtagCache,
    previous: Option<Arc<Served>>,
    content_limit: u64,
) -> Prepared {
    let version = Version::of(&opened.metadata);
    if let Some(previous) = previous
        && previous.version == version
        && previous.disk_path == opened.disk_path
        && previous.coding == opened.coding
        && previous.vary == opened.vary
    {
        return Prepared::File(Found::Unchanged(previous));
    }
    let content = if opened.metadata.len() <= content_limit {
        read_content(&mut opened.file, version, opened.metadata.len())
    } else {
        None
    };
    // Held content is hashed as it is held: its tag names exactly those bytes.
    let tag = match &content {
        Some(bytes) => Ok(validators::content_tag(bytes)),
        None => {
            let metadata = opened.metadata.clone();
            etags.etag(&opened.disk_path, &mut opened.file, &metadata)
        }
    };
    match tag {
        Ok(tag) if !matches_manifest(&opened, &tag) => Prepared::NotFound,
        Ok(tag) => Prepared::File(Found::Opened(opened, tag, content)),
        Err(error) => Prepared::Failed(error),
    }
}

/// The whole content of a small file (blocking); `None` when it could not be read whole or
/// changed while read (it is then sent from its handle, as a larger file is).
fn read_content(file: &mut File, version: Version, len: u64) -> Option<Bytes> {
    let mut content = Vec::with_capacity(usize::try_from(len).ok()?);
    file.seek(SeekFrom::Start(0)).ok()?;
    (&mut *file).take(len).read_to_end(&mut content).ok()?;
    file.seek(SeekFrom::Start(0)).ok()?;
    let unchanged = Version::of(&file.metadata().ok()?) == version;
    (unchanged && content.len() as u64 == len).then(|| Bytes::from(content))
}

/// What answers about the file need, built once per version of the file.
fn served(files: &StaticFiles, opened: Opened, etag: ETag, content: Option<Bytes>) -> Served {
    let modified = opened.metadata.modified().ok();
    let validator_headers = validator_headers(files, &opened, &etag, modified);
    let whole_file_headers = whole_file_headers(&validator_headers, &opened);
    let version = Version::of(&opened.metadata);
    let len = opened.metadata.len();
    let source = match content {
        Some(bytes) => Source::Content(bytes),
        None => {
            // The regions carry the identity the validators were computed from: a file
            // changed in place afterwards ends the body with an error instead of mixing
            // versions.
            let identity = FileIdentity::from_metadata(&opened.metadata);
            Source::Handle(Arc::new(opened.file), identity)
        }
    };
    Served {
        source,
        len,
        version,
        disk_path: opened.disk_path,
        coding: opened.coding,
        vary: opened.vary,
        validators: Validators::new(Some(etag.clone()), modified),
        etag,
        validator_headers,
        whole_file_headers,
        modified,
    }
}

/// Whether a file found through the asset manifest still has the content its hashed name
/// promises: the name's hash is the start of the content's SHA-256, as the tag is. A weak
/// tag (a file too large to hash) is not checked.
fn matches_manifest(opened: &Opened, tag: &ETag) -> bool {
    let Some(logical) = &opened.manifest_logical else {
        return true;
    };
    if tag.is_weak() {
        return true;
    }
    let Some(hash) = tag.tag().get(..crate::assets::HASH_LEN) else {
        return false;
    };
    let asked = opened.logical.to_string_lossy().replace('\\', "/");
    let promised = crate::assets::hashed_name(logical, hash);
    if asked == promised {
        true
    } else {
        tracing::warn!(
            target: "weft::static_files",
            asked = %asked,
            logical = %logical,
            "a content-hashed name no longer matches its file's content: 404"
        );
        false
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

/// The fields of a `200` with the whole file: the validators' and the content's.
fn whole_file_headers(validator_headers: &HeaderMap, opened: &Opened) -> HeaderMap {
    let mut headers = validator_headers.clone();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_TYPE, mime::content_type(&opened.logical));
    if let Some(coding) = opened.coding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(opened.metadata.len()));
    headers
}

fn file_response(served: &Served, request: &Request) -> Outcome {
    match served
        .validators
        .evaluate(request.method(), request.headers())
    {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response
                .headers_mut()
                .extend(served.validator_headers.clone());
            return Ok(response);
        }
        Precondition::Failed => return Err(precondition_failed()),
    }
    // One clone of fields built once per version of the file; a range changes two.
    let mut headers = served.whole_file_headers.clone();
    let len = served.len;
    let (status, body, length) = match requested_ranges(request, &served.etag, served.modified, len)
    {
        None => (StatusCode::OK, piece(served, 0, len)?.into_body(), len),
        Some(Evaluated::Unsatisfiable) => return Err(unsatisfiable(len)),
        Some(Evaluated::Satisfiable(ranges)) => match ranges.as_slice() {
            [single] => {
                headers.insert(CONTENT_RANGE, header(&single.content_range(len)));
                let body = piece(served, single.start, single.len())?.into_body();
                (StatusCode::PARTIAL_CONTENT, body, single.len())
            }
            several => {
                let content_type = headers[CONTENT_TYPE].clone();
                let mut parts = Vec::with_capacity(several.len());
                for range in several {
                    parts.push((*range, piece(served, range.start, range.len())?));
                }
                let (boundary, body) = multipart(parts, &content_type, len);
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
    // A new response has no fields: the map is moved in, not merged field by field.
    *response.headers_mut() = headers;
    Ok(response)
}

/// `len` bytes of the file from `offset` (within it): a slice of the content held in
/// memory, or a region of the open handle.
fn piece(served: &Served, offset: u64, len: u64) -> Result<Piece, Error> {
    match &served.source {
        Source::Content(bytes) => {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(offset.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            Ok(Piece::Bytes(bytes.slice(start..end)))
        }
        Source::Handle(file, identity) => {
            FileRegion::with_identity(Arc::clone(file), offset, len, *identity)
                .map(Piece::Region)
                .map_err(Error::from)
        }
    }
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
    regions: Vec<(ByteRange, Piece)>,
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
        pieces.push(region);
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
