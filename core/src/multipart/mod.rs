//! multipart/form-data (RFC 7578) as a sans-IO streaming parser.
//!
//! [`Parser`] turns the bytes of a `multipart/form-data` body into events: [`Event::PartStart`]
//! with the part's head, its body as [`Event::Data`] pieces, [`Event::PartEnd`], and
//! [`Event::End`] at the close delimiter. It has the shape of every machine in this crate:
//!
//! - bytes in: [`Parser::receive`] takes what fits in its buffer and returns how many bytes it
//!   took (fewer than offered is backpressure: offer the rest after draining events), and
//!   [`Parser::receive_eof`] says the body has ended;
//! - events out: [`Parser::poll_event`], lazily, until it returns `None` (more bytes needed) or
//!   an error. Once `poll_event` returns `None`, `receive` takes at least one byte.
//!
//! A part's body is never buffered whole: every byte that cannot be the start of the next
//! boundary delimiter goes out as soon as it arrives, and only a possible delimiter prefix (at
//! most 73 bytes) is held back. Every bound in [`MultipartLimits`] is enforced here, and the
//! events never carry more bytes than the limits allow. The parser never panics on any input.
//!
//! The syntax is RFC 2046 §5.1.1's: a preamble and an epilogue (ignored), `--boundary` lines
//! that may end in transport padding (spaces and tabs) before their CRLF, a header section per
//! part, and `--boundary--` to close. Lines end in CRLF only: a bare LF in a part's header
//! section is refused, as lenient line endings are where parsers start to disagree.
//!
//! ```
//! use weft_core::multipart::{Event, MultipartLimits, Parser, boundary_from_content_type};
//!
//! let boundary = boundary_from_content_type("multipart/form-data; boundary=XyZ").unwrap();
//! let mut parser = Parser::new(&boundary, MultipartLimits::default()).unwrap();
//! let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"greeting\"\r\n\r\nhello\r\n--XyZ--\r\n";
//! let mut unread = &body[..];
//! let mut fields = Vec::new();
//! loop {
//!     let taken = parser.receive(unread);
//!     unread = &unread[taken..];
//!     if unread.is_empty() {
//!         parser.receive_eof();
//!     }
//!     match parser.poll_event() {
//!         Some(Ok(Event::PartStart(head))) => fields.push((head.name, Vec::new())),
//!         Some(Ok(Event::Data(bytes))) => fields.last_mut().unwrap().1.extend_from_slice(&bytes),
//!         Some(Ok(Event::PartEnd)) => {}
//!         Some(Ok(Event::End)) => break,
//!         Some(Err(error)) => panic!("{error}"),
//!         None => {} // more bytes needed
//!     }
//! }
//! assert_eq!(fields, [("greeting".to_owned(), b"hello".to_vec())]);
//! ```

mod error;
mod params;
#[cfg(test)]
mod tests;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use memchr::memmem;

pub use error::MultipartError;
pub use params::{boundary_from_content_type, validate_boundary};

/// Every bound the multipart parser enforces. Crossing a size answers `413`.
///
/// The HTTP layer's own body limit (`Limits::max_body_size`, 8 MiB by default) applies first:
/// raise both for large uploads.
///
/// ```
/// let mut limits = weft_core::multipart::MultipartLimits::default();
/// limits.max_file_bytes = 1024 * 1024 * 1024;
/// limits.max_total_bytes = 1024 * 1024 * 1024;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultipartLimits {
    /// Largest head of one part: the transport padding after its boundary plus its header
    /// section with the blank line that ends it. Default 8 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in one part. Default 16 (browsers send two or three).
    pub max_headers: usize,
    /// Most parts in one body. Default 100.
    pub max_parts: usize,
    /// Largest body of a field: a part without a `filename`, which applications usually read
    /// into memory. Default 1 MiB.
    pub max_field_bytes: u64,
    /// Largest body of a file: a part with a `filename`, which applications usually stream to
    /// disk. Default 32 MiB.
    pub max_file_bytes: u64,
    /// Largest whole multipart body (preamble, delimiters, heads and part bodies; the epilogue
    /// after the close delimiter is not read). Default 64 MiB.
    pub max_total_bytes: u64,
    /// Most input bytes the parser holds that have not become events yet; `receive` takes no
    /// more (backpressure). Never less than `max_header_bytes`, so a whole head fits. Default
    /// 64 KiB.
    pub max_buffered_input: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            max_header_bytes: 8 * 1024,
            max_headers: 16,
            max_parts: 100,
            max_field_bytes: 1024 * 1024,
            max_file_bytes: 32 * 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_buffered_input: 64 * 1024,
        }
    }
}

