//! A request path (still percent-encoded, as it came on the wire) made into a safe relative
//! path under the root, or refused.
//!
//! The path is percent-decoded exactly **once**: `%252e%252e` is the literal name `%2e%2e`,
//! never `..`. Refused: `..` segments (decoded or not), an encoded `/` or `\` (`%2f`, `%5c`:
//! one segment must not become two), backslashes, NUL and other control bytes, malformed
//! `%` escapes, names that are not UTF-8, and (on Windows) drive and stream separators.
//!
//! This file uses `std` only, so that the fuzz workspace can compile it on its own
//! (`fuzz/fuzz_targets/static_path.rs` includes it by path).

use std::fmt;
use std::path::PathBuf;

/// At most this many segments: a deeper path is refused rather than walked.
pub const MAX_SEGMENTS: usize = 64;

/// A path safe to join to the root: only normal segments, no `..`, `.`, separators or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    segments: Vec<String>,
    trailing_slash: bool,
}

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A `%` not followed by two hex digits, or a name that is not UTF-8 (`400`).
    MalformedEncoding,
    /// NUL or another control byte (`400`).
    ControlByte,
    /// A `..` segment, a backslash, an encoded separator, or a Windows drive or stream
    /// name: an attempt to leave the directory (`403`).
    Traversal,
    /// More than [`MAX_SEGMENTS`] segments (`400`).
    TooDeep,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::MalformedEncoding => "the path has a malformed percent-encoding",
            PathError::ControlByte => "the path has a NUL or control byte",
            PathError::Traversal => "the path tries to leave the served directory",
            PathError::TooDeep => "the path has too many segments",
        })
    }
}

impl std::error::Error for PathError {}

impl SafePath {
    /// The segments, each a plain file name.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the request path ended with `/` (a directory asked for as one).
    pub fn trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// Whether no segment remains: the root itself.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether a segment is hidden (starts with `.`), which the dotfiles policy refuses.
    pub fn has_hidden_segment(&self) -> bool {
        self.segments.iter().any(|segment| segment.starts_with('.'))
    }

    /// The relative path (empty for the root).
    pub fn to_path_buf(&self) -> PathBuf {
        self.segments.iter().collect()
    }

    /// The last segment, the file's name (`None` for the root).
    pub fn file_name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }
}

/// Makes `raw`, the part of the request path below the mount point (percent-encoded, with
/// or without a leading `/`), a [`SafePath`].
pub fn sanitize(raw: &str) -> Result<SafePath, PathError> {
    let trailing_slash = raw.ends_with('/');
    let mut segments = Vec::new();
    for encoded in raw.split('/') {
        if encoded.contains('\\') {
            return Err(PathError::Traversal);
        }
        let segment = decode_segment(encoded)?;
        match segment.as_str() {
            "" | "." => continue,
            ".." => return Err(PathError::Traversal),
            _ => {}
        }
        if is_platform_special(&segment) {
            return Err(PathError::Traversal);
        }
        if segments.len() == MAX_SEGMENTS {
            return Err(PathError::TooDeep);
        }
        segments.push(segment);
    }
    Ok(SafePath {
        segments,
        trailing_slash,
    })
}

/// Decodes one segment once; a decoded `/` or `\` is refused rather than split on.
fn decode_segment(encoded: &str) -> Result<String, PathError> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|&b| hex(b));
            let low = bytes.get(index + 2).and_then(|&b| hex(b));
            let (Some(high), Some(low)) = (high, low) else {
                return Err(PathError::MalformedEncoding);
            };
            out.push(high << 4 | low);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    if out.iter().any(|&b| b == b'/' || b == b'\\') {
        return Err(PathError::Traversal);
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlByte);
    }
    String::from_utf8(out).map_err(|_| PathError::MalformedEncoding)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// On Windows, `C:`, `file.txt:stream` and the device names reach outside the file or the
/// directory; they are refused on every platform so that the same app behaves the same.
fn is_platform_special(segment: &str) -> bool {
    if segment.contains(':') {
        return true;
    }
    let stem = segment.split('.').next().unwrap_or("");
    const DEVICES: [&str; 6] = ["con", "prn", "aux", "nul", "com1", "lpt1"];
    cfg!(windows) && DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_keep_their_segments() {
        let path = sanitize("/css/app.css").unwrap();
        assert_eq!(path.segments(), ["css", "app.css"]);
        assert!(!path.trailing_slash());
        assert!(sanitize("docs/").unwrap().trailing_slash());
        assert!(sanitize("").unwrap().is_root());
        assert_eq!(sanitize("a//./b").unwrap().segments(), ["a", "b"]);
    }

    #[test]
    fn traversal_vectors_are_refused() {
        for vector in [
            "../etc/passwd",
            "a/../../b",
            "%2e%2e/x",
            "%2E%2e%2fx",
            "a%2fb",
            "a%5cb",
            "a\\b",
            "..\\x",
            "c:",
        ] {
            assert_eq!(sanitize(vector), Err(PathError::Traversal), "{vector}");
        }
        assert_eq!(sanitize("a%00b"), Err(PathError::ControlByte));
        assert_eq!(sanitize("a%zz"), Err(PathError::MalformedEncoding));
        assert_eq!(sanitize("a%ff"), Err(PathError::MalformedEncoding));
    }

    #[test]
    fn paths_deeper_than_the_limit_are_refused() {
        let at_limit = "a/".repeat(MAX_SEGMENTS);
        assert_eq!(sanitize(&at_limit).unwrap().segments().len(), MAX_SEGMENTS);
        let deeper = "a/".repeat(MAX_SEGMENTS + 1);
        assert_eq!(sanitize(&deeper), Err(PathError::TooDeep));
    }

    #[test]
    fn decoding_happens_once() {
        let path = sanitize("%252e%252e/x").unwrap();
        assert_eq!(path.segments(), ["%2e%2e", "x"]);
        assert_eq!(sanitize("a%20b").unwrap().segments(), ["a b"]);
    }
}
