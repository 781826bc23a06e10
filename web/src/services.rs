//! Services: dependency injection of singletons built at start-up, per-request scoped
//! services, and shared state.
//!
//! ```
//! use weft::prelude::*;
//! use weft::services::Inject;
//!
//! struct Config { greeting: String }
//! struct Greeter { greeting: String }
//!
//! async fn hello(greeter: Inject<Greeter>) -> String {
//!     format!("{}!", greeter.greeting)
//! }
//!
//! let app = App::new()
//!     .state(Config { greeting: "hello".into() })
//!     // A factory's arguments are what the service needs: `Greeter` is built after `Config`.
//!     .singleton(|config: Inject<Config>| Greeter { greeting: config.greeting.clone() })
//!     .get("/", hello);
//! # let _ = app.build().unwrap();
//! ```
//!
//! A factory declares what it needs by its arguments ([`Inject<T>`]), so the app orders the
//! singletons itself, and a dependency nobody registered or a cycle fails
//! [`App::build`](crate::App::build) naming both services. Handlers (and extractors) that
//! take `Inject<T>` or `State<T>` are checked the same way when the app is built.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use http::request::Parts;

use crate::error::Error;
use crate::extract::{FromRequestParts, Needs};
use crate::problem::Problem;

/// A registered service or state value, shared: derefs to `T`.
pub struct Inject<T: ?Sized>(pub Arc<T>);

/// Shared state registered with [`App::state`](crate::App::state): derefs to `T`. The same
/// registry as [`Inject`]; the name says the intent.
pub struct State<T: ?Sized>(pub Arc<T>);

macro_rules! shared_handle {
    ($name:ident) => {
        impl<T: ?Sized> std::ops::Deref for $name<T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.0
            }
        }

        impl<T: ?Sized> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name(Arc::clone(&self.0))
            }
        }

        impl<T: ?Sized + fmt::Debug> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<T: Send + Sync + 'static> FromRequestParts for $name<T> {
            async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
                lookup::<T>(parts).map($name)
            }

            fn declare(needs: &mut Needs) {
                needs.need::<T>(concat!(
                    "App::singleton or App::state, for ",
                    stringify!($name)
                ));
            }
        }
    };
}

shared_handle!(Inject);
shared_handle!(State);

fn lookup<T: Send + Sync + 'static>(parts: &Parts) -> Result<Arc<T>, Error> {
    AppContext::of(parts)
        .and_then(|context| context.services.get::<T>())
        .ok_or_else(|| {
            // The build checks every handler; this is an extractor used where the build
            // could not see it (inside a middleware, a hand-made request).
            let name = std::any::type_name::<T>();
            tracing::error!(
                service = name,
                "a service was asked for but is not registered"
            );
            Error::from_problem(
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .with_code("service.missing")
                    .with_detail(format!(
                        "the service `{name}` is not registered with the app"
                    )),
            )
        })
}

/// What a built app puts in every request's extensions, in one `Arc` (one insertion per
/// request): its services, scoped factories and body limits.
#[derive(Clone)]
pub(crate) struct AppContext(pub(crate) Arc<AppShared>);

/// See [`AppContext`].
pub(crate) struct AppShared {
    pub(crate) services: Services,
    pub(crate) scoped: ScopedFactories,
    pub(crate) body_limits: crate::extract::BodyLimits,
    /// The app's [`AppPhase`](crate::app::AppPhase), set by `AppService::start`/`stop`.
    pub(crate) phase: std::sync::atomic::AtomicU8,
}

impl AppContext {
    /// The app's context in a request, if an app is serving it.
    pub(crate) fn of(parts: &Parts) -> Option<&AppShared> {
        parts
            .extensions
            .get::<AppContext>()
            .map(|context| &*context.0)
    }
}

/// The app's services, for handlers that look them up by type at run time.
impl FromRequestParts for Services {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(AppContext::of(parts)
            .map(|context| context.services.clone())
            .unwrap_or_default())
    }
}

/// The app's built singletons and state, by type.
#[derive(Clone, Default)]
pub struct Services {
    by_type: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Services {
    /// The service or state of type `T`.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let any = self.by_type.get(&TypeId::of::<T>())?;
        Arc::clone(any).downcast::<T>().ok()
    }

    /// Whether `T` is registered.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.by_type.contains_key(&type_id)
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("count", &self.by_type.len())
            .finish()
    }
}

/// A function that builds a service from the services it needs: `Fn(Inject<A>, Inject<B>,
/// ...) -> T` (up to 8 arguments).
pub trait Factory<Args>: Send + 'static {
    /// What the function returns.
    type Output;
    /// The types the factory needs, with their names.
    fn dependencies() -> Vec<(TypeId, &'static str)>;
    /// Calls the factory; every dependency is built already.
    fn call(self, services: &Services) -> Result<Self::Output, Error>;
}

