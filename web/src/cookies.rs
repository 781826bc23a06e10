//! Cookies: read the request's, change them, and answer the changes as `Set-Cookie` headers.
//!
//! [`Cookies`] is an extractor holding the request's cookies (every `Cookie` header, RFC 6265
//! §5.4); a handler reads, adds and removes cookies on it and returns it with its response,
//! `(cookies, body)`, so that exactly the changes become `Set-Cookie` headers (§4.1).
//! [`SignedCookies`] (tamper-evident) and [`PrivateCookies`] (encrypted and tamper-evident) do
//! the same with the app's [`CookieKey`], registered with `App::state(CookieKey(key))`; a
//! handler taking one on an app with no key fails [`App::build`](crate::App::build), naming
//! the handler.
//!
//! ```
//! use weft::cookies::{self, Cookies};
//!
//! async fn visit(mut cookies: Cookies) -> (Cookies, String) {
//!     let seen = cookies.get("visits").and_then(|c| c.value().parse::<u32>().ok()).unwrap_or(0);
//!     cookies.add(cookies::build("visits", (seen + 1).to_string()));
//!     (cookies, format!("visit number {}", seen + 1))
//! }
//! # let _ = weft::App::new().get("/", visit).build().unwrap();
//! ```
//!
//! A malformed pair in a `Cookie` header is skipped, the others kept: a client's one bad cookie
//! must not lock it out.

use http::header::{COOKIE, HeaderValue, SET_COOKIE};
use http::request::Parts;

pub use cookie::{Cookie, CookieBuilder, CookieJar, Key, SameSite};

use crate::error::{Error, HttpError};
use crate::extract::{FromRequestParts, Needs};
use crate::problem::Problem;
use crate::response::{IntoResponse, Response};
use crate::services::AppContext;

/// The key that signs and encrypts cookies, registered with `App::state(CookieKey(key))`;
/// what [`SignedCookies`] and [`PrivateCookies`] need.
///
/// Make it with [`Key::from`] from 64 secret bytes kept across restarts; a
/// [`Key::generate`]d one is new at every start, and every earlier cookie becomes invalid.
#[derive(Clone)]
pub struct CookieKey(pub Key);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("CookieKey(..)")
    }
}

/// A cookie for `Set-Cookie` with safe defaults: `HttpOnly` (scripts cannot read it),
/// `Secure` (sent over HTTPS only), `SameSite=Lax` (not sent on cross-site subrequests, a
/// CSRF defence) and `Path=/` (the whole site, so that removing it works from any route).
///
/// Change what differs on the builder: `.max_age(cookie::time::Duration::days(7))`,
/// `.domain("example.com")`, `.secure(false)` for plain-HTTP development, `.http_only(false)`
/// for a value scripts must read.
pub fn build(name: impl Into<String>, value: impl Into<String>) -> CookieBuilder<'static> {
    Cookie::build((name.into(), value.into()))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
}

/// The time types `max_age` and `expires` take (the `time` crate, as re-exported by `cookie`).
pub use cookie::time;

/// Every cookie of the request's `Cookie` headers, as the jar's originals. Malformed pairs
/// (no `=`, an empty name, bad percent-encoding) are skipped one by one.
fn request_jar(parts: &Parts) -> CookieJar {
    let mut jar = CookieJar::new();
    for header in parts.headers.get_all(COOKIE) {
        // A header that is not UTF-8 is read lossily: its valid pairs still count.
        let text = String::from_utf8_lossy(header.as_bytes()).into_owned();
        for pair in Cookie::split_parse_encoded(text).flatten() {
            jar.add_original(pair.into_owned());
        }
    }
    jar
}

/// The changes of `jar` as `Set-Cookie` headers on `response` (percent-encoded, so that no
/// value can break out of its header).
fn write_delta(jar: &CookieJar, response: &mut Response) {
    for cookie in jar.delta() {
        match HeaderValue::from_str(&cookie.encoded().to_string()) {
            Ok(value) => {
                response.headers_mut().append(SET_COOKIE, value);
            }
            Err(_) => tracing::error!(
                name = cookie.name(),
                "a cookie could not be written as a Set-Cookie header"
            ),
        }
    }
}