/// The head of one part: its form field name, its filename if it is a file, and its headers.
#[derive(Debug, Clone, PartialEq)]
pub struct PartHead {
    /// The form field name (`Content-Disposition`'s `name`, RFC 7578 §4.2).
    pub name: String,
    /// The file name the client gave (`filename*` if present, else `filename`): present for
    /// file parts. Untrusted: never use it as a path.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given (RFC 7578 §4.4: `text/plain` when absent).
    pub content_type: Option<String>,
    /// All the part's header fields.
    pub headers: HeaderMap,
}

impl PartHead {
    /// Whether this part is a file (has a filename), which [`MultipartLimits::max_file_bytes`]
    /// bounds instead of [`MultipartLimits::max_field_bytes`].
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }
}

/// What the parser found in the body, in order: for each part `PartStart`, zero or more
/// `Data`, `PartEnd`; then `End`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A part begins.
    PartStart(PartHead),
    /// A piece of the current part's body (never empty).
    Data(Bytes),
    /// The current part's body is complete.
    PartEnd,
    /// The close delimiter: the body is complete; anything after it (the epilogue) is ignored.
    End,
}

/// Where the parser is in the body (RFC 2046 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing decided yet: the body may begin with the first `--boundary` at once.
    Start,
    /// Skipping the preamble up to the first `CRLF--boundary`.
    Preamble,
    /// Just after a `--boundary`: `--` closes, else transport padding and CRLF.
    AfterDelimiter { padded: bool },
    /// In a part's header section.
    Headers,
    /// In a part's body, up to the next `CRLF--boundary`.
    Body,
    /// `End` was returned.
    Done,
    /// An error was returned.
    Failed,
}

/// One step of the transition function.
enum Step {
    Emit(Event),
    Continue,
    NeedData,
    Fail(MultipartError),
}

/// The sans-IO multipart/form-data parser; see the [module documentation](self).
#[derive(Debug)]
pub struct Parser {
    /// `CRLF--boundary`: what ends a part body (RFC 2046 §5.1.1 `delimiter`).
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
    limits: MultipartLimits,
    /// How many bytes `buf` may hold.
    capacity: usize,
    buf: BytesMut,
    state: State,
    /// Bytes taken so far, against `max_total_bytes`.
    received: u64,
    /// More bytes were offered than `max_total_bytes` allows.
    over_limit: bool,
    eof: bool,
    parts: usize,
    /// The current part's head bytes so far (transport padding).
    head_bytes: usize,
    /// How far the search for the end of the header section got in `buf`.
    scanned: usize,
    part_is_file: bool,
    part_bytes: u64,
}

