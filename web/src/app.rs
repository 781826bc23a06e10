//! [`App`]: routes, groups, the layers around them, services and settings, built once
//! ([`App::build`]) into an [`AppService`] that any weft runtime (or a user's own loop)
//! serves, or served directly ([`App::serve`]).
//!
//! # What runs for a request, in order
//! 1. the router picks the route (trailing-slash policy first; `404`, `405` with `Allow`,
//!    automatic `HEAD` and `OPTIONS` otherwise);
//! 2. middleware: the app's, then each enclosing group's (outermost first), then the route's,
//!    each in the order added;
//! 3. guards, in the same order (app, groups, route);
//! 4. interceptors, in the same order, around:
//! 5. pipes (app, groups, route), then the handler's extractors and the handler.
//!
//! An error anywhere in 2–5 goes to the exception filters, the route's first, then the
//! groups' from the innermost out, then the app's; the default renders problem+json.

use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use http::header::{HeaderValue, LOCATION};
use http::{Method, StatusCode};
use weft_core::h1::{ErrorPage, ErrorPages};
use weft_runtime::{Runtime, ServerConfig, ServerHandle};

use weft_service::service::Service;

use crate::Request;
use crate::error::Error;
use crate::extract::{BodyLimits, Needs};
use crate::filter::ExceptionFilter;
use crate::guard::{DynGuard, Guard};
use crate::handler::{BoxedHandler, Endpoint, Handler};
use crate::interceptor::{DynInterceptor, Interceptor};
use crate::middleware::{DynMiddleware, Middleware};
use crate::pipe::{Input, Pipe};
use crate::pipeline::Chain;
use crate::problem::{ErrorFormat, Problem};
use crate::response::{IntoResponse, Response};
use crate::router::{self, Lookup, PathEntry, Router, TrailingSlash};
use crate::services::{
    AppContext, AppShared, BuildError, Built, Factory, Provider, ScopedFactories, ScopedFactory,
    Services,
};

/// The layers attached at one level (app, group or route).
#[derive(Default, Clone)]
struct Layers {
    middlewares: Vec<Arc<dyn DynMiddleware>>,
    guards: Vec<Arc<dyn DynGuard>>,
    interceptors: Vec<Arc<dyn DynInterceptor>>,
    pipes: Vec<(Input, Arc<dyn Pipe>)>,
    filters: Vec<Arc<dyn ExceptionFilter>>,
    format: Option<ErrorFormat>,
}

/// The builder methods every level shares: middleware, guards, interceptors, pipes, filters
/// and the error format.
macro_rules! layer_methods {
    ($($layers:ident).+) => {
        /// Adds a middleware at this level (see the order in [`crate::app`]).
        pub fn middleware(mut self, middleware: impl Middleware) -> Self {
            self.$($layers).+.middlewares.push(Arc::new(middleware));
            self
        }

        /// Adds a guard at this level.
        pub fn guard(mut self, guard: impl Guard) -> Self {
            self.$($layers).+.guards.push(Arc::new(guard));
            self
        }

        /// Adds an interceptor at this level.
        pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
            self.$($layers).+.interceptors.push(Arc::new(interceptor));
            self
        }

        /// Adds a pipe on one input at this level.
        pub fn pipe(mut self, input: Input, pipe: impl Pipe) -> Self {
            self.$($layers).+.pipes.push((input, Arc::new(pipe)));
            self
        }

        /// Adds an exception filter at this level.
        pub fn filter(mut self, filter: impl ExceptionFilter) -> Self {
            self.$($layers).+.filters.push(Arc::new(filter));
            self
        }

        /// Renders errors at this level (and below, unless set again) in `format`.
        pub fn error_format(mut self, format: ErrorFormat) -> Self {
            self.$($layers).+.format = Some(format);
            self
        }
    };
}

