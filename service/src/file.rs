//! A region of an open file as a response body ([`FileRegion`], sent with
//! [`Body::file`](crate::body::Body::file)).
//!
//! Polled as an ordinary body, a region yields bounded chunks read with positional reads on the
//! runtime's blocking pool, so the event loop never waits for the disk. A connection driver
//! that can move a file to its socket without a user-space copy (`sendfile(2)`) takes the region
//! out of the body instead ([`Body::take_file_region`](crate::body::Body::take_file_region)).
//!
//! Either way, the file's identity (its size and modification time when the region was made)
//! is checked before and after every read: a file changed in place while it is served ends the
//! body with [`FileError::Changed`], so the client sees a response shorter than its
//! Content-Length instead of one silently mixing old and new bytes under the old validators.

use std::fmt;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use sync_wrapper::SyncWrapper;

use crate::body::BoxError;
use crate::runtime::RuntimeHandle;

/// How much of a file one read takes: what a polled file body holds in memory at a time.
pub const CHUNK: usize = 64 * 1024;

/// What a file looked like when a region of it was made: its size and modification time.
///
/// Response validators (ETag, Last-Modified) should be computed from this, so that they
/// describe exactly the bytes that are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileIdentity {
    /// The identity described by `metadata`.
    pub fn from_metadata(metadata: &std::fs::Metadata) -> Self {
        FileIdentity {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }

    /// The identity `file` has now.
    pub fn of(file: &File) -> io::Result<Self> {
        file.metadata()
            .map(|metadata| Self::from_metadata(&metadata))
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's modification time, where the platform reports one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }
}

/// Why a file region could not be sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// The region does not fit in the file (`offset + len` beyond its end).
    OutOfBounds,
    /// The file's size or modification time changed since the region was made.
    Changed,
    /// The file ended before the region did (it shrank between two checks).
    Shrank,
    /// Reading the file (or its metadata) failed.
    Io(io::Error),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::OutOfBounds => f.write_str("file region beyond the end of the file"),
            FileError::Changed => f.write_str("the file changed while it was sent"),
            FileError::Shrank => f.write_str("the file shrank while it was sent"),
            FileError::Io(error) => write!(f, "reading the file failed: {error}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for FileError {
    fn from(error: io::Error) -> Self {
        FileError::Io(error)
    }
}

impl From<FileError> for io::Error {
    fn from(error: FileError) -> Self {
        match error {
            FileError::Io(error) => error,
            FileError::Shrank => io::Error::new(io::ErrorKind::UnexpectedEof, error),
            other => io::Error::other(other),
        }
    }
}

/// `len` bytes of an open file from `offset`, and the identity the file had when the region
/// was made. Sending advances the region ([`advance`](FileRegion::advance)).
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Arc<File>,
    offset: u64,
    len: u64,
    identity: FileIdentity,
}

impl FileRegion {
    /// `len` bytes of `file` from `offset`, its identity read from the file's metadata now.
    /// Fails when the metadata cannot be read, or (`InvalidInput`, carrying
    /// [`FileError::OutOfBounds`]) when the region does not fit in the file.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> io::Result<Self> {
        let identity = FileIdentity::of(&file)?;
        Self::with_identity(file, offset, len, identity)
    }

    /// Like [`new`](FileRegion::new), with an identity the caller already read (from the same
    /// metadata it computed the response's validators from).
    pub fn with_identity(
        file: Arc<File>,
        offset: u64,
        len: u64,
        identity: FileIdentity,
    ) -> io::Result<Self> {
        match offset.checked_add(len) {
            Some(end) if end <= identity.len => Ok(FileRegion {
                file,
                offset,
                len,
                identity,
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                FileError::OutOfBounds,
            )),
        }
    }

    /// The open file.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Where the bytes still to send start in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many bytes are still to send.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether everything was sent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The identity the file had when the region was made.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// Records that `sent` more bytes went out (at most what is left).
    pub fn advance(&mut self, sent: u64) {
        let sent = sent.min(self.len);
        self.offset += sent;
        self.len -= sent;
    }

    /// Fails with [`FileError::Changed`] when the file's size or modification time is no
    /// longer what it was when the region was made. Drivers call it before every send.
    pub fn check_unchanged(&self) -> Result<(), FileError> {
        if FileIdentity::of(&self.file)? == self.identity {
            Ok(())
        } else {
            Err(FileError::Changed)
        }
    }

    /// Reads the next chunk (at most `max` bytes) without advancing, checking the identity
    /// before and after the read so a chunk never mixes two versions of the file. Blocks.
    pub fn read_chunk(&self, max: usize) -> Result<Bytes, FileError> {
        let want = usize::try_from(self.len).map_or(max, |len| len.min(max));
        let mut buffer = BytesMut::zeroed(want);
        self.read_into(&mut buffer)?;
        Ok(buffer.freeze())
    }

    /// Fills the start of `buffer` with the next bytes of the region (as many as fit, at most
    /// what is left) without advancing, and returns how many: a copy loop's read into a buffer
    /// it reuses. The identity is checked before and after the read, like
    /// [`read_chunk`](FileRegion::read_chunk). Blocks.
    pub fn read_into(&self, buffer: &mut [u8]) -> Result<usize, FileError> {
        let want = usize::try_from(self.len).map_or(buffer.len(), |len| len.min(buffer.len()));
        self.check_unchanged()?;
        read_exact_at(&self.file, &mut buffer[..want], self.offset)?;
        self.check_unchanged()?;
        Ok(want)
    }
}

/// Fills `buffer` from `offset` with positional reads (the file's cursor is untouched, so
/// several responses may share one open file).
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> Result<(), FileError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match read_at(file, &mut buffer[filled..], offset + filled as u64) {
            Ok(0) => return Err(FileError::Shrank),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buffer, offset)
}

