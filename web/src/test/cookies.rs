//! The test client's cookie jar: cookies from `Set-Cookie` kept and sent back (RFC 6265).
//!
//! What a test needs of a browser's rules, not all of them: the path rules (§5.1.4), removal
//! by `Max-Age=0` or a past `Expires`, and one cookie per name. Every request goes to the same
//! application, so `Domain` is not checked, and `Secure` cookies are sent although the
//! in-memory connection is cleartext (an application that sets them in production works the
//! same in its tests).

use std::sync::{Mutex, PoisonError};

use cookie::time::OffsetDateTime;
use cookie::{Cookie, CookieJar};
use http::header::{self, HeaderMap};

/// Cookies shared by a client and its clones.
#[derive(Debug, Default)]
pub(crate) struct Jar {
    cookies: Mutex<CookieJar>,
}

impl Jar {
    fn lock(&self) -> std::sync::MutexGuard<'_, CookieJar> {
        self.cookies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `Cookie` field for a request to `path`: the cookies whose path matches, or `None`.
    pub(crate) fn header_for(&self, path: &str) -> Option<String> {
        let jar = self.lock();
        let now = OffsetDateTime::now_utc();
        let pairs: Vec<String> = jar
            .iter()
            .filter(|cookie| path_matches(cookie.path().unwrap_or("/"), path))
            .filter(|cookie| !expired(cookie, now))
            .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Keeps the cookies `headers` set in answer to a request to `path`, and drops those they
    /// expire. Fields that do not parse are ignored, as a browser would.
    pub(crate) fn store(&self, path: &str, headers: &HeaderMap) {
        let mut jar = self.lock();
        let now = OffsetDateTime::now_utc();
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let Ok(mut cookie) = Cookie::parse(value.to_owned()) else {
                continue;
            };
            if cookie.path().is_none_or(|path| !path.starts_with('/')) {
                cookie.set_path(default_path(path));
            }
            if expired(&cookie, now) {
                jar.force_remove(cookie.name());
            } else {
                jar.add(cookie);
            }
        }
    }

    /// The value of cookie `name`, if the jar holds it.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.lock()
            .get(name)
            .map(|cookie| cookie.value().to_owned())
    }

    /// Adds (or replaces) a cookie, as if the application had set it.
    pub(crate) fn add(&self, cookie: Cookie<'static>) {
        let mut cookie = cookie;
        if cookie.path().is_none() {
            cookie.set_path("/");
        }
        self.lock().add(cookie);
    }

    /// Forgets every cookie.
    pub(crate) fn clear(&self) {
        *self.lock() = CookieJar::new();
    }
}

/// `Max-Age` zero or less, or `Expires` in the past (`Max-Age` wins, RFC 6265 §5.3 step 3).
fn expired(cookie: &Cookie<'_>, now: OffsetDateTime) -> bool {
    if let Some(max_age) = cookie.max_age() {
        return max_age.is_zero() || max_age.is_negative();
    }
    cookie.expires_datetime().is_some_and(|at| at <= now)
}

/// The default path of a cookie set by a response to `request_path` (RFC 6265 §5.1.4).
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => request_path[..last].to_owned(),
    }
}

/// Whether `request_path` path-matches `cookie_path` (RFC 6265 §5.1.4).
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    match request_path.strip_prefix(cookie_path) {
        None => false,
        Some(rest) => rest.is_empty() || cookie_path.ends_with('/') || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn path_matching_follows_rfc_6265() {
        assert!(path_matches("/", "/anything"));
        assert!(path_matches("/a", "/a"));
        assert!(path_matches("/a", "/a/b"));
        assert!(path_matches("/a/", "/a/b"));
        assert!(!path_matches("/a", "/ab"));
        assert!(!path_matches("/a/b", "/a"));
        assert_eq!(default_path("/a/b/c"), "/a/b");
        assert_eq!(default_path("/a"), "/");
    }

    #[test]
    fn keeps_matching_cookies_and_drops_expired_ones() {
        let jar = Jar::default();
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("b=2; Path=/admin"),
        );
        jar.store("/login", &headers);
        assert_eq!(jar.header_for("/").as_deref(), Some("a=1"));
        let mut both = jar.header_for("/admin/x").unwrap();
        both = both
            .split("; ")
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(both, "a=1; b=2");
        let mut removal = HeaderMap::new();
        removal.append(
            header::SET_COOKIE,
            HeaderValue::from_static("a=; Max-Age=0"),
        );
        jar.store("/logout", &removal);
        assert_eq!(jar.get("a"), None);
        assert_eq!(jar.get("b").as_deref(), Some("2"));
    }
}