/// The route-adding methods the app and groups share.
macro_rules! route_methods {
    () => {
        /// A `GET` route (it answers `HEAD` too).
        pub fn get<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::new(Method::GET, path, handler))
        }

        /// A `POST` route.
        pub fn post<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::new(Method::POST, path, handler))
        }

        /// A `PUT` route.
        pub fn put<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::new(Method::PUT, path, handler))
        }

        /// A `PATCH` route.
        pub fn patch<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::new(Method::PATCH, path, handler))
        }

        /// A `DELETE` route.
        pub fn delete<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::new(Method::DELETE, path, handler))
        }

        /// A route for `method`.
        pub fn route<H: Handler<A>, A: 'static>(
            self,
            method: Method,
            path: &str,
            handler: H,
        ) -> Self {
            self.add_route(Route::new(method, path, handler))
        }

        /// A route for every method the path has no other route for.
        pub fn any<H: Handler<A>, A: 'static>(self, path: &str, handler: H) -> Self {
            self.add_route(Route::any(path, handler))
        }

        /// A route whose handler is an [`Endpoint`] (a type with state of its own).
        pub fn endpoint(self, method: Method, path: &str, endpoint: impl Endpoint) -> Self {
            self.add_route(Route::endpoint(method, path, endpoint))
        }

        /// A group of routes under `prefix`, with layers of its own:
        /// `.group("/api", |api| api.middleware(auth).get("/me", me))`.
        pub fn group(self, prefix: &str, build: impl FnOnce(Group) -> Group) -> Self {
            self.nest(build(Group::new(prefix)))
        }
    };
}

/// A route: a method (or any), a path pattern, a handler and its own layers.
///
/// `Route::get("/admin", handler).guard(roles(["admin"]))` attaches layers to one route;
/// add it with [`App::add_route`].
pub struct Route {
    method: Option<Method>,
    path: String,
    handler: BoxedHandler,
    layers: Layers,
}

impl Route {
    /// A route for `method` at `path` (`/users/{id}`, `/files/{*path}`).
    pub fn new<H: Handler<A>, A: 'static>(method: Method, path: &str, handler: H) -> Self {
        Route {
            method: Some(method),
            path: path.to_owned(),
            handler: BoxedHandler::from_handler(handler),
            layers: Layers::default(),
        }
    }

    /// A route answering every method that has no route of its own at `path`.
    pub fn any<H: Handler<A>, A: 'static>(path: &str, handler: H) -> Self {
        Route {
            method: None,
            ..Route::new(Method::GET, path, handler)
        }
    }

    /// A `GET` route.
    pub fn get<H: Handler<A>, A: 'static>(path: &str, handler: H) -> Self {
        Route::new(Method::GET, path, handler)
    }

    /// A `POST` route.
    pub fn post<H: Handler<A>, A: 'static>(path: &str, handler: H) -> Self {
        Route::new(Method::POST, path, handler)
    }

    /// A route whose handler is an [`Endpoint`].
    pub fn endpoint(method: Method, path: &str, endpoint: impl Endpoint) -> Self {
        Route {
            method: Some(method),
            path: path.to_owned(),
            handler: BoxedHandler::from_endpoint(endpoint),
            layers: Layers::default(),
        }
    }

    layer_methods!(layers);
}

/// Routes under a common prefix, sharing layers.
pub struct Group {
    prefix: String,
    layers: Layers,
    routes: Vec<Route>,
    groups: Vec<Group>,
    /// Static file mounts whose root cannot be served: reported by [`App::build`].
    static_errors: Vec<(String, String)>,
}

impl Group {
    /// An empty group under `prefix` (`""` for none).
    pub fn new(prefix: &str) -> Self {
        Group {
            prefix: prefix.trim_end_matches('/').to_owned(),
            layers: Layers::default(),
            routes: Vec::new(),
            groups: Vec::new(),
            static_errors: Vec::new(),
        }
    }

    /// Serves the directory of `files` under `prefix` (`GET` and `HEAD`; see
    /// [`crate::static_files`]).
    pub fn static_files(self, prefix: &str, files: crate::static_files::StaticFiles) -> Self {
        files.mount(self, prefix)
    }

    /// Records that the static files mounted at `prefix` have an unusable root.
    pub(crate) fn static_root_error(mut self, prefix: &str, reason: String) -> Self {
        let route = format!("{}{prefix}", self.prefix);
        self.static_errors.push((route, reason));
        self
    }

    /// The first unusable static files root in this group or below.
    fn first_static_error(&self) -> Option<&(String, String)> {
        self.static_errors
            .first()
            .or_else(|| self.groups.iter().find_map(Group::first_static_error))
    }

    /// Adds a route with its own layers.
    pub fn add_route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a group inside this one.
    pub fn nest(mut self, group: Group) -> Self {
        self.groups.push(group);
        self
    }

    layer_methods!(layers);
    route_methods!();
}

