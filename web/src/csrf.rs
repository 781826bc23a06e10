//! Cross-site request forgery protection: [`Csrf`], a middleware refusing state-changing
//! requests (`POST`, `PUT`, `PATCH`, `DELETE`, and any method not known to be safe) that a
//! third-party site could have made the browser send.
//!
//! # Two defences
//! 1. **Fetch metadata and `Origin`.** `Sec-Fetch-Site: cross-site` is refused
//!    (`csrf.cross_site`); `same-origin`, `same-site` and `none` (typed URL, bookmark) pass to
//!    the token check. Without `Sec-Fetch-Site`, an `Origin` whose host is not the request's
//!    `Host` (nor a [trusted origin](Csrf::trust_origin)), or `Origin: null`, is refused the
//!    same way. Without either header (older browsers, non-browser clients) the token alone
//!    decides.
//! 2. **A token** (OWASP's *signed double-submit cookie*): a random value with its
//!    HMAC-SHA256 under the app's [`CookieKey`], kept in a cookie (`csrf_token`, `HttpOnly`,
//!    `SameSite=Lax`, `Secure`), which the page echoes in the `X-CSRF-Token` header or in an
//!    urlencoded form's `_csrf` field. A forged request carries the cookie (the browser adds
//!    it) but cannot read it to echo it; a cookie planted by a sibling subdomain fails the
//!    signature. No token: `csrf.missing`; a different one: `csrf.invalid`. Both `403`
//!    problem+json.
//!
//! Handlers give the token to pages with the [`CsrfToken`] extractor, which issues one (and
//! the middleware sets the cookie on the response) when the client has none yet.
//!
//! ```
//! use weft::cookies::{CookieKey, Key};
//! use weft::csrf::{Csrf, CsrfToken};
//! use weft::prelude::*;
//!
//! async fn form(token: CsrfToken) -> Html<String> {
//!     Html(format!("<form method=post>{}<button>go</button></form>", token.hidden_input()))
//! }
//!
//! let key = CookieKey(Key::generate()); // from 64 secret bytes in a real app
//! let app = App::new()
//!     .state(key.clone())
//!     .middleware(Csrf::new(&key).exempt_route("/hooks/{name}").exempt_bearer(true))
//!     .get("/form", form)
//!     .post("/form", || async { "saved" })
//!     .post("/hooks/{name}", || async { "hook" });
//! # let _ = app.build().unwrap();
//! ```
//!
//! # The key: given at construction
//! [`Csrf::new`] takes the [`CookieKey`] itself, so a CSRF middleware without a key cannot
//! be built (middleware cannot declare needs to [`App::build`](crate::App::build) the way
//! extractors do). [`CsrfToken`] reads what the middleware put in the request; on a route
//! with no [`Csrf`] around it, it fails with `500` (`csrf.not_configured`) at the request:
//! the build cannot see which middleware surrounds which extractor.
//!
//! # Exemptions
//! Safe methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`) are never checked: they must not change
//! state. A route is exempt when its pattern is listed with [`Csrf::exempt_route`] (webhooks
//! signed by other means), or when [`Csrf`] is simply not attached to it (attach it to a
//! group). With [`Csrf::exempt_bearer`], a request with `Authorization: Bearer …` is exempt:
//! browsers never add such a header by themselves, so it cannot be forged cross-site.
//!
//! # Sessions later: [`TokenStore`]
//! Where the expected token lives is a [`TokenStore`]: [`CookieTokenStore`] (the signed
//! double-submit cookie) today. When weft has sessions, a synchronizer-token store (the token
//! kept in the server-side session) implements the same three methods and plugs in with
//! [`Csrf::with_store`]; nothing else changes.
//!
//! # Forms
//! The `_csrf` field is read from `application/x-www-form-urlencoded` bodies, bounded by the
//! [form body limit](crate::extract::BodyLimits::form) (over it: `413`), and the body is put
//! back whole for the handler's [`Form`](crate::extract::Form). Multipart forms send the
//! token in the header (their bodies are not buffered here).

use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cookie::{Cookie, Key, SameSite};
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, HeaderName, HeaderValue, ORIGIN};
use http::request::Parts;
use http::{Method, StatusCode};
use sha2::Sha256;
use weft_service::body::{Body, BodyError};

use crate::Request;
use crate::cookies::CookieKey;
use crate::error::{Error, HttpError};
use crate::extract::{BodyRejection, FromRequestParts, PathParams};
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::{Problem, escape_html};
use crate::response::Response;
use crate::security_headers::fill_random;

