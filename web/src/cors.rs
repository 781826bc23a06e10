//! Cross-Origin Resource Sharing: [`Cors`], the middleware that tells browsers which other
//! origins may call the app (the Fetch standard's CORS protocol, <https://fetch.spec.whatwg.org/#http-cors-protocol>).
//!
//! ```
//! use std::time::Duration;
//! use weft::cors::Cors;
//! use weft::prelude::*;
//!
//! let cors = Cors::new()
//!     .allow_origins(["https://app.example.com"])
//!     .allow_methods([Method::GET, Method::POST, Method::DELETE])
//!     .allow_headers(["content-type", "x-requested-with"])
//!     .allow_credentials(true)
//!     .expose_headers(["x-request-id"])
//!     .max_age(Duration::from_secs(600));
//! let app = App::new()
//!     .group("/api", |api| api.middleware(cors).get("/me", || async { "me" }));
//! # let _ = app.build().unwrap();
//! ```
//!
//! # What it answers
//! - A **preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   `204` here, without reaching the handler: the allowed origin, methods and headers, the
//!   credentials flag and `Access-Control-Max-Age`. When the origin, the method or one of the
//!   requested headers is not allowed, it is answered `403` problem+json (codes `cors.origin`,
//!   `cors.method`, `cors.header`) with no CORS header, so the browser blocks the request.
//! - Any **other request with an `Origin`** goes to the route; when its origin and method are
//!   allowed, the response gets `Access-Control-Allow-Origin` (and `-Credentials`,
//!   `-Expose-Headers`). When not, the response goes out with no CORS header: the server
//!   still ran the request (a simple request cannot be stopped by CORS, which protects
//!   reading the response, not sending the request), and the browser hides the answer from
//!   the page. Refusing state-changing requests is CSRF's job ([`crate::csrf`]).
//! - Every response gets `Vary: Origin` (preflights also `Vary: Access-Control-Request-Method,
//!   Access-Control-Request-Headers`), so that a shared cache never serves one origin's answer
//!   to another.
//!
//! # Where to attach it
//! At app, group or route level, like any middleware. An automatic `OPTIONS` answer runs
//! inside the middleware of the path's *first* route (not its guards), so a preflight meets
//! [`Cors`] when it is on the app, on a group around the path, or on the path's first route.
//!
//! # `*` and credentials
//! With [`allow_any_origin`](Cors::allow_any_origin) the answer is `Access-Control-Allow-Origin: *`,
//! which browsers refuse for credentialed requests; combining it with
//! [`allow_credentials(true)`](Cors::allow_credentials) is a bug, and the builder panics at
//! start-up, naming it (the middleware is built before the app is, never at a request). To
//! allow credentials from many origins, list them or use a predicate
//! ([`allow_origin_fn`](Cors::allow_origin_fn)): the request's origin is then echoed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderName,
    HeaderValue, ORIGIN, VARY,
};
use http::{Method, StatusCode};

use crate::Request;
use crate::error::{Error, HttpError};
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;
use crate::response::Response;

/// A predicate over origins (`https://app.example.com`).
type OriginPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which origins are allowed.
#[derive(Clone)]
enum AllowOrigin {
    /// Exactly these (compared ASCII case-insensitively).
    List(Vec<String>),
    /// Those the predicate accepts.
    Predicate(OriginPredicate),
    /// Every origin: answered `*`.
    Any,
}

/// Which request headers a preflight may ask for.
#[derive(Clone)]
enum AllowHeaders {
    /// These (lowercase names).
    List(Vec<HeaderName>),
    /// Any: the requested ones are echoed.
    Any,
}

/// The CORS middleware (see the [module docs](self)): a builder whose defaults allow no
/// origin, the methods `GET`, `HEAD` and `POST`, no extra request header, no credentials, no
/// exposed header and no `Max-Age` (the browser's own default, 5 seconds).
#[derive(Clone)]
pub struct Cors {
    origins: AllowOrigin,
    methods: Vec<Method>,
    headers: AllowHeaders,
    credentials: bool,
    max_age: Option<Duration>,
    expose: Vec<HeaderName>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors::new()
    }
}

impl fmt::Debug for Cors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = match &self.origins {
            AllowOrigin::List(list) => format!("{list:?}"),
            AllowOrigin::Predicate(_) => "(predicate)".to_owned(),
            AllowOrigin::Any => "*".to_owned(),
        };
        f.debug_struct("Cors")
            .field("origins", &origins)
            .field("methods", &self.methods)
            .field("credentials", &self.credentials)
            .field("max_age", &self.max_age)
            .field("expose", &self.expose)
            .finish_non_exhaustive()
    }
}

