//! Extractors of the request head that need no parsing: method, URI, headers, connection
//! facts, extensions.

use http::request::Parts;
use http::{HeaderMap, Method, Uri, Version};
use weft_service::request::{RequestTarget, TargetForm};
use weft_service::runtime::ShutdownSignal;
use weft_service::service::ConnectionInfo;

use super::FromRequestParts;
use crate::error::Error;

impl FromRequestParts for Method {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.method.clone())
    }
}

impl FromRequestParts for Uri {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.uri.clone())
    }
}

impl FromRequestParts for Version {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.version)
    }
}

impl FromRequestParts for HeaderMap {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts.headers.clone())
    }
}

impl FromRequestParts for ConnectionInfo {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        // In-process callers (a user's own loop, tests) may have no connection: an empty one.
        Ok(parts
            .extensions
            .get::<ConnectionInfo>()
            .cloned()
            .unwrap_or_default())
    }
}

impl FromRequestParts for RequestTarget {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts
            .extensions
            .get::<RequestTarget>()
            .cloned()
            .unwrap_or_else(|| {
                RequestTarget::from_host(
                    http::uri::Scheme::HTTP,
                    parts.headers.get(http::header::HOST).cloned(),
                    TargetForm::Origin,
                )
            }))
    }
}

impl FromRequestParts for ShutdownSignal {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Ok(parts
            .extensions
            .get::<ShutdownSignal>()
            .cloned()
            .unwrap_or_else(ShutdownSignal::never))
    }
}

/// A value a middleware put in the request's extensions (`request.extensions_mut().insert`).
///
/// Rejected with `500` when absent: that is a bug of the app (a middleware missing on the
/// route), not of the client, and the problem detail names the type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequestParts for Extension<T> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        match parts.extensions.get::<T>() {
            Some(value) => Ok(Extension(value.clone())),
            None => {
                let name = std::any::type_name::<T>();
                tracing::error!(
                    extension = name,
                    "a handler needs an extension no middleware set"
                );
                Err(Error::from_problem(
                    crate::Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR)
                        .with_code("extension.missing")
                        .with_detail(format!(
                            "the request has no `{name}` extension: is the middleware that sets it on this route?"
                        )),
                ))
            }
        }
    }
}

impl<T> std::ops::Deref for Extension<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
