//! Finding where a head ends without re-reading what was already read.
//!
//! httparse parses a complete head in one pass but starts again from byte 0 when a head is
//! incomplete, so a head arriving one byte at a time would cost quadratic work (the flaw behind
//! RUSTSEC-2023-0065). The scanner below looks only at bytes it has not seen before, and hands
//! a head to httparse once, when its terminating blank line is in the buffer.

use memchr::memchr_iter;

use super::error::H1Error;

/// Where a complete head sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadSpan {
    /// Empty lines before the start line, to be dropped (RFC 9112 §2.2).
    pub(crate) skip: usize,
    /// Offset just past the blank line that ends the head.
    pub(crate) end: usize,
}

/// Resumable search for the end of a head (`CRLF CRLF`), rejecting bare LF on the way.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadScanner {
    /// Leading CRLF pairs seen before the start line.
    skip: usize,
    /// Bytes of the buffer already examined.
    scanned: usize,
    /// Offset of the first LF after `skip`, once seen: the end of the start line.
    start_line_end: Option<usize>,
    /// Whether the start line has begun (all leading empty lines are behind us).
    started: bool,
    /// Where the request-target starts and ends, tracked while the request line is unfinished
    /// so that a long target is refused early without re-reading the line.
    target_start: Option<usize>,
    target_end: Option<usize>,
    /// Bytes examined over all calls, to prove in tests that the work is linear.
    #[cfg(test)]
    examined: usize,
}

/// Which kind of head is scanned, for the limit that applies to a long start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadKind {
    Request,
    Response,
}

/// Leading empty lines tolerated before a start line; more is not a request but noise.
const MAX_LEADING_EMPTY_LINES: usize = 8;

impl HeadScanner {
    /// Forgets all progress, for the next head.
    pub(crate) fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Looks at the bytes added to `buf` since the last call and reports the head's span once
    /// it is complete. `buf` must only have grown since the previous call.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        kind: HeadKind,
        max_head_size: usize,
        max_target_len: usize,
    ) -> Result<Option<HeadSpan>, H1Error> {
        if !self.skip_leading_empty_lines(buf)? {
            return Ok(None);
        }
        let from = self.scanned;
        #[cfg(test)]
        {
            self.examined += buf.len() - from;
        }
        if kind == HeadKind::Request && self.start_line_end.is_none() {
            self.track_target(buf, from);
        }
        for lf in memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
            if lf == 0 || buf[lf - 1] != b'\r' {
                return Err(H1Error::BareLineFeed);
            }
            if self.start_line_end.is_none() {
                self.start_line_end = Some(lf);
            } else if lf >= self.skip + 3 && &buf[lf - 3..lf] == b"\r\n\r" {
                if lf + 1 - self.skip > max_head_size {
                    return Err(self.too_large(buf, kind, max_target_len));
                }
                return Ok(Some(HeadSpan {
                    skip: self.skip,
                    end: lf + 1,
                }));
            }
        }
        self.scanned = buf.len();
        if buf.len() - self.skip > max_head_size {
            return Err(self.too_large(buf, kind, max_target_len));
        }
        if kind == HeadKind::Request && self.start_line_end.is_none() {
            // A request line still unfinished: a target past its limit is 414 as soon as we see it.
            let target_len = match (self.target_start, self.target_end) {
                (Some(start), Some(end)) => end - start,
                (Some(start), None) => buf.len() - start,
                _ => 0,
            };
            if target_len > max_target_len {
                return Err(H1Error::RequestTargetTooLong);
            }
        }
        Ok(None)
    }

    /// Finds the spaces around the request-target in the bytes from `from` on.
    fn track_target(&mut self, buf: &[u8], from: usize) {
        if self.target_start.is_none() {
            self.target_start = memchr::memchr(b' ', &buf[from..]).map(|sp| from + sp + 1);
        }
        if let (Some(start), None) = (self.target_start, self.target_end) {
            let search_from = start.max(from);
            self.target_end = memchr::memchr(b' ', &buf[search_from..]).map(|sp| search_from + sp);
        }
    }

    /// Steps over empty lines before the start line; true once the start line has begun.
    fn skip_leading_empty_lines(&mut self, buf: &[u8]) -> Result<bool, H1Error> {
        if self.started {
            return Ok(true);
        }
        while buf.get(self.skip..self.skip + 2) == Some(b"\r\n") {
            self.skip += 2;
            if self.skip / 2 > MAX_LEADING_EMPTY_LINES {
                return Err(H1Error::HeadTooLarge);
            }
        }
        match buf.get(self.skip) {
            None => Ok(false),
            // A lone LF where an empty line could be is a bare LF.
            Some(b'\n') => Err(H1Error::BareLineFeed),
            // A CR that may yet become an empty line.
            Some(b'\r') if buf.len() == self.skip + 1 => Ok(false),
            Some(_) => {
                self.started = true;
                self.scanned = self.skip;
                Ok(true)
            }
        }
    }

    /// The error for a head over its size limit: 414 when it is the request-target that is long.
    fn too_large(&self, buf: &[u8], kind: HeadKind, max_target_len: usize) -> H1Error {
        let line_end = self.start_line_end.unwrap_or(buf.len());
        if kind == HeadKind::Request
            && target_len_so_far(&buf[self.skip..line_end]) > max_target_len
        {
            H1Error::RequestTargetTooLong
        } else {
            H1Error::HeadTooLarge
        }
    }
}

