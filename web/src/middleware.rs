//! Middleware: `async (request, next) -> response` layers around routes, at app, group and
//! route level.
//!
//! # Order
//! Middleware runs outermost first in this order: the app's (in the order added), then each
//! enclosing group's from the outermost group in, then the route's own. Inside them, the
//! route's guards, interceptors, pipes and finally the handler run (see [`crate::App`]).
//! A middleware that returns without calling `next` stops the request there.
//!
//! A middleware may fail (`Err`): the error goes through the route's exception filters like a
//! handler's, and becomes the response.

use std::future::Future;
use std::sync::Arc;

use crate::Request;
use crate::handler::{BoxFuture, Outcome};
use crate::pipeline::Chain;
use crate::response::{IntoOutcome, Response};

/// A layer around routes.
pub trait Middleware: Send + Sync + 'static {
    /// Handles a request: usually works on it, calls `next.run(request)`, and works on the
    /// response.
    fn handle(&self, request: Request, next: Next) -> impl Future<Output = Outcome> + Send;
}

/// The rest of the stack after a middleware: the inner middleware, then the route.
#[derive(Clone)]
pub struct Next {
    pub(crate) chain: Arc<Chain>,
    pub(crate) index: usize,
    /// The request's facts for the filters, taken once at the top of the stack.
    pub(crate) context: Arc<crate::filter::ErrorContext>,
}

impl Next {
    /// Runs the rest of the stack. Its errors were rendered by the route's exception filters
    /// already, so this is always a response.
    pub async fn run(self, request: Request) -> Response {
        self.chain.run_from(self.index, request, self.context).await
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").field("index", &self.index).finish()
    }
}

/// A middleware with its type erased.
pub(crate) trait DynMiddleware: Send + Sync + 'static {
    fn handle_dyn(&self, request: Request, next: Next) -> BoxFuture<'_, Outcome>;
}

impl<M: Middleware> DynMiddleware for M {
    fn handle_dyn(&self, request: Request, next: Next) -> BoxFuture<'_, Outcome> {
        Box::pin(self.handle(request, next))
    }
}

/// A middleware made of an async closure: `from_fn(|request, next| async move { ... })`.
///
/// The closure returns anything a handler may: a response, or a `Result` of one.
pub fn from_fn<F, Fut, R>(f: F) -> FromFn<F>
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoOutcome,
{
    FromFn(f)
}

/// See [`from_fn`].
#[derive(Clone)]
pub struct FromFn<F>(F);

impl<F, Fut, R> Middleware for FromFn<F>
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoOutcome,
{
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        (self.0)(request, next).await.into_outcome()
    }
}

/// A middleware that only looks at or changes the request before the route.
pub fn map_request<F>(f: F) -> impl Middleware
where
    F: Fn(Request) -> Request + Send + Sync + 'static,
{
    from_fn(move |request: Request, next: Next| {
        let request = f(request);
        next.run(request)
    })
}

/// A middleware that only changes the response.
pub fn map_response<F>(f: F) -> impl Middleware
where
    F: Fn(Response) -> Response + Clone + Send + Sync + 'static,
{
    from_fn(move |request: Request, next: Next| {
        let f = f.clone();
        async move { f(next.run(request).await) }
    })
}