/// The application: routes, groups, layers, services and settings.
///
/// ```
/// use weft::prelude::*;
///
/// async fn user(Path(id): Path<u64>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "id": id }))
/// }
///
/// let app = App::new()
///     .get("/users/{id}", user)
///     .group("/admin", |admin| admin.guard(weft::guard::roles(["admin"])).get("/stats", || async { "ok" }));
/// let service = app.build().expect("a valid app");
/// # let _ = service;
/// ```
pub struct App {
    root: Group,
    pub(crate) providers: Vec<Provider>,
    scoped: HashMap<TypeId, (ScopedFactory, &'static str)>,
    trailing_slash: TrailingSlash,
    body_limits: BodyLimits,
    fallback: Option<BoxedHandler>,
    pub(crate) background: crate::background::BackgroundSet,
    /// One value per type that the framework's modules keep on the app while it is built
    /// (its scheduler, its event emitter): see [`App::part`].
    parts: http::Extensions,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An empty app.
    pub fn new() -> Self {
        App {
            root: Group::new(""),
            providers: Vec::new(),
            scoped: HashMap::new(),
            trailing_slash: TrailingSlash::default(),
            body_limits: BodyLimits::default(),
            fallback: None,
            background: crate::background::BackgroundSet::default(),
            parts: http::Extensions::new(),
        }
    }

    /// The app's one value of type `T`, made by `make` on first use (which may register it,
    /// as a service or a background component). Lets a module (the scheduler, the events)
    /// keep its own state on the app without the app naming it.
    pub(crate) fn part<T: Clone + Send + Sync + 'static>(
        &mut self,
        make: impl FnOnce(&mut App) -> T,
    ) -> T {
        if let Some(part) = self.parts.get::<T>() {
            return part.clone();
        }
        let part = make(self);
        self.parts.insert(part.clone());
        part
    }

    /// Runs `component` in the background of the served app: started once the server
    /// listens, stopped when it drains, its running work waited for up to the drain deadline
    /// (see [`crate::background`]).
    pub fn background(mut self, component: impl crate::background::Background) -> Self {
        self.background.push(Arc::new(component));
        self
    }

    /// Adds a route with its own layers.
    pub fn add_route(mut self, route: Route) -> Self {
        self.root = self.root.add_route(route);
        self
    }

    /// Adds a group.
    pub fn nest(mut self, group: Group) -> Self {
        self.root = self.root.nest(group);
        self
    }

    /// Serves the directory of `files` under `prefix` (`GET` and `HEAD`, through the router
    /// like any route; see [`crate::static_files`]). An unusable root fails [`App::build`].
    pub fn static_files(mut self, prefix: &str, files: crate::static_files::StaticFiles) -> Self {
        self.root = self.root.static_files(prefix, files);
        self
    }

    layer_methods!(root.layers);
    route_methods!();

