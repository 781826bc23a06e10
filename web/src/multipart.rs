//! multipart/form-data uploads (RFC 7578) for handlers: fields read one after the other, as
//! the request body streams in.
//!
//! [`Multipart`] drives the sans-IO parser of [`weft_core::multipart`] from a request
//! [`Body`]. A field's body is never held whole unless asked for: [`Field::chunk`] hands out
//! pieces as they arrive, [`Field::save_to_file`] and [`Field::save_to_temp`] stream them to
//! disk, and [`Field::bytes`] and [`Field::text`] collect them, bounded by the
//! [`MultipartLimits`] (1 MiB per field, 32 MiB per file by default).
//!
//! ```
//! use weft::multipart::{Multipart, MultipartError, MultipartLimits};
//! use weft_service::body::Body;
//!
//! async fn upload(request: http::Request<Body>) -> Result<String, MultipartError> {
//!     let mut multipart = Multipart::from_request(request, MultipartLimits::default())?;
//!     let mut report = String::new();
//!     while let Some(field) = multipart.next_field().await? {
//!         if field.file_name().is_some() {
//!             let saved = field.save_to_temp(std::env::temp_dir()).await?;
//!             report.push_str(&format!("file of {} bytes\n", saved.size));
//!             std::fs::remove_file(&saved.path).ok();
//!         } else {
//!             let name = field.name().to_owned();
//!             report.push_str(&format!("{name} = {}\n", field.text().await?));
//!         }
//!     }
//!     Ok(report)
//! }
//!
//! let body = "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--b--\r\n";
//! let request = http::Request::builder()
//!     .header("content-type", "multipart/form-data; boundary=b")
//!     .body(Body::from(body))
//!     .unwrap();
//! let report = futures_lite::future::block_on(upload(request)).unwrap();
//! assert_eq!(report, "title = hello\n");
//! ```

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use weft_core::multipart::{Event, Parser, PartHead};
use weft_service::body::{Body, BoxError};
use weft_service::runtime::spawn_blocking_or_inline;

pub use weft_core::multipart::MultipartLimits;

/// Why an upload could not be read or saved.
#[derive(Debug)]
#[non_exhaustive]
pub enum MultipartError {
    /// The body is not valid multipart/form-data, or crossed a [`MultipartLimits`] bound: the
    /// protocol core's error, with its status (`400`, `413` or `415`).
    Parse(weft_core::multipart::MultipartError),
    /// Reading the request body failed (the client went away, or the connection broke).
    Body(BoxError),
    /// Writing an uploaded file failed.
    Io(std::io::Error),
    /// [`Field::text`] on a body that is not UTF-8.
    InvalidUtf8,
}

impl MultipartError {
    /// The status code a server answers this error with: the parser's own for
    /// [`Parse`](Self::Parse), `400` for a broken body or text that is not UTF-8, `500` for a
    /// file that could not be written.
    pub fn status(&self) -> http::StatusCode {
        match self {
            MultipartError::Parse(error) => error.status(),
            MultipartError::Body(_) | MultipartError::InvalidUtf8 => http::StatusCode::BAD_REQUEST,
            MultipartError::Io(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::Parse(error) => write!(f, "multipart body refused: {error}"),
            MultipartError::Body(error) => write!(f, "reading the multipart body failed: {error}"),
            MultipartError::Io(error) => write!(f, "saving an uploaded file failed: {error}"),
            MultipartError::InvalidUtf8 => f.write_str("multipart field is not UTF-8 text"),
        }
    }
}

impl std::error::Error for MultipartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MultipartError::Parse(error) => Some(error),
            MultipartError::Body(error) => Some(error.as_ref()),
            MultipartError::Io(error) => Some(error),
            MultipartError::InvalidUtf8 => None,
        }
    }
}

impl crate::error::HttpError for MultipartError {
    fn status(&self) -> http::StatusCode {
        MultipartError::status(self)
    }

