//! Extractors: typed pieces of a request that handlers take as arguments.
//!
//! A handler is an async function whose arguments are extractors, in any order, except that
//! the one consuming the body (a [`FromRequest`] such as [`Json`](crate::Json), [`Form`] or
//! [`Multipart`](crate::multipart::Multipart)) comes last:
//!
//! ```
//! use weft::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct NewUser { name: String }
//!
//! async fn create(Path(team): Path<u32>, Json(user): Json<NewUser>) -> String {
//!     format!("{} joins team {team}", user.name)
//! }
//! # let _ = App::new().post("/teams/{team}/users", create);
//! ```
//!
//! Every extractor's rejection is a problem+json response with the right status (400, 413,
//! 415, ...). Extractors that need something registered with the app (a service, state, a
//! cookie key) declare it ([`FromRequestParts::declare`]), so a missing registration fails
//! when the app is built, naming the route and the type, never at the first request.

mod basic;
pub(crate) mod body;
mod path;
mod query;

use std::any::TypeId;
use std::future::Future;

use http::request::Parts;

pub use basic::Extension;
pub use body::{BodyLimits, BodyRejection, Form, FormRejection, JsonRejection};
pub use path::{Path, PathParams, PathRejection};
pub use query::{Query, QueryRejection};

use crate::Request;
use crate::error::Error;

/// Something taken from a request's head (method, URI, headers, extensions): any number of
/// these may come before the last argument of a handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor a handler can take",
    label = "this argument cannot be extracted from a request",
    note = "handler arguments implement `FromRequestParts` (Path, Query, HeaderMap, Inject<T>, State<T>, Cookies, ...); only the last argument may read the body (Json<T>, Form<T>, Bytes, String, Multipart)"
)]
pub trait FromRequestParts: Sized + Send + 'static {
    /// Extracts the value, or rejects the request.
    fn from_request_parts(parts: &mut Parts) -> impl Future<Output = Result<Self, Error>> + Send;

    /// Declares what the extractor needs registered with the app (services, state), checked
    /// when the app is built.
    fn declare(needs: &mut Needs) {
        let _ = needs;
    }
}

/// Something taken from the whole request, body included: a handler's last argument.
///
/// `M` tells the two kinds apart (every [`FromRequestParts`] is also a `FromRequest`); leave
/// it to inference.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor a handler can take as its last argument",
    label = "this argument cannot be extracted from a request",
    note = "the last argument may read the body (Json<T>, Form<T>, Bytes, String, Multipart, Request) or be any `FromRequestParts` extractor"
)]
pub trait FromRequest<M = ViaRequest>: Sized + Send + 'static {
    /// Extracts the value, or rejects the request.
    fn from_request(request: Request) -> impl Future<Output = Result<Self, Error>> + Send;

    /// Declares what the extractor needs registered with the app.
    fn declare(needs: &mut Needs) {
        let _ = needs;
    }
}

/// Marks a [`FromRequest`] that reads the body.
#[derive(Debug)]
pub enum ViaRequest {}
/// Marks a [`FromRequest`] that is a [`FromRequestParts`].
#[derive(Debug)]
pub enum ViaParts {}

impl<T: FromRequestParts> FromRequest<ViaParts> for T {
    async fn from_request(request: Request) -> Result<Self, Error> {
        let (mut parts, _body) = request.into_parts();
        T::from_request_parts(&mut parts).await
    }

    fn declare(needs: &mut Needs) {
        T::declare(needs);
    }
}

/// An optional extractor: `None` where the extractor would reject.
impl<T: FromRequestParts> FromRequestParts for Option<T> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(T::from_request_parts(parts).await.ok())
    }
    // No declaration: an optional service may be missing.
}

/// The extractor's rejection as a value, for handlers that answer it themselves.
impl<T: FromRequestParts> FromRequestParts for Result<T, Error> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(T::from_request_parts(parts).await)
    }

    fn declare(needs: &mut Needs) {
        T::declare(needs);
    }
}

/// What a handler's extractors need registered with the app.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    items: Vec<Need>,
}

/// One registration an extractor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The type that must be registered.
    pub type_id: TypeId,
    /// Its name, for error messages.
    pub type_name: &'static str,
    /// How it is registered, for the hint in the error message.
    pub hint: &'static str,
}

impl Needs {
    /// Declares that `T` must be registered; `hint` says how (`"App::singleton"`).
    pub fn need<T: 'static>(&mut self, hint: &'static str) {
        let need = Need {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
            hint,
        };
        if !self.items.contains(&need) {
            self.items.push(need);
        }
    }

    /// Everything declared.
    pub fn iter(&self) -> impl Iterator<Item = &Need> {
        self.items.iter()
    }

    /// Adds what `other` needs.
    pub fn extend(&mut self, other: &Needs) {
        for need in &other.items {
            if !self.items.contains(need) {
                self.items.push(need.clone());
            }
        }
    }
}