    /// Registers shared state: a value handlers take as [`State<T>`](crate::services::State)
    /// or [`Inject<T>`](crate::services::Inject).
    pub fn state<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.provide(Provider::value(value))
    }

    /// Registers a singleton built once, at start-up, by `factory`, whose arguments
    /// ([`Inject<T>`](crate::services::Inject)) are the services it needs.
    pub fn singleton<T, Args, F>(self, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Factory<Args, Output = T>,
    {
        self.provide(Provider::singleton(factory))
    }

    /// Registers a singleton with lifecycle hooks, or a fallible one ([`Provider`]).
    pub fn provide(mut self, provider: Provider) -> Self {
        self.providers.push(provider);
        self
    }

    /// Registers a per-request service: built on first use in a request, from its head and
    /// the app's services, and shared by that request's extractors
    /// ([`Scoped<T>`](crate::services::Scoped)).
    pub fn scoped<T, F>(mut self, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(&http::request::Parts, &Services) -> Result<T, Error> + Send + Sync + 'static,
    {
        let erased: ScopedFactory = Arc::new(move |parts, services| {
            factory(parts, services).map(|value| Arc::new(value) as _)
        });
        self.scoped.insert(
            TypeId::of::<crate::services::ScopedMarker<T>>(),
            (erased, std::any::type_name::<T>()),
        );
        self
    }

    /// What to do with a path that matches only with the other trailing-slash form.
    pub fn trailing_slash(mut self, policy: TrailingSlash) -> Self {
        self.trailing_slash = policy;
        self
    }

    /// The body size limits of the extractors.
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.body_limits = limits;
        self
    }

    /// The handler for paths no route matches (by default: `404` problem+json). It runs
    /// inside the app's layers.
    pub fn fallback<H: Handler<A>, A: 'static>(mut self, handler: H) -> Self {
        self.fallback = Some(BoxedHandler::from_handler(handler));
        self
    }

    /// Checks and builds the app: orders and builds the singletons, checks that every
    /// handler's needs are registered, and builds the router. Every misconfiguration fails
    /// here, naming both sides.
    pub fn build(self) -> Result<AppService, BuildError> {
        if let Some((route, reason)) = self.root.first_static_error() {
            return Err(BuildError::InvalidRoute {
                route: route.clone(),
                reason: reason.clone(),
            });
        }
        let Built {
            services,
            lifecycle,
        } = crate::services::build(self.providers)?;
        let scoped_ids: HashMap<TypeId, &'static str> = self
            .scoped
            .iter()
            .map(|(id, (_, name))| (*id, *name))
            .collect();
        let mut flat = Vec::new();
        flatten(&self.root, "", &[], &mut flat);
        let root_layers = self.root.layers.clone();
        for route in &flat {
            check_needs(route, &services, &scoped_ids)?;
        }
        if let Some(fallback) = &self.fallback {
            let pseudo = FlatRoute {
                method: None,
                path: "(fallback)".to_owned(),
                handler: fallback.clone(),
                stack: vec![root_layers.clone()],
            };
            check_needs(&pseudo, &services, &scoped_ids)?;
        }
        let router = build_router(flat, self.trailing_slash)?;
        let not_found_handler = self
            .fallback
            .unwrap_or_else(|| BoxedHandler::from_handler(not_found));
        let not_found = Arc::new(chain(
            std::slice::from_ref(&root_layers),
            not_found_handler,
            None,
            true,
        ));
        let redirect = Arc::new(chain(
            &[root_layers],
            BoxedHandler::from_handler(trailing_slash_redirect),
            None,
            false,
        ));
        Ok(AppService {
            inner: Arc::new(AppInner {
                router,
                context: AppContext(Arc::new(AppShared {
                    services: services.clone(),
                    scoped: ScopedFactories(Arc::new(
                        self.scoped
                            .into_iter()
                            .map(|(id, (f, _))| (id, f))
                            .collect(),
                    )),
                    body_limits: self.body_limits,
                    phase: std::sync::atomic::AtomicU8::new(AppPhase::Starting as u8),
                })),
                services,
                not_found,
                redirect,
                lifecycle: Mutex::new(Lifecycle {
                    entries: lifecycle,
                    started: 0,
                }),
                background: self.background,
            }),
        })
    }

    /// Builds the app and serves it on `address` until the process gets SIGINT or SIGTERM,
    /// on the runtime the `rt-*` features chose; see [`AppService::listen`] for more control.
    pub fn serve(self, address: impl ToSocketAddrs) -> Result<(), ServeError> {
        let addresses: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        let mut config = ServerConfig::new(addresses);
        config.handle_signals = true;
        let server = self.build()?.listen(config)?;
        for address in server.local_addrs() {
            tracing::info!(%address, "listening");
        }
        server.join()?;
        Ok(())
    }

    /// Builds the app and serves it with `config`, returning once it listens.
    pub fn listen(self, config: ServerConfig) -> Result<AppServer, ServeError> {
        self.build()?.listen(config)
    }
}

/// Why serving failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The app is misconfigured.
    Build(BuildError),
    /// A service's start hook failed.
    Start(BuildError),
    /// Listening or serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Build(error) | ServeError::Start(error) => error.fmt(f),
            ServeError::Io(error) => write!(f, "serving failed: {error}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<BuildError> for ServeError {
    fn from(error: BuildError) -> Self {
        ServeError::Build(error)
    }
}

impl From<std::io::Error> for ServeError {
    fn from(error: std::io::Error) -> Self {
        ServeError::Io(error)
    }
}

async fn not_found(uri: http::Uri) -> Error {
    Error::from_problem(
        Problem::new(StatusCode::NOT_FOUND)
            .with_code("route.not_found")
            .with_detail(format!("no route matches `{}`", uri.path())),
    )
}