/// The default header carrying the token.
pub const HEADER: &str = "x-csrf-token";
/// The default form field carrying the token.
pub const FIELD: &str = "_csrf";
/// The default cookie holding the signed token.
pub const COOKIE_NAME: &str = "csrf_token";

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Where the expected token of a client is kept: the seam between the check and its storage.
///
/// [`CookieTokenStore`] keeps it in a signed cookie (double submit); a session-backed store
/// (synchronizer token) will keep it server-side once weft has sessions.
pub trait TokenStore: Send + Sync + 'static {
    /// The token this client holds, verified (a tampered or foreign one is `None`).
    fn load(&self, parts: &Parts) -> Option<String>;

    /// A new token for a client that has none.
    fn generate(&self) -> String;

    /// Keeps `token` for this client, on its way out in `response` (a `Set-Cookie`, or a
    /// session write).
    fn save(&self, token: &str, response: &mut Response);
}

/// The signed double-submit cookie store: a token is `random.mac` (each base64url), the MAC
/// being HMAC-SHA256 of the 32 random bytes under the signing half of the app's
/// [`CookieKey`], with a label of its own so that no other signed value can pass as a token.
#[derive(Clone)]
pub struct CookieTokenStore {
    key: Key,
    cookie_name: String,
    secure: bool,
}

impl fmt::Debug for CookieTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("CookieTokenStore")
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// The label MACed before the random bytes (domain separation).
const LABEL: &[u8] = b"weft.csrf.v1\0";
/// Random bytes per token.
const RANDOM_LEN: usize = 32;

impl CookieTokenStore {
    /// A store signing with `key`, in the `csrf_token` cookie, `Secure`.
    pub fn new(key: &CookieKey) -> Self {
        CookieTokenStore {
            key: key.0.clone(),
            cookie_name: COOKIE_NAME.to_owned(),
            secure: true,
        }
    }

    /// The cookie's name (`__Host-csrf` is a good one over HTTPS: no subdomain may set it).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Whether the cookie is `Secure` (HTTPS only): turn off for plain-HTTP development.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The MAC of `random`.
    fn mac(&self, random: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.signing())
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac.update(random);
        mac
    }

    /// The token for `random`.
    fn sign(&self, random: &[u8]) -> String {
        let tag = self.mac(random).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(random),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Whether `token` is one this store made with its key, unmodified. Never panics, on any
    /// input; the MAC is compared in constant time.
    pub fn verify(&self, token: &str) -> bool {
        let Some((random, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(random), Ok(tag)) = (URL_SAFE_NO_PAD.decode(random), URL_SAFE_NO_PAD.decode(tag))
        else {
            return false;
        };
        // Only the canonical encoding is accepted, so that one token has one spelling.
        random.len() == RANDOM_LEN
            && self.mac(&random).verify_slice(&tag).is_ok()
            && constant_time_eq(self.sign(&random).as_bytes(), token.as_bytes())
    }
}

impl TokenStore for CookieTokenStore {
    fn load(&self, parts: &Parts) -> Option<String> {
        parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name)
            .map(|(_, value)| value.trim_matches('"'))
            .find(|value| self.verify(value))
            .map(str::to_owned)
    }

    fn generate(&self) -> String {
        let mut random = [0u8; RANDOM_LEN];
        fill_random(&mut random);
        self.sign(&random)
    }

    fn save(&self, token: &str, response: &mut Response) {
        let cookie = Cookie::build((self.cookie_name.clone(), token.to_owned()))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .build();
        match HeaderValue::from_str(&cookie.encoded().to_string()) {
            Ok(value) => {
                response
                    .headers_mut()
                    .append(http::header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("the CSRF cookie could not be written"),
        }
    }
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `origin` (an `Origin` header: `scheme://host[:port]`) names the same host and
/// port as `host` (a `Host` header or `:authority`), ASCII case-insensitively, a default
/// port (`:80` for http, `:443` for https) being the same as none. `null`, a value with a
/// path, or anything unparsable is not. Never panics, on any input.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let (scheme, rest) = match origin.split_once("://") {
        Some((scheme, rest)) if !rest.is_empty() && !rest.contains(['/', '?', '#', '@']) => {
            (scheme.to_ascii_lowercase(), rest)
        }
        _ => return false,
    };
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |authority: &str| -> String {
        let lower = authority.trim().to_ascii_lowercase();
        match lower.strip_suffix(default_port) {
            Some(stripped) => stripped.to_owned(),
            None => lower,
        }
    };
    let (origin, host) = (strip(rest), strip(host));
    !origin.is_empty() && origin == host
}

/// Why a state-changing request was refused: `403` problem+json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfRefusal {
    /// No token was sent, or the client holds none: code `csrf.missing`.
    Missing,
    /// The token sent is not the client's: code `csrf.invalid`.
    Invalid,
    /// `Sec-Fetch-Site: cross-site`, or a foreign `Origin`: code `csrf.cross_site`.
    CrossSite,
}

