//! The body of a file response: pieces that are either bytes already in memory (multipart
//! headers) or regions of the open file, read in bounded chunks on the runtime's blocking
//! pool (inline when no runtime is current). Never more than one chunk in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use weft_service::runtime::RuntimeHandle;

/// How much of a file one read takes.
pub(crate) const CHUNK: u64 = 64 * 1024;

/// One piece of the body.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes in memory (a multipart part's head, the closing boundary).
    Bytes(Bytes),
    /// `len` bytes of the file from `offset`.
    Region {
        /// Where the next read starts.
        offset: u64,
        /// How many bytes are left.
        len: u64,
    },
}

type PendingRead =
    Pin<Box<dyn std::future::Future<Output = (File, std::io::Result<Bytes>)> + Send>>;

enum State {
    Idle(Option<File>),
    Reading(PendingRead),
}

/// The body: its pieces in order, and the file they read from.
pub(crate) struct FileBody {
    state: State,
    pieces: VecDeque<Piece>,
    remaining: u64,
}

impl FileBody {
    /// A body of `pieces`, the regions read from `file`.
    pub(crate) fn new(file: File, pieces: Vec<Piece>) -> Self {
        let remaining = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Bytes(bytes) => bytes.len() as u64,
                Piece::Region { len, .. } => *len,
            })
            .sum();
        FileBody {
            state: State::Idle(Some(file)),
            pieces: pieces.into(),
            remaining,
        }
    }

    /// The body's exact length.
    pub(crate) fn len(&self) -> u64 {
        self.remaining
    }

    fn finish_read(
        &mut self,
        file: File,
        result: std::io::Result<Bytes>,
    ) -> Result<Frame<Bytes>, std::io::Error> {
        let chunk = result?;
        let Some(Piece::Region { offset, len }) = self.pieces.front_mut() else {
            return Err(std::io::Error::other("a read finished without its region"));
        };
        if chunk.is_empty() {
            // The file shrank since it was opened: end with an error rather than a body
            // shorter than its Content-Length.
            self.state = State::Idle(None);
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
        let n = chunk.len() as u64;
        *offset += n;
        *len -= n.min(*len);
        if *len == 0 {
            self.pieces.pop_front();
        }
        self.remaining = self.remaining.saturating_sub(n);
        self.state = State::Idle(Some(file));
        Ok(Frame::data(chunk))
    }
}

fn read_at(mut file: File, offset: u64, want: u64) -> (File, std::io::Result<Bytes>) {
    let result = (|| {
        file.seek(SeekFrom::Start(offset))?;
        let mut buffer = BytesMut::zeroed(usize::try_from(want).unwrap_or(CHUNK as usize));
        let n = file.read(&mut buffer)?;
        buffer.truncate(n);
        Ok(buffer.freeze())
    })();
    (file, result)
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        loop {
            if let State::Reading(read) = &mut this.state {
                let (file, result) = std::task::ready!(read.as_mut().poll(cx));
                return Poll::Ready(Some(this.finish_read(file, result)));
            }
            let (offset, len) = match this.pieces.pop_front() {
                None => return Poll::Ready(None),
                Some(Piece::Region { len: 0, .. }) => continue,
                Some(Piece::Bytes(bytes)) => {
                    this.remaining = this.remaining.saturating_sub(bytes.len() as u64);
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Some(Piece::Region { offset, len }) => {
                    this.pieces.push_front(Piece::Region { offset, len });
                    (offset, len)
                }
            };
            let State::Idle(file) = &mut this.state else {
                continue;
            };
            let Some(file) = file.take() else {
                return Poll::Ready(None);
            };
            let want = CHUNK.min(len);
            match RuntimeHandle::try_current() {
                Some(runtime) => {
                    let read = runtime.spawn_blocking(move || read_at(file, offset, want));
                    this.state = State::Reading(Box::pin(read));
                }
                None => {
                    let (file, result) = read_at(file, offset, want);
                    return Poll::Ready(Some(this.finish_read(file, result)));
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