/// Where a trailing-slash redirect goes, for the redirect chain's handler.
#[derive(Clone)]
struct RedirectTarget(String);

async fn trailing_slash_redirect(target: crate::extract::Extension<RedirectTarget>) -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(&target.0.0) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// A route with the layers of every level above it, outermost first.
struct FlatRoute {
    method: Option<Method>,
    path: String,
    handler: BoxedHandler,
    stack: Vec<Layers>,
}

fn flatten(group: &Group, prefix: &str, above: &[Layers], out: &mut Vec<FlatRoute>) {
    let prefix = format!("{prefix}{}", group.prefix);
    let mut stack = above.to_vec();
    stack.push(group.layers.clone());
    for route in &group.routes {
        let mut route_stack = stack.clone();
        route_stack.push(route.layers.clone());
        let path = match (prefix.as_str(), route.path.as_str()) {
            ("", path) => path.to_owned(),
            (prefix, "/" | "") => prefix.to_owned(),
            (prefix, path) => format!("{prefix}{path}"),
        };
        out.push(FlatRoute {
            method: route.method.clone(),
            path,
            handler: route.handler.clone(),
            stack: route_stack,
        });
    }
    for inner in &group.groups {
        flatten(inner, &prefix, &stack, out);
    }
}

fn describe(method: &Option<Method>, path: &str) -> String {
    match method {
        Some(method) => format!("{method} {path}"),
        None => format!("ANY {path}"),
    }
}

fn check_needs(
    route: &FlatRoute,
    services: &Services,
    scoped: &HashMap<TypeId, &'static str>,
) -> Result<(), BuildError> {
    let mut needs = Needs::default();
    needs.extend(&route.handler.needs);
    for need in needs.iter() {
        if !services.contains(need.type_id) && !scoped.contains_key(&need.type_id) {
            return Err(BuildError::MissingForRoute {
                route: describe(&route.method, &route.path),
                handler: route.handler.name,
                missing: need.type_name,
                hint: need.hint,
            });
        }
    }
    Ok(())
}

/// Flattens a stack of layers into a route's chain.
fn chain(
    stack: &[Layers],
    handler: BoxedHandler,
    route: Option<Arc<str>>,
    endpoint_layers: bool,
) -> Chain {
    let mut built = Chain {
        middlewares: Vec::new(),
        guards: Vec::new(),
        interceptors: Vec::new(),
        pipes: Vec::new(),
        handler,
        filters: Vec::new(),
        format: ErrorFormat::default(),
        route,
    };
    for layers in stack {
        built.middlewares.extend(layers.middlewares.iter().cloned());
        if endpoint_layers {
            built.guards.extend(layers.guards.iter().cloned());
            built
                .interceptors
                .extend(layers.interceptors.iter().cloned());
            built.pipes.extend(layers.pipes.iter().cloned());
        }
        if let Some(format) = layers.format {
            built.format = format;
        }
    }
    for layers in stack.iter().rev() {
        built.filters.extend(layers.filters.iter().cloned());
    }
    built
}

