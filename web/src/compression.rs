//! Content codings: [`Compression`] compresses responses (brotli, gzip, deflate) as the
//! client's `Accept-Encoding` allows, and [`RequestDecompression`] decodes request bodies sent
//! with a `Content-Encoding`, within a size limit.
//!
//! # Responses
//! The coding is negotiated per RFC 9110 §12.5.3: each coding's q-value from
//! `Accept-Encoding` (`*` standing for the codings not named, `q=0` meaning "not acceptable"),
//! the highest q winning and the server's preference (br > gzip > deflate) breaking ties.
//! Identity (no coding) is acceptable unless refused by `identity;q=0`, or by `*;q=0` without
//! an `identity` entry; when a response would be compressed, nothing the server offers is
//! acceptable and identity is refused, a successful (2xx) response becomes
//! `406 Not Acceptable` (problem+json, code `encoding.not_acceptable`).
//!
//! A response is left as it is when it is to a `HEAD` request; a `1xx`, `204`, `206` or
//! `304`; carries `Content-Range`, `Content-Encoding` or `Cache-Control: no-transform`
//! (RFC 9110 §7.7); is an event stream (`text/event-stream`); has a content type that is
//! already compressed (images but SVG, audio, video, archives, woff/woff2, …); or is smaller
//! than the threshold (860 bytes by default, from the body's size hint: a streamed body of
//! unknown length is compressed).
//!
//! A compressed body is encoded as it streams: every chunk the handler sends is compressed
//! and flushed on its own (a sync flush), so a stream's pieces reach the client when they are
//! sent, never held back for more input, and the whole body is never buffered. The response
//! loses its `Content-Length`, gains `Content-Encoding` and `Vary: Accept-Encoding`, and a
//! strong `ETag` becomes weak (`W/`), since the bytes are no longer those it named
//! (RFC 9110 §8.8.3).
//!
//! Put [`Compression`] outside [`Conditional`](crate::conditional::Conditional) (add it
//! first), so that the ETags compared are the handler's.
//!
//! ```
//! use weft::prelude::*;
//! use weft::compression::{Compression, RequestDecompression};
//!
//! let app = App::new()
//!     .middleware(Compression::new().min_size(1024))
//!     .middleware(RequestDecompression::new().max_size(4 << 20))
//!     .get("/", || async { "hello ".repeat(1000) });
//! # let _ = app;
//! ```

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, HeaderMap, HeaderValue, VARY,
};
use http::{Method, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use weft_service::body::{Body, BoxError};

use crate::Request;
use crate::error::Error;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;
use crate::response::Response;

/// A content coding weft can produce and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// `br`: Brotli (RFC 7932), the best ratio for text.
    Brotli,
    /// `gzip` (RFC 1952), understood by every client.
    Gzip,
    /// `deflate`: the zlib format (RFC 1950) around a deflate stream (RFC 9110 §8.4.1.2).
    Deflate,
}

impl Coding {
    /// Every coding, in the server's order of preference.
    pub const ALL: [Coding; 3] = [Coding::Brotli, Coding::Gzip, Coding::Deflate];

    /// The coding's token in `Accept-Encoding` and `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }

    /// The coding a token names (case-insensitively; `x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(token: &str) -> Option<Coding> {
        let token = token.trim();
        if token.eq_ignore_ascii_case("br") {
            Some(Coding::Brotli)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else if token.eq_ignore_ascii_case("deflate") {
            Some(Coding::Deflate)
        } else {
            None
        }
    }
}

/// What a client's `Accept-Encoding` allows (RFC 9110 §12.5.3): the q-value of each coding
/// weft knows, of `identity` and of `*`. Parsing never fails: malformed elements are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptEncoding {
    /// q-values of br, gzip, deflate (in [`Coding::ALL`] order), when named.
    codings: [Option<f32>; 3],
    identity: Option<f32>,
    any: Option<f32>,
}

/// The outcome of negotiating a coding: see [`AcceptEncoding::choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Send the body in this coding.
    Encode(Coding),
    /// Send the body as it is.
    Identity,
    /// Nothing offered is acceptable and identity is refused.
    NotAcceptable,
}

