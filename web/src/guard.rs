//! Guards: may this request reach the route? Checked after middleware, before interceptors,
//! pipes and the handler (NestJS's `canActivate`).
//!
//! A guard allows (`Ok(())`) or denies with an error (`Err`), which the exception filters
//! turn into the response (403 problem+json by default). Guards compose: [`GuardExt::and`],
//! [`GuardExt::or`], [`not`].

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use http::StatusCode;

use crate::Request;
use crate::error::Error;
use crate::handler::BoxFuture;
use crate::problem::Problem;

/// Decides whether a request may reach the route.
pub trait Guard: Send + Sync + 'static {
    /// `Ok(())` to let the request through, `Err` to answer it with that error.
    fn can_activate(&self, request: &Request) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A guard with its type erased.
pub(crate) trait DynGuard: Send + Sync + 'static {
    fn can_activate_dyn<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<(), Error>>;
}

impl<G: Guard> DynGuard for G {
    fn can_activate_dyn<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.can_activate(request))
    }
}

/// The denial a guard gives when it has nothing more specific to say: 403.
pub fn forbidden() -> Error {
    Error::from_problem(
        Problem::new(StatusCode::FORBIDDEN)
            .with_code("guard.denied")
            .with_detail("access to this resource is denied"),
    )
}

/// A guard from a predicate: true lets the request through, false answers 403.
pub fn from_fn<F>(predicate: F) -> FnGuard<F>
where
    F: Fn(&Request) -> bool + Send + Sync + 'static,
{
    FnGuard(predicate)
}

/// See [`from_fn`].
pub struct FnGuard<F>(F);

impl<F> Guard for FnGuard<F>
where
    F: Fn(&Request) -> bool + Send + Sync + 'static,
{
    async fn can_activate(&self, request: &Request) -> Result<(), Error> {
        if (self.0)(request) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

/// Composition of guards.
pub trait GuardExt: Guard + Sized {
    /// Both must allow; the first denial is the answer.
    fn and<G: Guard>(self, other: G) -> And<Self, G> {
        And(self, other)
    }

    /// Either may allow; when both deny, the first's denial is the answer.
    fn or<G: Guard>(self, other: G) -> Or<Self, G> {
        Or(self, other)
    }
}

impl<G: Guard> GuardExt for G {}

/// See [`GuardExt::and`].
pub struct And<A, B>(A, B);

impl<A: Guard, B: Guard> Guard for And<A, B> {
    async fn can_activate(&self, request: &Request) -> Result<(), Error> {
        self.0.can_activate(request).await?;
        self.1.can_activate(request).await
    }
}

/// See [`GuardExt::or`].
pub struct Or<A, B>(A, B);

impl<A: Guard, B: Guard> Guard for Or<A, B> {
    async fn can_activate(&self, request: &Request) -> Result<(), Error> {
        match self.0.can_activate(request).await {
            Ok(()) => Ok(()),
            Err(first) => self.1.can_activate(request).await.map_err(|_| first),
        }
    }
}

/// Allows what `guard` denies, and denies (403) what it allows.
pub fn not<G: Guard>(guard: G) -> Not<G> {
    Not(guard)
}

/// See [`not`].
pub struct Not<G>(G);

impl<G: Guard> Guard for Not<G> {
    async fn can_activate(&self, request: &Request) -> Result<(), Error> {
        match self.0.can_activate(request).await {
            Ok(()) => Err(forbidden()),
            Err(_) => Ok(()),
        }
    }
}

/// The roles of the authenticated caller, which an authentication layer (middleware) puts
/// in the request's extensions for [`roles`] guards to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(pub BTreeSet<String>);

impl Roles {
    /// Roles from names.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Roles(names.into_iter().map(Into::into).collect())
    }

    /// Whether the caller has `role`.
    pub fn has(&self, role: &str) -> bool {
        self.0.contains(role)
    }
}

/// A guard allowing callers with at least one of `required` roles: 401 when no
/// authentication layer put [`Roles`] on the request, 403 when none of them matches.
pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(required: I) -> RolesGuard {
    RolesGuard {
        required: Arc::new(required.into_iter().map(Into::into).collect()),
    }
}

/// See [`roles`].
#[derive(Debug, Clone)]
pub struct RolesGuard {
    required: Arc<Vec<String>>,
}

impl Guard for RolesGuard {
    async fn can_activate(&self, request: &Request) -> Result<(), Error> {
        let Some(held) = request.extensions().get::<Roles>() else {
            return Err(Error::from_problem(
                Problem::new(StatusCode::UNAUTHORIZED)
                    .with_code("auth.required")
                    .with_detail("this resource needs an authenticated caller"),
            ));
        };
        if self.required.iter().any(|role| held.has(role)) {
            Ok(())
        } else {
            Err(Error::from_problem(
                Problem::new(StatusCode::FORBIDDEN)
                    .with_code("auth.role")
                    .with_detail(format!("one of the roles {:?} is needed", self.required)),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use weft_service::body::Body;

    fn request_with(roles: Option<&[&str]>) -> Request {
        let mut request = Request::new(Body::empty());
        if let Some(names) = roles {
            request
                .extensions_mut()
                .insert(Roles::new(names.iter().copied()));
        }
        request
    }

    fn status(result: Result<(), Error>) -> u16 {
        result.map_or_else(|e| e.status_code().as_u16(), |()| 200)
    }

    #[test]
    fn roles_guard_answers_401_403_or_allows() {
        let guard = roles(["admin", "editor"]);
        assert_eq!(
            status(block_on(guard.can_activate(&request_with(None)))),
            401
        );
        assert_eq!(
            status(block_on(
                guard.can_activate(&request_with(Some(&["viewer"])))
            )),
            403
        );
        assert_eq!(
            status(block_on(
                guard.can_activate(&request_with(Some(&["editor"])))
            )),
            200
        );
    }

    #[test]
    fn composition_follows_boolean_logic() {
        let request = request_with(None);
        for (a, b) in [(true, true), (true, false), (false, true), (false, false)] {
            let pick = |v: bool| from_fn(move |_: &Request| v);
            let and = block_on(pick(a).and(pick(b)).can_activate(&request)).is_ok();
            let or = block_on(pick(a).or(pick(b)).can_activate(&request)).is_ok();
            let not_a = block_on(not(pick(a)).can_activate(&request)).is_ok();
            assert_eq!((and, or, not_a), (a && b, a || b, !a));
        }
    }
}
