//! The routes of the HTTP/2 mode (`--h2`): the part of `weft echo`'s routes that
//! `benches/h2load.sh` and the HTTP/2 client scripts (`runtimes/tests/h2/*.py`) use, answered
//! the same way, so a script that passes here checks weft against a known-good server.
//!
//! | route | answer |
//! | --- | --- |
//! | `/plaintext` | `Hello, World!` as `text/plain` (known length) |
//! | `/json` | `{"message":"Hello, World!"}` as `application/json` (known length) |
//! | `/stream?chunks=N&size=S` | N pieces of S bytes, no length announced; byte `k` is `b'a' + k % 26` |
//! | anything else | the request body streamed back as it arrives, with its `content-type` |

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};

/// Every response body of the HTTP/2 mode, boxed so the routes share one type.
pub type ResponseBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// The body of `/plaintext`.
pub static HELLO: &[u8] = b"Hello, World!";

/// The body of `/json`.
static JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

/// `/stream` without `chunks` / `size`, as in `weft echo`.
const DEFAULT_CHUNKS: u64 = 8;
const DEFAULT_SIZE: u64 = 1024;

/// The bounds `weft echo` puts on `/stream`: 16 MiB a piece, 1 GiB in all.
const MAX_SIZE: u64 = 16 * 1024 * 1024;
const MAX_TOTAL: u64 = 1024 * 1024 * 1024;

/// Answers one request (see the module documentation).
pub async fn route(request: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible> {
    let response = match request.uri().path() {
        "/plaintext" => fixed(HELLO, "text/plain"),
        "/json" => fixed(JSON, "application/json"),
        "/stream" => match StreamParams::parse(request.uri().query().unwrap_or("")) {
            Some(params) => typed(
                PatternBody::new(params).boxed_unsync(),
                "application/octet-stream",
            ),
            None => {
                let mut response = fixed(b"bad /stream parameters", "text/plain");
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            }
        },
        _ => echo(request),
    };
    Ok(response)
}

/// A known-length body with its content type.
fn fixed(body: &'static [u8], content_type: &'static str) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from_static(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    typed(body, content_type)
}

fn typed(body: ResponseBody, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The request body is the response body: each DATA frame goes back as it arrives, so
/// hyper's flow control paces the upload by how fast the client reads the echo.
fn echo(request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let mut response = Response::new(body.boxed_unsync());
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, content_type.clone());
    }
    response
}

/// `chunks` and `size` of a `/stream` query.
#[derive(Clone, Copy)]
struct StreamParams {
    chunks: u64,
    size: u64,
}

impl StreamParams {
    /// The parameters, or `None` when one is not decimal or they are out of bounds.
    fn parse(query: &str) -> Option<StreamParams> {
        let mut params = StreamParams {
            chunks: DEFAULT_CHUNKS,
            size: DEFAULT_SIZE,
        };
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            let slot = match key {
                "chunks" => &mut params.chunks,
                "size" => &mut params.size,
                _ => continue,
            };
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = value.parse().ok()?;
        }
        let total = params.chunks.checked_mul(params.size)?;
        let in_bounds = (1..=MAX_SIZE).contains(&params.size) && total <= MAX_TOTAL;
        in_bounds.then_some(params)
    }
}

/// `/stream`'s body: one piece per poll, made when asked for, with no size hint (so hyper
/// announces no `content-length`).
struct PatternBody {
    params: StreamParams,
    sent_chunks: u64,
}

impl PatternBody {
    fn new(params: StreamParams) -> PatternBody {
        PatternBody {
            params,
            sent_chunks: 0,
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.sent_chunks == self.params.chunks {
            return Poll::Ready(None);
        }
        let size = self.params.size;
        let offset = self.sent_chunks * size;
        self.sent_chunks += 1;
        let piece: Vec<u8> = (offset..offset + size)
            .map(|k| b'a' + (k % 26) as u8)
            .collect();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(piece)))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent_chunks == self.params.chunks
    }
}