type PendingRead = Pin<Box<dyn Future<Output = Result<Bytes, FileError>> + Send>>;

/// A [`FileRegion`] polled as a body: one chunk at a time, read on the blocking pool when a
/// runtime is current (inline otherwise, for a user's own loop).
pub(crate) struct FileBody {
    /// `None` once the body ended (sent, failed, or taken out by a driver).
    region: Option<FileRegion>,
    /// A read on the blocking pool; `SyncWrapper` keeps the body `Sync`.
    reading: Option<SyncWrapper<PendingRead>>,
}

impl FileBody {
    pub(crate) fn new(region: FileRegion) -> Self {
        FileBody {
            region: Some(region),
            reading: None,
        }
    }

    /// Takes the region out (an in-flight read is dropped: the region was not advanced by it).
    pub(crate) fn take_region(&mut self) -> Option<FileRegion> {
        self.reading = None;
        self.region.take()
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(region) = &self.region else {
            return Poll::Ready(None);
        };
        if region.is_empty() {
            self.region = None;
            return Poll::Ready(None);
        }
        let result = match &mut self.reading {
            Some(read) => std::task::ready!(read.get_mut().as_mut().poll(cx)),
            None => match RuntimeHandle::try_current() {
                Some(runtime) => {
                    let region = region.clone();
                    let read = runtime.spawn_blocking(move || region.read_chunk(CHUNK));
                    self.reading = Some(SyncWrapper::new(Box::pin(read)));
                    return self.poll_frame(cx);
                }
                None => region.read_chunk(CHUNK),
            },
        };
        self.reading = None;
        Poll::Ready(Some(self.finish_read(result)))
    }

    fn finish_read(&mut self, result: Result<Bytes, FileError>) -> Result<Frame<Bytes>, BoxError> {
        match (result, self.region.as_mut()) {
            (Ok(chunk), Some(region)) => {
                region.advance(chunk.len() as u64);
                Ok(Frame::data(chunk))
            }
            (Ok(_), None) => Err(FileError::Changed.into()),
            (Err(error), _) => {
                self.region = None;
                Err(error.into())
            }
        }
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.region.as_ref().map_or(0, FileRegion::len))
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.region.as_ref().is_none_or(FileRegion::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::task::Waker;

    use super::*;
    use crate::body::Body;

    /// A temporary file holding `content`, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, content: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("weft-{name}-{}", std::process::id()));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }

        fn open(&self) -> Arc<File> {
            Arc::new(File::open(&self.0).unwrap())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn poll(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut cx = Context::from_waker(Waker::noop());
        http_body::Body::poll_frame(Pin::new(body), &mut cx)
    }

    #[test]
    fn a_region_streams_in_bounded_chunks_with_an_exact_size() {
        let bytes = content(3 * CHUNK + 17);
        let temp = TempFile::new("file-chunks", &bytes);
        let region = FileRegion::new(temp.open(), 5, bytes.len() as u64 - 10).unwrap();
        let mut body = Body::file(region);
        assert!(body.is_file());
        let mut received = Vec::new();
        while let Poll::Ready(Some(frame)) = poll(&mut body) {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= CHUNK);
            received.extend_from_slice(&data);
            let left = (bytes.len() - 10 - received.len()) as u64;
            assert_eq!(http_body::Body::size_hint(&body).exact(), Some(left));
        }
        assert_eq!(received, bytes[5..bytes.len() - 5]);
        assert!(http_body::Body::is_end_stream(&body));
    }

    #[test]
    fn a_region_beyond_the_end_is_refused() {
        let temp = TempFile::new("file-bounds", b"0123456789");
        let error = FileRegion::new(temp.open(), 4, 7).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(FileRegion::new(temp.open(), 4, 6).is_ok());
        assert!(FileRegion::new(temp.open(), u64::MAX, 2).is_err());
    }

    #[test]
    fn a_file_changed_mid_body_ends_it_with_an_error() {
        let bytes = content(2 * CHUNK);
        let temp = TempFile::new("file-changed", &bytes);
        let mut body = Body::file(FileRegion::new(temp.open(), 0, bytes.len() as u64).unwrap());
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        // Appending changes the size (whatever the clock's granularity for mtime).
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&temp.0)
            .unwrap();
        writer.write_all(b"more").unwrap();
        match poll(&mut body) {
            Poll::Ready(Some(Err(error))) => {
                assert!(
                    error
                        .downcast_ref::<FileError>()
                        .is_some_and(|e| matches!(e, FileError::Changed))
                )
            }
            other => panic!("expected the change to end the body, got {other:?}"),
        }
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[test]
    fn a_driver_takes_the_region_out_and_leaves_an_empty_body() {
        let temp = TempFile::new("file-take", b"hello world");
        let mut body = Body::file(FileRegion::new(temp.open(), 6, 5).unwrap());
        let region = body.take_file_region().unwrap();
        assert_eq!((region.offset(), region.len()), (6, 5));
        assert_eq!(region.identity().len(), 11);
        assert!(!body.is_file());
        assert!(body.take_file_region().is_none());
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(Body::from("x").take_file_region().is_none());
    }

    #[test]
    fn advancing_never_passes_the_end() {
        let temp = TempFile::new("file-advance", b"0123456789");
        let mut region = FileRegion::new(temp.open(), 2, 8).unwrap();
        region.advance(3);
        assert_eq!((region.offset(), region.len()), (5, 5));
        region.advance(100);
        assert!(region.is_empty());
        assert_eq!(region.offset(), 10);
    }

    #[test]
    fn a_file_body_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Body>();
        assert_send_sync::<FileRegion>();
    }
}
