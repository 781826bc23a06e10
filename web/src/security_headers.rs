//! Security headers: [`SecurityHeaders`], a middleware adding the response headers that turn
//! on the browser's own defences, with safe defaults, each configurable or disabled.
//!
//! | header | default | why |
//! | --- | --- | --- |
//! | `Content-Security-Policy` | `default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'` | scripts, styles and frames from the app's own origin only (CSP Level 3) |
//! | `X-Frame-Options` | `DENY` | no framing: clickjacking (RFC 7034; CSP's `frame-ancestors` for newer browsers) |
//! | `X-Content-Type-Options` | `nosniff` | no MIME sniffing of scripts and styles (Fetch §X-Content-Type-Options) |
//! | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains`, **over TLS only** | HTTPS only from now on (RFC 6797 §7.2: not sent over plain HTTP) |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` | no paths or queries leaked to other sites |
//! | `Permissions-Policy` | `camera=(), microphone=(), geolocation=(), payment=(), usb=()` | powerful features off unless asked for |
//! | `Cross-Origin-Opener-Policy` | `same-origin` | no window handle shared with cross-origin openers |
//! | `X-XSS-Protection` | `0` | the legacy XSS auditor off: it introduced leaks of its own (OWASP) |
//!
//! A header the handler (or an inner layer) set is never overwritten: a route that must be
//! framed sets its own `X-Frame-Options`, and keeps it.
//!
//! # CSP nonces
//! A policy with [`Source::Nonce`] gets a fresh random nonce per request (128 bits from the
//! OS), put in the request's extensions for the handler to read as [`CspNonce`] and written
//! into the header as `'nonce-…'`, so that inline `<script nonce="…">` the page marks runs
//! and injected ones do not.
//!
//! ```
//! use weft::prelude::*;
//! use weft::security_headers::{ContentSecurityPolicy, CspNonce, SecurityHeaders, Source};
//!
//! async fn page(nonce: CspNonce) -> Html<String> {
//!     Html(format!("<script nonce=\"{}\">go()</script>", nonce.as_str()))
//! }
//!
//! let headers = SecurityHeaders::new().content_security_policy(
//!     ContentSecurityPolicy::new()
//!         .directive("default-src", [Source::SelfOrigin])
//!         .directive("script-src", [Source::SelfOrigin, Source::Nonce]),
//! );
//! let app = App::new().middleware(headers).get("/", page);
//! # let _ = app.build().unwrap();
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY, HeaderMap, HeaderName,
    HeaderValue, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS, X_XSS_PROTECTION,
};
use http::request::Parts;
use weft_service::service::ConnectionInfo;

use crate::Request;
use crate::error::{Error, HttpError};
use crate::extract::FromRequestParts;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;

const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// One source of a CSP directive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `'self'`: the page's own origin.
    SelfOrigin,
    /// `'none'`: nothing.
    None,
    /// `'nonce-…'` with this request's [`CspNonce`].
    Nonce,
    /// `'strict-dynamic'`: scripts trusted by a nonce may load others.
    StrictDynamic,
    /// `'unsafe-inline'` (weakens the policy; prefer [`Source::Nonce`]).
    UnsafeInline,
    /// `'unsafe-eval'` (weakens the policy).
    UnsafeEval,
    /// A host or scheme source as written: `https://cdn.example.com`, `data:`, `*.example.com`.
    Host(String),
}

impl Source {
    /// A host or scheme source: `Source::host("https://cdn.example.com")`.
    pub fn host(source: impl Into<String>) -> Self {
        Source::Host(source.into())
    }
}

/// A `Content-Security-Policy`: directives in the order added, each with its sources (see
/// CSP Level 3, <https://www.w3.org/TR/CSP3/>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSecurityPolicy {
    directives: Vec<(String, Vec<Source>)>,
    report_only: bool,
}

impl Default for ContentSecurityPolicy {
    /// `default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none';
    /// object-src 'none'`: the app's own resources only, no plugins, no framing, no
    /// `<base>` or form hijacking.
    fn default() -> Self {
        ContentSecurityPolicy::new()
            .directive("default-src", [Source::SelfOrigin])
            .directive("base-uri", [Source::SelfOrigin])
            .directive("form-action", [Source::SelfOrigin])
            .directive("frame-ancestors", [Source::None])
            .directive("object-src", [Source::None])
    }
}

impl ContentSecurityPolicy {
    /// An empty policy, to add directives to.
    pub fn new() -> Self {
        ContentSecurityPolicy {
            directives: Vec::new(),
            report_only: false,
        }
    }