/// A removal cookie for `cookie`, with `Path=/` when it names no path: the path the cookies
/// of [`build`] have, without which the browser would not match the cookie to delete.
fn removal(cookie: impl Into<Cookie<'static>>) -> Cookie<'static> {
    let mut cookie = cookie.into();
    if cookie.path().is_none() {
        cookie.set_path("/");
    }
    cookie
}

/// The request's cookies, and the changes the handler makes to them (see the [module
/// docs](self)). Return it with the response, `(cookies, body)`, for the changes to be sent;
/// the body may be any response, `(cookies, (StatusCode::CREATED, Json(user)))` included.
#[derive(Debug, Clone, Default)]
pub struct Cookies {
    jar: CookieJar,
}

impl Cookies {
    /// The cookie named `name`: sent by the client, or added since.
    pub fn get(&self, name: &str) -> Option<&Cookie<'static>> {
        self.jar.get(name)
    }

    /// Adds (or replaces) a cookie: answered with a `Set-Cookie`. [`build`] makes one with
    /// safe defaults; a plain `("name", "value")` has none of them.
    pub fn add(&mut self, cookie: impl Into<Cookie<'static>>) {
        self.jar.add(cookie);
    }

    /// Removes a cookie: answered with a `Set-Cookie` that expires it. Pass the name, or a
    /// cookie with the path and domain it was set with; a cookie with no path is removed at
    /// `Path=/`, the default of [`build`].
    pub fn remove(&mut self, cookie: impl Into<Cookie<'static>>) {
        self.jar.remove(removal(cookie));
    }

    /// Every cookie: the client's, with the changes applied.
    pub fn iter(&self) -> impl Iterator<Item = &Cookie<'static>> {
        self.jar.iter()
    }

    /// The underlying jar, for what this type does not wrap.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// The underlying jar, mutable.
    pub fn jar_mut(&mut self) -> &mut CookieJar {
        &mut self.jar
    }
}

impl FromRequestParts for Cookies {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(Cookies {
            jar: request_jar(parts),
        })
    }
}

/// No [`CookieKey`] is registered, yet a handler reads signed or private cookies: a bug of
/// the app (normally caught by [`App::build`](crate::App::build)), answered `500`.
#[derive(Debug)]
pub struct MissingCookieKey;

impl std::fmt::Display for MissingCookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no CookieKey is registered: App::state(CookieKey(key))")
    }
}

impl std::error::Error for MissingCookieKey {}

impl HttpError for MissingCookieKey {
    fn status(&self) -> http::StatusCode {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn problem(&self) -> Problem {
        // The detail is about the app, not the client: not shown.
        Problem::new(self.status()).with_code("cookies.key_missing")
    }
}

/// The app's cookie key, or the error of an app without one.
fn cookie_key(parts: &Parts) -> Result<Key, MissingCookieKey> {
    AppContext::of(parts)
        .and_then(|context| context.services.get::<CookieKey>())
        .map(|key| key.0.clone())
        .ok_or_else(|| {
            tracing::error!("{MissingCookieKey}");
            MissingCookieKey
        })
}

const KEY_HINT: &str = "App::state(weft::cookies::CookieKey(key)), for signed and private cookies";

/// Cookies signed with the app's [`CookieKey`]: the client can read them but not change them
/// undetected. A cookie whose signature does not verify is absent ([`get`](Self::get) says
/// `None`). Return it with the response, `(cookies, body)`.
#[derive(Clone)]
pub struct SignedCookies {
    jar: CookieJar,
    key: Key,
}

/// Cookies encrypted with the app's [`CookieKey`]: the client can neither read nor change
/// them. A cookie that does not decrypt is absent. Return it with the response,
/// `(cookies, body)`.
#[derive(Clone)]
pub struct PrivateCookies {
    jar: CookieJar,
    key: Key,
}

macro_rules! keyed_jar {
    ($name:ident, $view:ident, $view_mut:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("The cookie named `name`, ", $what, " (its value in clear), or `None` when absent or not authentic.")]
            pub fn get(&self, name: &str) -> Option<Cookie<'static>> {
                self.jar.$view(&self.key).get(name)
            }

            #[doc = concat!("Adds (or replaces) a cookie, ", $what, " with the key: answered with a `Set-Cookie`.")]
            pub fn add(&mut self, cookie: impl Into<Cookie<'static>>) {
                self.jar.$view_mut(&self.key).add(cookie);
            }