fn build_router(routes: Vec<FlatRoute>, policy: TrailingSlash) -> Result<Router, BuildError> {
    // Routes by path, in the order first seen.
    let mut by_path: Vec<(String, Vec<FlatRoute>)> = Vec::new();
    for route in routes {
        match by_path.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, same)) => {
                if let Some(existing) = same.iter().find(|r| r.method == route.method) {
                    return Err(BuildError::RouteConflict {
                        route: format!(
                            "{} ({})",
                            describe(&route.method, &route.path),
                            route.handler.name
                        ),
                        existing: format!(
                            "{} ({})",
                            describe(&existing.method, &existing.path),
                            existing.handler.name
                        ),
                        reason: "the same method and path are routed twice".to_owned(),
                    });
                }
                same.push(route);
            }
            None => by_path.push((route.path.clone(), vec![route])),
        }
    }
    let mut router = Router::new(policy);
    for (path, routes) in by_path {
        let pattern: Arc<str> = Arc::from(path.as_str());
        let methods: Vec<Method> = routes.iter().filter_map(|r| r.method.clone()).collect();
        let allow = router::allow_header(&methods);
        // Automatic answers run inside the first route's middleware (so that a CORS layer
        // sees preflights), without its guards.
        let outer = &routes[0].stack;
        let any = routes.iter().find(|r| r.method.is_none());
        let other = match any {
            Some(route) => chain(
                &route.stack,
                route.handler.clone(),
                Some(pattern.clone()),
                true,
            ),
            None => {
                let allow = allow.clone();
                chain(
                    outer,
                    BoxedHandler::from_handler(move || {
                        let allow = allow.clone();
                        async move { router::method_not_allowed(allow) }
                    }),
                    Some(pattern.clone()),
                    false,
                )
            }
        };
        let options = {
            let allow = allow.clone();
            chain(
                outer,
                BoxedHandler::from_handler(move || {
                    let allow = allow.clone();
                    async move {
                        let mut response = StatusCode::NO_CONTENT.into_response();
                        response.headers_mut().insert(http::header::ALLOW, allow);
                        response
                    }
                }),
                Some(pattern.clone()),
                false,
            )
        };
        let methods = routes
            .iter()
            .filter_map(|route| {
                let method = route.method.clone()?;
                Some((
                    method,
                    Arc::new(chain(
                        &route.stack,
                        route.handler.clone(),
                        Some(pattern.clone()),
                        true,
                    )),
                ))
            })
            .collect();
        router.insert(PathEntry {
            pattern: pattern.clone(),
            methods,
            other: Arc::new(other),
            options: Arc::new(options),
            any_handler: any.map(|route| route.handler.name),
        })?;
    }
    Ok(router)
}

struct Lifecycle {
    entries: Vec<crate::services::Managed>,
    /// How many entries' start hooks ran (and so need their stop hooks).
    started: usize,
}

struct AppInner {
    router: Router,
    services: Services,
    context: AppContext,
    not_found: Arc<Chain>,
    redirect: Arc<Chain>,
    lifecycle: Mutex<Lifecycle>,
    background: crate::background::BackgroundSet,
}

/// A built app: a [`Service`] any weft runtime serves, and the app's services and routes.
#[derive(Clone)]
pub struct AppService {
    inner: Arc<AppInner>,
}

/// One route, for introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The method, or `None` for a route answering any method.
    pub method: Option<Method>,
    /// The full path pattern.
    pub path: String,
    /// The handler's type name.
    pub handler: &'static str,
}

/// A route that another takes some paths from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    /// The pattern that loses some paths.
    pub route: String,
    /// The more specific pattern that wins them.
    pub by: String,
    /// Methods the losing route answers that the winner does not: such requests get `405`
    /// from the winner instead of reaching the losing route.
    pub lost_methods: Vec<Method>,
}

