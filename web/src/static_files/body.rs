//! The body of a `multipart/byteranges` response: pieces that are either bytes already in
//! memory (each part's head, the closing boundary) or [`FileRegion`]s of the open file, read
//! in bounded chunks on the runtime's blocking pool (inline when no runtime is current), the
//! file's identity checked around every read. Whole files and single ranges do not use it:
//! they are one region, sent as `Body::file` (which a driver may send with `sendfile(2)`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use weft_service::body::Body;
use weft_service::file::{FileError, FileRegion};
use weft_service::runtime::RuntimeHandle;

/// How much of a file one read takes.
pub(crate) const CHUNK: usize = 64 * 1024;

/// One piece of the body.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A region of the file.
    Region(FileRegion),
}

impl Piece {
    /// The piece as a whole body: bytes in memory go out with the head, a region as a file
    /// body (which a driver may send with `sendfile(2)`).
    pub(crate) fn into_body(self) -> Body {
        match self {
            Piece::Bytes(bytes) => Body::full(bytes),
            Piece::Region(region) => Body::file(region),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(bytes) => bytes.len() as u64,
            Piece::Region(region) => region.len(),
        }
    }
}

type PendingRead = Pin<Box<dyn std::future::Future<Output = Result<Bytes, FileError>> + Send>>;

/// The body: its pieces in order, and the read in flight.
pub(crate) struct PiecesBody {
    pieces: VecDeque<Piece>,
    reading: Option<PendingRead>,
    remaining: u64,
}

impl PiecesBody {
    /// A body of `pieces`.
    pub(crate) fn new(pieces: Vec<Piece>) -> Self {
        PiecesBody {
            remaining: pieces.iter().map(Piece::len).sum(),
            pieces: pieces.into(),
            reading: None,
        }
    }

    /// The body's exact length.
    pub(crate) fn len(&self) -> u64 {
        self.remaining
    }

    fn finish_read(&mut self, result: Result<Bytes, FileError>) -> Result<Frame<Bytes>, FileError> {
        let chunk = match result {
            Ok(chunk) if !chunk.is_empty() => chunk,
            Ok(_) => return Err(self.fail(FileError::Changed)),
            Err(error) => return Err(self.fail(error)),
        };
        let n = chunk.len() as u64;
        if let Some(Piece::Region(region)) = self.pieces.front_mut() {
            region.advance(n);
            if region.is_empty() {
                self.pieces.pop_front();
            }
        }
        self.remaining = self.remaining.saturating_sub(n);
        Ok(Frame::data(chunk))
    }

    /// Ends the body after an error: nothing more is sent.
    fn fail(&mut self, error: FileError) -> FileError {
        self.pieces.clear();
        error
    }
}

impl http_body::Body for PiecesBody {
    type Data = Bytes;
    type Error = FileError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, FileError>>> {
        let this = self.get_mut();
        loop {
            if let Some(read) = &mut this.reading {
                let result = std::task::ready!(read.as_mut().poll(cx));
                this.reading = None;
                return Poll::Ready(Some(this.finish_read(result)));
            }
            let region = match this.pieces.front() {
                None => return Poll::Ready(None),
                Some(Piece::Region(region)) if region.is_empty() => {
                    this.pieces.pop_front();
                    continue;
                }
                Some(Piece::Bytes(_)) => {
                    if let Some(Piece::Bytes(bytes)) = this.pieces.pop_front() {
                        this.remaining = this.remaining.saturating_sub(bytes.len() as u64);
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                    continue;
                }
                Some(Piece::Region(region)) => region.clone(),
            };
            match RuntimeHandle::try_current() {
                Some(runtime) => {
                    let read = runtime.spawn_blocking(move || region.read_chunk(CHUNK));
                    this.reading = Some(Box::pin(read));
                }
                None => {
                    let result = region.read_chunk(CHUNK);
                    return Poll::Ready(Some(this.finish_read(result)));
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.reading.is_none()
    }
}