impl Parser {
    /// A parser for a body whose parts are separated by `boundary` (without the leading `--`;
    /// from [`boundary_from_content_type`]). Fails with [`MultipartError::InvalidBoundary`]
    /// when the boundary breaks RFC 2046 §5.1.1.
    pub fn new(boundary: &str, limits: MultipartLimits) -> Result<Self, MultipartError> {
        validate_boundary(boundary)?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        let finder = memmem::Finder::new(&delimiter).into_owned();
        // Progress needs a whole head, or a delimiter and the two bytes after it, to fit.
        let capacity = limits
            .max_buffered_input
            .max(limits.max_header_bytes)
            .max(delimiter.len() + 4);
        Ok(Parser {
            delimiter,
            finder,
            limits,
            capacity,
            buf: BytesMut::new(),
            state: State::Start,
            received: 0,
            over_limit: false,
            eof: false,
            parts: 0,
            head_bytes: 0,
            scanned: 0,
            part_is_file: false,
            part_bytes: 0,
        })
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &MultipartLimits {
        &self.limits
    }

    /// Whether the parser has finished: `End` or an error was returned. Later input is ignored.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// Offers body bytes; returns how many were taken. Fewer than offered means the buffer is
    /// full: drain [`poll_event`](Self::poll_event) and offer the rest again. Once the parser
    /// is finished every byte is taken and ignored; after [`receive_eof`](Self::receive_eof)
    /// none is.
    pub fn receive(&mut self, data: &[u8]) -> usize {
        if self.is_finished() {
            return data.len();
        }
        if self.eof {
            return 0;
        }
        let budget = self.limits.max_total_bytes.saturating_sub(self.received);
        if data.len() as u64 > budget {
            // Reported once the bytes within the limit are parsed, so that the events do not
            // depend on how the body was split.
            self.over_limit = true;
        }
        let room = self.capacity.saturating_sub(self.buf.len());
        let take = data
            .len()
            .min(room)
            .min(usize::try_from(budget).unwrap_or(usize::MAX));
        let Some(taken) = data.get(..take) else {
            return 0;
        };
        self.buf.extend_from_slice(taken);
        self.received = self.received.saturating_add(take as u64);
        take
    }

    /// Says the body has ended: a parser that has not seen the close delimiter by then returns
    /// [`MultipartError::UnexpectedEof`].
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// The next event, an error (after which there are no more events), or `None` when more
    /// bytes (or [`receive_eof`](Self::receive_eof)) are needed, or after the end.
    pub fn poll_event(&mut self) -> Option<Result<Event, MultipartError>> {
        loop {
            let step = match self.state {
                State::Start => self.step_start(),
                State::Preamble => self.step_preamble(),
                State::AfterDelimiter { padded } => self.step_after_delimiter(padded),
                State::Headers => self.step_headers(),
                State::Body => self.step_body(),
                State::Done | State::Failed => return None,
            };
            match step {
                Step::Emit(event) => return Some(Ok(event)),
                Step::Continue => {}
                // Only once every byte within the limit was taken: the parser may have
                // needed more while its buffer, not the limit, stopped `receive`.
                Step::NeedData
                    if self.over_limit && self.received >= self.limits.max_total_bytes =>
                {
                    return Some(Err(self.fail(MultipartError::BodyTooLarge)));
                }
                Step::NeedData if self.eof => {
                    return Some(Err(self.fail(MultipartError::UnexpectedEof)));
                }
                Step::NeedData => return None,
                Step::Fail(error) => return Some(Err(self.fail(error))),
            }
        }
    }

    fn fail(&mut self, error: MultipartError) -> MultipartError {
        self.state = State::Failed;
        self.buf = BytesMut::new();
        error
    }

    /// `--boundary` (the dash-boundary) with no preamble before it.
    fn dash_boundary(&self) -> &[u8] {
        self.delimiter.get(2..).unwrap_or_default()
    }

    fn step_start(&mut self) -> Step {
        let dash_boundary = self.dash_boundary();
        let len = dash_boundary.len();
        let complete = self.buf.starts_with(dash_boundary);
        let partial = dash_boundary.starts_with(&self.buf);
        if complete {
            self.buf.advance(len);
            self.state = State::AfterDelimiter { padded: false };
            return Step::Continue;
        }
        if partial {
            return Step::NeedData;
        }
        self.state = State::Preamble;
        Step::Continue
    }

    fn step_preamble(&mut self) -> Step {
        if let Some(at) = self.finder.find(&self.buf) {
            let len = at.saturating_add(self.delimiter.len()).min(self.buf.len());
            self.buf.advance(len);
            self.state = State::AfterDelimiter { padded: false };
            return Step::Continue;
        }
        let keep = self.held_back();
        let discard = self.buf.len().saturating_sub(keep);
        self.buf.advance(discard);
        Step::NeedData
    }

    fn step_after_delimiter(&mut self, padded: bool) -> Step {
        let (Some(&first), second) = (self.buf.first(), self.buf.get(1).copied()) else {
            return Step::NeedData;
        };
        match (first, second) {
            (b'-', _) if padded => Step::Fail(MultipartError::MalformedDelimiter),
            (b'-', None) | (b'\r', None) => Step::NeedData,
            (b'-', Some(b'-')) => {
                self.state = State::Done;
                self.buf = BytesMut::new();
                Step::Emit(Event::End)
            }
            (b'\r', Some(b'\n')) => {
                self.buf.advance(2);
                self.parts = self.parts.saturating_add(1);
                if self.parts > self.limits.max_parts {
                    return Step::Fail(MultipartError::TooManyParts);
                }
                self.scanned = 0;
                self.state = State::Headers;
                Step::Continue
            }
            (b' ' | b'\t', _) => {
                let padding = self
                    .buf
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                self.buf.advance(padding);
                self.head_bytes = self.head_bytes.saturating_add(padding);
                if self.head_bytes > self.limits.max_header_bytes {
                    return Step::Fail(MultipartError::HeadersTooLarge);
                }
                self.state = State::AfterDelimiter { padded: true };
                Step::Continue
            }
            _ => Step::Fail(MultipartError::MalformedDelimiter),
        }
    }

    fn step_headers(&mut self) -> Step {
        let max_section = self.limits.max_header_bytes.saturating_sub(self.head_bytes);
        match (self.buf.first(), self.buf.get(1)) {
            (None, _) | (Some(b'\r'), None) => return Step::NeedData,
            // An empty header section: no Content-Disposition.
            (Some(b'\r'), Some(b'\n')) => {
                return Step::Fail(MultipartError::MissingContentDisposition);
            }
            _ => {}
        }
        let window = self
            .buf
            .get(..self.buf.len().min(max_section))
            .unwrap_or_default();
        let from = self.scanned.saturating_sub(3).min(window.len());
        let found = window
            .get(from..)
            .and_then(|rest| memmem::find(rest, b"\r\n\r\n"))
            .map(|at| from + at + 4);
        let Some(end) = found else {
            if self.buf.len() >= max_section {
                return Step::Fail(MultipartError::HeadersTooLarge);
            }
            self.scanned = self.buf.len();
            return Step::NeedData;
        };
        let head = match self.parse_head(end) {
            Ok(head) => head,
            Err(error) => return Step::Fail(error),
        };
        self.buf.advance(end);
        self.head_bytes = 0;
        self.part_is_file = head.is_file();
        self.part_bytes = 0;
        self.state = State::Body;
        Step::Emit(Event::PartStart(head))
    }

    /// Parses the header section `buf[..end]`, which ends in CRLF CRLF.
    fn parse_head(&self, end: usize) -> Result<PartHead, MultipartError> {
        let section = self
            .buf
            .get(..end)
            .ok_or(MultipartError::MalformedHeaders)?;
        // httparse accepts bare LF line endings; RFC 2046 does not.
        let bare_lf = memchr::memchr_iter(b'\n', section)
            .any(|at| at == 0 || section.get(at - 1) != Some(&b'\r'));
        if bare_lf {
            return Err(MultipartError::MalformedHeaders);
        }
        // The shortest field line, `a:` CRLF, is 4 bytes: no more slots can be filled.
        let slots = self.limits.max_headers.min(end / 4 + 1);
        let mut fields = vec![httparse::EMPTY_HEADER; slots];
        let parsed = match httparse::parse_headers(section, &mut fields) {
            Ok(httparse::Status::Complete((len, parsed))) if len == end => parsed,
            Err(httparse::Error::TooManyHeaders) => return Err(MultipartError::TooManyHeaders),
            _ => return Err(MultipartError::MalformedHeaders),
        };
        let mut headers = HeaderMap::with_capacity(parsed.len());
        for field in parsed.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| MultipartError::MalformedHeaders)?;
            let value = HeaderValue::from_bytes(field.value)
                .map_err(|_| MultipartError::MalformedHeaders)?;
            headers.append(name, value);
        }
        let mut dispositions = headers.get_all(http::header::CONTENT_DISPOSITION).iter();
        let disposition = dispositions
            .next()
            .ok_or(MultipartError::MissingContentDisposition)?;
        if dispositions.next().is_some() {
            return Err(MultipartError::MalformedContentDisposition);
        }
        let disposition = params::parse_disposition(disposition.as_bytes())?;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
        Ok(PartHead {
            name: disposition.name,
            filename: disposition.filename,
            content_type,
            headers,
        })
    }

    fn step_body(&mut self) -> Step {
        match self.finder.find(&self.buf) {
            Some(0) => {
                let len = self.delimiter.len().min(self.buf.len());
                self.buf.advance(len);
                self.state = State::AfterDelimiter { padded: false };
                Step::Emit(Event::PartEnd)
            }
            Some(at) => self.emit_data(at),
            None => {
                let ready = self.buf.len().saturating_sub(self.held_back());
                if ready == 0 {
                    Step::NeedData
                } else {
                    self.emit_data(ready)
                }
            }
        }
    }

    /// Emits the next `len` bytes of the part body, or as many as its limit still allows, or
    /// fails when it allows none.
    fn emit_data(&mut self, len: usize) -> Step {
        let (limit, error) = if self.part_is_file {
            (self.limits.max_file_bytes, MultipartError::FileTooLarge)
        } else {
            (self.limits.max_field_bytes, MultipartError::FieldTooLarge)
        };
        let allowed = limit.saturating_sub(self.part_bytes);
        let len = len
            .min(usize::try_from(allowed).unwrap_or(usize::MAX))
            .min(self.buf.len());
        if len == 0 {
            return Step::Fail(error);
        }
        self.part_bytes = self.part_bytes.saturating_add(len as u64);
        Step::Emit(Event::Data(self.buf.split_to(len).freeze()))
    }

    /// How many bytes at the end of `buf` could be the start of the delimiter: the longest
    /// suffix that is a proper prefix of it (shorter than the delimiter, so at most 73 bytes).
    fn held_back(&self) -> usize {
        let longest = self.delimiter.len().saturating_sub(1).min(self.buf.len());
        let tail_start = self.buf.len() - longest;
        let Some(tail) = self.buf.get(tail_start..) else {
            return 0;
        };
        memchr::memchr_iter(b'\r', tail)
            .find(|&at| {
                tail.get(at..)
                    .is_some_and(|suffix| self.delimiter.starts_with(suffix))
            })
            .map_or(0, |at| tail.len() - at)
    }
}