impl AppService {
    /// The app's services and state.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Every route, by path then method.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let mut routes = Vec::new();
        for entry in self.inner.router.entries() {
            for (method, chain) in &entry.methods {
                routes.push(RouteInfo {
                    method: Some(method.clone()),
                    path: entry.pattern.to_string(),
                    handler: chain.handler.name,
                });
            }
            if let Some(handler) = entry.any_handler {
                routes.push(RouteInfo {
                    method: None,
                    path: entry.pattern.to_string(),
                    handler,
                });
            }
        }
        routes.sort_by(|a, b| {
            let key = |r: &RouteInfo| (r.path.clone(), r.method.as_ref().map(|m| m.to_string()));
            key(a).cmp(&key(b))
        });
        routes
    }

    /// Routes that more specific ones take some paths from (`/users/{id}` loses `/users/me`
    /// to a `/users/me` route), with the methods that then get `405`.
    pub fn shadowed(&self) -> Vec<Shadowed> {
        let entries = self.inner.router.entries();
        let mut found = Vec::new();
        for winner in entries {
            let sample = sample_path(&winner.pattern);
            for loser in entries {
                if Arc::ptr_eq(&loser.pattern, &winner.pattern) {
                    continue;
                }
                let mut single = matchit::Router::new();
                if single.insert(loser.pattern.to_string(), ()).is_err()
                    || single.at(&sample).is_err()
                {
                    continue;
                }
                let lost_methods = loser
                    .methods
                    .iter()
                    .map(|(m, _)| m.clone())
                    .filter(|m| !winner.methods.iter().any(|(w, _)| w == m))
                    .collect();
                found.push(Shadowed {
                    route: loser.pattern.to_string(),
                    by: winner.pattern.to_string(),
                    lost_methods,
                });
            }
        }
        found
    }

    /// Runs the services' start hooks, in dependency order (once; later calls do nothing).
    /// [`App::serve`] and [`AppService::listen`] call it before listening.
    pub fn start(&self) -> Result<(), BuildError> {
        let mut lifecycle = self
            .inner
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while lifecycle.started < lifecycle.entries.len() {
            let (name, value, on_start, _) = &lifecycle.entries[lifecycle.started];
            if let Some(hook) = on_start {
                hook(value.as_ref()).map_err(|error| BuildError::Start {
                    service: name,
                    error,
                })?;
            }
            lifecycle.started += 1;
        }
        // Only a never-stopped app becomes running (stopped services are not started again).
        let _ = self.inner.context.0.phase.compare_exchange(
            AppPhase::Starting as u8,
            AppPhase::Running as u8,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
        Ok(())
    }

    /// Runs the stop hooks of the started services, in reverse order (once). Servers started
    /// with [`AppService::listen`] call it when they begin to drain.
    pub fn stop(&self) {
        let mut lifecycle = self
            .inner
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.inner.context.0.phase.store(
            AppPhase::Stopped as u8,
            std::sync::atomic::Ordering::Release,
        );
        while lifecycle.started > 0 {
            lifecycle.started -= 1;
            let (name, value, _, on_stop) = &lifecycle.entries[lifecycle.started];
            if let Some(hook) = on_stop {
                if let Err(error) = hook(value.as_ref()) {
                    tracing::error!(service = name, %error, "a service's stop hook failed");
                }
            }
        }
        // Stopped services are not started again.
        lifecycle.entries.clear();
    }

    /// Starts the services and serves the app with `config` on the runtime the `rt-*`
    /// features chose, returning once it listens. Protocol-level rejections (a malformed
    /// request the connection refuses before the app sees it) get problem+json bodies too.
    pub fn listen(self, config: ServerConfig) -> Result<AppServer, ServeError> {
        let runtime = Runtime::preferred().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no runtime compiled in: enable one of weft's features rt-mio, rt-pool, rt-smol, \
                 rt-async-std, rt-poll, rt-tokio",
            )
        })?;
        self.listen_on(runtime, config)
    }

    /// [`listen`](Self::listen) on a runtime chosen at run time (one compiled in: see
    /// [`Runtime::ALL`]).
    pub fn listen_on(
        self,
        runtime: Runtime,
        config: ServerConfig,
    ) -> Result<AppServer, ServeError> {
        self.start().map_err(ServeError::Start)?;
        let mut config = self.hook_background(config);
        if config.dispatch.error_pages.is_empty() {
            config.dispatch.error_pages = problem_error_pages();
        }
        match weft_runtime::start_on(runtime, config, self.clone()) {
            Ok(handle) => Ok(AppServer {
                handle: Some(handle),
                app: self,
            }),
            Err(error) => {
                // Nothing will serve: the started services stop now.
                self.stop();
                Err(error.into())
            }
        }
    }

    /// Starts the app's background work once the server listens (after the caller's own start
    /// hook), and stops it when the server drains (after the caller's shutdown hook), waiting
    /// for its running work up to the drain deadline.
    fn hook_background(&self, mut config: ServerConfig) -> ServerConfig {
        let background = self.inner.background.clone();
        if background.is_empty() {
            return config;
        }
        let user_start = config.start_hook.take();
        let starting = background.clone();
        config = config.on_start(move |addresses| {
            if let Some(hook) = &user_start {
                hook.call(addresses);
            }
            starting.start(&weft_service::runtime::RuntimeHandle::current());
        });
        let user_shutdown = config.shutdown_hook.take();
        let drain_timeout = config.drain_timeout;
        config.on_shutdown(move || {
            let deadline = std::time::Instant::now() + drain_timeout;
            if let Some(hook) = &user_shutdown {
                hook.call();
            }
            background.stop(deadline);
        })
    }

    async fn dispatch(inner: Arc<AppInner>, mut request: Request) -> Response {
        let websocket = request.method() == Method::CONNECT
            && request
                .extensions()
                .get::<weft_core::h2::Protocol>()
                .is_some_and(|protocol| protocol.0.eq_ignore_ascii_case(b"websocket"));
        let path = request.uri().path();
        let found = inner
            .router
            .find(request.method(), path, request.uri().query(), websocket);
        let extensions = request.extensions_mut();
        extensions.insert(inner.context.clone());
        match found {
            Lookup::Route(chain, params) => {
                let chain = Arc::clone(chain);
                request.extensions_mut().insert(params);
                chain.run(request).await
            }
            Lookup::Redirect(target) => {
                request.extensions_mut().insert(RedirectTarget(target));
                let chain = Arc::clone(&inner.redirect);
                chain.run(request).await
            }
            Lookup::NotFound => {
                let chain = Arc::clone(&inner.not_found);
                chain.run(request).await
            }
        }
    }
}