impl AcceptEncoding {
    /// The `Accept-Encoding` of a request's headers; several fields are joined as one list. No
    /// field at all is taken as "identity only": RFC 9110 allows any coding then, but clients
    /// that send none (scripts, old proxies) rarely decode one.
    pub fn from_headers(headers: &HeaderMap) -> AcceptEncoding {
        let mut accept = AcceptEncoding {
            codings: [None; 3],
            identity: None,
            any: None,
        };
        for value in headers.get_all(ACCEPT_ENCODING) {
            if let Ok(value) = value.to_str() {
                accept.add(value);
            }
        }
        accept
    }

    /// Parses one `Accept-Encoding` field value.
    pub fn parse(value: &str) -> AcceptEncoding {
        let mut accept = AcceptEncoding {
            codings: [None; 3],
            identity: None,
            any: None,
        };
        accept.add(value);
        accept
    }

    fn add(&mut self, value: &str) {
        for element in value.split(',') {
            let mut parts = element.split(';');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            let mut q = Some(1.0);
            for parameter in parts {
                let Some((name, value)) = parameter.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(value.trim());
                }
            }
            // An element with a malformed q-value is ignored, as if it were not there.
            let Some(q) = q else { continue };
            let slot = if token == "*" {
                &mut self.any
            } else if token.eq_ignore_ascii_case("identity") {
                &mut self.identity
            } else if let Some(coding) = Coding::from_token(token) {
                &mut self.codings[coding as usize]
            } else {
                continue;
            };
            // A coding named twice keeps its highest q-value.
            *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
        }
    }

    /// The q-value of `coding`: its own, else that of `*`, else 0.
    pub fn quality(&self, coding: Coding) -> f32 {
        self.codings[coding as usize].or(self.any).unwrap_or(0.0)
    }

    /// The q-value of identity: its own, else that of `*`, else 1 (always acceptable unless
    /// refused).
    pub fn identity_quality(&self) -> f32 {
        self.identity.or(self.any).unwrap_or(1.0)
    }

    /// Picks among `offered` (in the server's order of preference): the coding with the
    /// highest q-value above zero, ties going to the earlier one, unless the client ranks
    /// identity higher; identity when no coding is acceptable and identity is not refused;
    /// [`Choice::NotAcceptable`] otherwise.
    pub fn choose(&self, offered: &[Coding]) -> Choice {
        let mut best: Option<(Coding, f32)> = None;
        for &coding in offered {
            let q = self.quality(coding);
            if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((coding, q));
            }
        }
        // Identity competes with the codings only when the client gave it a q-value (itself
        // or through `*`): one that merely lists `gzip;q=0.8` wants gzip.
        let identity = self.identity_quality();
        let identity_rank = self.identity.or(self.any).unwrap_or(0.0);
        match best {
            Some((coding, q)) if q >= identity_rank => Choice::Encode(coding),
            _ if identity > 0.0 => Choice::Identity,
            Some((coding, _)) => Choice::Encode(coding),
            None => Choice::NotAcceptable,
        }
    }
}

/// A q-value (RFC 9110 §12.4.2): `0`, `1`, or up to three decimals; anything else is `None`.
fn parse_qvalue(value: &str) -> Option<f32> {
    let bytes = value.as_bytes();
    let valid = match bytes {
        [b'0'] | [b'1'] => true,
        [b'0', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit),
        [b'1', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(|&b| b == b'0'),
        _ => false,
    };
    if valid { value.parse().ok() } else { None }
}

/// Compresses responses in the coding the client prefers: see the
/// [module documentation](self) for the negotiation and what is left alone.
///
/// Every coding is on by default; brotli at quality 4 and gzip/deflate at level 6, levels
/// chosen for dynamic content, where a chunk's latency counts.
#[derive(Debug, Clone)]
pub struct Compression {
    offered: Vec<Coding>,
    min_size: u64,
    brotli_quality: u32,
    flate_level: u32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::new()
    }
}

