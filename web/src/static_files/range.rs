//! `Range: bytes=...` (RFC 9110 §14.1.2): parsing, formatting, and evaluation against a
//! file's length.
//!
//! A syntactically invalid field is ignored (the whole file is sent, as §14.2 allows); a valid
//! one of which no range is satisfiable is a `416`. Overlapping and adjacent ranges are
//! merged and at most [`MAX_RANGES`] are accepted, so that a request cannot make the server
//! send a file many times over.
//!
//! This file uses `std` only, so that the fuzz workspace can compile it on its own
//! (`fuzz/fuzz_targets/range_header.rs` includes it by path).

use std::fmt;

/// At most this many ranges in one request; more makes the field invalid (ignored).
pub const MAX_RANGES: usize = 16;

/// One `range-spec` as written in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`: to the end.
    From(u64),
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

/// A satisfiable range of a file: `start..=end`, within the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// How many bytes the range covers.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for a file of `total` bytes: `bytes 0-99/1000`.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// Why a `Range` field was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// Not `bytes=` followed by valid range-specs.
    Malformed,
    /// More than [`MAX_RANGES`] ranges.
    TooMany,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeError::Malformed => "the Range field is malformed",
            RangeError::TooMany => "the Range field has too many ranges",
        })
    }
}

impl std::error::Error for RangeError {}

/// The result of evaluating ranges against a file's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluated {
    /// The satisfiable ranges, sorted and merged (at least one).
    Satisfiable(Vec<ByteRange>),
    /// None is satisfiable: `416` with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Parses a `Range` field value: `bytes=0-99, 200-, -50` (unit case-insensitive).
pub fn parse(value: &str) -> Result<Vec<RangeSpec>, RangeError> {
    let (unit, set) = value.trim().split_once('=').ok_or(RangeError::Malformed)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Err(RangeError::Malformed);
    }
    let mut specs = Vec::new();
    for element in set.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return Err(RangeError::TooMany);
        }
        specs.push(parse_spec(element)?);
    }
    if specs.is_empty() {
        return Err(RangeError::Malformed);
    }
    Ok(specs)
}

fn parse_spec(element: &str) -> Result<RangeSpec, RangeError> {
    let (first, last) = element.split_once('-').ok_or(RangeError::Malformed)?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(RangeError::Malformed),
        (true, false) => Ok(RangeSpec::Suffix(number(last)?)),
        (false, true) => Ok(RangeSpec::From(number(first)?)),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return Err(RangeError::Malformed);
            }
            Ok(RangeSpec::FromTo(first, last))
        }
    }
}

/// Digits only (no sign, no spaces inside), and no overflow.
fn number(text: &str) -> Result<u64, RangeError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Malformed);
    }
    text.parse().map_err(|_| RangeError::Malformed)
}

/// Formats specs back as a field value: `bytes=0-99,200-,-50`.
pub fn format(specs: &[RangeSpec]) -> String {
    let parts: Vec<String> = specs
        .iter()
        .map(|spec| match spec {
            RangeSpec::FromTo(first, last) => format!("{first}-{last}"),
            RangeSpec::From(first) => format!("{first}-"),
            RangeSpec::Suffix(length) => format!("-{length}"),
        })
        .collect();
    format!("bytes={}", parts.join(","))
}

/// Evaluates `specs` against a file of `len` bytes: each satisfiable one clipped to the file,
/// then sorted and merged where they overlap or touch.
pub fn evaluate(specs: &[RangeSpec], len: u64) -> Evaluated {
    let mut ranges: Vec<ByteRange> = specs.iter().filter_map(|s| clip(*s, len)).collect();
    if ranges.is_empty() {
        return Evaluated::Unsatisfiable;
    }
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    Evaluated::Satisfiable(merged)
}

fn clip(spec: RangeSpec, len: u64) -> Option<ByteRange> {
    if len == 0 {
        return None;
    }
    let last = len - 1;
    match spec {
        RangeSpec::FromTo(first, end) if first <= last => Some(ByteRange {
            start: first,
            end: end.min(last),
        }),
        RangeSpec::From(first) if first <= last => Some(ByteRange {
            start: first,
            end: last,
        }),
        RangeSpec::Suffix(length) if length > 0 => Some(ByteRange {
            start: len.saturating_sub(length),
            end: last,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_format_back() {
        let specs = parse("bytes=0-99, 200-,-50").unwrap();
        assert_eq!(
            specs,
            [
                RangeSpec::FromTo(0, 99),
                RangeSpec::From(200),
                RangeSpec::Suffix(50)
            ]
        );
        assert_eq!(format(&specs), "bytes=0-99,200-,-50");
    }

    #[test]
    fn malformed_fields_are_errors() {
        for value in [
            "bytes=",
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=-",
            "0-1",
            "bytes=+1-2",
        ] {
            assert_eq!(parse(value), Err(RangeError::Malformed), "{value}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(&many), Err(RangeError::TooMany));
    }

    #[test]
    fn evaluation_clips_sorts_and_merges() {
        let specs = parse("bytes=50-,0-9,5-20,-5").unwrap();
        assert_eq!(
            evaluate(&specs, 100),
            Evaluated::Satisfiable(vec![
                ByteRange { start: 0, end: 20 },
                ByteRange { start: 50, end: 99 }
            ])
        );
        assert_eq!(
            evaluate(&[RangeSpec::From(100)], 100),
            Evaluated::Unsatisfiable
        );
        assert_eq!(
            evaluate(&[RangeSpec::Suffix(0)], 100),
            Evaluated::Unsatisfiable
        );
        assert_eq!(
            evaluate(&[RangeSpec::Suffix(500)], 100),
            Evaluated::Satisfiable(vec![ByteRange { start: 0, end: 99 }])
        );
    }
}
