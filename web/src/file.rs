//! [`FileResponse`]: a file from disk as a response, a thin layer over
//! [`Body::file`](weft_service::body::Body::file): streamed in bounded chunks read off the
//! event loop, or sent with `sendfile(2)` by the cleartext HTTP/1.1 drivers. The static file
//! service builds on it.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use weft_service::body::Body;
use weft_service::file::{FileIdentity, FileRegion};

use crate::error::Error;
use crate::problem::Problem;
use crate::response::{IntoResponse, Response};

/// What RFC 8187 `attr-char` leaves unencoded in `filename*`.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// A file sent as a response body, never read whole into memory.
#[derive(Debug)]
pub struct FileResponse {
    region: FileRegion,
    length: u64,
    content_type: HeaderValue,
    disposition: Option<HeaderValue>,
}

impl FileResponse {
    /// Opens `path`: `404` problem when it does not exist, `403` when it cannot be read, and
    /// `404` for a directory. The content type is `application/octet-stream` unless set.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let refuse = |status: StatusCode, code: &str| {
            Error::from_problem(
                Problem::new(status)
                    .with_code(code)
                    .with_detail("the file cannot be served"),
            )
        };
        let file = File::open(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => refuse(StatusCode::NOT_FOUND, "file.not_found"),
            std::io::ErrorKind::PermissionDenied => refuse(StatusCode::FORBIDDEN, "file.forbidden"),
            _ => Error::from(error),
        })?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(refuse(StatusCode::NOT_FOUND, "file.not_found"));
        }
        let region = FileRegion::with_identity(
            Arc::new(file),
            0,
            metadata.len(),
            FileIdentity::from_metadata(&metadata),
        )?;
        Ok(FileResponse {
            region,
            length: metadata.len(),
            content_type: HeaderValue::from_static("application/octet-stream"),
            disposition: None,
        })
    }

    /// Sets the `Content-Type`.
    pub fn content_type(mut self, content_type: HeaderValue) -> Self {
        self.content_type = content_type;
        self
    }

    /// Asks the browser to download it as `name` (`Content-Disposition: attachment`).
    pub fn attachment(mut self, name: &str) -> Self {
        let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR);
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.disposition = HeaderValue::from_str(&format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
        ))
        .ok();
        self
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The size and modification time the file had when it was opened: validators (ETag,
    /// Last-Modified) computed from it describe exactly the bytes that are sent.
    pub fn identity(&self) -> FileIdentity {
        self.region.identity()
    }
}

impl IntoResponse for FileResponse {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::file(self.region));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, self.content_type);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(self.length));
        if let Some(disposition) = self.disposition {
            headers.insert(CONTENT_DISPOSITION, disposition);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use weft_service::file::CHUNK;

    use super::*;

    #[test]
    fn a_missing_file_is_a_404_problem() {
        let error = FileResponse::open("/definitely/not/here").unwrap_err();
        assert_eq!(error.status_code(), StatusCode::NOT_FOUND);
        assert_eq!(error.problem().code.as_deref(), Some("file.not_found"));
    }

    #[test]
    fn a_file_streams_in_bounded_chunks() {
        let path = std::env::temp_dir().join(format!("weft-file-{}", std::process::id()));
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let response = FileResponse::open(&path)
            .unwrap()
            .attachment("a b.bin")
            .into_response();
        assert_eq!(response.headers()[CONTENT_LENGTH], "200000");
        assert!(
            response.headers()[CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .contains("a%20b.bin")
        );
        let mut body = response.into_body();
        let mut received = Vec::new();
        futures_lite::future::block_on(async {
            while let Some(frame) =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await
            {
                let data = frame.unwrap().into_data().unwrap();
                assert!(data.len() <= CHUNK);
                received.extend_from_slice(&data);
            }
        });
        std::fs::remove_file(&path).unwrap();
        assert_eq!(received, content);
    }
}
