//! Reading message bodies out of the input buffer: fixed length, chunked (RFC 9112 §7.1) and
//! close-delimited. Data is split off the buffer as `Bytes`, never copied.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use memchr::memchr;

use super::error::H1Error;
use super::framing::BodyFraming;
use super::head::is_token_byte;
use crate::Limits;

/// One step of body decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A piece of the body.
    Data(Bytes),
    /// The trailer section of a chunked body; `End` follows.
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More input is needed.
    NeedData,
}

/// Reads one message body from the input buffer.
#[derive(Debug, Clone)]
pub(crate) enum BodyDecoder {
    /// Bytes still to read of a Content-Length body.
    Length(u64),
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// Everything until end of input, counting bytes against the body limit.
    CloseDelimited { received: u64 },
    /// Finished; `End` has been reported.
    Done,
}

impl BodyDecoder {
    /// The decoder for a body framed as `framing`.
    pub(crate) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => BodyDecoder::Length(0),
            BodyFraming::Length(n) => BodyDecoder::Length(n),
            BodyFraming::Chunked => BodyDecoder::Chunked(ChunkedDecoder::default()),
            BodyFraming::CloseDelimited => BodyDecoder::CloseDelimited { received: 0 },
        }
    }

    /// Takes the next piece of the body out of `input`. `eof` says the peer will send nothing
    /// more, which ends a close-delimited body and truncates any other.
    pub(crate) fn decode(
        &mut self,
        input: &mut BytesMut,
        eof: bool,
        limits: &Limits,
    ) -> Result<Decoded, H1Error> {
        match self {
            BodyDecoder::Length(0) => {
                *self = BodyDecoder::Done;
                Ok(Decoded::End)
            }
            BodyDecoder::Length(remaining) => {
                if input.is_empty() {
                    return if eof {
                        Err(H1Error::IncompleteMessage)
                    } else {
                        Ok(Decoded::NeedData)
                    };
                }
                let n = input
                    .len()
                    .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= n as u64;
                Ok(Decoded::Data(input.split_to(n).freeze()))
            }
            BodyDecoder::Chunked(chunked) => {
                let decoded = chunked.decode(input, limits)?;
                match decoded {
                    Decoded::End => *self = BodyDecoder::Done,
                    Decoded::NeedData if eof => return Err(H1Error::IncompleteMessage),
                    _ => {}
                }
                Ok(decoded)
            }
            BodyDecoder::CloseDelimited { received } => {
                if input.is_empty() {
                    if eof {
                        *self = BodyDecoder::Done;
                        return Ok(Decoded::End);
                    }
                    return Ok(Decoded::NeedData);
                }
                *received += input.len() as u64;
                if *received > limits.max_body_size {
                    return Err(H1Error::BodyTooLarge);
                }
                Ok(Decoded::Data(input.split().freeze()))
            }
            BodyDecoder::Done => Ok(Decoded::End),
        }
    }

    /// Body bytes still expected, when the framing says (`None` for chunked or to-close).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length(n) => Some(*n),
            BodyDecoder::Done => Some(0),
            _ => None,
        }
    }
}

/// Where the chunked decoder is within the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Reading chunk data.
    Data(u64),
    /// Reading the CRLF after chunk data.
    DataEnd,
    /// Reading the trailer section after the last chunk.
    Trailers,
    /// The body is complete.
    Done,
}

/// The chunked transfer coding (RFC 9112 §7.1) as a resumable state machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    /// Body bytes decoded so far, against `Limits::max_body_size`.
    total: u64,
    /// Chunk-extension bytes seen so far, against `Limits::max_chunk_extensions_size`.
    extension_bytes: usize,
    /// Bytes of the current line or trailer section already searched for its end.
    scanned: usize,
}

