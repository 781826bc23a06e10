//! The router: a radix tree (`matchit`) from path patterns to each path's methods, with the
//! trailing-slash policy applied before matching, automatic `HEAD` and `OPTIONS`, and `405`
//! with `Allow`. Matching costs the same whatever the number of routes.

use std::sync::Arc;

use http::header::{ALLOW, HeaderValue};
use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;

use crate::extract::PathParams;
use crate::pipeline::Chain;
use crate::services::BuildError;

/// What to do with a path that matches a route only with (or without) a trailing slash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrailingSlash {
    /// Answer `308 Permanent Redirect` to the route's form, query kept (the default).
    #[default]
    Redirect,
    /// Answer `404`: `/users/` and `/users` are different paths.
    Strict,
}

/// One path pattern's routes.
pub(crate) struct PathEntry {
    pub(crate) pattern: Arc<str>,
    pub(crate) methods: Vec<(Method, Arc<Chain>)>,
    /// Answers methods not routed here: `405` with `Allow` (or the route for every method).
    pub(crate) other: Arc<Chain>,
    /// Answers `OPTIONS` when no route does: `204` with `Allow`.
    pub(crate) options: Arc<Chain>,
    /// The handler of the route answering any method, if there is one (introspection).
    pub(crate) any_handler: Option<&'static str>,
}

/// Where a request goes.
pub(crate) enum Lookup<'a> {
    /// A route (or a path's automatic answers), with the captured parameters.
    Route(&'a Arc<Chain>, PathParams),
    /// The path matches with the other trailing-slash form: redirect there.
    Redirect(String),
    /// No route.
    NotFound,
}

/// The built router.
#[derive(Default)]
pub(crate) struct Router {
    tree: matchit::Router<usize>,
    entries: Vec<PathEntry>,
    trailing_slash: TrailingSlash,
}

impl Router {
    pub(crate) fn new(trailing_slash: TrailingSlash) -> Self {
        Router {
            tree: matchit::Router::new(),
            entries: Vec::new(),
            trailing_slash,
        }
    }

    /// Adds a path's routes; refused when the pattern is malformed or conflicts.
    pub(crate) fn insert(&mut self, entry: PathEntry) -> Result<(), BuildError> {
        let pattern = entry.pattern.to_string();
        match self.tree.insert(pattern.clone(), self.entries.len()) {
            Ok(()) => {
                self.entries.push(entry);
                Ok(())
            }
            Err(matchit::InsertError::Conflict { with }) => Err(BuildError::RouteConflict {
                route: pattern,
                existing: with,
                reason: "both patterns match the same paths".to_owned(),
            }),
            Err(other) => Err(BuildError::InvalidRoute {
                route: pattern,
                reason: other.to_string(),
            }),
        }
    }

    /// The route for `method` and `path`; `websocket` tells an HTTP/2 extended CONNECT for a
    /// WebSocket, which GET routes answer.
    pub(crate) fn find(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        websocket: bool,
    ) -> Lookup<'_> {
        if let Ok(matched) = self.tree.at(path) {
            let entry = &self.entries[*matched.value];
            let params = PathParams(
                matched
                    .params
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.to_owned(),
                            percent_decode_str(value).decode_utf8_lossy().into_owned(),
                        )
                    })
                    .collect(),
                Some(Arc::clone(&entry.pattern)),
            );
            return Lookup::Route(entry.chain_for(method, websocket), params);
        }
        if self.trailing_slash == TrailingSlash::Redirect && path.len() > 1 {
            let other = match path.strip_suffix('/') {
                Some(stripped) => stripped.to_owned(),
                None => format!("{path}/"),
            };
            if self.tree.at(&other).is_ok() {
                return Lookup::Redirect(match query {
                    Some(query) => format!("{other}?{query}"),
                    None => other,
                });
            }
        }
        Lookup::NotFound
    }

    /// Every path's routes, for introspection.
    pub(crate) fn entries(&self) -> &[PathEntry] {
        &self.entries
    }
}

impl PathEntry {
    fn chain_for(&self, method: &Method, websocket: bool) -> &Arc<Chain> {
        let routed = |wanted: &Method| {
            self.methods
                .iter()
                .find(|(m, _)| m == wanted)
                .map(|(_, chain)| chain)
        };
        if let Some(chain) = routed(method) {
            return chain;
        }
        // HEAD is answered by the GET route; so is an RFC 8441 WebSocket (extended CONNECT
        // with `:protocol websocket` over HTTP/2), so that one `get` route with a
        // `WebSocketUpgrade` serves WebSockets over both protocols.
        if method == Method::HEAD || method == Method::CONNECT && websocket {
            if let Some(chain) = routed(&Method::GET) {
                return chain;
            }
        }
        if method == Method::OPTIONS {
            return &self.options;
        }
        &self.other
    }
}

/// The `Allow` header for a path's methods: `HEAD` with `GET`, and `OPTIONS` always.
pub(crate) fn allow_header(methods: &[Method]) -> HeaderValue {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
        names.push("HEAD");
    }
    if !methods.contains(&Method::OPTIONS) {
        names.push("OPTIONS");
    }
    names.sort_unstable();
    names.dedup();
    HeaderValue::from_str(&names.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("OPTIONS"))
}

/// The `405` answer with `Allow`.
pub(crate) fn method_not_allowed(allow: HeaderValue) -> crate::Error {
    let mut error = crate::Error::from_problem(
        crate::Problem::new(StatusCode::METHOD_NOT_ALLOWED)
            .with_code("route.method_not_allowed")
            .with_detail(format!(
                "this path answers {}",
                allow.to_str().unwrap_or_default()
            )),
    );
    error.set_header(ALLOW, allow);
    error
}
