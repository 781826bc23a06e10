//! Security headers through the real dispatcher (HTTP/1.1 and HTTP/2): defaults, HSTS over
//! TLS only, per-request CSP nonces, configuration and never overwriting the handler's.

use weft::prelude::*;
use weft::security_headers::{
    ContentSecurityPolicy, CspNonce, FrameOptions, Hsts, SecurityHeaders, Source,
};
use weft::test::TestClient;
use weft_service::service::{ConnectionInfo, Service};

fn clients(app: &weft::AppService) -> [TestClient; 2] {
    [
        TestClient::new(app.clone()),
        TestClient::new(app.clone()).http2(),
    ]
}

#[test]
fn defaults_are_present_and_hsts_is_not_sent_over_plain_http() {
    let app = App::new()
        .middleware(SecurityHeaders::new())
        .get("/", || async { "home" })
        .build()
        .unwrap();
    for client in clients(&app) {
        let response = client.get("/").send();
        response
            .assert_status(200)
            .assert_header(
                "content-security-policy",
                "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
            )
            .assert_header("x-frame-options", "DENY")
            .assert_header("x-content-type-options", "nosniff")
            .assert_header("referrer-policy", "strict-origin-when-cross-origin")
            .assert_header(
                "permissions-policy",
                "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
            )
            .assert_header("cross-origin-opener-policy", "same-origin")
            .assert_header("x-xss-protection", "0")
            .assert_no_header("strict-transport-security");
        // Rejections get them too (the 404 runs the app's middleware).
        client
            .get("/missing")
            .send()
            .assert_status(404)
            .assert_header("x-frame-options", "DENY");
    }
}

#[test]
fn hsts_is_sent_over_tls_only() {
    let app = App::new()
        .middleware(SecurityHeaders::new())
        .get("/", || async { "home" })
        .build()
        .unwrap();
    // The dispatcher's ConnectionInfo, marked as TLS, as a TLS runtime would.
    let inner = app.clone();
    let tls = move |mut request: weft::Request| {
        if let Some(info) = request.extensions_mut().get_mut::<ConnectionInfo>() {
            info.tls = true;
        }
        let inner = inner.clone();
        async move { inner.call(request).await }
    };
    for client in [TestClient::new(tls.clone()), TestClient::new(tls).http2()] {
        client.get("/").send().assert_header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
}

#[test]
fn forwarded_proto_counts_only_when_trusted() {
    let build = |trust: bool| {
        App::new()
            .middleware(SecurityHeaders::new().trust_forwarded_proto(trust))
            .get("/", || async { "home" })
            .build()
            .unwrap()
    };
    let untrusted = TestClient::new(build(false));
    untrusted
        .get("/")
        .header("x-forwarded-proto", "https")
        .send()
        .assert_no_header("strict-transport-security");
    let trusted = TestClient::new(build(true));
    trusted
        .get("/")
        .header("x-forwarded-proto", "https")
        .send()
        .assert_header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    trusted
        .get("/")
        .header("x-forwarded-proto", "http")
        .send()
        .assert_no_header("strict-transport-security");
}

#[test]
fn nonce_differs_per_request_and_matches_the_header() {
    let app = App::new()
        .middleware(
            SecurityHeaders::new().content_security_policy(
                ContentSecurityPolicy::new()
                    .directive("default-src", [Source::SelfOrigin])
                    .directive("script-src", [Source::Nonce, Source::StrictDynamic]),
            ),
        )
        .get("/", |nonce: CspNonce| async move { nonce.to_string() })
        .build()
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for client in clients(&app) {
        for _ in 0..3 {
            let response = client.get("/").send();
            let nonce = response.text().to_owned();
            assert_eq!(nonce.len(), 24, "{nonce}");
            assert_eq!(
                response.header("content-security-policy"),
                Some(
                    format!("default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'")
                        .as_str()
                )
            );
            assert!(seen.insert(nonce), "a nonce was repeated");
        }
    }
}

#[test]
fn nonce_extractor_without_a_nonce_policy_is_a_500() {
    let app = App::new()
        .middleware(SecurityHeaders::new())
        .get("/", |nonce: CspNonce| async move { nonce.to_string() })
        .build()
        .unwrap();
    let response = TestClient::new(app).get("/").send();
    response.assert_status(500);
    let problem: serde_json::Value = response.json();
    assert_eq!(problem["code"], "csp.nonce_missing");
}

#[test]
fn handler_headers_are_never_overwritten_and_each_header_can_be_disabled() {
    let app = App::new()
        .middleware(
            SecurityHeaders::new()
                .content_security_policy(None)
                .frame_options(Some(FrameOptions::SameOrigin))
                .content_type_options(false)
                .referrer_policy(Some("no-referrer"))
                .permissions_policy(None)
                .cross_origin_opener_policy(None)
                .xss_protection(false)
                .hsts(Some(Hsts {
                    max_age: 60,
                    include_subdomains: false,
                    preload: false,
                }))
                .trust_forwarded_proto(true),
        )
        .get("/", || async { "home" })
        .get("/framed", || async {
            (
                [(
                    http::header::X_FRAME_OPTIONS,
                    http::HeaderValue::from_static("ALLOWALL"),
                )],
                "framed",
            )
        })
        .build()
        .unwrap();
    for client in clients(&app) {
        let response = client.get("/").header("x-forwarded-proto", "https").send();
        response
            .assert_header("x-frame-options", "SAMEORIGIN")
            .assert_header("referrer-policy", "no-referrer")
            .assert_header("strict-transport-security", "max-age=60")
            .assert_no_header("content-security-policy")
            .assert_no_header("x-content-type-options")
            .assert_no_header("permissions-policy")
            .assert_no_header("cross-origin-opener-policy")
            .assert_no_header("x-xss-protection");
        client
            .get("/framed")
            .send()
            .assert_header("x-frame-options", "ALLOWALL");
    }
}

#[test]
fn report_only_policies_use_their_own_header() {
    let app = App::new()
        .middleware(
            SecurityHeaders::new().content_security_policy(
                ContentSecurityPolicy::default()
                    .directive("img-src", [Source::SelfOrigin, Source::host("data:")])
                    .report_only(true),
            ),
        )
        .get("/", || async { "home" })
        .build()
        .unwrap();
    let response = TestClient::new(app).get("/").send();
    response.assert_no_header("content-security-policy");
    assert!(
        response
            .header("content-security-policy-report-only")
            .unwrap()
            .ends_with("img-src 'self' data:")
    );
}

#[test]
#[should_panic(expected = "not a directive name")]
fn a_bad_directive_name_panics_at_start_up() {
    let _ = ContentSecurityPolicy::new().directive("script-src; evil", [Source::SelfOrigin]);
}
