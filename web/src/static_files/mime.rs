//! The `Content-Type` of a file, from its extension (`mime_guess`): `charset=utf-8` on text
//! (browsers otherwise guess, and guess wrong), `application/wasm` for `.wasm` (streaming
//! compilation refuses any other type).

use std::path::Path;

use http::HeaderValue;

/// The content type for `path`; `application/octet-stream` when the extension is unknown.
pub(crate) fn content_type(path: &Path) -> HeaderValue {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if extension.eq_ignore_ascii_case("wasm") {
        return HeaderValue::from_static("application/wasm");
    }
    let guess = mime_guess::from_ext(extension).first_or_octet_stream();
    let essence = guess.essence_str();
    let value = if is_text(&guess) {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Text types, and the application types that are text (scripts, JSON, XML, SVG).
fn is_text(mime: &mime::Mime) -> bool {
    mime.type_() == mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "xml" | "manifest+json" | "ld+json"
        )
        || mime.suffix().is_some_and(|s| s == "xml" || s == "json")
}

/// Whether `path` is an HTML page (for the HTML cache policy).
pub(crate) fn is_html(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_gets_a_charset_and_wasm_its_type() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=utf-8");
        assert_eq!(
            content_type(Path::new("a.svg")),
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
