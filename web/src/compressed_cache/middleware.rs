//! [`CachedCompression`], the middleware in front of a static file service.

use std::path::PathBuf;

use super::{CompressedCache, FileIdentity, is_compressible};
use crate::compression::{AcceptEncoding, Choice, Coding};
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::prelude::Request;
use crate::{Body, IntoResponse, Response};
use http::header::{
    ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap,
    HeaderValue, VARY,
};
use http::{Method, StatusCode};
use http_body::Body as _;

/// The codings offered: brotli first (smaller), gzip for every other client.
const OFFERED: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

/// On-the-fly compression of static files, each version of a file compressed once (brotli
/// or gzip) and then answered from a bounded cache; cloning shares the cache.
///
/// It sits outside [`StaticFiles`](crate::static_files::StaticFiles) and takes its `200`
/// answers as they are: a `GET` for a file of a compressible type
/// ([`is_compressible`](crate::compressed_cache::is_compressible)) within the cache's size
/// bounds, with a strong `ETag` (a hash of the file's content) and no `Content-Encoding` yet
/// (a precompressed sibling wins). The cache key is the request path and that ETag, so a file
/// that changed is a new entry and an old one ages out of the LRU. Ranges (`206`), `304`s,
/// listings, `HEAD`, other types and larger files pass untouched (`HEAD` answers identity
/// headers: it carries no body to compress).
#[derive(Debug, Clone, Default)]
pub struct CachedCompression {
    cache: CompressedCache,
}

impl CachedCompression {
    /// With a cache of the default limits (64 MiB, files of 860 bytes to 1 MiB).
    pub fn new() -> Self {
        CachedCompression::default()
    }

    /// The cache it answers from (to inspect, or to share).
    pub fn cache(&self) -> &CompressedCache {
        &self.cache
    }
}

impl Middleware for CachedCompression {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        // Only GET answers are compressed: anything else passes through untouched.
        if request.method() != Method::GET {
            return Ok(next.run(request).await);
        }
        let accept = AcceptEncoding::from_headers(request.headers());
        // A clone shares the path's bytes: no copy per request.
        let uri = request.uri().clone();
        let response = next.run(request).await;
        // Checked before any compression state is set up: most answers are not candidates.
        let Some(candidate) = self.candidate(&Method::GET, uri.path(), &response) else {
            return Ok(response);
        };
        Ok(self
            .compress(candidate, &accept, uri.path(), response)
            .await)
    }
}

/// What a response must be for its body to be compressed here.
struct Candidate {
    identity: FileIdentity,
    content_type: String,
}

impl CachedCompression {
    /// `response`, a `candidate`, compressed when the client accepts a coding.
    async fn compress(
        &self,
        candidate: Candidate,
        accept: &AcceptEncoding,
        path: &str,
        mut response: Response,
    ) -> Response {
        // The answer depends on Accept-Encoding whichever coding is chosen.
        add_vary(response.headers_mut());
        let Choice::Encode(coding) = accept.choose(&OFFERED) else {
            return response;
        };
        let compressed = match self.cache.get(&candidate.identity, coding) {
            Some(hit) => hit,
            None => {
                let (parts, body) = response.into_parts();
                let limit = usize::try_from(candidate.identity.len()).unwrap_or(usize::MAX);
                let Ok(bytes) = body.collect(limit).await else {
                    // Unreadable, or grown past the length its head announced: no answer that
                    // is true to that head can be sent any more.
                    tracing::warn!(path, "a static file changed or failed while read");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                let load = bytes.clone();
                let made = self
                    .cache
                    .get_or_compress_with(&candidate.identity, &candidate.content_type, coding, {
                        move || Ok(load.to_vec())
                    })
                    .await;
                response = Response::from_parts(parts, Body::full(bytes));
                match made {
                    Some(compressed) => compressed,
                    None => return response,
                }
            }
        };
        encoded(response, coding, compressed)
    }

    /// The cache identity and type of `response` when it may be compressed here.
    fn candidate(&self, method: &Method, path: &str, response: &Response) -> Option<Candidate> {
        let headers = response.headers();
        if method != Method::GET
            || response.status() != StatusCode::OK
            || headers.contains_key(CONTENT_ENCODING)
            || headers.contains_key(CONTENT_RANGE)
        {
            return None;
        }
        let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let etag = headers.get(ETAG)?.to_str().ok()?;
        let len = response.body().size_hint().exact()?;
        let limits = self.cache.limits();
        if etag.starts_with("W/")
            || !is_compressible(content_type)
            || !(limits.min_file_size..=limits.max_file_size).contains(&len)
        {
            return None;
        }
        Some(Candidate {
            identity: FileIdentity::new(PathBuf::from(format!("{path} {etag}")), len, None),
            content_type: content_type.to_owned(),
        })
    }
}

/// `response` with `compressed` as its body in `coding`: its own length, a weak ETag (the
/// bytes are no longer those the strong one named, RFC 9110 §8.8.3), and no byte ranges
/// (ranges are served on the identity form).
fn encoded(response: Response, coding: Coding, compressed: bytes::Bytes) -> Response {
    let (mut parts, _) = response.into_parts();
    let headers = &mut parts.headers;
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    headers.remove(ACCEPT_RANGES);
    if let Some(weak) = headers
        .get(ETAG)
        .and_then(|etag| HeaderValue::from_str(&format!("W/{}", etag.to_str().ok()?)).ok())
    {
        headers.insert(ETAG, weak);
    }
    Response::from_parts(parts, Body::full(compressed))
}

/// Adds `Accept-Encoding` to `Vary` unless it is there.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|item| item.trim().eq_ignore_ascii_case("accept-encoding") || item == "*")
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::prelude::*;
    use crate::static_files::StaticFiles;
    use crate::test::TestClient;