impl fmt::Display for CsrfRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CsrfRefusal::Missing => "the CSRF token is missing",
            CsrfRefusal::Invalid => "the CSRF token is not valid",
            CsrfRefusal::CrossSite => "a cross-site request may not change state here",
        })
    }
}

impl std::error::Error for CsrfRefusal {}

impl HttpError for CsrfRefusal {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn problem(&self) -> Problem {
        let code = match self {
            CsrfRefusal::Missing => "csrf.missing",
            CsrfRefusal::Invalid => "csrf.invalid",
            CsrfRefusal::CrossSite => "csrf.cross_site",
        };
        Problem::new(self.status())
            .with_code(code)
            .with_detail(self.to_string())
    }
}

/// The settings the middleware and the extractor share.
#[derive(Clone)]
struct Shared {
    store: Arc<dyn TokenStore>,
    header: HeaderName,
    field: String,
    exempt_routes: Vec<String>,
    exempt_bearer: bool,
    trusted_origins: Vec<String>,
}

/// What the middleware leaves in the request for [`CsrfToken`].
#[derive(Clone)]
struct CsrfContext {
    shared: Arc<Shared>,
    /// The client's verified token, if any.
    loaded: Option<String>,
    /// A token issued during this request, for the middleware to save on the response.
    issued: Arc<Mutex<Option<String>>>,
}

/// The CSRF middleware (see the [module docs](self)).
#[derive(Clone)]
pub struct Csrf {
    shared: Arc<Shared>,
}

impl fmt::Debug for Csrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csrf")
            .field("header", &self.shared.header)
            .field("field", &self.shared.field)
            .field("exempt_routes", &self.shared.exempt_routes)
            .field("exempt_bearer", &self.shared.exempt_bearer)
            .field("trusted_origins", &self.shared.trusted_origins)
            .finish_non_exhaustive()
    }
}

impl Csrf {
    /// CSRF protection with the signed-cookie store ([`CookieTokenStore`]) under `key`, the
    /// token in `X-CSRF-Token` or `_csrf`, no exemption.
    pub fn new(key: &CookieKey) -> Self {
        Csrf::with_store(CookieTokenStore::new(key))
    }

    /// CSRF protection with another [`TokenStore`] (a session-backed one, or a
    /// [`CookieTokenStore`] with another cookie name or `secure(false)`).
    pub fn with_store(store: impl TokenStore) -> Self {
        Csrf {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                header: HeaderName::from_static(HEADER),
                field: FIELD.to_owned(),
                exempt_routes: Vec::new(),
                exempt_bearer: false,
                trusted_origins: Vec::new(),
            }),
        }
    }

    /// Changes one setting (on a copy of the settings if this middleware was cloned).
    fn with(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// The header carrying the token (default `X-CSRF-Token`). Panics on an invalid name.
    pub fn header(self, name: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("Csrf: {name:?} is not a valid header name"));
        self.with(|shared| shared.header = name)
    }

    /// The form field carrying the token (default `_csrf`).
    pub fn field(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|shared| shared.field = name)
    }

    /// Exempts the route with this pattern, as written when it was added
    /// (`/hooks/{name}`, with any group prefix): no check runs for it.
    pub fn exempt_route(self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        self.with(|shared| shared.exempt_routes.push(pattern))
    }

    /// Whether requests with `Authorization: Bearer …` are exempt (browsers never add that
    /// header on their own, so a forged request cannot carry it). Off by default.
    pub fn exempt_bearer(self, exempt: bool) -> Self {
        self.with(|shared| shared.exempt_bearer = exempt)
    }

    /// Trusts an origin besides the request's own host (`https://app.example.com`, a front
    /// end on another host), exactly, ASCII case-insensitively.
    pub fn trust_origin(self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        self.with(|shared| shared.trusted_origins.push(origin))
    }

    /// Whether this request skips the checks.
    fn is_exempt(&self, request: &Parts) -> bool {
        if matches!(
            request.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) {
            return true;
        }
        let shared = &self.shared;
        let route_exempt = request
            .extensions
            .get::<PathParams>()
            .and_then(PathParams::pattern)
            .is_some_and(|pattern| shared.exempt_routes.iter().any(|p| **p == **pattern));
        let bearer = shared.exempt_bearer
            && request
                .headers
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.get(..7))
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "));
        route_exempt || bearer
    }

    /// The fetch-metadata and `Origin` check.
    fn check_site(&self, request: &Parts) -> Result<(), CsrfRefusal> {
        let headers = &request.headers;
        if let Some(site) = headers.get(SEC_FETCH_SITE) {
            return match site.as_bytes() {
                b"cross-site" => Err(CsrfRefusal::CrossSite),
                // same-origin, same-site, none; an unknown value is left to the token.
                _ => Ok(()),
            };
        }
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("null");
        let host = headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let trusted = self
            .shared
            .trusted_origins
            .iter()
            .any(|t| t.eq_ignore_ascii_case(origin.trim_end_matches('/')));
        if trusted || same_origin(origin, host) {
            Ok(())
        } else {
            Err(CsrfRefusal::CrossSite)
        }
    }

    /// The token the request submits: the header, else an urlencoded body's field (the body
    /// put back whole).
    async fn submitted(&self, parts: &Parts, body: Body) -> Result<(Option<String>, Body), Error> {
        if let Some(value) = parts.headers.get(&self.shared.header) {
            return Ok((value.to_str().ok().map(|v| v.trim().to_owned()), body));
        }
        let is_form = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Ok((None, body));
        }
        let limit = crate::extract::body::limits(parts).form;
        let bytes: Bytes = body.collect(limit).await.map_err(|error| match error {
            BodyError::TooLarge => Error::http(BodyRejection::TooLarge { limit }),
            other => Error::http(BodyRejection::Read(other)),
        })?;
        let token = form_field(&bytes, &self.shared.field);
        Ok((token, Body::full(bytes)))
    }
}