    fn problem(&self) -> crate::Problem {
        use weft_core::multipart::MultipartError as Core;
        let code = match self {
            MultipartError::Parse(Core::NotFormData) => "multipart.media_type",
            MultipartError::Parse(error)
                if error.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                "multipart.too_large"
            }
            MultipartError::Parse(_) => "multipart.malformed",
            MultipartError::Body(_) => "body.read",
            MultipartError::InvalidUtf8 => "multipart.not_utf8",
            MultipartError::Io(_) => "multipart.save_failed",
        };
        let problem = crate::Problem::new(self.status()).with_code(code);
        match self {
            // Where the server failed to write, the client learns nothing about its disks.
            MultipartError::Io(_) => problem,
            _ => problem.with_detail(self.to_string()),
        }
    }
}

/// The handler's last argument: the request's multipart/form-data body, bounded by the app's
/// [`BodyLimits::multipart`](crate::extract::BodyLimits::multipart).
impl crate::extract::FromRequest<crate::extract::ViaRequest> for Multipart {
    async fn from_request(request: http::Request<Body>) -> Result<Self, crate::Error> {
        let (parts, body) = request.into_parts();
        let limits = crate::extract::body::limits(&parts).multipart.clone();
        Multipart::from_request(http::Request::from_parts(parts, body), limits)
            .map_err(crate::Error::http)
    }
}

impl From<weft_core::multipart::MultipartError> for MultipartError {
    fn from(error: weft_core::multipart::MultipartError) -> Self {
        MultipartError::Parse(error)
    }
}

impl From<std::io::Error> for MultipartError {
    fn from(error: std::io::Error) -> Self {
        MultipartError::Io(error)
    }
}

/// A multipart/form-data request body, read field by field with [`Multipart::next_field`].
#[derive(Debug)]
pub struct Multipart {
    body: Body,
    parser: Parser,
    /// Body bytes the parser has not taken yet (it takes less when its buffer is full).
    pending: Bytes,
    body_ended: bool,
    /// A field was handed out and its body not read to the end yet.
    in_field: bool,
    /// The first error, returned again by every later call: the rest of the body cannot be
    /// trusted.
    failed: Option<weft_core::multipart::MultipartError>,
}

impl Multipart {
    /// Reads `body` as multipart/form-data whose parts are separated by `boundary` (the
    /// Content-Type's `boundary` parameter). Fails at once for an invalid boundary, and for a
    /// body whose announced length is over `limits.max_total_bytes` (`413`).
    pub fn new(
        body: Body,
        boundary: &str,
        limits: MultipartLimits,
    ) -> Result<Multipart, MultipartError> {
        if http_body::Body::size_hint(&body).lower() > limits.max_total_bytes {
            return Err(weft_core::multipart::MultipartError::BodyTooLarge.into());
        }
        Ok(Multipart {
            body,
            parser: Parser::new(boundary, limits)?,
            pending: Bytes::new(),
            body_ended: false,
            in_field: false,
            failed: None,
        })
    }

    /// Reads `request`'s body as multipart/form-data, taking the boundary from its
    /// Content-Type. A request without `multipart/form-data` fails with `415`, one whose
    /// Content-Type is malformed or lacks a valid boundary with `400`.
    pub fn from_request(
        request: http::Request<Body>,
        limits: MultipartLimits,
    ) -> Result<Multipart, MultipartError> {
        use weft_core::multipart::{MultipartError as Core, boundary_from_content_type};
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .ok_or(Core::NotFormData)?
            .to_str()
            .map_err(|_| Core::MalformedContentType)?;
        let boundary = boundary_from_content_type(content_type)?;
        Multipart::new(request.into_body(), &boundary, limits)
    }