    /// Sets `name` (`script-src`) to `sources`, replacing an earlier value of the same
    /// directive. A directive with no source is written alone (`upgrade-insecure-requests`).
    /// Panics if `name` is not a directive name (ASCII letters, digits and `-`): a typo found
    /// at start-up.
    pub fn directive(
        mut self,
        name: impl Into<String>,
        sources: impl IntoIterator<Item = Source>,
    ) -> Self {
        let name = name.into().to_ascii_lowercase();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "ContentSecurityPolicy: {name:?} is not a directive name"
        );
        let sources: Vec<Source> = sources.into_iter().collect();
        for source in &sources {
            if let Source::Host(host) = source {
                assert!(
                    !host.is_empty()
                        && host
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b';' && b != b','),
                    "ContentSecurityPolicy: {host:?} is not a source"
                );
            }
        }
        self.directives.retain(|(existing, _)| *existing != name);
        self.directives.push((name, sources));
        self
    }

    /// Sends the policy as `Content-Security-Policy-Report-Only`: violations are reported,
    /// not blocked, to try a policy out.
    pub fn report_only(mut self, report_only: bool) -> Self {
        self.report_only = report_only;
        self
    }

    /// Whether some directive has [`Source::Nonce`], so that a nonce is made per request.
    pub fn uses_nonce(&self) -> bool {
        self.directives
            .iter()
            .any(|(_, sources)| sources.contains(&Source::Nonce))
    }

    /// The header's value, with `nonce` for [`Source::Nonce`].
    pub fn render(&self, nonce: Option<&str>) -> String {
        let mut out = String::new();
        for (name, sources) in &self.directives {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            for source in sources {
                out.push(' ');
                match source {
                    Source::SelfOrigin => out.push_str("'self'"),
                    Source::None => out.push_str("'none'"),
                    Source::Nonce => {
                        out.push_str("'nonce-");
                        out.push_str(nonce.unwrap_or_default());
                        out.push('\'');
                    }
                    Source::StrictDynamic => out.push_str("'strict-dynamic'"),
                    Source::UnsafeInline => out.push_str("'unsafe-inline'"),
                    Source::UnsafeEval => out.push_str("'unsafe-eval'"),
                    Source::Host(host) => out.push_str(host),
                }
            }
        }
        out
    }
}

/// This request's CSP nonce (base64 of 16 random bytes), made by [`SecurityHeaders`] when
/// its policy uses [`Source::Nonce`]: write it in `<script nonce="…">` and `<style nonce="…">`.
///
/// As an extractor it fails with `500` (`csp.nonce_missing`) on a route where no such
/// policy runs: a bug of the app, since the nonce could not match any header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspNonce(String);

impl CspNonce {
    /// A new random nonce.
    fn generate() -> CspNonce {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        CspNonce(STANDARD.encode(bytes))
    }

    /// The nonce, for the `nonce` attribute (base64: safe in HTML attributes as it is).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fills `bytes` from the operating system's random source. Without one there is no safe
/// nonce or token to give, so this panics (the request is answered `500`).
pub(crate) fn fill_random(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the operating system's random source");
}

/// A [`CspNonce`] was asked for where no nonce policy runs.
#[derive(Debug)]
pub struct MissingCspNonce;

impl fmt::Display for MissingCspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "CspNonce: no SecurityHeaders middleware with a nonce policy runs on this route",
        )
    }
}

impl std::error::Error for MissingCspNonce {}

impl HttpError for MissingCspNonce {
    fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn problem(&self) -> Problem {
        // About the app, not the client: not shown.
        Problem::new(self.status()).with_code("csp.nonce_missing")
    }
}

impl FromRequestParts for CspNonce {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        parts.extensions.get::<CspNonce>().cloned().ok_or_else(|| {
            tracing::error!("{MissingCspNonce}");
            Error::http(MissingCspNonce)
        })
    }
}

/// `X-Frame-Options`: whether pages may be framed (RFC 7034).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOptions {
    /// `DENY`: never.
    Deny,
    /// `SAMEORIGIN`: by the app's own pages only.
    SameOrigin,
}

/// `Strict-Transport-Security` (RFC 6797).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    /// How long browsers remember to use HTTPS only, in seconds.
    pub max_age: u64,
    /// The rule covers subdomains too.
    pub include_subdomains: bool,
    /// Asks to be put on browsers' preload lists (hard to undo: only when meant).
    pub preload: bool,
}

impl Default for Hsts {
    /// One year, subdomains included, no preload.
    fn default() -> Self {
        Hsts {
            max_age: 31_536_000,
            include_subdomains: true,
            preload: false,
        }
    }
}

impl Hsts {
    fn value(&self) -> String {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

/// The security-headers middleware (see the [module docs](self) for the defaults). Every
/// setter takes `Option`: `None` disables that header.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    csp: Option<ContentSecurityPolicy>,
    frame: Option<FrameOptions>,
    nosniff: bool,
    hsts: Option<Hsts>,
    trust_forwarded_proto: bool,
    fixed: Vec<(HeaderName, HeaderValue)>,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        SecurityHeaders::new()
    }
}

impl SecurityHeaders {
    /// Every header with its default.
    pub fn new() -> Self {
        SecurityHeaders {
            csp: Some(ContentSecurityPolicy::default()),
            frame: Some(FrameOptions::Deny),
            nosniff: true,
            hsts: Some(Hsts::default()),
            trust_forwarded_proto: false,
            fixed: vec![
                (
                    REFERRER_POLICY,
                    HeaderValue::from_static("strict-origin-when-cross-origin"),
                ),
                (
                    PERMISSIONS_POLICY,
                    HeaderValue::from_static(
                        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
                    ),
                ),
                (
                    CROSS_ORIGIN_OPENER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ),
                (X_XSS_PROTECTION, HeaderValue::from_static("0")),
            ],
        }
    }