impl ChunkedDecoder {
    fn decode(&mut self, input: &mut BytesMut, limits: &Limits) -> Result<Decoded, H1Error> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(size) = self.read_size_line(input, limits)? else {
                        return Ok(Decoded::NeedData);
                    };
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(Decoded::NeedData);
                    }
                    let n = input
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Decoded::Data(input.split_to(n).freeze()));
                }
                ChunkState::DataEnd => match input.get(..2) {
                    Some(b"\r\n") => {
                        input.advance(2);
                        self.state = ChunkState::Size;
                    }
                    Some(_) => return Err(H1Error::MissingChunkTerminator),
                    None if input.first().is_some_and(|&b| b != b'\r') => {
                        return Err(H1Error::MissingChunkTerminator);
                    }
                    None => return Ok(Decoded::NeedData),
                },
                ChunkState::Trailers => {
                    let Some(trailers) = self.read_trailers(input, limits)? else {
                        return Ok(Decoded::NeedData);
                    };
                    self.state = ChunkState::Done;
                    return Ok(match trailers {
                        Some(map) => Decoded::Trailers(map),
                        None => Decoded::End,
                    });
                }
                ChunkState::Done => return Ok(Decoded::End),
            }
        }
    }

    /// Reads `chunk-size [chunk-ext] CRLF`, returning the size once the line is complete.
    fn read_size_line(
        &mut self,
        input: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<u64>, H1Error> {
        let Some(lf) = self.find_line_end(input, limits.max_chunk_line_len)? else {
            return Ok(None);
        };
        let line = &input[..lf - 1];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(H1Error::InvalidChunkSize);
        }
        let size = line[..digits].iter().try_fold(0u64, |n, &b| {
            let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
            n.checked_mul(16).and_then(|n| n.checked_add(digit))
        });
        let size = size.ok_or(H1Error::ChunkSizeOverflow)?;
        let extensions = &line[digits..];
        validate_chunk_extensions(extensions)?;
        self.extension_bytes += extensions.len();
        if self.extension_bytes > limits.max_chunk_extensions_size {
            return Err(H1Error::ChunkExtensionsTooLarge);
        }
        self.total = self.total.checked_add(size).ok_or(H1Error::BodyTooLarge)?;
        if self.total > limits.max_body_size {
            return Err(H1Error::BodyTooLarge);
        }
        input.advance(lf + 1);
        self.scanned = 0;
        Ok(Some(size))
    }

    /// Finds the LF ending the current line within `max_len` bytes, requiring CR before it.
    fn find_line_end(&mut self, input: &[u8], max_len: usize) -> Result<Option<usize>, H1Error> {
        let window = &input[..input.len().min(max_len + 2)];
        match memchr(b'\n', &window[self.scanned..]).map(|i| i + self.scanned) {
            Some(lf) if lf == 0 || input[lf - 1] != b'\r' => Err(H1Error::BareLineFeed),
            Some(lf) => Ok(Some(lf)),
            None if input.len() > max_len + 1 => Err(H1Error::ChunkLineTooLong),
            None => {
                self.scanned = window.len();
                Ok(None)
            }
        }
    }

    /// Reads the trailer section: `None` while incomplete, then `Some(None)` when it is empty.
    fn read_trailers(
        &mut self,
        input: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Option<HeaderMap>>, H1Error> {
        match input.get(..2) {
            Some(b"\r\n") => {
                input.advance(2);
                return Ok(Some(None));
            }
            None if input.first().is_none_or(|&b| b == b'\r') => return Ok(None),
            // A field line cannot start with CR: this one is a bare CR where the end should be.
            Some([b'\r', _]) => return Err(H1Error::BareCarriageReturn),
            _ => {}
        }
        let search_end = input.len().min(limits.max_trailer_size);
        let mut end = None;
        for lf in
            memchr::memchr_iter(b'\n', &input[self.scanned..search_end]).map(|i| i + self.scanned)
        {
            if lf == 0 || input[lf - 1] != b'\r' {
                return Err(H1Error::BareLineFeed);
            }
            if lf >= 3 && &input[lf - 3..lf] == b"\r\n\r" {
                end = Some(lf + 1);
                break;
            }
        }
        let Some(end) = end else {
            if input.len() >= limits.max_trailer_size {
                return Err(H1Error::TrailersTooLarge);
            }
            self.scanned = search_end;
            return Ok(None);
        };
        let section = input.split_to(end).freeze();
        parse_trailers(&section, limits).map(|map| Some(Some(map)))
    }
}

/// RFC 9112 §7.1.1: `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
/// Extensions carry nothing we use; they are checked so that a malformed line is refused the
/// same way by every parser, then dropped.
fn validate_chunk_extensions(mut rest: &[u8]) -> Result<(), H1Error> {
    let skip_bws =
        |s: &[u8]| -> usize { s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count() };
    let token_len = |s: &[u8]| -> usize { s.iter().take_while(|&&b| is_token_byte(b)).count() };
    while !rest.is_empty() {
        rest = &rest[skip_bws(rest)..];
        let Some(after_semicolon) = rest.strip_prefix(b";") else {
            return Err(if rest.contains(&b'\r') {
                H1Error::BareCarriageReturn
            } else {
                H1Error::InvalidChunkExtension
            });
        };
        rest = &after_semicolon[skip_bws(after_semicolon)..];
        let name = token_len(rest);
        if name == 0 {
            return Err(H1Error::InvalidChunkExtension);
        }
        rest = &rest[name..];
        let ws = skip_bws(rest);
        if rest[ws..].first() == Some(&b'=') {
            rest = &rest[ws + 1..];
            rest = &rest[skip_bws(rest)..];
            let value = if rest.first() == Some(&b'"') {
                quoted_string_len(rest)
            } else {
                token_len(rest)
            };
            if value == 0 {
                return Err(H1Error::InvalidChunkExtension);
            }
            rest = &rest[value..];
        }
    }
    Ok(())
}

