//! The header-field grammars multipart/form-data needs: the request's `Content-Type` with its
//! `boundary` (RFC 2046 §5.1.1), and each part's `Content-Disposition` (RFC 7578 §4.2) with
//! quoted strings (RFC 9110 §5.6.4) and RFC 5987 extended values (`filename*=UTF-8''...`).

use super::MultipartError;

/// The longest boundary RFC 2046 §5.1.1 allows.
pub(super) const MAX_BOUNDARY_LEN: usize = 70;

/// Whether `b` may appear in a boundary (RFC 2046 §5.1.1 `bchars`).
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// Checks `boundary` against RFC 2046 §5.1.1: 1 to 70 `bchars`, not ending in a space.
pub fn validate_boundary(boundary: &str) -> Result<(), MultipartError> {
    let bytes = boundary.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_BOUNDARY_LEN
        && bytes.iter().all(|&b| is_bchar(b))
        && bytes.last() != Some(&b' ');
    if valid {
        Ok(())
    } else {
        Err(MultipartError::InvalidBoundary)
    }
}

/// The boundary of a `multipart/form-data` Content-Type value, such as
/// `multipart/form-data; boundary="----abc"` (RFC 7578 §4.1, RFC 2046 §5.1.1).
///
/// The media type is compared without regard to case; the boundary may be a token or a quoted
/// string, and is checked with [`validate_boundary`]. Errors: [`MultipartError::NotFormData`]
/// for another media type (`415`), [`MultipartError::MalformedContentType`],
/// [`MultipartError::MissingBoundary`] and [`MultipartError::InvalidBoundary`] (`400`).
pub fn boundary_from_content_type(content_type: &str) -> Result<String, MultipartError> {
    let parsed =
        parse_value(content_type.as_bytes(), true).ok_or(MultipartError::MalformedContentType)?;
    if !parsed.kind.eq_ignore_ascii_case(b"multipart/form-data") {
        return Err(MultipartError::NotFormData);
    }
    let boundary = parsed
        .param("boundary")
        .ok_or(MultipartError::MissingBoundary)?;
    let boundary =
        String::from_utf8(boundary.to_vec()).map_err(|_| MultipartError::InvalidBoundary)?;
    validate_boundary(&boundary)?;
    Ok(boundary)
}

/// What a part's `Content-Disposition` says about it (RFC 7578 §4.2).
#[derive(Debug)]
pub(super) struct Disposition {
    pub(super) name: String,
    pub(super) filename: Option<String>,
}

/// Parses `form-data; name="x"; filename="y"`, preferring `filename*` (RFC 5987) to
/// `filename` when both are present, as RFC 6266 §4.3 advises. A parameter named twice is
/// refused: two parsers that pick different copies are how uploads get smuggled past filters.
pub(super) fn parse_disposition(value: &[u8]) -> Result<Disposition, MultipartError> {
    let parsed = parse_value(value, false).ok_or(MultipartError::MalformedContentDisposition)?;
    if !parsed.kind.eq_ignore_ascii_case(b"form-data") {
        return Err(MultipartError::MalformedContentDisposition);
    }
    let name = parsed.param("name").ok_or(MultipartError::MissingName)?;
    let extended = match parsed.param("filename*") {
        Some(ext) => {
            Some(decode_ext_value(ext).ok_or(MultipartError::MalformedContentDisposition)?)
        }
        None => None,
    };
    let filename = extended.or_else(|| {
        parsed
            .param("filename")
            .map(|f| String::from_utf8_lossy(f).into_owned())
    });
    Ok(Disposition {
        name: String::from_utf8_lossy(name).into_owned(),
        filename,
    })
}

/// A header value of the shape `kind *( OWS ";" OWS name "=" value )`.
struct Parsed<'a> {
    kind: &'a [u8],
    /// Parameter names in ASCII lower case, with their unquoted values.
    params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Parsed<'_> {
    fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses a header value with parameters; `None` when it does not fit the grammar or names a
/// parameter twice. `media_type` allows one `/` in the leading token (`type/subtype`).
///
/// Unquoted values are read leniently up to the next `;` or whitespace (clients send
/// `name=files[]`, which is not a token); quoted strings take `\` escapes (quoted-pair).
fn parse_value(value: &[u8], media_type: bool) -> Option<Parsed<'_>> {
    let mut pos = skip_ows(value, 0);
    let start = pos;
    while let Some(&b) = value.get(pos) {
        if is_tchar(b) || (media_type && b == b'/') {
            pos += 1;
        } else {
            break;
        }
    }
    let kind = value.get(start..pos)?;
    if kind.is_empty() {
        return None;
    }
    if media_type && kind.iter().filter(|&&b| b == b'/').count() != 1 {
        return None;
    }
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        pos = skip_ows(value, pos);
        match value.get(pos) {
            None => break,
            Some(b';') => pos += 1,
            Some(_) => return None,
        }
        pos = skip_ows(value, pos);
        match value.get(pos) {
            // An empty parameter (`;;` or a trailing `;`) is tolerated.
            None | Some(b';') => continue,
            Some(_) => {}
        }
        let name_start = pos;
        while value.get(pos).is_some_and(|&b| is_tchar(b)) {
            pos += 1;
        }
        let name = value.get(name_start..pos)?.to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        pos = skip_ows(value, pos);
        if value.get(pos) != Some(&b'=') {
            return None;
        }
        pos = skip_ows(value, pos + 1);
        let mut param = Vec::new();
        if value.get(pos) == Some(&b'"') {
            pos += 1;
            loop {
                match value.get(pos) {
                    None => return None,
                    Some(b'"') => {
                        pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        param.push(*value.get(pos + 1)?);
                        pos += 2;
                    }
                    Some(&b) => {
                        param.push(b);
                        pos += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = value.get(pos) {
                if b == b';' || b == b'"' || is_ows(b) || b.is_ascii_control() {
                    break;
                }
                param.push(b);
                pos += 1;
            }
            if param.is_empty() {
                return None;
            }
        }
        if params.iter().any(|(n, _)| *n == name) {
            return None;
        }
        params.push((name, param));
    }
    Some(Parsed { kind, params })
}

fn skip_ows(value: &[u8], mut pos: usize) -> usize {
    while value.get(pos).is_some_and(|&b| is_ows(b)) {
        pos += 1;
    }
    pos
}

/// Decodes an RFC 5987 §3.2 `ext-value`: `charset "'" [ language ] "'" pct-encoded`, for the
/// charsets it requires (UTF-8 and ISO-8859-1). `None` for anything else.
fn decode_ext_value(value: &[u8]) -> Option<String> {
    let mut pieces = value.splitn(3, |&b| b == b'\'');
    let charset = pieces.next()?;
    let _language = pieces.next()?;
    let encoded = pieces.next()?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut pos = 0;
    while let Some(&b) = encoded.get(pos) {
        if b == b'%' {
            let hi = hex_digit(*encoded.get(pos + 1)?)?;
            let lo = hex_digit(*encoded.get(pos + 2)?)?;
            bytes.push(hi << 4 | lo);
            pos += 3;
        } else {
            bytes.push(b);
            pos += 1;
        }
    }
    if charset.eq_ignore_ascii_case(b"utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case(b"iso-8859-1") {
        Some(bytes.into_iter().map(char::from).collect())
    } else {
        None
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