impl Compression {
    /// Brotli, gzip and deflate, for bodies of 860 bytes or more.
    pub fn new() -> Self {
        Compression {
            offered: Coding::ALL.to_vec(),
            min_size: 860,
            brotli_quality: 4,
            flate_level: 6,
        }
    }

    fn toggle(mut self, coding: Coding, on: bool) -> Self {
        self.offered.retain(|&c| c != coding);
        if on {
            self.offered.push(coding);
            self.offered
                .sort_by_key(|c| Coding::ALL.iter().position(|a| a == c));
        }
        self
    }

    /// Offers brotli (`br`) or not.
    pub fn br(self, on: bool) -> Self {
        self.toggle(Coding::Brotli, on)
    }

    /// Offers gzip or not.
    pub fn gzip(self, on: bool) -> Self {
        self.toggle(Coding::Gzip, on)
    }

    /// Offers deflate or not.
    pub fn deflate(self, on: bool) -> Self {
        self.toggle(Coding::Deflate, on)
    }

    /// Bodies whose size hint says they are smaller than `bytes` are sent as they are: below
    /// about a packet, compression saves nothing worth its CPU (860 by default).
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = bytes;
        self
    }

    /// Brotli's quality, 0 (fastest) to 11 (smallest); 4 by default.
    pub fn brotli_quality(mut self, quality: u32) -> Self {
        self.brotli_quality = quality.min(11);
        self
    }

    /// gzip and deflate's level, 0 (none) to 9 (smallest); 6 by default.
    pub fn flate_level(mut self, level: u32) -> Self {
        self.flate_level = level.min(9);
        self
    }

    /// Compresses `response` for a request with headers `request` and method `method`, as the
    /// middleware does: for use outside the middleware stack (a `Service` of one's own).
    ///
    /// # Errors
    /// `406 Not Acceptable` when the client refuses identity and every offered coding.
    pub fn apply(
        &self,
        method: &Method,
        request: &HeaderMap,
        mut response: Response,
    ) -> Result<Response, Error> {
        if response.status() == StatusCode::NOT_MODIFIED {
            // A 304 carries the Vary of the 200 it stands for (RFC 9110 §15.4.5).
            add_vary(response.headers_mut());
            return Ok(response);
        }
        if !eligible(method, &response) {
            return Ok(response);
        }
        add_vary(response.headers_mut());
        let choice = AcceptEncoding::from_headers(request).choose(&self.offered);
        let coding = match choice {
            Choice::Identity => return Ok(response),
            Choice::NotAcceptable if response.status().is_success() => {
                let offered: Vec<&str> = self.offered.iter().map(|c| c.as_str()).collect();
                return Err(not_acceptable(&offered));
            }
            Choice::NotAcceptable => return Ok(response),
            Choice::Encode(coding) => coding,
        };
        // Small bodies are sent as they are, unless identity is refused.
        let small = response
            .body()
            .size_hint()
            .upper()
            .is_some_and(|upper| upper < self.min_size);
        if small && AcceptEncoding::from_headers(request).identity_quality() > 0.0 {
            return Ok(response);
        }
        let headers = response.headers_mut();
        headers.remove(CONTENT_LENGTH);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
        weaken_etag(headers);
        let encoder = Encoder::new(coding, self.brotli_quality, self.flate_level);
        Ok(response.map(|body| {
            Body::new(CompressedBody {
                inner: body,
                encoder: Some(encoder),
                trailers: None,
            })
        }))
    }
}

impl Middleware for Compression {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let method = request.method().clone();
        let accept = request
            .headers()
            .get_all(ACCEPT_ENCODING)
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        let response = next.run(request).await;
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(ACCEPT_ENCODING, value);
        }
        self.apply(&method, &headers, response)
    }
}

/// `406` with the codings that are offered.
fn not_acceptable(offered: &[&str]) -> Error {
    let mut list = offered.join(", ");
    if list.is_empty() {
        list.push_str("identity");
    }
    let error = Error::from_problem(
        Problem::new(StatusCode::NOT_ACCEPTABLE)
            .with_code("encoding.not_acceptable")
            .with_detail(format!(
                "no content coding acceptable to the client is available (offered: {list})"
            )),
    );
    match HeaderValue::from_str(&list) {
        Ok(value) => error.with_header(ACCEPT_ENCODING, value),
        Err(_) => error,
    }
}