/// Length of the quoted-string at the start of `s` (RFC 9110 §5.6.4), or 0 if there is none.
fn quoted_string_len(s: &[u8]) -> usize {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return i + 1,
            b'\\' if i + 1 < s.len() && is_qdtext_or_escapable(s[i + 1]) => i += 2,
            b if is_qdtext_or_escapable(b) && b != b'\\' => i += 1,
            _ => return 0,
        }
    }
    0
}

fn is_qdtext_or_escapable(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Parses a complete trailer section (field lines ending in the blank line).
fn parse_trailers(section: &Bytes, limits: &Limits) -> Result<HeaderMap, H1Error> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let parsed = match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Err(httparse::Error::TooManyHeaders) => return Err(H1Error::TrailersTooLarge),
        _ => return Err(H1Error::InvalidTrailer),
    };
    let mut trailers = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name =
            HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| H1Error::InvalidTrailer)?;
        let value = HeaderValue::from_maybe_shared(section.slice_ref(field.value))
            .map_err(|_| H1Error::InvalidTrailer)?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes all of `input` at once, returning the body, trailers, or the error.
    fn decode_chunked(input: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>), H1Error> {
        let limits = Limits::default();
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(input);
        let mut body = Vec::new();
        let mut trailers = None;
        loop {
            match decoder.decode(&mut buf, true, &limits)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((body, trailers)),
                Decoded::NeedData => unreachable!("eof turns NeedData into an error"),
            }
        }
    }

    #[test]
    fn decodes_chunks_and_trailers() {
        let (body, trailers) =
            decode_chunked(b"5\r\nhello\r\n6;a=b;c=\"d e\"\r\n world\r\n0\r\nx-sum: 1\r\n\r\n")
                .unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(trailers.unwrap()["x-sum"], "1");
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(
            decode_chunked(b"g\r\n").unwrap_err(),
            H1Error::InvalidChunkSize
        );
        assert_eq!(
            decode_chunked(b"\r\n").unwrap_err(),
            H1Error::InvalidChunkSize
        );
        assert_eq!(
            decode_chunked(b"-1\r\n").unwrap_err(),
            H1Error::InvalidChunkSize
        );
        assert_eq!(
            decode_chunked(b"10000000000000000\r\n").unwrap_err(),
            H1Error::ChunkSizeOverflow
        );
        assert_eq!(
            decode_chunked(b"5 \r\nhello\r\n0\r\n\r\n").unwrap_err(),
            H1Error::InvalidChunkExtension
        );
    }

    #[test]
    fn requires_exact_crlf() {
        assert_eq!(
            decode_chunked(b"5\nhello\r\n0\r\n\r\n").unwrap_err(),
            H1Error::BareLineFeed
        );
        assert_eq!(
            decode_chunked(b"5\r\nhelloX\r\n").unwrap_err(),
            H1Error::MissingChunkTerminator
        );
        assert_eq!(
            decode_chunked(b"5\r\nhello\n0\r\n\r\n").unwrap_err(),
            H1Error::MissingChunkTerminator
        );
        assert_eq!(
            decode_chunked(b"5\rx\r\nhello\r\n").unwrap_err(),
            H1Error::BareCarriageReturn
        );
        assert_eq!(
            decode_chunked(b"0\r\n\n").unwrap_err(),
            H1Error::BareLineFeed
        );
    }

    #[test]
    fn truncated_body_is_incomplete() {
        assert_eq!(
            decode_chunked(b"5\r\nhel").unwrap_err(),
            H1Error::IncompleteMessage
        );
    }

    #[test]
    fn body_limit_counts_declared_sizes() {
        let limits = Limits {
            max_body_size: 4,
            ..Limits::default()
        };
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from(&b"5\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, false, &limits),
            Err(H1Error::BodyTooLarge)
        );
    }
}
