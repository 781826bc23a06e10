//! [`Query`]: the query string deserialized with serde.

use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::FromRequestParts;
use crate::error::{Error, HttpError};
use crate::problem::Problem;

/// The query string (`?page=2&sort=name`) deserialized into `T`; no query string is an empty
/// one, so a struct whose fields all have defaults or are `Option` always extracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why the query string did not fit: 400.
#[derive(Debug)]
pub struct QueryRejection(pub serde_urlencoded::de::Error);

impl std::fmt::Display for QueryRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the query string does not match: {}", self.0)
    }
}

impl std::error::Error for QueryRejection {}

impl HttpError for QueryRejection {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn problem(&self) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST)
            .with_code("query.invalid")
            .with_detail(self.to_string())
    }
}

impl<T: DeserializeOwned + Send + 'static> FromRequestParts for Query<T> {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        Query::from_query(parts.uri.query().unwrap_or("")).map_err(Error::http)
    }
}

impl<T: DeserializeOwned> Query<T> {
    /// Deserializes a query string (without the `?`).
    pub fn from_query(query: &str) -> Result<Self, QueryRejection> {
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(QueryRejection)
    }
}