/// Whether a response may be compressed at all (the size aside).
fn eligible(method: &Method, response: &Response) -> bool {
    let status = response.status();
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT
    {
        return false;
    }
    let headers = response.headers();
    if headers.contains_key(CONTENT_ENCODING) || headers.contains_key(CONTENT_RANGE) {
        return false;
    }
    let no_transform = headers.get_all(CACHE_CONTROL).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
        })
    });
    if no_transform {
        return false;
    }
    if response.body().is_end_stream() {
        return false;
    }
    match headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(content_type) => is_compressible(content_type),
        None => true,
    }
}

/// A content type's `type/subtype`, lower-cased, without its parameters.
pub(crate) fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a content type is worth compressing: not already compressed, not an event stream.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    let (kind, subtype) = essence.split_once('/').unwrap_or((&essence, ""));
    match kind {
        "image" => subtype == "svg+xml" || subtype == "x-icon" || subtype == "bmp",
        "video" | "audio" => false,
        "font" => !matches!(subtype, "woff" | "woff2"),
        "text" => subtype != "event-stream",
        "application" => !matches!(
            subtype,
            "zip"
                | "gzip"
                | "x-gzip"
                | "br"
                | "x-brotli"
                | "zstd"
                | "x-bzip2"
                | "x-xz"
                | "x-7z-compressed"
                | "x-rar-compressed"
                | "vnd.rar"
                | "x-compress"
                | "font-woff"
                | "font-woff2"
                | "pdf"
                | "wasm-compressed"
                | "java-archive"
                | "epub+zip"
                | "vnd.openxmlformats-officedocument.wordprocessingml.document"
                | "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                | "vnd.openxmlformats-officedocument.presentationml.presentation"
        ),
        _ => true,
    }
}

/// Adds `Accept-Encoding` to `Vary`, unless it is there already (or `Vary: *`).
fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value.split(',').any(|v| {
                let v = v.trim();
                v == "*" || v.eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// `"x"` becomes `W/"x"`: a strong validator names exact bytes, which a coding changes.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"\"") {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&weak) {
            headers.insert(ETAG, value);
        }
    }
}

/// A streaming compressor writing into a buffer the body drains after every chunk.
enum Encoder {
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
}

impl Encoder {
    fn new(coding: Coding, brotli_quality: u32, flate_level: u32) -> Encoder {
        let level = flate2::Compression::new(flate_level);
        match coding {
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                brotli_quality,
                22,
            ))),
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)),
            Coding::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(Vec::new(), level)),
        }
    }

    /// Compresses `data` and flushes, returning every byte produced so far.
    fn encode(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let buffer = match self {
            Encoder::Brotli(writer) => {
                writer.write_all(data)?;
                writer.flush()?;
                writer.get_mut()
            }
            Encoder::Gzip(writer) => {
                writer.write_all(data)?;
                writer.flush()?;
                writer.get_mut()
            }
            Encoder::Deflate(writer) => {
                writer.write_all(data)?;
                writer.flush()?;
                writer.get_mut()
            }
        };
        Ok(std::mem::take(buffer))
    }

    /// Ends the stream, returning its last bytes.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Brotli(writer) => Ok(writer.into_inner()),
            Encoder::Gzip(writer) => writer.finish(),
            Encoder::Deflate(writer) => writer.finish(),
        }
    }
}

/// Compresses a whole buffer in one go (for [`compressed_cache`](crate::compressed_cache),
/// which caches static files' compressed forms) with the same encoders as the middleware.
pub(crate) fn compress_all(
    coding: Coding,
    data: &[u8],
    brotli_quality: u32,
    flate_level: u32,
) -> std::io::Result<Vec<u8>> {
    let mut encoder = Encoder::new(coding, brotli_quality.min(11), flate_level.min(9));
    let mut compressed = encoder.encode(data)?;
    compressed.extend(encoder.finish()?);
    Ok(compressed)
}