    /// The next field, or `None` after the last. What is left unread of the previous field is
    /// skipped.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>, MultipartError> {
        while self.in_field {
            if self.next_field_event().await?.is_none() {
                break;
            }
        }
        loop {
            match self.next_event().await? {
                Event::PartStart(head) => {
                    self.in_field = true;
                    return Ok(Some(Field {
                        multipart: self,
                        head,
                    }));
                }
                Event::End => return Ok(None),
                // Not produced outside a part; nothing to do with them here.
                Event::Data(_) | Event::PartEnd => {}
            }
        }
    }

    /// The next piece of the current field's body, or `None` at its end.
    async fn next_field_event(&mut self) -> Result<Option<Bytes>, MultipartError> {
        if !self.in_field {
            return Ok(None);
        }
        match self.next_event().await? {
            Event::Data(data) => Ok(Some(data)),
            Event::PartEnd | Event::End | Event::PartStart(_) => {
                self.in_field = false;
                Ok(None)
            }
        }
    }

    /// The parser's next event, reading the body as needed.
    async fn next_event(&mut self) -> Result<Event, MultipartError> {
        loop {
            if let Some(error) = &self.failed {
                return Err(error.clone().into());
            }
            match self.parser.poll_event() {
                Some(Ok(event)) => return Ok(event),
                Some(Err(error)) => {
                    self.failed = Some(error.clone());
                    return Err(error.into());
                }
                // Finished without an error: `End` was returned already.
                None if self.parser.is_finished() => return Ok(Event::End),
                None => {}
            }
            if !self.pending.is_empty() {
                // The parser takes at least a byte after asking for more.
                let taken = self.parser.receive(&self.pending);
                self.pending.advance(taken);
                continue;
            }
            if self.body_ended {
                self.parser.receive_eof();
                continue;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    // Trailers carry nothing for the form.
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
                Some(Err(error)) => {
                    self.failed = Some(weft_core::multipart::MultipartError::UnexpectedEof);
                    return Err(MultipartError::Body(error));
                }
                None => self.body_ended = true,
            }
        }
    }
}

/// One field of a [`Multipart`] body: its head, and its body read with [`chunk`](Self::chunk),
/// [`bytes`](Self::bytes), [`text`](Self::text) or saved with
/// [`save_to_file`](Self::save_to_file).
#[derive(Debug)]
pub struct Field<'a> {
    multipart: &'a mut Multipart,
    head: PartHead,
}

/// An uploaded file written to disk by [`Field::save_to_file`] or [`Field::save_to_temp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SavedFile {
    /// Where the file was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The file name the client gave; untrusted, never used for `path`.
    pub file_name: Option<String>,
    /// The Content-Type the client gave.
    pub content_type: Option<String>,
}