    use super::CachedCompression;

    /// A folder of its own under the temporary directory, removed on drop.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let path =
                std::env::temp_dir().join(format!("weft-cached-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Folder(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn client(folder: &Folder, compression: &CachedCompression) -> TestClient {
        let app = App::new()
            .middleware(compression.clone())
            .static_files("/", StaticFiles::new(&folder.0));
        TestClient::new(app.build().unwrap())
    }

    #[test]
    fn each_version_of_a_file_is_compressed_once() {
        let folder = Folder::new("versions");
        let text = "a line of a stylesheet, repeated { color: red }\n".repeat(100);
        std::fs::write(folder.0.join("site.css"), &text).unwrap();
        let compression = CachedCompression::new();
        let client = client(&folder, &compression);
        let first = client
            .get("/site.css")
            .header("accept-encoding", "br")
            .send();
        first
            .assert_status(200)
            .assert_header("content-encoding", "br");
        assert!(
            first.bytes().len() < text.len() / 4,
            "{}",
            first.bytes().len()
        );
        assert_eq!(compression.cache().len(), 1);
        let second = client
            .get("/site.css")
            .header("accept-encoding", "br")
            .send();
        assert_eq!(second.bytes(), first.bytes());
        assert_eq!(compression.cache().len(), 1, "answered from the cache");

        // A new version (another ETag) is another entry, compressed from the new content.
        std::fs::write(folder.0.join("site.css"), text.replace("red", "blue")).unwrap();
        let third = client
            .get("/site.css")
            .header("accept-encoding", "gzip")
            .send();
        third.assert_header("content-encoding", "gzip");
        assert_ne!(third.header("etag"), first.header("etag"));
        assert_eq!(compression.cache().len(), 2);
    }

    #[test]
    fn other_types_small_files_and_identity_clients_pass_untouched() {
        let folder = Folder::new("untouched");
        std::fs::write(folder.0.join("data.bin"), vec![b'x'; 4096]).unwrap();
        std::fs::write(folder.0.join("tiny.css"), "p{}").unwrap();
        std::fs::write(folder.0.join("page.html"), "<p>hello</p>\n".repeat(200)).unwrap();
        let compression = CachedCompression::new();
        let client = client(&folder, &compression);
        for path in ["/data.bin", "/tiny.css"] {
            let reply = client.get(path).header("accept-encoding", "br").send();
            reply
                .assert_status(200)
                .assert_no_header("content-encoding");
        }
        let identity = client
            .get("/page.html")
            .header("accept-encoding", "identity")
            .send();
        identity
            .assert_status(200)
            .assert_no_header("content-encoding");
        assert!(
            identity
                .header("vary")
                .is_some_and(|v| v.contains("accept-encoding"))
        );
        assert_eq!(compression.cache().len(), 0);
    }
}
