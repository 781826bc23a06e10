//! Error pages: HTML for browsers, problem+json for APIs, chosen per request by `Accept`, with
//! templates of the app's own per status; and [`CatchPanic`], which turns a handler's panic
//! into a `500` error, shown in full (message, backtrace, request) in development mode only.
//!
//! ```
//! use weft::error_pages::ErrorPages;
//! use weft::prelude::*;
//! use weft::problem::escape_html;
//!
//! let app = ErrorPages::new()
//!     .page(StatusCode::NOT_FOUND, |problem| {
//!         format!("<h1>Nothing at {}</h1>", escape_html(problem.instance.as_deref().unwrap_or("")))
//!     })
//!     .default_page(|problem| format!("<h1>{} {}</h1>", problem.status.as_u16(), escape_html(&problem.title)))
//!     .development(cfg!(debug_assertions))
//!     .mount(App::new().get("/", || async { "home" }));
//! # let _ = app.build().unwrap();
//! ```
//!
//! # How it works
//! [`ErrorPages::mount`] adds three things at the app's level: an exception filter (the last
//! one asked, after route and group filters), which renders an error the default way and
//! tags the response with its [`Problem`]; a middleware, which sees the request's `Accept`
//! and turns tagged answers into HTML when the client prefers `text/html` to JSON (a browser),
//! leaving problem+json otherwise (curl's `*/*`, an API client's `application/json`); and
//! [`CatchPanic`]. Both representations carry `Vary: Accept`; the error's headers (`Allow` on a
//! 405) stay. Pages cover every error the app's layers see: unmatched paths (404), methods
//! (405), rejections, handler errors and panics. Not covered: responses a handler builds with
//! an error status itself (those are answers, not errors), errors of middleware added before
//! `mount` (outside it), and rejections the connection makes before the app sees a request.
//!
//! The filter answers every error it is asked about: app-level filters added after `mount`
//! are never asked, so add those before it (route and group filters are asked first anyway).
//!
//! Templates return HTML and must escape what they show ([`escape_html`](crate::problem::escape_html())).
//!
//! # Development mode
//! With [`ErrorPages::development`] on, a `500` shows what production hides: a panic's
//! message, where it happened and its backtrace, or a failing error's own message, and the
//! request (method, URI, headers, with `Authorization`, `Proxy-Authorization`, `Cookie` and
//! `Set-Cookie` redacted). The HTML page is weft's own (templates are not used for it); JSON
//! answers get the same facts as a `debug` member. Never turn it on in production: messages
//! and backtraces tell an attacker about the code.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};

use futures_lite::FutureExt as _;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, VARY};
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::app::App;
use crate::error::Error;
use crate::filter::{ErrorContext, ExceptionFilter, render_default};
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::{Problem, escape_html};
use crate::response::Response;
use crate::{Body, Request};

/// A page template: the problem in, an HTML document out.
pub type Template = Arc<dyn Fn(&Problem) -> String + Send + Sync>;

/// Headers never shown on a development page.
const REDACTED: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// What the filter learnt about an error, for the middleware (a response extension).
#[derive(Clone)]
struct Rendered {
    problem: Problem,
    /// Development facts: the panic, or a hidden error message.
    panic: Option<HandlerPanic>,
    internal: Option<String>,
}

#[derive(Clone)]
struct Config {
    pages: HashMap<StatusCode, Template>,
    default: Option<Template>,
    development: bool,
    catch_panics: bool,
}

/// Customisable error pages, negotiated by `Accept`; see the [module](self).
///
/// It is both the [`Middleware`] and the [`ExceptionFilter`] of the scheme: [`mount`](Self::mount)
/// adds both (and [`CatchPanic`]), or add them yourself at the app's level:
/// `app.middleware(pages.clone()).middleware(CatchPanic::new()).filter(pages)`.
#[derive(Clone)]
pub struct ErrorPages {
    config: Arc<Config>,
}

impl Default for ErrorPages {
    fn default() -> Self {
        ErrorPages::new()
    }
}

impl std::fmt::Debug for ErrorPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorPages")
            .field("pages", &self.config.pages.keys().collect::<Vec<_>>())
            .field("default", &self.config.default.is_some())
            .field("development", &self.config.development)
            .finish()
    }
}