const ANY_WITH_CREDENTIALS: &str = "Cors: `Access-Control-Allow-Origin: *` is refused by browsers for credentialed requests; list the origins (allow_origins) or use allow_origin_fn with allow_credentials(true)";

impl Cors {
    /// A CORS policy allowing nothing yet: add origins with [`allow_origins`](Self::allow_origins),
    /// [`allow_origin_fn`](Self::allow_origin_fn) or [`allow_any_origin`](Self::allow_any_origin).
    pub fn new() -> Self {
        Cors {
            origins: AllowOrigin::List(Vec::new()),
            methods: vec![Method::GET, Method::HEAD, Method::POST],
            headers: AllowHeaders::List(Vec::new()),
            credentials: false,
            max_age: None,
            expose: Vec::new(),
        }
    }

    /// Allows one more origin, exactly (`scheme://host[:port]`, no path; a trailing `/` is
    /// ignored, and the comparison is ASCII case-insensitive).
    pub fn allow_origin(self, origin: impl Into<String>) -> Self {
        self.allow_origins([origin])
    }

    /// Allows these origins, exactly (see [`allow_origin`](Self::allow_origin)); replaces a
    /// predicate or "any" set before.
    pub fn allow_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list = match self.origins {
            AllowOrigin::List(list) => list,
            _ => Vec::new(),
        };
        for origin in origins {
            let origin = origin.into();
            list.push(origin.trim_end_matches('/').to_ascii_lowercase());
        }
        self.origins = AllowOrigin::List(list);
        self
    }

    /// Allows the origins `predicate` accepts (given the request's `Origin` as sent, which
    /// may be anything, `null` included): `|o| o.ends_with(".example.com")`. Mind the dot:
    /// `ends_with("example.com")` would also accept `https://evil-example.com`.
    pub fn allow_origin_fn(
        mut self,
        predicate: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.origins = AllowOrigin::Predicate(Arc::new(predicate));
        self
    }

    /// Allows every origin, answering `Access-Control-Allow-Origin: *`: for public, read-only
    /// APIs. Panics if credentials are allowed (see the [module docs](self)).
    pub fn allow_any_origin(mut self) -> Self {
        assert!(!self.credentials, "{ANY_WITH_CREDENTIALS}");
        self.origins = AllowOrigin::Any;
        self
    }

    /// The methods cross-origin requests may use (replacing the default `GET, HEAD, POST`).
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The request headers cross-origin requests may send beyond the CORS-safelisted ones
    /// (`content-type` with a JSON body is one of them). Panics on a name that is not a
    /// valid header name: a typo found at start-up.
    pub fn allow_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.headers = AllowHeaders::List(header_names(headers));
        self
    }

    /// Allows any request header: a preflight's requested headers are echoed (not `*`, which
    /// browsers ignore on credentialed requests).
    pub fn allow_any_header(mut self) -> Self {
        self.headers = AllowHeaders::Any;
        self
    }

    /// Whether cross-origin requests may carry credentials (cookies, HTTP authentication):
    /// `Access-Control-Allow-Credentials: true`. Panics with [`allow_any_origin`](Self::allow_any_origin).
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        assert!(
            !(allow && matches!(self.origins, AllowOrigin::Any)),
            "{ANY_WITH_CREDENTIALS}"
        );
        self.credentials = allow;
        self
    }

    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`, in whole
    /// seconds; browsers cap it, Chromium at 2 hours).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Response headers a cross-origin page may read beyond the CORS-safelisted ones
    /// (`Access-Control-Expose-Headers`). Panics on an invalid header name.
    pub fn expose_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.expose = header_names(headers);
        self
    }

    /// Whether `origin` (an `Origin` header's value, any bytes) is allowed. Never panics.
    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            AllowOrigin::Any => true,
            AllowOrigin::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            AllowOrigin::Predicate(predicate) => predicate(origin),
        }
    }

    /// Whether `method` is allowed.
    fn is_method_allowed(&self, method: &[u8]) -> bool {
        self.methods.iter().any(|m| m.as_str().as_bytes() == method)
    }

    /// The `Access-Control-Allow-Origin` and `-Credentials` headers for an allowed `origin`.
    fn allow_origin_headers(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        let value = match self.origins {
            AllowOrigin::Any => HeaderValue::from_static("*"),
            _ => origin.clone(),
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Answers a preflight: `204` with the policy, or the refusal.
    fn preflight(&self, request: &Request, origin: Option<&str>) -> Outcome {
        let headers = request.headers();
        let refuse = |refusal: CorsRefusal| {
            let mut error = Error::http(refusal);
            error.set_header(VARY, HeaderValue::from_static(VARY_PREFLIGHT));
            Err(error)
        };
        let Some(origin) = origin.filter(|origin| self.is_origin_allowed(origin)) else {
            return refuse(CorsRefusal::Origin);
        };
        let method = headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !self.is_method_allowed(method) {
            return refuse(CorsRefusal::Method);
        }
        let requested = requested_headers(headers);
        if let AllowHeaders::List(allowed) = &self.headers {
            if let Some(name) = requested.iter().find(|name| {
                !allowed
                    .iter()
                    .any(|a| a.as_str().eq_ignore_ascii_case(name))
            }) {
                return refuse(CorsRefusal::Header((*name).to_owned()));
            }
        }
        let mut response = Response::new(crate::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        // The origin passed `is_origin_allowed` as text, so it is a valid header value.
        if let Ok(origin) = HeaderValue::from_str(origin) {
            self.allow_origin_headers(&origin, out);
        }
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        let allow_headers = match &self.headers {
            AllowHeaders::Any => requested.join(", "),
            AllowHeaders::List(list) => list
                .iter()
                .map(HeaderName::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        };
        if !allow_headers.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&allow_headers) {
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
            }
        }
        if let Some(max_age) = self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age.as_secs()));
        }
        out.insert(VARY, HeaderValue::from_static(VARY_PREFLIGHT));
        Ok(response)
    }
}

/// The `Vary` of a preflight's answer.
const VARY_PREFLIGHT: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The names of `headers`, validated (a panic names the bad one: a bug found at start-up).
fn header_names<I, S>(headers: I) -> Vec<HeaderName>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    headers
        .into_iter()
        .map(|name| {
            let name = name.as_ref();
            HeaderName::from_bytes(name.trim().as_bytes())
                .unwrap_or_else(|_| panic!("Cors: {name:?} is not a valid header name"))
        })
        .collect()
}

/// The header names a preflight asks for (`Access-Control-Request-Headers`, comma-separated,
/// possibly over several lines), lowercase as browsers send them, empty items skipped.
fn requested_headers(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

/// Adds `token` to the response's `Vary`, unless it is already there (or `Vary: *`).
pub(crate) fn add_vary(headers: &mut HeaderMap, token: &'static str) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|item| item == "*" || item.eq_ignore_ascii_case(token));
    if !present {
        headers.append(VARY, HeaderValue::from_static(token));
    }
}

/// Why a preflight was refused: `403` problem+json, with no CORS header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorsRefusal {
    /// The `Origin` is not allowed (or is missing): code `cors.origin`.
    Origin,
    /// The `Access-Control-Request-Method` is not allowed: code `cors.method`.
    Method,
    /// This requested header is not allowed: code `cors.header`.
    Header(String),
}

impl fmt::Display for CorsRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorsRefusal::Origin => f.write_str("this origin may not make cross-origin requests"),
            CorsRefusal::Method => {
                f.write_str("this method is not allowed for cross-origin requests")
            }
            CorsRefusal::Header(name) => {
                write!(
                    f,
                    "the header {name:?} is not allowed for cross-origin requests"
                )
            }
        }
    }
}

impl std::error::Error for CorsRefusal {}

impl HttpError for CorsRefusal {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn problem(&self) -> Problem {
        let code = match self {
            CorsRefusal::Origin => "cors.origin",
            CorsRefusal::Method => "cors.method",
            CorsRefusal::Header(_) => "cors.header",
        };
        Problem::new(self.status())
            .with_code(code)
            .with_detail(self.to_string())
    }
}

impl Middleware for Cors {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let origin = request.headers().get(ORIGIN).cloned();
        let is_preflight = request.method() == Method::OPTIONS
            && origin.is_some()
            && request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            let text = origin.as_ref().and_then(|o| o.to_str().ok());
            return self.preflight(&request, text);
        }
        let allowed = origin.as_ref().is_some_and(|origin| {
            origin
                .to_str()
                .is_ok_and(|text| self.is_origin_allowed(text))
                && self.is_method_allowed(request.method().as_str().as_bytes())
        });
        let mut response = next.run(request).await;
        let headers = response.headers_mut();
        if let (true, Some(origin)) = (allowed, origin) {
            self.allow_origin_headers(&origin, headers);
            if !self.expose.is_empty() {
                let names: Vec<&str> = self.expose.iter().map(HeaderName::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
                    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value);
                }
            }
        }
        add_vary(headers, "Origin");
        Ok(response)
    }
}