            /// Removes a cookie (see [`Cookies::remove`] for the path).
            pub fn remove(&mut self, cookie: impl Into<Cookie<'static>>) {
                self.jar.$view_mut(&self.key).remove(removal(cookie));
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("jar", &self.jar)
                    .finish_non_exhaustive()
            }
        }

        impl FromRequestParts for $name {
            async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
                Ok($name {
                    key: cookie_key(parts).map_err(Error::http)?,
                    jar: request_jar(parts),
                })
            }

            fn declare(needs: &mut Needs) {
                needs.need::<CookieKey>(KEY_HINT);
            }
        }

        /// The response with the cookie changes as `Set-Cookie` headers.
        impl<T: IntoResponse> IntoResponse for ($name, T) {
            fn into_response(self) -> Response {
                let mut response = self.1.into_response();
                write_delta(&self.0.jar, &mut response);
                response
            }
        }
    };
}

keyed_jar!(SignedCookies, signed, signed_mut, "verified");
keyed_jar!(PrivateCookies, private, private_mut, "decrypted");

/// The response with the cookie changes as `Set-Cookie` headers.
impl<T: IntoResponse> IntoResponse for (Cookies, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        write_delta(&self.0.jar, &mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use http::StatusCode;
    use weft_service::service::Service;

    use super::*;
    use crate::services::BuildError;
    use crate::{App, Request};

    fn get(service: &crate::AppService, path: &str, cookie: Option<&[u8]>) -> Response {
        let mut request = Request::new(crate::Body::empty());
        *request.uri_mut() = path.parse().unwrap();
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(COOKIE, HeaderValue::from_bytes(cookie).unwrap());
        }
        block_on(service.call(request))
    }

    fn set_cookies(response: &Response) -> Vec<String> {
        response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn body(response: Response) -> String {
        let bytes = block_on(response.into_body().collect(1 << 20)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    async fn visits(mut cookies: Cookies) -> (Cookies, String) {
        let seen = cookies
            .get("visits")
            .and_then(|c| c.value().parse::<u32>().ok())
            .unwrap_or(0);
        cookies.add(build("visits", (seen + 1).to_string()));
        cookies.remove("old");
        (cookies, format!("{}", seen + 1))
    }

    #[test]
    fn cookies_are_read_and_changes_become_set_cookie_headers() {
        let service = App::new().get("/", visits).build().unwrap();
        let response = get(&service, "/", Some(b"visits=41; old=x"));
        let set = set_cookies(&response);
        assert_eq!(set.len(), 2, "{set:?}");
        let visits = set.iter().find(|c| c.starts_with("visits=")).unwrap();
        for attribute in ["visits=42", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(visits.contains(attribute), "{visits}");
        }
        let old = set.iter().find(|c| c.starts_with("old=")).unwrap();
        assert!(old.contains("Max-Age=0") && old.contains("Path=/"), "{old}");
        assert_eq!(body(response), "42");
    }

    #[test]
    fn unchanged_cookies_send_no_set_cookie() {
        async fn read(cookies: Cookies) -> (Cookies, String) {
            let value = cookies.get("a").map(|c| c.value().to_owned());
            (cookies, value.unwrap_or_default())
        }
        let service = App::new().get("/", read).build().unwrap();
        let response = get(&service, "/", Some(b"a=1"));
        assert!(set_cookies(&response).is_empty());
        assert_eq!(body(response), "1");
    }

    #[test]
    fn malformed_pairs_are_skipped_one_by_one() {
        async fn list(cookies: Cookies) -> String {
            let mut names: Vec<String> = cookies
                .iter()
                .map(|c| format!("{}={}", c.name(), c.value()))
                .collect();
            names.sort();
            names.join(",")
        }
        let service = App::new().get("/", list).build().unwrap();
        let headers: [&[u8]; 4] = [
            b"a=1; garbage; =nameless; b=%20two; c=%zz; d=4",
            b";;;=;",
            b"a=\xff\xfe; e=5",
            b"",
        ];
        let answers: Vec<String> = headers
            .iter()
            .map(|h| body(get(&service, "/", Some(h))))
            .collect();
        assert!(answers[0].contains("a=1") && answers[0].contains("b= two"));
        assert!(answers[0].contains("d=4"), "{}", answers[0]);
        assert!(!answers[0].contains("garbage"));
        assert_eq!(answers[1], "");
        assert!(answers[2].contains("e=5"), "{}", answers[2]);
        assert_eq!(answers[3], "");
    }

    #[test]
    fn every_cookie_header_counts() {
        // HTTP/2 clients may send one `cookie` field per pair (RFC 9113 §8.2.3).
        async fn both(cookies: Cookies) -> String {
            let a = cookies.get("a").map(|c| c.value().to_owned());
            let b = cookies.get("b").map(|c| c.value().to_owned());
            format!("{}{}", a.unwrap_or_default(), b.unwrap_or_default())
        }
        let service = App::new().get("/", both).build().unwrap();
        let mut request = Request::new(crate::Body::empty());
        *request.uri_mut() = "/".parse().unwrap();
        request
            .headers_mut()
            .append(COOKIE, HeaderValue::from_static("a=1"));
        request
            .headers_mut()
            .append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(body(block_on(service.call(request))), "12");
    }

    #[test]
    fn values_cannot_inject_headers() {
        async fn evil(mut cookies: Cookies) -> (Cookies, &'static str) {
            cookies.add(build("x", "a\r\nSet-Cookie: admin=1; y"));
            (cookies, "ok")
        }
        let service = App::new().get("/", evil).build().unwrap();
        let response = get(&service, "/", None);
        let set = set_cookies(&response);
        assert_eq!(set.len(), 1);
        assert!(
            !set[0].contains('\n') && !set[0].contains("admin=1;"),
            "{set:?}"
        );
    }

    #[test]
    fn the_builder_sets_max_age_and_domain() {
        let cookie = build("s", "v")
            .max_age(time::Duration::hours(1))
            .domain("example.com")
            .build();
        let text = cookie.to_string();
        assert!(text.contains("Max-Age=3600") && text.contains("Domain=example.com"));
    }

    fn keyed_app() -> crate::AppService {
        async fn sign(mut cookies: SignedCookies) -> (SignedCookies, String) {
            let seen = cookies.get("user").map(|c| c.value().to_owned());
            cookies.add(build("user", "alice"));
            (cookies, seen.unwrap_or_else(|| "none".into()))
        }
        async fn hide(mut cookies: PrivateCookies) -> (PrivateCookies, String) {
            let seen = cookies.get("secret").map(|c| c.value().to_owned());
            cookies.add(build("secret", "42"));
            (cookies, seen.unwrap_or_else(|| "none".into()))
        }
        App::new()
            .state(CookieKey(Key::generate()))
            .get("/signed", sign)
            .get("/private", hide)
            .build()
            .unwrap()
    }

    fn first_pair(response: &Response) -> String {
        let set = set_cookies(response);
        set[0].split(';').next().unwrap().to_owned()
    }

    #[test]
    fn signed_cookies_round_trip_and_refuse_tampering() {
        let service = keyed_app();
        let first = get(&service, "/signed", None);
        let pair = first_pair(&first);
        assert!(pair.starts_with("user=") && pair.ends_with("alice") && pair != "user=alice");
        assert_eq!(
            body(get(&service, "/signed", Some(pair.as_bytes()))),
            "alice"
        );
        let tampered = pair.replace("alice", "admin");
        assert_eq!(
            body(get(&service, "/signed", Some(tampered.as_bytes()))),
            "none"
        );
    }

    #[test]
    fn private_cookies_are_encrypted_and_round_trip() {
        let service = keyed_app();
        let pair = first_pair(&get(&service, "/private", None));
        // The value is sealed: the cookie is not the plain `secret=42` (random ciphertext may
        // contain the characters "42", so only the exact plain value is ruled out).
        assert_ne!(pair, "secret=42", "{pair}");
        assert!(pair.len() > "secret=42".len(), "{pair}");
        assert_eq!(body(get(&service, "/private", Some(pair.as_bytes()))), "42");
        assert_eq!(body(get(&service, "/private", Some(b"secret=42"))), "none");
    }

    #[test]
    fn a_keyed_jar_without_a_key_fails_the_build_naming_the_handler() {
        async fn needs_key(_cookies: PrivateCookies) -> &'static str {
            "never"
        }
        let error = App::new().get("/p", needs_key).build().unwrap_err();
        match &error {
            BuildError::MissingForRoute {
                handler, missing, ..
            } => {
                assert!(handler.contains("needs_key"), "{handler}");
                assert!(missing.contains("CookieKey"), "{missing}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(error.to_string().contains("needs_key"), "{error}");
    }

    #[test]
    fn a_missing_key_at_request_time_is_a_500_problem() {
        let mut parts = Request::new(crate::Body::empty()).into_parts().0;
        let error = block_on(SignedCookies::from_request_parts(&mut parts)).unwrap_err();
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.problem().code.as_deref(), Some("cookies.key_missing"));
    }
}
