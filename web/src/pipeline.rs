//! A route's stack, flattened when the app is built: middleware (app, groups, route), then
//! guards, interceptors, pipes and the handler, with the exception filters that render
//! errors on the way out.

use std::sync::Arc;

use crate::Request;
use crate::filter::{ErrorContext, ExceptionFilter, render_default};
use crate::guard::DynGuard;
use crate::handler::{BoxedHandler, Outcome};
use crate::interceptor::{DynInterceptor, Proceed};
use crate::middleware::{DynMiddleware, Next};
use crate::pipe::{Input, Pipe};
use crate::problem::ErrorFormat;
use crate::response::Response;

/// Everything a request to one route (or one synthetic answer: 404, 405, OPTIONS, a
/// trailing-slash redirect) goes through.
pub(crate) struct Chain {
    pub(crate) middlewares: Vec<Arc<dyn DynMiddleware>>,
    pub(crate) guards: Vec<Arc<dyn DynGuard>>,
    pub(crate) interceptors: Vec<Arc<dyn DynInterceptor>>,
    pub(crate) pipes: Vec<(Input, Arc<dyn Pipe>)>,
    pub(crate) handler: BoxedHandler,
    /// Most specific first: the route's, the groups' from the innermost out, the app's.
    pub(crate) filters: Vec<Arc<dyn ExceptionFilter>>,
    pub(crate) format: ErrorFormat,
    pub(crate) route: Option<Arc<str>>,
}

impl Chain {
    /// Runs the whole stack.
    pub(crate) async fn run(self: &Arc<Self>, request: Request) -> Response {
        // What the filters need to know of the request, taken once: the middleware levels
        // share it, as the request itself moves down the stack.
        let context = Arc::new(self.context(&request));
        self.run_from(0, request, context).await
    }

    /// Runs the stack from middleware `index` on.
    pub(crate) async fn run_from(
        self: &Arc<Self>,
        index: usize,
        request: Request,
        context: Arc<ErrorContext>,
    ) -> Response {
        let outcome = match self.middlewares.get(index) {
            Some(middleware) => {
                let next = Next {
                    chain: Arc::clone(self),
                    index: index + 1,
                    context: Arc::clone(&context),
                };
                middleware.handle_dyn(request, next).await
            }
            None => self.endpoint(request).await,
        };
        match outcome {
            Ok(response) => response,
            Err(error) => self.render(error, &context),
        }
    }

    fn context(&self, request: &Request) -> ErrorContext {
        ErrorContext {
            method: request.method().clone(),
            uri: request.uri().clone(),
            route: self.route.clone(),
            format: self.format,
        }
    }

    /// Guards, then interceptors, pipes and the handler.
    async fn endpoint(self: &Arc<Self>, request: Request) -> Outcome {
        for guard in &self.guards {
            guard.can_activate_dyn(&request).await?;
        }
        self.intercept_from(0, request).await
    }

    /// Interceptors from `index` on, then pipes and the handler.
    pub(crate) async fn intercept_from(
        self: &Arc<Self>,
        index: usize,
        mut request: Request,
    ) -> Outcome {
        match self.interceptors.get(index) {
            Some(interceptor) => {
                let next = Proceed {
                    chain: Arc::clone(self),
                    index: index + 1,
                };
                interceptor.intercept_dyn(request, next).await
            }
            None => {
                crate::pipe::apply(&self.pipes, &mut request)?;
                self.handler.inner.call(request).await
            }
        }
    }

    /// The filters, most specific first, then the default.
    pub(crate) fn render(&self, mut error: crate::Error, context: &ErrorContext) -> Response {
        for filter in &self.filters {
            match filter.catch(error, context) {
                Ok(response) => return response,
                Err(passed) => error = passed,
            }
        }
        render_default(error, context)
    }
}