/// A response body compressed chunk by chunk.
struct CompressedBody {
    inner: Body,
    /// `None` once the stream is finished.
    encoder: Option<Encoder>,
    /// Trailers that came after the last data, sent after the final compressed bytes.
    trailers: Option<HeaderMap>,
}

impl http_body::Body for CompressedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if data.is_empty() {
                            continue;
                        }
                        let out = encoder.encode(&data)?;
                        if out.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(trailers);
                        }
                        let out = this.encoder.take().map(Encoder::finish).transpose()?;
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(
                            out.unwrap_or_default(),
                        )))));
                    }
                },
                Poll::Ready(None) => {
                    let out = this.encoder.take().map(Encoder::finish).transpose()?;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(
                        out.unwrap_or_default(),
                    )))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// Decodes request bodies sent with `Content-Encoding: gzip`, `deflate` or `br`, so that
/// extractors see the decoded bytes; the request's `Content-Encoding` is removed and its
/// `Content-Length` set to the decoded length.
///
/// The decoded body is read whole before the handler runs (bounded: the compressed body by the
/// same limit, the decoded one by [`max_size`](Self::max_size)), so that a body over the limit
/// is answered `413 Content Too Large` (code `body.decoded_too_large`) whatever reads it.
/// Decoding stops one byte past the limit: a small "zip bomb" never inflates further. A
/// decoded body above 1 MiB that is also more than [`max_ratio`](Self::max_ratio) times its
/// compressed size is refused the same way. A coding it does not know (or a list of several)
/// is `415 Unsupported Media Type` with `Accept-Encoding` naming what it decodes
/// (RFC 9110 §15.5.16); a corrupt body is `400`.
#[derive(Debug, Clone)]
pub struct RequestDecompression {
    accepted: Vec<Coding>,
    max_size: usize,
    max_ratio: u64,
}

impl Default for RequestDecompression {
    fn default() -> Self {
        RequestDecompression::new()
    }
}

/// Decoded bodies above this size are subject to the ratio check.
const RATIO_FLOOR: u64 = 1024 * 1024;

impl RequestDecompression {
    /// gzip, deflate and br, up to 8 MiB decoded, and a ratio of at most 100.
    pub fn new() -> Self {
        RequestDecompression {
            accepted: Coding::ALL.to_vec(),
            max_size: 8 * 1024 * 1024,
            max_ratio: 100,
        }
    }

    /// The most bytes a decoded body may have (8 MiB by default).
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// The largest decoded/compressed ratio allowed for bodies above 1 MiB decoded (100 by
    /// default; 0 turns the check off).
    pub fn max_ratio(mut self, ratio: u64) -> Self {
        self.max_ratio = ratio;
        self
    }

    /// Decodes only `codings` (all three by default).
    pub fn codings(mut self, codings: &[Coding]) -> Self {
        self.accepted = codings.to_vec();
        self
    }

    /// Decodes `request`'s body if it has a `Content-Encoding`, as the middleware does.
    ///
    /// # Errors
    /// `413`, `415` or `400` as described on the [type](Self).
    pub async fn decode(&self, request: Request) -> Result<Request, Error> {
        let Some(value) = request.headers().get(CONTENT_ENCODING) else {
            return Ok(request);
        };
        let token = value.to_str().unwrap_or("").trim();
        if token.is_empty() || token.eq_ignore_ascii_case("identity") {
            let (mut parts, body) = request.into_parts();
            parts.headers.remove(CONTENT_ENCODING);
            return Ok(Request::from_parts(parts, body));
        }
        let coding = Coding::from_token(token).filter(|c| self.accepted.contains(c));
        let Some(coding) = coding else {
            return Err(self.unsupported(token));
        };
        let (mut parts, body) = request.into_parts();
        let compressed = body
            .collect(self.max_size)
            .await
            .map_err(|error| match error {
                weft_service::body::BodyError::TooLarge => self.too_large(),
                other => Error::bad_request(format!("the request body could not be read: {other}")),
            })?;
        let decoded = self.inflate(coding, &compressed)?;
        parts.headers.remove(CONTENT_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(decoded.len()));
        Ok(Request::from_parts(parts, Body::from(decoded)))
    }

