//! The operations features against a real server on loopback, asked by curl over HTTP/1.1
//! and HTTP/2 (prior knowledge): `/health`, `/ready` (its check and the start hook having
//! run), an HTML 404 page for `Accept: text/html` and problem+json otherwise, and the access
//! log middleware in front of them; on every runtime compiled in.

mod support;

use weft::access_log::AccessLog;
use weft::error_pages::ErrorPages;
use weft::health::{Health, HealthExt};
use weft::prelude::*;
use weft::{Runtime, ServerConfig};

use support::curl;

#[test]
fn health_ready_and_an_html_404_with_curl_over_http1_and_http2() {
    assert!(!Runtime::ALL.is_empty());
    for &runtime in Runtime::ALL {
        serve_and_ask(runtime);
    }
}

fn serve_and_ask(runtime: Runtime) {
    let app = ErrorPages::new().mount(
        App::new()
            .middleware(AccessLog::new())
            .get("/", || async { "home" })
            .health(Health::new().check("config", || Ok::<_, std::io::Error>(()))),
    );
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = app.build().unwrap().listen_on(runtime, config).unwrap();
    let base = format!("http://{}", server.local_addrs()[0]);
    for protocol in ["--http1.1", "--http2-prior-knowledge"] {
        let health = curl(&[protocol, "-w", " %{http_code}", &format!("{base}/health")]);
        assert_eq!(health, r#"{"status":"ok"} 200"#, "{runtime} {protocol}");

        let ready = curl(&[protocol, "-w", " %{http_code}", &format!("{base}/ready")]);
        assert!(ready.ends_with(" 200"), "{runtime} {protocol}: {ready}");
        let body: serde_json::Value = serde_json::from_str(ready.trim_end_matches(" 200")).unwrap();
        assert_eq!(
            body["checks"]["config"]["status"], "ok",
            "{runtime} {protocol}"
        );

        let page = curl(&[
            protocol,
            "-H",
            "accept: text/html",
            "-w",
            "\n%{http_code} %{content_type}",
            &format!("{base}/missing"),
        ]);
        assert!(
            page.ends_with("\n404 text/html; charset=utf-8"),
            "{runtime} {protocol}: {page}"
        );
        assert!(
            page.contains("<h1>404 Not Found</h1>"),
            "{runtime} {protocol}: {page}"
        );

        let api = curl(&[
            protocol,
            "-w",
            "\n%{http_code} %{content_type}",
            &format!("{base}/missing"),
        ]);
        assert!(
            api.ends_with("\n404 application/problem+json"),
            "{runtime} {protocol}: {api}"
        );
        assert!(
            api.contains(r#""code":"route.not_found""#),
            "{runtime} {protocol}: {api}"
        );
    }
    server.shutdown();
    server.join().unwrap();
}
