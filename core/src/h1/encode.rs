//! Writing heads and bodies into the output buffer.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use http::header::{HeaderMap, HeaderName};
use http::{Method, StatusCode, Version};

use super::error::SendError;

/// How an outgoing body is framed, and how much of it is still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyEncoder {
    /// Content-Length: this many bytes are still owed.
    Length(u64),
    /// Chunked: each piece becomes a chunk; `finish` writes the last chunk and trailers.
    Chunked,
    /// Runs until the connection closes (HTTP/1.0 responses of unknown length).
    CloseDelimited,
    /// The message has no body on the wire (HEAD, 1xx, 204, 304): bytes given are dropped.
    Suppressed,
    /// The body is complete.
    Done,
}

impl BodyEncoder {
    /// Frames `data` into `out`.
    pub(crate) fn encode(&mut self, out: &mut BytesMut, data: &[u8]) -> Result<(), SendError> {
        match self {
            BodyEncoder::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(SendError::BodyTooLong);
                }
                *remaining -= data.len() as u64;
                out.extend_from_slice(data);
            }
            BodyEncoder::Chunked if data.is_empty() => {}
            BodyEncoder::Chunked => {
                // Cannot fail: writing into a BytesMut grows it.
                let _ = write!(out, "{:x}\r\n", data.len());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            BodyEncoder::CloseDelimited => out.extend_from_slice(data),
            BodyEncoder::Suppressed => {}
            BodyEncoder::Done => return Err(SendError::InvalidState),
        }
        Ok(())
    }

    /// Accounts for `len` body bytes sent as a piece of their own (not through `out`): writes
    /// into `out` the framing that goes before them, and returns the framing that goes after
    /// them (the CRLF that closes a chunk). `len` is not 0.
    pub(crate) fn begin_piece(
        &mut self,
        out: &mut BytesMut,
        len: usize,
    ) -> Result<&'static [u8], SendError> {
        match self {
            BodyEncoder::Length(remaining) => {
                if len as u64 > *remaining {
                    return Err(SendError::BodyTooLong);
                }
                *remaining -= len as u64;
                Ok(b"")
            }
            BodyEncoder::Chunked => {
                // Cannot fail: writing into a BytesMut grows it.
                let _ = write!(out, "{len:x}\r\n");
                Ok(b"\r\n")
            }
            BodyEncoder::CloseDelimited | BodyEncoder::Suppressed => Ok(b""),
            BodyEncoder::Done => Err(SendError::InvalidState),
        }
    }

    /// Ends the body, with trailers when it is chunked (dropped otherwise: RFC 9110 §6.5 lets a
    /// recipient discard them, and no other framing can carry them).
    pub(crate) fn finish(
        &mut self,
        out: &mut BytesMut,
        trailers: Option<&HeaderMap>,
    ) -> Result<(), SendError> {
        let result = match self {
            BodyEncoder::Length(0) | BodyEncoder::CloseDelimited | BodyEncoder::Suppressed => {
                Ok(())
            }
            BodyEncoder::Length(_) => Err(SendError::BodyIncomplete),
            BodyEncoder::Chunked => {
                out.extend_from_slice(b"0\r\n");
                if let Some(trailers) = trailers {
                    write_fields(out, trailers);
                }
                out.extend_from_slice(b"\r\n");
                Ok(())
            }
            BodyEncoder::Done => return Err(SendError::InvalidState),
        };
        *self = BodyEncoder::Done;
        result
    }

    /// Bytes of framing `encode` adds around `len` body bytes, for output budgeting.
    pub(crate) fn overhead(&self, len: usize) -> usize {
        match self {
            // hex digits of a usize plus two CRLFs
            BodyEncoder::Chunked if len > 0 => 2 * std::mem::size_of::<usize>() + 4,
            _ => 0,
        }
    }
}

/// `HTTP/1.1 200 OK\r\n`. We always answer as HTTP/1.1, even to 1.0 clients (RFC 9110 §2.5).
pub(crate) fn write_status_line(out: &mut BytesMut, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `GET /path HTTP/1.1\r\n`.
pub(crate) fn write_request_line(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    version: Version,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(if version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
}

/// Writes every field of `headers`.
pub(crate) fn write_fields(out: &mut BytesMut, headers: &HeaderMap) {
    write_fields_except(out, headers, |_| false);
}

/// Writes the fields of `headers` for which `skip` is false.
pub(crate) fn write_fields_except(
    out: &mut BytesMut,
    headers: &HeaderMap,
    skip: impl Fn(&HeaderName) -> bool,
) {
    for (name, value) in headers {
        if !skip(name) {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
}

/// Writes one field line. A value holding CR, LF or NUL (possible only through
/// `HeaderValue::from_maybe_shared_unchecked`) is dropped: writing it would let it forge
/// field lines or a whole response (response splitting).
pub(crate) fn write_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    if memchr::memchr3(b'\r', b'\n', 0, value).is_some() {
        return;
    }
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `content-length: N\r\n`.
pub(crate) fn write_content_length(out: &mut BytesMut, length: u64) {
    out.extend_from_slice(b"content-length: ");
    let _ = write!(out, "{length}");
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_encoding_frames_each_piece() {
        let mut out = BytesMut::new();
        let mut encoder = BodyEncoder::Chunked;
        encoder.encode(&mut out, b"hello").unwrap();
        encoder.encode(&mut out, b"").unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "9".parse().unwrap());
        encoder.finish(&mut out, Some(&trailers)).unwrap();
        assert_eq!(&out[..], b"5\r\nhello\r\n0\r\nx-sum: 9\r\n\r\n");
    }

    #[test]
    fn length_encoding_refuses_extra_and_missing_bytes() {
        let mut out = BytesMut::new();
        let mut encoder = BodyEncoder::Length(3);
        assert_eq!(
            encoder.encode(&mut out, b"abcd"),
            Err(SendError::BodyTooLong)
        );
        encoder.encode(&mut out, b"ab").unwrap();
        assert_eq!(
            encoder.finish(&mut out, None),
            Err(SendError::BodyIncomplete)
        );
    }

    #[test]
    fn values_with_line_breaks_are_never_written() {
        let mut out = BytesMut::new();
        write_field(&mut out, b"x", b"a\r\nset-cookie: evil");
        assert!(out.is_empty());
    }
}