    /// The `Content-Security-Policy` (or `None` for none).
    pub fn content_security_policy(
        mut self,
        policy: impl Into<Option<ContentSecurityPolicy>>,
    ) -> Self {
        self.csp = policy.into();
        self
    }

    /// `X-Frame-Options` (or `None` for none).
    pub fn frame_options(mut self, frame: Option<FrameOptions>) -> Self {
        self.frame = frame;
        self
    }

    /// Whether to send `X-Content-Type-Options: nosniff`.
    pub fn content_type_options(mut self, nosniff: bool) -> Self {
        self.nosniff = nosniff;
        self
    }

    /// `Strict-Transport-Security`, sent over TLS only (or `None` for none).
    pub fn hsts(mut self, hsts: Option<Hsts>) -> Self {
        self.hsts = hsts;
        self
    }

    /// Whether a request with `X-Forwarded-Proto: https` counts as over TLS for HSTS. Only
    /// behind a proxy that sets (and overwrites) that header: otherwise any client could
    /// claim it. Off by default.
    pub fn trust_forwarded_proto(mut self, trust: bool) -> Self {
        self.trust_forwarded_proto = trust;
        self
    }

    /// `Referrer-Policy` (or `None` for none). Panics on a value that is not a valid header
    /// value.
    pub fn referrer_policy(self, value: Option<&str>) -> Self {
        self.fixed_header(REFERRER_POLICY, value)
    }

    /// `Permissions-Policy` (or `None` for none). Panics on an invalid header value.
    pub fn permissions_policy(self, value: Option<&str>) -> Self {
        self.fixed_header(PERMISSIONS_POLICY, value)
    }

    /// `Cross-Origin-Opener-Policy` (or `None` for none). Panics on an invalid header value.
    pub fn cross_origin_opener_policy(self, value: Option<&str>) -> Self {
        self.fixed_header(CROSS_ORIGIN_OPENER_POLICY, value)
    }

    /// Whether to send `X-XSS-Protection: 0`.
    pub fn xss_protection(self, send: bool) -> Self {
        self.fixed_header(X_XSS_PROTECTION, send.then_some("0"))
    }

    /// Sets or removes one header of the fixed-value kind.
    fn fixed_header(mut self, name: HeaderName, value: Option<&str>) -> Self {
        self.fixed.retain(|(existing, _)| *existing != name);
        if let Some(value) = value {
            let value = HeaderValue::from_str(value)
                .unwrap_or_else(|_| panic!("SecurityHeaders: {value:?} is not a valid {name}"));
            self.fixed.push((name, value));
        }
        self
    }

    /// Whether the request came over TLS (or, when trusted, through a proxy that says so).
    fn is_tls(&self, request: &Request) -> bool {
        let tls = request
            .extensions()
            .get::<ConnectionInfo>()
            .is_some_and(|info| info.tls);
        let forwarded = self.trust_forwarded_proto
            && request
                .headers()
                .get(X_FORWARDED_PROTO)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        tls || forwarded
    }
}

/// Inserts `value` unless the response already has `name`.
fn set_default(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    headers.entry(name).or_insert(value);
}

impl Middleware for SecurityHeaders {
    async fn handle(&self, mut request: Request, next: Next) -> Outcome {
        let nonce = self
            .csp
            .as_ref()
            .filter(|csp| csp.uses_nonce())
            .map(|_| CspNonce::generate());
        if let Some(nonce) = &nonce {
            request.extensions_mut().insert(nonce.clone());
        }
        let tls = self.is_tls(&request);
        let mut response = next.run(request).await;
        let headers = response.headers_mut();
        if let Some(csp) = &self.csp {
            let name = if csp.report_only {
                CONTENT_SECURITY_POLICY_REPORT_ONLY
            } else {
                CONTENT_SECURITY_POLICY
            };
            let rendered = csp.render(nonce.as_ref().map(CspNonce::as_str));
            // Directive names and sources were checked when the policy was built.
            if let Ok(value) = HeaderValue::from_str(&rendered) {
                set_default(headers, name, value);
            }
        }
        if let Some(frame) = self.frame {
            let value = match frame {
                FrameOptions::Deny => "DENY",
                FrameOptions::SameOrigin => "SAMEORIGIN",
            };
            set_default(headers, X_FRAME_OPTIONS, HeaderValue::from_static(value));
        }
        if self.nosniff {
            set_default(
                headers,
                X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
        }
        if let (Some(hsts), true) = (&self.hsts, tls) {
            if let Ok(value) = HeaderValue::from_str(&hsts.value()) {
                set_default(headers, STRICT_TRANSPORT_SECURITY, value);
            }
        }
        for (name, value) in &self.fixed {
            set_default(headers, name.clone(), value.clone());
        }
        Ok(response)
    }
}
