//! Cache-busting assets and the compressed-file cache inside an app: the manifest registered
//! by `AssetManifest::provider` (scanned when the app is built) and taken by handlers as
//! `State`, a failed scan failing the build, the manifest file agreeing with a scan, and a
//! handler answering from `CompressedCache`.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use weft::assets::{AssetManifest, MANIFEST_FILE, write_hashed_copies};
use weft::compressed_cache::{CompressedCache, FileIdentity};
use weft::compression::Coding;
use weft::prelude::*;
use weft::test::TestClient;

/// Writes `content` to `name` under `dir`, creating its directories.
fn write(dir: &std::path::Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn hash8(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

const CSS: &[u8] = b"h1 { font-weight: bold }";

async fn page(assets: State<AssetManifest>) -> Html<String> {
    Html(format!(
        r#"<link href="{}"><img src="{}">"#,
        assets.url("css/site.css"),
        assets.url("img/new.png")
    ))
}

#[test]
fn handlers_link_hashed_urls_from_the_manifest_scanned_at_build() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "css/site.css", CSS);
    let app = App::new()
        .provide(AssetManifest::provider(dir.path(), "/assets/"))
        .get("/", page)
        .build()
        .expect("built");
    let response = TestClient::new(app).get("/").send();
    assert_eq!(response.status(), StatusCode::OK);
    let expected = format!(
        r#"<link href="/assets/css/site.{}.css"><img src="/assets/img/new.png">"#,
        hash8(CSS)
    );
    assert_eq!(response.text(), expected);
}

#[test]
fn a_manifest_that_cannot_be_scanned_fails_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = App::new()
        .provide(AssetManifest::provider(&missing, "/"))
        .get("/", page)
        .build()
        .expect_err("the scan fails");
    let text = error.to_string();
    assert!(text.contains("nope"), "{text}");
}

#[test]
fn the_manifest_file_agrees_with_a_scan_and_resolves_hashed_names() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "css/site.css", CSS);
    write(dir.path(), "js/app.js", b"export {}");
    let scanned = AssetManifest::scan(dir.path()).unwrap();
    let out = dir.path().join("dist");
    let report = write_hashed_copies(dir.path(), Some(&out)).unwrap();
    assert_eq!(report.manifest_path, out.join(MANIFEST_FILE));
    let loaded = AssetManifest::load(&report.manifest_path).unwrap();
    assert_eq!(loaded, scanned);
    let hashed = format!("css/site.{}.css", hash8(CSS));
    assert_eq!(loaded.logical(&hashed), Some("css/site.css"));
    assert!(weft::assets::is_hashed_name(&hashed));
    assert_eq!(fs::read(out.join(&hashed)).unwrap(), CSS);
}

async fn compressed_js(cache: State<CompressedCache>, dir: State<PathBuf>) -> Response {
    let path = dir.join("app.js");
    let identity = FileIdentity::from_metadata(&path, &fs::metadata(&path).unwrap());
    match cache
        .get_or_compress(&identity, "text/javascript", Coding::Gzip)
        .await
    {
        Some(bytes) => (
            [(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            )],
            bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[test]
fn a_handler_serves_a_file_compressed_once_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let script = "export const greeting = 'hello from weft';\n".repeat(200);
    write(dir.path(), "app.js", script.as_bytes());
    let cache = CompressedCache::new();
    let app = App::new()
        .state(cache.clone())
        .state(dir.path().to_path_buf())
        .get("/app.js", compressed_js)
        .build()
        .expect("built");
    let client = TestClient::new(app);
    for _ in 0..2 {
        let response = client.get("/app.js").send();
        assert_eq!(response.status(), StatusCode::OK);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&response.bytes()[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, script);
    }
    assert_eq!(cache.len(), 1);
}