/// A served app: where it listens, how to stop it. Its services' stop hooks run once the
/// server has drained (requests in flight may still use them while it drains), in
/// [`join`](Self::join), or when it is dropped.
#[derive(Debug)]
pub struct AppServer {
    handle: Option<ServerHandle>,
    app: AppService,
}

impl AppServer {
    /// The addresses the server listens on, with the ports the OS picked for port 0.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.handle.as_ref().map_or(&[], ServerHandle::local_addrs)
    }

    /// Starts a graceful shutdown; [`join`](Self::join) waits for it to end.
    pub fn shutdown(&self) {
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
    }

    /// A handle that can start the shutdown from elsewhere (another thread, a handler).
    pub fn shutdown_handle(&self) -> Option<weft_runtime::Shutdown> {
        self.handle.as_ref().map(ServerHandle::shutdown_handle)
    }

    /// Waits until the server has stopped, then stops the services.
    pub fn join(mut self) -> std::io::Result<()> {
        let result = self.handle.take().map_or(Ok(()), ServerHandle::join);
        self.app.stop();
        result
    }
}

impl Drop for AppServer {
    /// Shuts the server down, waits for it, and stops the services.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            if let Err(error) = handle.join() {
                tracing::error!(%error, "the server stopped with an error");
            }
        }
        self.app.stop();
    }
}

/// The pattern of the route that matched (`/users/{id}`), for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedPath(pub Arc<str>);

impl crate::extract::FromRequestParts for MatchedPath {
    async fn from_request_parts(parts: &mut http::request::Parts) -> Result<Self, Error> {
        Ok(MatchedPath(
            parts
                .extensions
                .get::<crate::extract::PathParams>()
                .and_then(|params| params.pattern().cloned())
                .unwrap_or_else(|| Arc::from("")),
        ))
    }
}

/// Where an app is in its life, for readiness probes ([`crate::health`]): a request can be
/// served before [`AppService::start`] has run every start hook (the in-memory
/// [`TestClient`](crate::test::TestClient) does not start the app, an embedding loop may
/// serve early), and while the server drains after [`AppService::stop`].
///
/// Read with [`AppPhase::of`]; outside an app (a handler called directly) it is `Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AppPhase {
    /// Built, but [`AppService::start`] has not finished.
    Starting = 0,
    /// [`AppService::start`] finished: every start hook ran.
    Running = 1,
    /// [`AppService::stop`] ran: the services are stopped (the server drains or stopped).
    Stopped = 2,
}

impl AppPhase {
    /// The phase of the app serving the request with these `extensions`
    /// (`AppPhase::of(request.extensions())`).
    pub fn of(extensions: &http::Extensions) -> AppPhase {
        let phase = extensions
            .get::<AppContext>()
            .map(|context| context.0.phase.load(std::sync::atomic::Ordering::Acquire));
        match phase {
            Some(0) => AppPhase::Starting,
            Some(2) => AppPhase::Stopped,
            _ => AppPhase::Running,
        }
    }
}

/// A concrete path a pattern matches, for shadowing checks.
fn sample_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with("{*") {
                "__weft_rest__"
            } else if segment.starts_with('{') {
                "__weft_param__"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// problem+json bodies for the statuses HTTP/1.1 connections answer by themselves.
fn problem_error_pages() -> ErrorPages {
    ErrorPages::from_fn(|status| {
        let problem = Problem::new(status).with_code("protocol.rejected");
        Some(ErrorPage::new(
            status,
            HeaderValue::from_static(crate::problem::PROBLEM_JSON),
            problem.to_json(),
        ))
    })
}

impl Service for AppService {
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send + 'static {
        AppService::dispatch(Arc::clone(&self.inner), request)
    }
}

impl std::fmt::Debug for AppService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppService")
            .field("paths", &self.inner.router.entries().len())
            .finish_non_exhaustive()
    }
}