    fn inflate(&self, coding: Coding, compressed: &[u8]) -> Result<Vec<u8>, Error> {
        let reader: Box<dyn Read + '_> = match coding {
            Coding::Brotli => Box::new(brotli::Decompressor::new(compressed, 4096)),
            Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Coding::Deflate => Box::new(flate2::read::ZlibDecoder::new(compressed)),
        };
        let mut decoded = Vec::new();
        let limit = self.max_size as u64;
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut decoded)
            .map_err(|error| {
                Error::from_problem(
                    Problem::new(StatusCode::BAD_REQUEST)
                        .with_code("body.decoding")
                        .with_detail(format!(
                            "the {} request body could not be decoded: {error}",
                            coding.as_str()
                        )),
                )
            })?;
        let size = decoded.len() as u64;
        let ratio_exceeded = self.max_ratio > 0
            && size > RATIO_FLOOR
            && size > (compressed.len() as u64).saturating_mul(self.max_ratio);
        if size > limit || ratio_exceeded {
            return Err(self.too_large());
        }
        Ok(decoded)
    }

    fn too_large(&self) -> Error {
        Error::from_problem(
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
                .with_code("body.decoded_too_large")
                .with_detail(format!(
                    "the decoded request body exceeds {} bytes (or {} times its compressed size)",
                    self.max_size, self.max_ratio
                )),
        )
    }

    fn unsupported(&self, token: &str) -> Error {
        let list: Vec<&str> = self.accepted.iter().map(|c| c.as_str()).collect();
        let list = if list.is_empty() {
            "identity".to_owned()
        } else {
            list.join(", ")
        };
        let error = Error::from_problem(
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .with_code("encoding.unsupported")
                .with_detail(format!(
                    "the request's content coding `{token}` is not supported (supported: {list})"
                )),
        );
        match HeaderValue::from_str(&list) {
            Ok(value) => error.with_header(ACCEPT_ENCODING, value),
            Err(_) => error,
        }
    }
}

impl Middleware for RequestDecompression {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let request = self.decode(request).await?;
        Ok(next.run(request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_pick_the_coding_and_ties_go_to_the_server() {
        let all = Coding::ALL;
        let choose = |value: &str| AcceptEncoding::parse(value).choose(&all);
        assert_eq!(choose("gzip, deflate, br"), Choice::Encode(Coding::Brotli));
        assert_eq!(choose("gzip;q=0.9, br;q=0.8"), Choice::Encode(Coding::Gzip));
        assert_eq!(choose("*"), Choice::Encode(Coding::Brotli));
        assert_eq!(choose("*;q=0.5, br;q=0"), Choice::Encode(Coding::Gzip));
        assert_eq!(choose("identity"), Choice::Identity);
        assert_eq!(choose(""), Choice::Identity);
        assert_eq!(choose("gzip;q=0.5, identity"), Choice::Identity);
        assert_eq!(choose("zstd, identity;q=0"), Choice::NotAcceptable);
        assert_eq!(choose("*;q=0"), Choice::NotAcceptable);
        assert_eq!(choose("*;q=0, identity"), Choice::Identity);
        assert_eq!(
            choose("gzip;q=0.3, identity;q=0"),
            Choice::Encode(Coding::Gzip)
        );
        assert_eq!(choose("GZIP;Q=1"), Choice::Encode(Coding::Gzip));
        assert_eq!(choose("gzip;q=2, deflate"), Choice::Encode(Coding::Deflate));
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(parse_qvalue("0.5"), Some(0.5));
        assert_eq!(parse_qvalue("1.000"), Some(1.0));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("-0"), None);
        assert_eq!(parse_qvalue("nan"), None);
    }

    #[test]
    fn already_compressed_types_are_skipped() {
        assert!(is_compressible("text/html; charset=utf-8"));
        assert!(is_compressible("image/svg+xml"));
        assert!(is_compressible("application/json"));
        assert!(!is_compressible("image/png"));
        assert!(!is_compressible("video/mp4"));
        assert!(!is_compressible("font/woff2"));
        assert!(!is_compressible("application/zip"));
        assert!(!is_compressible("text/event-stream"));
    }
}
