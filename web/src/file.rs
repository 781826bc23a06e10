//! [`FileResponse`]: a file from disk as a response, streamed in bounded chunks, its reads
//! off the event loop (the runtime's blocking pool) when a runtime is current. The static file
//! service builds on it.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http_body::{Frame, SizeHint};
use weft_service::body::Body;
use weft_service::runtime::RuntimeHandle;

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

/// How much of a file one read takes: what the body holds in memory at a time.
const CHUNK: usize = 64 * 1024;

/// A file sent as a response body, never read whole into memory.
#[derive(Debug)]
pub struct FileResponse {
    file: File,
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
        Ok(FileResponse {
            file,
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
}

impl IntoResponse for FileResponse {
    fn into_response(self) -> Response {
        let body = FileBody {
            state: State::Idle(Some(self.file)),
            remaining: self.length,
        };
        let mut response = Response::new(Body::new(body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, self.content_type);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(self.length));
        if let Some(disposition) = self.disposition {
            headers.insert(CONTENT_DISPOSITION, disposition);
        }
        response
    }
}

type PendingRead =
    Pin<Box<dyn std::future::Future<Output = (File, std::io::Result<Bytes>)> + Send>>;

enum State {
    /// Between reads; `None` once the file is done with.
    Idle(Option<File>),
    /// A read on the blocking pool.
    Reading(PendingRead),
}

/// The body: one chunk read at a time, on the blocking pool when a runtime is current.
struct FileBody {
    state: State,
    remaining: u64,
}

fn read_chunk(mut file: File, want: usize) -> (File, std::io::Result<Bytes>) {
    let mut buffer = BytesMut::zeroed(want);
    let result = file.read(&mut buffer).map(|n| {
        buffer.truncate(n);
        buffer.freeze()
    });
    (file, result)
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            match &mut self.state {
                State::Idle(file) => {
                    let Some(file) = file.take() else {
                        return Poll::Ready(None);
                    };
                    if self.remaining == 0 {
                        return Poll::Ready(None);
                    }
                    let want = CHUNK.min(usize::try_from(self.remaining).unwrap_or(CHUNK));
                    match RuntimeHandle::try_current() {
                        Some(runtime) => {
                            let read = runtime.spawn_blocking(move || read_chunk(file, want));
                            self.state = State::Reading(Box::pin(read));
                        }
                        // Outside a runtime (a user's own loop), the read happens here.
                        None => {
                            let (file, result) = read_chunk(file, want);
                            return Poll::Ready(Some(self.finish_read(file, result)));
                        }
                    }
                }
                State::Reading(read) => {
                    let (file, result) = std::task::ready!(read.as_mut().poll(cx));
                    return Poll::Ready(Some(self.finish_read(file, result)));
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}

impl FileBody {
    fn finish_read(
        &mut self,
        file: File,
        result: std::io::Result<Bytes>,
    ) -> Result<Frame<Bytes>, std::io::Error> {
        let chunk = result?;
        if chunk.is_empty() {
            // The file shrank since it was opened: end with an error rather than a body
            // shorter than its Content-Length.
            self.state = State::Idle(None);
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        self.state = State::Idle(Some(file));
        Ok(Frame::data(chunk))
    }
}

#[cfg(test)]
mod tests {
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