impl Field<'_> {
    /// The form field name (RFC 7578 §4.2).
    pub fn name(&self) -> &str {
        &self.head.name
    }

    /// The file name the client gave, for a file field; untrusted: never use it as a path.
    pub fn file_name(&self) -> Option<&str> {
        self.head.filename.as_deref()
    }

    /// The field's Content-Type, if the client gave one (RFC 7578 §4.4: `text/plain` when
    /// absent).
    pub fn content_type(&self) -> Option<&str> {
        self.head.content_type.as_deref()
    }

    /// All the field's header fields.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The next piece of the field's body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, MultipartError> {
        self.multipart.next_field_event().await
    }

    /// The whole field body, bounded by `max_field_bytes` (or `max_file_bytes` for a file).
    pub async fn bytes(mut self) -> Result<Bytes, MultipartError> {
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut joined = BytesMut::from(&first[..]);
        joined.extend_from_slice(&second);
        while let Some(chunk) = self.chunk().await? {
            joined.extend_from_slice(&chunk);
        }
        Ok(joined.freeze())
    }

    /// The whole field body as UTF-8 text, bounded as [`bytes`](Self::bytes).
    pub async fn text(self) -> Result<String, MultipartError> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.into()).map_err(|_| MultipartError::InvalidUtf8)
    }

    /// Streams the field body into a new file at `path` (replacing one there), a chunk at a
    /// time; on failure the partial file is removed. Disk writes run on the server's blocking
    /// pool ([`spawn_blocking_or_inline`]) inside a weft server, in place elsewhere.
    pub async fn save_to_file(self, path: impl AsRef<Path>) -> Result<SavedFile, MultipartError> {
        let path = path.as_ref().to_path_buf();
        let opened = {
            let path = path.clone();
            spawn_blocking_or_inline(move || File::create(path)).await?
        };
        self.write_to(opened, path).await
    }

    /// Streams the field body into a new file with a unique name (`weft-upload-<uuid>`) in
    /// `dir`, as [`save_to_file`](Self::save_to_file). The client's file name is not used:
    /// it is [`SavedFile::file_name`].
    pub async fn save_to_temp(self, dir: impl AsRef<Path>) -> Result<SavedFile, MultipartError> {
        let path = dir
            .as_ref()
            .join(format!("weft-upload-{}", uuid::Uuid::new_v4().simple()));
        let opened = {
            let path = path.clone();
            spawn_blocking_or_inline(move || {
                File::options().write(true).create_new(true).open(path)
            })
            .await?
        };
        self.write_to(opened, path).await
    }

    async fn write_to(mut self, file: File, path: PathBuf) -> Result<SavedFile, MultipartError> {
        let mut file = Some(file);
        let mut size = 0u64;
        let written: Result<(), MultipartError> = async {
            while let Some(chunk) = self.chunk().await? {
                size += chunk.len() as u64;
                let Some(mut open) = file.take() else {
                    break;
                };
                file = Some(
                    spawn_blocking_or_inline(move || open.write_all(&chunk).map(|()| open)).await?,
                );
            }
            Ok(())
        }
        .await;
        drop(file);
        if let Err(error) = written {
            let partial = path.clone();
            let _ = spawn_blocking_or_inline(move || std::fs::remove_file(partial)).await;
            return Err(error);
        }
        Ok(SavedFile {
            path,
            size,
            file_name: self.head.filename.take(),
            content_type: self.head.content_type.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_lite::future::block_on;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use weft_core::multipart::MultipartError as Core;
    use weft_service::runtime::{
        BlockingWork, BoxFuture, RuntimeHandle, RuntimeServices, ShutdownSignal,
    };

    use super::*;

    const B: &str = "weft-test-boundary";

    /// A body of `bytes` cut at pseudo-random points (xorshift from `seed`).
    fn split_body(bytes: &[u8], seed: u64) -> Body {
        let mut state = seed | 1;
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40 + 1) as usize;
            let (chunk, tail) = rest.split_at(len.min(rest.len()));
            chunks.push(Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(
                chunk,
            ))));
            rest = tail;
        }
        Body::new(StreamBody::new(futures_lite::stream::iter(chunks)))
    }

    fn limits_with(change: impl FnOnce(&mut MultipartLimits)) -> MultipartLimits {
        let mut limits = MultipartLimits::default();
        change(&mut limits);
        limits
    }

    fn field(name: &str, body: &str) -> String {
        format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{body}\r\n")
    }

    fn file(name: &str, file_name: &str, body: &str) -> String {
        format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\nX-Extra: 1\r\n\r\n{body}\r\n"
        )
    }

    fn close() -> String {
        format!("--{B}--\r\n")
    }

    fn multipart(body: &str, seed: u64, limits: MultipartLimits) -> Multipart {
        Multipart::new(split_body(body.as_bytes(), seed), B, limits).unwrap()
    }

    /// Reads every field as text; the first error ends it.
    fn read_all(mut multipart: Multipart) -> Result<Vec<(String, String)>, MultipartError> {
        block_on(async {
            let mut fields = Vec::new();
            while let Some(field) = multipart.next_field().await? {
                let name = field.name().to_owned();
                fields.push((name, field.text().await?));
            }
            Ok(fields)
        })
    }

    fn parse_error(result: Result<impl fmt::Debug, MultipartError>) -> Core {
        match result {
            Err(MultipartError::Parse(error)) => error,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn reads_fields_and_files_whatever_the_splits() {
        let body = format!(
            "{}{}{}",
            field("title", "héllo\r\n--weft"),
            file("upload", "a.bin", "\r\n--weft-test-boundar"),
            close()
        );
        for seed in 1..50 {
            let mut multipart = multipart(&body, seed, MultipartLimits::default());
            block_on(async {
                let field = multipart.next_field().await.unwrap().unwrap();
                assert_eq!(field.name(), "title");
                assert_eq!(field.file_name(), None);
                assert_eq!(field.content_type(), None);
                assert_eq!(field.text().await.unwrap(), "héllo\r\n--weft");
                let field = multipart.next_field().await.unwrap().unwrap();
                assert_eq!(field.name(), "upload");
                assert_eq!(field.file_name(), Some("a.bin"));
                assert_eq!(field.content_type(), Some("application/octet-stream"));
                assert_eq!(field.headers().get("x-extra").unwrap(), "1");
                assert_eq!(
                    &field.bytes().await.unwrap()[..],
                    b"\r\n--weft-test-boundar"
                );
                assert!(multipart.next_field().await.unwrap().is_none());
                assert!(multipart.next_field().await.unwrap().is_none());
            });
        }
    }

    #[test]
    fn futures_are_send_so_handlers_stay_services() {
        fn assert_send<T: Send>(_: &T) {}
        let mut empty = multipart(&close(), 1, MultipartLimits::default());
        assert_send(&empty);
        let next = empty.next_field();
        assert_send(&next);
        drop(next);
        let body = format!("{}{}", field("a", "1"), close());
        let mut multipart = multipart(&body, 1, MultipartLimits::default());
        block_on(async {
            let field = multipart.next_field().await.unwrap().unwrap();
            let saving = field.save_to_temp("/nonexistent-weft-dir");
            assert_send(&saving);
            assert!(matches!(saving.await, Err(MultipartError::Io(_))));
        });
    }

    #[test]
    fn chunk_streams_a_field_and_next_field_skips_the_rest() {
        let big = "x".repeat(100_000);
        let body = format!("{}{}{}", field("big", &big), field("after", "ok"), close());
        let mut multipart = multipart(&body, 7, MultipartLimits::default());
        block_on(async {
            let mut field = multipart.next_field().await.unwrap().unwrap();
            let first = field.chunk().await.unwrap().unwrap();
            assert!(first.len() < big.len(), "a chunk, not the whole field");
            // The rest of "big" is skipped.
            let field = multipart.next_field().await.unwrap().unwrap();
            assert_eq!(field.name(), "after");
            assert_eq!(field.text().await.unwrap(), "ok");
            assert!(multipart.next_field().await.unwrap().is_none());
        });
    }

    #[test]
    fn from_request_checks_the_content_type() {
        let request = |content_type: Option<&str>| {
            let mut builder = http::Request::builder();
            if let Some(value) = content_type {
                builder = builder.header(http::header::CONTENT_TYPE, value);
            }
            builder
                .body(Body::from(format!("{}{}", field("a", "1"), close())))
                .unwrap()
        };
        let ok = Multipart::from_request(
            request(Some(&format!("multipart/form-data; boundary=\"{B}\""))),
            MultipartLimits::default(),
        )
        .unwrap();
        assert_eq!(read_all(ok).unwrap(), [("a".to_owned(), "1".to_owned())]);
        for (content_type, error) in [
            (None, Core::NotFormData),
            (Some("application/json"), Core::NotFormData),
            (Some("multipart/form-data"), Core::MissingBoundary),
            (
                Some("multipart/form-data; boundary=\"\""),
                Core::InvalidBoundary,
            ),
        ] {
            let refused =
                Multipart::from_request(request(content_type), MultipartLimits::default());
            let status = refused.as_ref().map_err(MultipartError::status).err();
            assert_eq!(parse_error(refused), error);
            assert_eq!(status, Some(error.status()));
        }
    }

    #[test]
    fn refuses_a_body_announced_over_the_total_limit() {
        let limits = limits_with(|l| l.max_total_bytes = 10);
        let refused = Multipart::new(Body::from("x".repeat(11)), B, limits);
        assert_eq!(parse_error(refused), Core::BodyTooLarge);
    }

    #[test]
    fn limit_field_bytes() {
        let limits = limits_with(|l| l.max_field_bytes = 5);
        let body = format!("{}{}", field("a", "12345"), close());
        assert!(read_all(multipart(&body, 3, limits.clone())).is_ok());
        let body = format!("{}{}", field("a", "123456"), close());
        let error = read_all(multipart(&body, 3, limits)).unwrap_err();
        assert_eq!(error.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(parse_error(Err::<(), _>(error)), Core::FieldTooLarge);
    }

    #[test]
    fn limit_file_bytes() {
        let limits = limits_with(|l| l.max_file_bytes = 5);
        let body = format!("{}{}", file("f", "f.txt", "12345"), close());
        assert!(read_all(multipart(&body, 5, limits.clone())).is_ok());
        let body = format!("{}{}", file("f", "f.txt", "123456"), close());
        assert_eq!(
            parse_error(read_all(multipart(&body, 5, limits))),
            Core::FileTooLarge
        );
    }

    #[test]
    fn limit_parts() {
        let limits = limits_with(|l| l.max_parts = 2);
        let body = format!("{}{}", field("a", "1").repeat(2), close());
        assert_eq!(
            read_all(multipart(&body, 9, limits.clone())).unwrap().len(),
            2
        );
        let body = format!("{}{}", field("a", "1").repeat(3), close());
        assert_eq!(
            parse_error(read_all(multipart(&body, 9, limits))),
            Core::TooManyParts
        );
    }

    #[test]
    fn limit_header_bytes() {
        let limits = limits_with(|l| l.max_header_bytes = 60);
        let body = format!("{}{}", field("a", "1"), close());
        assert!(read_all(multipart(&body, 11, limits.clone())).is_ok());
        let body = format!("{}{}", field(&"a".repeat(30), "1"), close());
        assert_eq!(
            parse_error(read_all(multipart(&body, 11, limits))),
            Core::HeadersTooLarge
        );
    }

    #[test]
    fn limit_headers_per_part() {
        let limits = limits_with(|l| l.max_headers = 2);
        // file() writes three header fields.
        let body = format!("{}{}", file("f", "f", "1"), close());
        assert_eq!(
            parse_error(read_all(multipart(&body, 13, limits))),
            Core::TooManyHeaders
        );
    }

    #[test]
    fn limit_total_bytes() {
        let body = format!("{}{}", field("a", &"z".repeat(1000)), close());
        let limits = limits_with(|l| l.max_total_bytes = body.len() as u64);
        assert!(read_all(multipart(&body, 15, limits)).is_ok());
        let limits = limits_with(|l| l.max_total_bytes = 500);
        assert_eq!(
            parse_error(read_all(multipart(&body, 15, limits))),
            Core::BodyTooLarge
        );
    }

    #[test]
    fn errors_stay_and_map_to_statuses() {
        let mut multipart = multipart(&field("a", "1"), 17, MultipartLimits::default());
        block_on(async {
            let field = multipart.next_field().await.unwrap().unwrap();
            assert_eq!(parse_error(field.bytes().await), Core::UnexpectedEof);
            assert_eq!(
                parse_error(multipart.next_field().await),
                Core::UnexpectedEof
            );
        });
        let body = format!("{}{}", field("a", "\u{fffd}"), close()).replace('\u{fffd}', "\u{1}");
        let mut bytes = body.into_bytes();
        let at = bytes.iter().position(|&b| b == 1).unwrap();
        bytes[at] = 0xff;
        let mut multipart =
            Multipart::new(Body::from(bytes), B, MultipartLimits::default()).unwrap();
        let error = block_on(async { multipart.next_field().await.unwrap().unwrap().text().await })
            .unwrap_err();
        assert!(matches!(error, MultipartError::InvalidUtf8));
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            MultipartError::Io(std::io::Error::other("disk full")).status(),
            http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_failing_body_is_a_body_error() {
        let chunks = vec![
            Ok(Frame::data(Bytes::from(field("a", "1")))),
            Err(std::io::Error::other("connection reset")),
        ];
        let body = Body::new(StreamBody::new(futures_lite::stream::iter(chunks)));
        let mut multipart = Multipart::new(body, B, MultipartLimits::default()).unwrap();
        let error = block_on(async {
            let field = multipart.next_field().await?.unwrap();
            field.bytes().await
        })
        .unwrap_err();
        assert!(matches!(error, MultipartError::Body(_)), "{error:?}");
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "weft-multipart-{test}-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn upload_body(content: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n{}", close()).as_bytes());
        body
    }

    #[test]
    fn saves_a_file_to_a_temp_dir_chunk_by_chunk() {
        let dir = TempDir::new("temp");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let body = upload_body(&content);
        let mut multipart =
            Multipart::new(split_body(&body, 21), B, MultipartLimits::default()).unwrap();
        let saved = block_on(async {
            let field = multipart.next_field().await.unwrap().unwrap();
            field.save_to_temp(&dir.0).await.unwrap()
        });
        assert_eq!(saved.size, content.len() as u64);
        assert_eq!(saved.file_name.as_deref(), Some("../../etc/passwd"));
        assert_eq!(saved.content_type.as_deref(), Some("image/png"));
        assert_eq!(
            saved.path.parent(),
            Some(dir.0.as_path()),
            "never the client's name"
        );
        assert_eq!(std::fs::read(&saved.path).unwrap(), content);
        assert!(block_on(multipart.next_field()).unwrap().is_none());
    }

    #[test]
    fn a_file_over_the_limit_is_not_left_on_disk() {
        let dir = TempDir::new("limit");
        let limits = limits_with(|l| l.max_file_bytes = 1000);
        let body = upload_body(&[7; 5000]);
        let mut multipart = Multipart::new(split_body(&body, 23), B, limits).unwrap();
        let path = dir.0.join("upload.bin");
        let error = block_on(async {
            let field = multipart.next_field().await.unwrap().unwrap();
            field.save_to_file(&path).await
        });
        assert_eq!(parse_error(error), Core::FileTooLarge);
        assert!(!path.exists());
    }

    /// Runtime services that run blocking work in place and count it.
    struct Counting(Arc<AtomicUsize>);

    impl RuntimeServices for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn spawn(&self, task: BoxFuture<()>) {
            drop(task);
        }
        fn sleep_until(&self, _deadline: std::time::Instant) -> BoxFuture<()> {
            Box::pin(std::future::pending())
        }
        fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<Box<dyn std::any::Any + Send>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let output = work();
            Box::pin(async move { output })
        }
    }

    #[test]
    fn saves_through_spawn_blocking_inside_a_server() {
        let dir = TempDir::new("runtime");
        let calls = Arc::new(AtomicUsize::new(0));
        let handle = RuntimeHandle::new(Counting(Arc::clone(&calls)), ShutdownSignal::never());
        let body = upload_body(b"hello disk");
        let mut multipart =
            Multipart::new(split_body(&body, 25), B, MultipartLimits::default()).unwrap();
        let path = dir.0.join("saved.txt");
        let saved = handle.enter(|| {
            block_on(async {
                let field = multipart.next_field().await.unwrap().unwrap();
                field.save_to_file(&path).await.unwrap()
            })
        });
        assert_eq!(saved.size, 10);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello disk");
        // One open and at least one write went to the blocking pool.
        assert!(calls.load(Ordering::SeqCst) >= 2);
    }
}
