//! Handlers: async functions of extractors ([`Handler`]) or types with a method
//! ([`Endpoint`]), erased into one boxed form the router stores.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Request;
use crate::error::Error;
use crate::extract::{FromRequest, FromRequestParts, Needs};
use crate::response::{IntoOutcome, Response};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a route runs: `Ok` a response, `Err` an error for the exception filters.
pub type Outcome = Result<Response, Error>;

/// An async function whose arguments are extractors and whose result is a response, or a
/// `Result` of one.
///
/// `Args` is inferred; it records the argument types (up to 12). If a function is refused
/// as a handler, one of its arguments is not an extractor, the body-reading one is not last,
/// or the return type is not a response: put [`#[weft::debug_handler]`](crate::debug_handler)
/// on it, and the error points at the argument at fault and names it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a weft handler",
    label = "not a handler",
    note = "a handler is an `async fn` (or a closure returning a future) taking up to 12 extractors, only the last of which may read the body, and returning `impl IntoResponse` or `Result<impl IntoResponse, E>`; a future holding a non-`Send` value across an `.await` is refused too",
    note = "to see which argument is not an extractor, put `#[weft::debug_handler]` on the handler"
)]
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler on a request.
    fn call(&self, request: Request) -> impl Future<Output = Outcome> + Send + 'static;

    /// What the handler's extractors need registered with the app.
    fn declare(needs: &mut Needs);
}

/// A handler type with state of its own: `handle(&self, request)` may borrow it, and fail.
///
/// Use it for controllers that hold their dependencies; register with
/// [`App::endpoint`](crate::App::endpoint).
pub trait Endpoint: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: Request) -> impl Future<Output = Outcome> + Send;
}

/// Checks that `handler` is a handler, where it is defined rather than where it is routed:
/// useful for generic handlers, which `#[weft::debug_handler]` cannot check.
pub fn check_handler<F, Args>(handler: F) -> F
where
    F: Handler<Args>,
{
    handler
}

impl<F, Fut, R> Handler<()> for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoOutcome,
{
    fn call(&self, _request: Request) -> impl Future<Output = Outcome> + Send + 'static {
        let handler = self.clone();
        async move { handler().await.into_outcome() }
    }

    fn declare(_needs: &mut Needs) {}
}

macro_rules! impl_handler {
    ($($part:ident),*; $last:ident) => {
        #[allow(non_snake_case)]
        impl<F, Fut, R, M, $($part,)* $last> Handler<(M, $($part,)* $last,)> for F
        where
            F: Fn($($part,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoOutcome,
            $($part: FromRequestParts,)*
            $last: FromRequest<M>,
        {
            fn call(&self, request: Request) -> impl Future<Output = Outcome> + Send + 'static {
                let handler = self.clone();
                async move {
                    #[allow(unused_mut)]
                    let (mut parts, body) = request.into_parts();
                    $(let $part = $part::from_request_parts(&mut parts).await?;)*
                    let $last = $last::from_request(Request::from_parts(parts, body)).await?;
                    handler($($part,)* $last).await.into_outcome()
                }
            }

            fn declare(needs: &mut Needs) {
                $($part::declare(needs);)*
                $last::declare(needs);
            }
        }
    };
}

impl_handler!(; T1);
impl_handler!(T1; T2);
impl_handler!(T1, T2; T3);
impl_handler!(T1, T2, T3; T4);
impl_handler!(T1, T2, T3, T4; T5);
impl_handler!(T1, T2, T3, T4, T5; T6);
impl_handler!(T1, T2, T3, T4, T5, T6; T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7; T8);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8; T9);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9; T10);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10; T11);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11; T12);

/// A handler with its type erased, as routes store it.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, request: Request) -> BoxFuture<'static, Outcome>;
}

struct FnHandler<H, Args> {
    handler: H,
    _args: std::marker::PhantomData<fn() -> Args>,
}

impl<H: Handler<Args>, Args: 'static> ErasedHandler for FnHandler<H, Args> {
    fn call(&self, request: Request) -> BoxFuture<'static, Outcome> {
        Box::pin(self.handler.call(request))
    }
}

struct EndpointHandler<E>(Arc<E>);

impl<E: Endpoint> ErasedHandler for EndpointHandler<E> {
    fn call(&self, request: Request) -> BoxFuture<'static, Outcome> {
        let endpoint = Arc::clone(&self.0);
        Box::pin(async move { endpoint.handle(request).await })
    }
}

/// A route's handler, erased, with its name and what it needs.
#[derive(Clone)]
pub(crate) struct BoxedHandler {
    pub(crate) inner: Arc<dyn ErasedHandler>,
    pub(crate) name: &'static str,
    pub(crate) needs: Needs,
}

impl BoxedHandler {
    pub(crate) fn from_handler<H: Handler<Args>, Args: 'static>(handler: H) -> Self {
        let mut needs = Needs::default();
        H::declare(&mut needs);
        BoxedHandler {
            inner: Arc::new(FnHandler {
                handler,
                _args: std::marker::PhantomData,
            }),
            name: std::any::type_name::<H>(),
            needs,
        }
    }

    pub(crate) fn from_endpoint<E: Endpoint>(endpoint: E) -> Self {
        BoxedHandler {
            inner: Arc::new(EndpointHandler(Arc::new(endpoint))),
            name: std::any::type_name::<E>(),
            needs: Needs::default(),
        }
    }
}
