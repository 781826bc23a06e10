//! weft: the web framework.
//!
//! An [`App`] holds routes (a radix-tree [`router`]), groups, and the layers
//! around them: [middleware], NestJS-style [guards](crate::guard),
//! [interceptors](crate::interceptor), [pipes](crate::pipe) and
//! [exception filters](crate::filter); [services] injected by type; typed
//! [extractors](crate::extract) and [responses](crate::response). Every rejection is RFC 9457
//! problem+json ([`Problem`]). Beyond plain responses: [cookies] (plain, signed, private),
//! content [negotiation](crate::negotiate) by `Accept`, Server-Sent Events ([sse]),
//! [websocket]s with a broadcast hub, and a production static file server
//! ([static_files]: safe paths, ETags and 304, ranges, precompressed siblings, cache policy),
//! mounted with [`App::static_files`].
//!
//! ```no_run
//! use weft::prelude::*;
//!
//! async fn hello(Path(name): Path<String>) -> String {
//!     format!("hello, {name}")
//! }
//!
//! fn main() -> Result<(), weft::ServeError> {
//!     App::new().get("/hello/{name}", hello).serve("127.0.0.1:8080")
//! }
//! ```
//!
//! # Runtimes
//! [`App::serve`] runs on the runtime chosen by this crate's features: `rt-mio` (the default),
//! `rt-pool`, `rt-smol`, `rt-async-std`, `rt-poll`, `rt-tokio`. When several are enabled the
//! first of tokio, smol, mio, poll, pool, async-std wins (as in `weft_runtime::start`). An
//! app is also a [`Service`](weft_service::service::Service) ([`App::build`]), which any weft
//! runtime, or a user's own loop through `weft-adapters`, can serve.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod app;
pub mod assets;
pub mod backend;
pub mod background;
pub mod client_ip;
pub mod clock;
pub mod compressed_cache;
pub mod compression;
pub mod conditional;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod error;
pub mod error_pages;
pub mod events;
pub mod extract;
pub mod file;
pub mod filter;
pub mod guard;
pub mod handler;
pub mod health;
pub mod interceptor;
pub mod limits;
pub mod logging;
pub mod middleware;
pub mod multipart;
pub mod negotiate;
pub mod pipe;
mod pipeline;
pub mod problem;
pub mod queue;
pub mod rate_limit;
pub mod request_id;
pub mod response;
pub mod router;
pub mod schedule;
pub mod security_headers;
pub mod services;
pub mod sse;
pub mod static_files;
pub mod test;
#[cfg(feature = "tower")]
pub mod tower;
pub mod websocket;

pub use app::{
    App, AppServer, AppService, Group, MatchedPath, Route, RouteInfo, ServeError, Shadowed,
};
pub use error::{Error, HttpError, Result};
pub use problem::{ErrorFormat, FieldError, Problem};
pub use response::{Html, IntoResponse, Json, Redirect, Response, ResponseExt};
pub use services::BuildError;
pub use weft_runtime::{Runtime, ServerConfig, Shutdown};

/// Checks a handler where it is written, so that a mistake is reported on the argument (or
/// return type) at fault, by name, instead of as an unsatisfied `Handler` bound on the whole
/// function where it is registered.
///
/// The function is left unchanged; next to it the attribute emits compile-time assertions,
/// each with the span of what it checks:
/// - every argument but the last implements [`FromRequestParts`](crate::extract::FromRequestParts)
///   (a body extractor such as [`Json`] anywhere but last is refused here);
/// - the last argument implements [`FromRequest`](crate::extract::FromRequest) (either kind);
/// - the return type implements [`IntoOutcome`](crate::response::IntoOutcome);
/// - the returned future is `Send` (rustc then names the value held across an `.await`).
///
/// It applies to free, non-generic `async fn`s: a method (`self`), a generic function or a
/// plain `fn` is refused with an error saying so. It costs nothing at run time, and may stay
/// on in release builds.
///
/// ```
/// use weft::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct NewUser { name: String }
///
/// #[weft::debug_handler]
/// async fn create(Path(team): Path<u32>, Json(user): Json<NewUser>) -> String {
///     format!("{} joins team {team}", user.name)
/// }
/// # let _ = App::new().post("/teams/{team}/users", create);
/// ```
///
/// A non-extractor argument is reported on that argument:
///
/// ```compile_fail
/// struct Config;
///
/// #[weft::debug_handler]
/// async fn show(config: Config, body: String) -> String {
///     // error: argument `config: Config` of handler `show` is not an extractor of the
///     //        request head: `Config` does not implement `FromRequestParts`
///     body
/// }
/// ```
pub use weft_macros::debug_handler;

/// Makes a cron job of an `async fn`: `#[weft::cron("0 */5 * * *", tz = "Europe/Paris")]`.
///
/// The function becomes one of the same name that returns its
/// [`CronTask`](crate::schedule::CronTask) (the job named after the function, its expression
/// and its time zone), which [`App::schedule`](crate::App::schedule) takes. The `async fn`
/// takes no arguments and returns `()` or `Result<(), E>` with `E: Display`. Arguments after
/// the expression: `tz = "Europe/Paris"` (an IANA time zone; UTC without it) and `name =
/// "job"` (the job's name; the function's without it). The expression's shape (5 to 7
/// fields, or an `@` alias) is checked at compile time, its fields and the zone when the task
/// is added: a wrong one fails [`App::build`](crate::App::build).
///
/// ```
/// use weft::prelude::*;
///
/// #[weft::cron("0 */5 * * *", tz = "Europe/Paris")]
/// async fn report() -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// let app = App::new().schedule(report);
/// # app.build().expect("a valid schedule");
/// ```
pub use weft_macros::cron;

/// The request type of the framework.
pub type Request = http::Request<weft_service::body::Body>;

/// The body type, streaming both ways.
pub use weft_service::body::Body;

/// What most apps import: `use weft::prelude::*;`.
pub mod prelude {
    pub use crate::cookies::Cookies;
    pub use crate::extract::{Extension, Form, FromRequest, FromRequestParts, Path, Query};
    pub use crate::guard::{Guard, GuardExt};
    pub use crate::interceptor::{Interceptor, Proceed};
    pub use crate::middleware::{Middleware, Next};
    pub use crate::negotiate::{Accept, Negotiate};
    pub use crate::services::{Inject, Scoped, State};
    pub use crate::sse::{Event, Sse};
    pub use crate::websocket::WebSocketUpgrade;
    pub use crate::{
        App, Body, Error, Group, Html, IntoResponse, Json, Problem, Redirect, Request, Response,
        ResponseExt, Route,
    };
    pub use http::{HeaderMap, Method, StatusCode};
}