macro_rules! impl_factory {
    ($($dep:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, R, $($dep,)*> Factory<($($dep,)*)> for F
        where
            F: FnOnce($(Inject<$dep>,)*) -> R + Send + 'static,
            $($dep: Send + Sync + 'static,)*
        {
            type Output = R;

            fn dependencies() -> Vec<(TypeId, &'static str)> {
                vec![$((TypeId::of::<$dep>(), std::any::type_name::<$dep>()),)*]
            }

            fn call(self, services: &Services) -> Result<R, Error> {
                $(
                    let $dep = Inject(services.get::<$dep>().ok_or_else(|| {
                        Error::from(BuildError::MissingDependency {
                            service: std::any::type_name::<R>(),
                            missing: std::any::type_name::<$dep>(),
                        })
                    })?);
                )*
                Ok((self)($($dep,)*))
            }
        }
    };
}

impl_factory!();
impl_factory!(A1);
impl_factory!(A1, A2);
impl_factory!(A1, A2, A3);
impl_factory!(A1, A2, A3, A4);
impl_factory!(A1, A2, A3, A4, A5);
impl_factory!(A1, A2, A3, A4, A5, A6);
impl_factory!(A1, A2, A3, A4, A5, A6, A7);
impl_factory!(A1, A2, A3, A4, A5, A6, A7, A8);

pub(crate) type Hook = Box<dyn Fn(&(dyn Any + Send + Sync)) -> Result<(), Error> + Send + Sync>;

/// A built service, type-erased.
pub(crate) type AnyService = Arc<dyn Any + Send + Sync>;

/// A provider's factory, type-erased.
type BuildFn = Box<dyn FnOnce(&Services) -> Result<AnyService, Error> + Send>;

/// A built singleton with its hooks: `(name, value, on_start, on_stop)`.
pub(crate) type Managed = (&'static str, AnyService, Option<Hook>, Option<Hook>);

/// A singleton's registration: its factory and lifecycle hooks.
pub struct Provider {
    pub(crate) type_id: TypeId,
    pub(crate) name: &'static str,
    pub(crate) needs: Vec<(TypeId, &'static str)>,
    build: BuildFn,
    pub(crate) on_start: Option<Hook>,
    pub(crate) on_stop: Option<Hook>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A singleton built by `factory` once, at start-up, after what it needs.
    pub fn singleton<T, Args, F>(factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Factory<Args, Output = T>,
    {
        Provider::try_singleton(
            move |services: &Services| factory.call(services),
            F::dependencies(),
        )
    }

    /// A singleton whose factory may fail (`-> Result<T, E>`): the failure fails the build of
    /// the app, naming the service.
    pub fn fallible<T, E, Args, F>(factory: F) -> Self
    where
        T: Send + Sync + 'static,
        E: Into<Error>,
        F: Factory<Args, Output = Result<T, E>>,
    {
        Provider::try_singleton(
            move |services: &Services| factory.call(services)?.map_err(Into::into),
            F::dependencies(),
        )
    }

    fn try_singleton<T: Send + Sync + 'static>(
        build: impl FnOnce(&Services) -> Result<T, Error> + Send + 'static,
        needs: Vec<(TypeId, &'static str)>,
    ) -> Self {
        Provider {
            type_id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
            needs,
            build: Box::new(move |services| {
                build(services).map(|value| Arc::new(value) as Arc<dyn Any + Send + Sync>)
            }),
            on_start: None,
            on_stop: None,
        }
    }

    /// A value built already.
    pub fn value<T: Send + Sync + 'static>(value: T) -> Self {
        Provider::singleton(move || value)
    }

    /// Runs `hook` on the service when the app starts (in dependency order); an error stops
    /// the start.
    pub fn on_start<T: Send + Sync + 'static>(
        mut self,
        hook: impl Fn(&T) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.on_start = Some(typed_hook(hook));
        self
    }

    /// Runs `hook` on the service when the app shuts down (in reverse dependency order).
    pub fn on_stop<T: Send + Sync + 'static>(
        mut self,
        hook: impl Fn(&T) + Send + Sync + 'static,
    ) -> Self {
        self.on_stop = Some(typed_hook(move |service: &T| {
            hook(service);
            Ok(())
        }));
        self
    }
}

fn typed_hook<T: Send + Sync + 'static>(
    hook: impl Fn(&T) -> Result<(), Error> + Send + Sync + 'static,
) -> Hook {
    Box::new(move |any| match any.downcast_ref::<T>() {
        Some(service) => hook(service),
        // A hook registered on a provider of another type: the builder API does not let
        // that happen, but it costs nothing to say so.
        None => Err(Error::bad_request("lifecycle hook of another type")),
    })
}

/// What went wrong while building an app: everything names both sides.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A service needs one nobody registered.
    MissingDependency {
        /// The service that needs it.
        service: &'static str,
        /// What it needs.
        missing: &'static str,
    },
    /// A route's handler needs a service or state nobody registered.
    MissingForRoute {
        /// `GET /users/{id}`.
        route: String,
        /// The handler's name.
        handler: &'static str,
        /// What it needs.
        missing: &'static str,
        /// How to register it.
        hint: &'static str,
    },
    /// Services need each other in a circle: the cycle, first name repeated at the end.
    Cycle(Vec<&'static str>),
    /// The same type was registered twice.
    Duplicate(&'static str),
    /// A factory failed.
    Factory {
        /// The service.
        service: &'static str,
        /// Why.
        error: Error,
    },
    /// Two routes claim the same method and path, or overlap in a way the router refuses.
    RouteConflict {
        /// The new route.
        route: String,
        /// The route it conflicts with.
        existing: String,
        /// Why the router refused.
        reason: String,
    },
    /// A route pattern is malformed.
    InvalidRoute {
        /// The route.
        route: String,
        /// Why.
        reason: String,
    },
    /// A start hook failed.
    Start {
        /// The service.
        service: &'static str,
        /// Why.
        error: Error,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MissingDependency { service, missing } => write!(
                f,
                "service `{service}` needs `{missing}`, which is not registered (register it with App::singleton or App::state)"
            ),
            BuildError::MissingForRoute {
                route,
                handler,
                missing,
                hint,
            } => write!(
                f,
                "route `{route}`: handler `{handler}` needs `{missing}`, which is not registered (register it with {hint})"
            ),
            BuildError::Cycle(path) => {
                write!(
                    f,
                    "services depend on each other in a cycle: {}",
                    path.join(" -> ")
                )
            }
            BuildError::Duplicate(name) => write!(f, "service `{name}` is registered twice"),
            BuildError::Factory { service, error } => {
                write!(f, "building service `{service}` failed: {error}")
            }
            BuildError::RouteConflict {
                route,
                existing,
                reason,
            } => write!(f, "route `{route}` conflicts with `{existing}`: {reason}"),
            BuildError::InvalidRoute { route, reason } => {
                write!(f, "route `{route}` is invalid: {reason}")
            }
            BuildError::Start { service, error } => {
                write!(f, "starting service `{service}` failed: {error}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// The built singletons, in build order, with their hooks.
pub(crate) struct Built {
    pub(crate) services: Services,
    /// In build (dependency) order.
    pub(crate) lifecycle: Vec<Managed>,
}

/// Orders the providers by dependency and builds them.
pub(crate) fn build(providers: Vec<Provider>) -> Result<Built, BuildError> {
    let mut index: HashMap<TypeId, usize> = HashMap::new();
    for (i, provider) in providers.iter().enumerate() {
        if index.insert(provider.type_id, i).is_some() {
            return Err(BuildError::Duplicate(provider.name));
        }
    }
    for provider in &providers {
        for (dep, dep_name) in &provider.needs {
            if !index.contains_key(dep) {
                return Err(BuildError::MissingDependency {
                    service: provider.name,
                    missing: dep_name,
                });
            }
        }
    }
    let order = topological_order(&providers, &index)?;
    let mut slots: Vec<Option<Provider>> = providers.into_iter().map(Some).collect();
    let mut by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>> = HashMap::new();
    let mut lifecycle = Vec::new();
    for i in order {
        let Some(provider) = slots[i].take() else {
            continue;
        };
        let services = Services {
            by_type: Arc::new(by_type.clone()),
        };
        let value = (provider.build)(&services).map_err(|error| BuildError::Factory {
            service: provider.name,
            error,
        })?;
        by_type.insert(provider.type_id, Arc::clone(&value));
        lifecycle.push((provider.name, value, provider.on_start, provider.on_stop));
    }
    Ok(Built {
        services: Services {
            by_type: Arc::new(by_type),
        },
        lifecycle,
    })
}

/// Depth-first order, dependencies first; a cycle is reported with its path.
fn topological_order(
    providers: &[Provider],
    index: &HashMap<TypeId, usize>,
) -> Result<Vec<usize>, BuildError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; providers.len()];
    let mut order = Vec::with_capacity(providers.len());
    // An explicit stack rather than recursion: a long dependency chain cannot overflow it.
    for root in 0..providers.len() {
        if marks[root] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::Visiting;
        while let Some(&mut (node, ref mut next_dep)) = stack.last_mut() {
            match providers[node].needs.get(*next_dep) {
                Some((dep, _)) => {
                    *next_dep += 1;
                    let dep = index[dep];
                    match marks[dep] {
                        Mark::New => {
                            marks[dep] = Mark::Visiting;
                            stack.push((dep, 0));
                        }
                        Mark::Visiting => {
                            let start = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                            let mut cycle: Vec<&'static str> = stack[start..]
                                .iter()
                                .map(|&(n, _)| providers[n].name)
                                .collect();
                            cycle.push(providers[dep].name);
                            return Err(BuildError::Cycle(cycle));
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    marks[node] = Mark::Done;
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

/// A per-request service, built on first use in a request by the factory registered with
/// [`App::scoped`](crate::App::scoped) and shared by the extractors of that request.
pub struct Scoped<T>(pub Arc<T>);

impl<T> std::ops::Deref for Scoped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The factory of a scoped service: the request's head and the app's services in.
pub(crate) type ScopedFactory =
    Arc<dyn Fn(&Parts, &Services) -> Result<Arc<dyn Any + Send + Sync>, Error> + Send + Sync>;

/// The scoped factories, by type; in every request's extensions.
#[derive(Clone, Default)]
pub(crate) struct ScopedFactories(pub(crate) Arc<HashMap<TypeId, ScopedFactory>>);

/// The scoped services built for one request so far.
#[derive(Clone, Default)]
struct ScopedCache(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl<T: Send + Sync + 'static> FromRequestParts for Scoped<T> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        let type_id = TypeId::of::<T>();
        if let Some(cached) = parts
            .extensions
            .get::<ScopedCache>()
            .and_then(|cache| cache.0.get(&type_id))
        {
            if let Ok(value) = Arc::clone(cached).downcast::<T>() {
                return Ok(Scoped(value));
            }
        }
        let factory = AppContext::of(parts)
            .and_then(|context| {
                context
                    .scoped
                    .0
                    .get(&TypeId::of::<ScopedMarker<T>>())
                    .cloned()
            })
            .ok_or_else(|| {
                Error::from_problem(
                    Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
                        .with_code("service.missing")
                        .with_detail(format!(
                            "the scoped service `{}` is not registered",
                            std::any::type_name::<T>()
                        )),
                )
            })?;
        let services = AppContext::of(parts)
            .map(|context| context.services.clone())
            .unwrap_or_default();
        let value = factory(parts, &services)?;
        parts
            .extensions
            .get_or_insert_default::<ScopedCache>()
            .0
            .insert(type_id, Arc::clone(&value));
        value
            .downcast::<T>()
            .map(Scoped)
            .map_err(|_| Error::from_problem(Problem::new(StatusCode::INTERNAL_SERVER_ERROR)))
    }

    fn declare(needs: &mut Needs) {
        needs.need::<ScopedMarker<T>>("App::scoped");
    }
}

/// The registration key of a scoped service of type `T` (distinct from a singleton `T`).
pub(crate) struct ScopedMarker<T>(std::marker::PhantomData<T>);

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;
    struct C;

    #[test]
    fn builds_in_dependency_order() {
        let built = build(vec![
            Provider::singleton(|_b: Inject<B>| C),
            Provider::singleton(|_a: Inject<A>| B),
            Provider::value(A),
        ])
        .unwrap();
        let names: Vec<_> = built.lifecycle.iter().map(|l| l.0).collect();
        assert_eq!(
            names,
            [
                std::any::type_name::<A>(),
                std::any::type_name::<B>(),
                std::any::type_name::<C>()
            ]
        );
        assert!(built.services.get::<C>().is_some());
    }

    #[test]
    fn a_cycle_names_its_members() {
        let error = build(vec![
            Provider::singleton(|_b: Inject<B>| A),
            Provider::singleton(|_c: Inject<C>| B),
            Provider::singleton(|_a: Inject<A>| C),
        ])
        .err()
        .unwrap();
        let message = error.to_string();
        assert!(message.contains("cycle"), "{message}");
        for name in ["::A", "::B", "::C"] {
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn a_missing_dependency_names_both() {
        let error = build(vec![Provider::singleton(|_b: Inject<B>| A)])
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(
            message.contains("::A`") && message.contains("::B`"),
            "{message}"
        );
    }

    #[test]
    fn a_failing_factory_fails_the_build() {
        let error = build(vec![Provider::fallible(|| -> Result<A, std::io::Error> {
            Err(std::io::Error::other("no database"))
        })])
        .err()
        .unwrap();
        assert!(error.to_string().contains("no database"), "{error}");
    }
}