/// Length of the request-target in a (possibly partial) request line: the bytes after the
/// first space, up to the next space or the end of what has arrived.
fn target_len_so_far(line: &[u8]) -> usize {
    let Some(sp) = memchr::memchr(b' ', line) else {
        return 0;
    };
    let rest = &line[sp + 1..];
    memchr::memchr(b' ', rest).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8]) -> Result<Option<HeadSpan>, H1Error> {
        HeadScanner::default().scan(input, HeadKind::Request, 1024, 64)
    }

    #[test]
    fn finds_end_of_head() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        assert_eq!(
            scan_all(head),
            Ok(Some(HeadSpan {
                skip: 0,
                end: head.len() - 4
            }))
        );
    }

    #[test]
    fn skips_leading_empty_lines() {
        let head = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            scan_all(head),
            Ok(Some(HeadSpan {
                skip: 4,
                end: head.len()
            }))
        );
    }

    #[test]
    fn rejects_bare_lf() {
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\nHost: a\r\n\r\n"),
            Err(H1Error::BareLineFeed)
        );
        assert_eq!(scan_all(b"\n"), Err(H1Error::BareLineFeed));
    }

    #[test]
    fn byte_at_a_time_gives_the_same_span() {
        let head = b"\r\nPOST /x HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
        let mut scanner = HeadScanner::default();
        let mut found = None;
        for n in 1..=head.len() {
            if let Some(span) = scanner
                .scan(&head[..n], HeadKind::Request, 1024, 64)
                .unwrap()
            {
                found = Some((n, span));
                break;
            }
        }
        assert_eq!(
            found,
            Some((
                head.len(),
                HeadSpan {
                    skip: 2,
                    end: head.len()
                }
            ))
        );
    }

    #[test]
    fn head_fed_byte_by_byte_is_examined_once() {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..200 {
            head.extend_from_slice(format!("x-field-{i}: some value\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let mut scanner = HeadScanner::default();
        let mut span = None;
        for n in 1..=head.len() {
            span = scanner
                .scan(&head[..n], HeadKind::Request, 1 << 20, 64)
                .unwrap();
        }
        assert_eq!(span.map(|s| s.end), Some(head.len()));
        // Each byte is looked at once, not once per call (RUSTSEC-2023-0065).
        assert!(
            scanner.examined <= head.len(),
            "{} > {}",
            scanner.examined,
            head.len()
        );
    }

    #[test]
    fn long_target_is_414_before_the_line_ends() {
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(scan_all(&line), Err(H1Error::RequestTargetTooLong));
    }

    #[test]
    fn oversized_head_is_431() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'a', 2000));
        assert_eq!(scan_all(&head), Err(H1Error::HeadTooLarge));
    }
}