/// The value of the first `field` of an urlencoded body, if any.
fn form_field(body: &[u8], field: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find(|(name, _)| name == field)
        .map(|(_, value)| value)
}

impl Middleware for Csrf {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let (mut parts, mut body) = request.into_parts();
        let loaded = self.shared.store.load(&parts);
        if !self.is_exempt(&parts) {
            self.check_site(&parts).map_err(Error::http)?;
            let (submitted, kept) = self.submitted(&parts, body).await?;
            body = kept;
            match (&loaded, submitted) {
                (Some(expected), Some(submitted)) => {
                    if !constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
                        return Err(Error::http(CsrfRefusal::Invalid));
                    }
                }
                (None, Some(_)) | (_, None) => return Err(Error::http(CsrfRefusal::Missing)),
            }
        }
        let issued = Arc::new(Mutex::new(None));
        parts.extensions.insert(CsrfContext {
            shared: Arc::clone(&self.shared),
            loaded,
            issued: Arc::clone(&issued),
        });
        let mut response = next.run(Request::from_parts(parts, body)).await;
        let issued = issued.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(token) = issued {
            self.shared.store.save(&token, &mut response);
        }
        Ok(response)
    }
}

/// The client's CSRF token, for pages and scripts to send back: in a form
/// ([`hidden_input`](Self::hidden_input)) or in the header ([`header_name`](Self::header_name)).
/// When the client has none yet, a new one is issued, and the [`Csrf`] middleware sets its
/// cookie on the response.
///
/// Fails with `500` (`csrf.not_configured`) on a route with no [`Csrf`] middleware.
#[derive(Clone)]
pub struct CsrfToken {
    token: String,
    shared: Arc<Shared>,
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfToken").finish_non_exhaustive()
    }
}

impl CsrfToken {
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The header that carries it (`x-csrf-token` by default), for scripts.
    pub fn header_name(&self) -> &str {
        self.shared.header.as_str()
    }

    /// The form field that carries it (`_csrf` by default).
    pub fn field_name(&self) -> &str {
        &self.shared.field
    }

    /// `<input type="hidden" name="_csrf" value="…">`, escaped, for forms.
    pub fn hidden_input(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape_html(&self.shared.field),
            escape_html(&self.token)
        )
    }
}

impl fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token)
    }
}

/// A [`CsrfToken`] was asked for on a route the [`Csrf`] middleware does not cover.
#[derive(Debug)]
pub struct CsrfNotConfigured;

impl fmt::Display for CsrfNotConfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken: no Csrf middleware runs on this route")
    }
}

impl std::error::Error for CsrfNotConfigured {}

impl HttpError for CsrfNotConfigured {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn problem(&self) -> Problem {
        // About the app, not the client: not shown.
        Problem::new(self.status()).with_code("csrf.not_configured")
    }
}

impl FromRequestParts for CsrfToken {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        let Some(context) = parts.extensions.get::<CsrfContext>() else {
            tracing::error!("{CsrfNotConfigured}");
            return Err(Error::http(CsrfNotConfigured));
        };
        let token = match &context.loaded {
            Some(token) => token.clone(),
            None => {
                let mut issued = context.issued.lock().unwrap_or_else(|e| e.into_inner());
                issued
                    .get_or_insert_with(|| context.shared.store.generate())
                    .clone()
            }
        };
        Ok(CsrfToken {
            token,
            shared: Arc::clone(&context.shared),
        })
    }
}