impl ErrorPages {
    /// Production mode, weft's own HTML page ([`Problem::to_html`]) for every status, panics
    /// caught.
    pub fn new() -> Self {
        ErrorPages {
            config: Arc::new(Config {
                pages: HashMap::new(),
                default: None,
                development: false,
                catch_panics: true,
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The HTML page for one status.
    pub fn page<F>(mut self, status: StatusCode, template: F) -> Self
    where
        F: Fn(&Problem) -> String + Send + Sync + 'static,
    {
        self.config().pages.insert(status, Arc::new(template));
        self
    }

    /// The HTML page for statuses without a page of their own.
    pub fn default_page<F>(mut self, template: F) -> Self
    where
        F: Fn(&Problem) -> String + Send + Sync + 'static,
    {
        self.config().default = Some(Arc::new(template));
        self
    }

    /// Development mode: `500`s show the panic or error, its backtrace and the request (see
    /// the [module](self)). Off by default; `cfg!(debug_assertions)` is a common choice.
    pub fn development(mut self, on: bool) -> Self {
        self.config().development = on;
        self
    }

    /// Whether [`mount`](Self::mount) adds [`CatchPanic`] (on by default).
    pub fn catch_panics(mut self, on: bool) -> Self {
        self.config().catch_panics = on;
        self
    }

    /// Adds the pages to `app`: the middleware, [`CatchPanic`] inside it, and the filter.
    /// Middleware added to `app` before this runs outside them (an access log sees the page).
    pub fn mount(self, app: App) -> App {
        let catch = self.config.catch_panics;
        let app = app.middleware(self.clone());
        let app = if catch {
            app.middleware(CatchPanic::new())
        } else {
            app
        };
        app.filter(self)
    }

    /// The HTML page for `rendered`.
    fn html(&self, rendered: &Rendered, request: Option<&RequestHead>) -> String {
        if self.config.development && (rendered.panic.is_some() || rendered.internal.is_some()) {
            return development_page(rendered, request);
        }
        let template = self
            .config
            .pages
            .get(&rendered.problem.status)
            .or(self.config.default.as_ref());
        match template {
            Some(template) => template(&rendered.problem),
            None => rendered.problem.to_html(),
        }
    }
}

impl ExceptionFilter for ErrorPages {
    fn catch(&self, error: Error, context: &ErrorContext) -> Result<Response, Error> {
        let panic = error.downcast_ref::<HandlerPanic>().cloned();
        let internal = (self.config.development && !error.is_public() && panic.is_none())
            .then(|| error.source().to_string());
        let mut problem = error.problem().clone();
        problem.instance = Some(context.uri.path().to_owned());
        let mut response = render_default(error, context);
        response.extensions_mut().insert(Rendered {
            problem,
            panic,
            internal,
        });
        Ok(response)
    }
}

/// What a development page shows of the request.
struct RequestHead {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Middleware for ErrorPages {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let accept = request.headers().get(ACCEPT).cloned();
        let head = self.config.development.then(|| RequestHead {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
        });
        let mut response = next.run(request).await;
        let Some(rendered) = response.extensions_mut().remove::<Rendered>() else {
            return Ok(response);
        };
        let chosen = crate::negotiate::negotiate(
            accept.as_ref(),
            &["application/problem+json", "application/json", "text/html"],
        );
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("accept"));
        if chosen == Some("text/html") {
            let page = self.html(&rendered, head.as_ref());
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.remove(CONTENT_LENGTH);
            *response.body_mut() = Body::from(page);
        } else if self.config.development
            && (rendered.panic.is_some() || rendered.internal.is_some())
        {
            let mut document =
                serde_json::to_value(&rendered.problem).unwrap_or_else(|_| serde_json::json!({}));
            if let serde_json::Value::Object(members) = &mut document {
                members.insert("debug".to_owned(), debug_json(&rendered, head.as_ref()));
            }
            response.headers_mut().remove(CONTENT_LENGTH);
            *response.body_mut() = Body::from(document.to_string());
        }
        Ok(response)
    }
}

/// The headers as a development page shows them: sensitive values redacted.
fn shown_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = if REDACTED.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

fn debug_json(rendered: &Rendered, request: Option<&RequestHead>) -> serde_json::Value {
    let mut debug = serde_json::Map::new();
    if let Some(panic) = &rendered.panic {
        debug.insert("panic".into(), panic.message.clone().into());
        debug.insert("location".into(), panic.location.clone().into());
        debug.insert("backtrace".into(), panic.backtrace.clone().into());
    }
    if let Some(internal) = &rendered.internal {
        debug.insert("error".into(), internal.clone().into());
    }
    if let Some(request) = request {
        debug.insert(
            "request".into(),
            serde_json::json!({
                "method": request.method.as_str(),
                "uri": request.uri.to_string(),
                "headers": shown_headers(&request.headers),
            }),
        );
    }
    serde_json::Value::Object(debug)
}

/// The development `500` page.
fn development_page(rendered: &Rendered, request: Option<&RequestHead>) -> String {
    let problem = &rendered.problem;
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{status} {title}</title></head>\n<body>\n<h1>{status} {title}</h1>\n<p><em>Development mode: this page is never shown in production.</em></p>\n",
        status = problem.status.as_u16(),
        title = escape_html(&problem.title)
    );
    if let Some(panic) = &rendered.panic {
        let _ = write!(
            page,
            "<h2>The handler panicked</h2>\n<pre class=\"message\">{}</pre>\n",
            escape_html(&panic.message)
        );
        if let Some(location) = &panic.location {
            let _ = writeln!(page, "<p>at <code>{}</code></p>", escape_html(location));
        }
        match &panic.backtrace {
            Some(backtrace) => {
                let _ = write!(
                    page,
                    "<h2>Backtrace</h2>\n<pre class=\"backtrace\">{}</pre>\n",
                    escape_html(backtrace)
                );
            }
            None => page.push_str("<p>No backtrace was captured.</p>\n"),
        }
    }
    if let Some(internal) = &rendered.internal {
        let _ = write!(
            page,
            "<h2>Error</h2>\n<pre class=\"message\">{}</pre>\n",
            escape_html(internal)
        );
    }
    if let Some(request) = request {
        let _ = write!(
            page,
            "<h2>Request</h2>\n<p><code>{} {}</code></p>\n<table>\n",
            escape_html(request.method.as_str()),
            escape_html(&request.uri.to_string())
        );
        for (name, value) in shown_headers(&request.headers) {
            let _ = writeln!(
                page,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape_html(&name),
                escape_html(&value)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// A handler's panic, as the error [`CatchPanic`] answers it with (`500`, code
/// `handler.panic`). Exception filters catch it by type; its message is never shown to the
/// client outside [development mode](ErrorPages::development).
#[derive(Debug, Clone)]
pub struct HandlerPanic {
    /// The panic's message (`panic!("...")`'s text), or a placeholder for other payloads.
    pub message: String,
    /// Where it panicked (`src/main.rs:12:5`), when the panic hook saw it.
    pub location: Option<String>,
    /// The backtrace at the panic, when the panic hook saw it.
    pub backtrace: Option<String>,
}

impl std::fmt::Display for HandlerPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the handler panicked: {}", self.message)?;
        if let Some(location) = &self.location {
            write!(f, " (at {location})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HandlerPanic {}

impl HandlerPanic {
    /// The error answered for this panic: `500`, code `handler.panic`, message hidden.
    pub fn into_error(self) -> Error {
        let mut error = Error::with_status(StatusCode::INTERNAL_SERVER_ERROR, self);
        error.problem_mut().code = Some("handler.panic".to_owned());
        error
    }
}

thread_local! {
    /// How many [`CatchPanic`] polls are running on this thread (the hook captures only
    /// inside one).
    static CATCHING: Cell<usize> = const { Cell::new(0) };
    /// What the hook captured for the last panic inside a [`CatchPanic`] poll.
    static CAPTURED: RefCell<Option<(Option<String>, String)>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that, for panics inside a [`CatchPanic`] poll,
/// records the location and a backtrace, then calls the hook that was installed before.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) > 0 {
                let location = info.location().map(ToString::to_string);
                let backtrace = Backtrace::force_capture().to_string();
                CAPTURED.with(|captured| *captured.borrow_mut() = Some((location, backtrace)));
            }
            previous(info);
        }));
    });
}

/// Middleware that turns a panic in the layers inside it (guards, interceptors, pipes,
/// extractors, the handler) into a [`HandlerPanic`] error: `500` problem+json (or an
/// [error page](ErrorPages)), rendered by the exception filters, instead of a connection
/// that the server drops.
///
/// # Limits
/// - It catches panics while the handler's future is polled inside it; a panic in a task the
///   handler spawned, in a streamed response body after the handler returned, or in a
///   middleware added before it is not caught.
/// - The backtrace comes from a process-wide panic hook installed by [`CatchPanic::new`]
///   (the hook installed before is still called, so panics are printed as before). A hook set
///   later with `std::panic::set_hook` replaces it: the message is then still caught, without
///   location or backtrace. Capturing a backtrace is slow (milliseconds), which is paid per
///   panic only.
/// - With `panic = "abort"` nothing can be caught.
/// - State the handler shared (a `Mutex` it held) may be poisoned or half-updated, as after
///   any caught panic.
#[derive(Debug, Clone, Copy)]
pub struct CatchPanic {
    _private: (),
}

impl Default for CatchPanic {
    fn default() -> Self {
        CatchPanic::new()
    }
}

impl CatchPanic {
    /// The middleware; installs the panic hook that captures backtraces.
    pub fn new() -> Self {
        install_hook();
        CatchPanic { _private: () }
    }
}

/// Polls the inner future with the hook's capture turned on.
struct Capturing<F>(Pin<Box<F>>);

impl<F: Future> Future for Capturing<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Depth;
        impl Drop for Depth {
            fn drop(&mut self) {
                CATCHING.with(|depth| depth.set(depth.get().saturating_sub(1)));
            }
        }
        CATCHING.with(|depth| depth.set(depth.get() + 1));
        let _depth = Depth;
        // What an earlier panic left (one caught inside a handler, say) is not this poll's.
        CAPTURED.with(|captured| captured.borrow_mut().take());
        self.0.as_mut().poll(cx)
    }
}

/// The text of a panic payload.
fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

impl Middleware for CatchPanic {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let caught = AssertUnwindSafe(Capturing(Box::pin(next.run(request))))
            .catch_unwind()
            .await;
        match caught {
            Ok(response) => Ok(response),
            Err(payload) => {
                let (location, backtrace) = CAPTURED
                    .with(|captured| captured.borrow_mut().take())
                    .map_or((None, None), |(location, backtrace)| {
                        (location, Some(backtrace))
                    });
                Err(HandlerPanic {
                    message: payload_message(payload.as_ref()),
                    location,
                    backtrace,
                }
                .into_error())
            }
        }
    }
}
