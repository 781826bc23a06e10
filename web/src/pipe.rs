//! Pipes: validate and transform a route's inputs before the handler sees them (NestJS's
//! pipes). A pipe works on one named input, a path parameter or a query parameter; every
//! failing input of a request is reported together, as `400` problem details listing each
//! field. Struct validation with per-field rules is the [`Valid`] extractor (`garde`).

use http::StatusCode;

use crate::Request;
use crate::error::Error;
use crate::extract::{Form, FromRequest, Needs, Path, PathParams, Query};
use crate::problem::{FieldError, Problem};
use crate::response::Json;

/// Transforms (or refuses) one input's text. `None` is an absent input.
pub trait Pipe: Send + Sync + 'static {
    /// The new value, or why the value is refused.
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String>;
}

/// Which input a pipe works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A path parameter by name (`{id}`).
    Path(String),
    /// A query parameter by name.
    Query(String),
}

impl Input {
    /// A path parameter.
    pub fn path(name: &str) -> Self {
        Input::Path(name.to_owned())
    }

    /// A query parameter.
    pub fn query(name: &str) -> Self {
        Input::Query(name.to_owned())
    }

    fn name(&self) -> &str {
        match self {
            Input::Path(name) | Input::Query(name) => name,
        }
    }
}

/// Refuses a value that is not an integer (after trimming nothing: `" 1"` is refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseInt;

impl Pipe for ParseInt {
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String> {
        match value {
            Some(text) => match text.parse::<i64>() {
                Ok(number) => Ok(Some(number.to_string())),
                Err(_) => Err(format!("`{text}` is not an integer")),
            },
            None => Err("is required".to_owned()),
        }
    }
}

/// Refuses a value that is not a UUID; writes it in its canonical lower-case form.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseUuid;

impl Pipe for ParseUuid {
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String> {
        match value {
            Some(text) => match uuid::Uuid::parse_str(&text) {
                Ok(id) => Ok(Some(id.hyphenated().to_string())),
                Err(_) => Err(format!("`{text}` is not a UUID")),
            },
            None => Err("is required".to_owned()),
        }
    }
}

/// Gives an absent (or empty) input a value.
#[derive(Debug, Clone)]
pub struct DefaultValue(pub String);

impl Pipe for DefaultValue {
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String> {
        Ok(Some(
            value
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| self.0.clone()),
        ))
    }
}

/// Removes leading and trailing whitespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim;

impl Pipe for Trim {
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String> {
        Ok(value.map(|v| v.trim().to_owned()))
    }
}

/// Escapes HTML's special characters, for values shown back in pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlEscape;

impl Pipe for HtmlEscape {
    fn transform(&self, value: Option<String>) -> Result<Option<String>, String> {
        Ok(value.map(|v| crate::problem::escape_html(&v)))
    }
}

/// Applies the pipes to a request's inputs, in order; all failures are reported together.
pub(crate) fn apply(
    pipes: &[(Input, std::sync::Arc<dyn Pipe>)],
    request: &mut Request,
) -> Result<(), Error> {
    if pipes.is_empty() {
        return Ok(());
    }
    let mut query: Option<Vec<(String, String)>> = None;
    let mut failures = Vec::new();
    for (input, pipe) in pipes {
        if failures
            .iter()
            .any(|f: &FieldError| f.field == input.name())
        {
            continue;
        }
        match input {
            Input::Path(name) => {
                let params = request.extensions_mut().get_mut::<PathParams>();
                let current = params.as_ref().and_then(|p| p.get(name)).map(str::to_owned);
                match pipe.transform(current) {
                    Ok(Some(value)) => {
                        if let Some(params) = params {
                            params.set(name, value);
                        }
                    }
                    Ok(None) => {}
                    Err(message) => failures.push(FieldError::new(name.clone(), message)),
                }
            }
            Input::Query(name) => {
                let pairs = query.get_or_insert_with(|| {
                    serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
                        .unwrap_or_default()
                });
                let position = pairs.iter().position(|(k, _)| k == name);
                let current = position.map(|i| pairs[i].1.clone());
                match pipe.transform(current) {
                    Ok(Some(value)) => match position {
                        Some(i) => pairs[i].1 = value,
                        None => pairs.push((name.clone(), value)),
                    },
                    Ok(None) => {
                        if let Some(i) = position {
                            pairs.remove(i);
                        }
                    }
                    Err(message) => failures.push(FieldError::new(name.clone(), message)),
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(Error::from_problem(
            Problem::new(StatusCode::BAD_REQUEST)
                .with_code("validation.failed")
                .with_detail("some inputs are invalid")
                .with_fields(failures),
        ));
    }
    if let Some(pairs) = query {
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let mut parts = request.uri().clone().into_parts();
        let path = parts
            .path_and_query
            .as_ref()
            .map_or("/", |pq| pq.path())
            .to_owned();
        let new = if encoded.is_empty() {
            path
        } else {
            format!("{path}?{encoded}")
        };
        if let Ok(pq) = new.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    Ok(())
}

/// An extracted value whose struct passed its `garde` validation rules; otherwise `400`
/// listing every failing field: `Valid<Json<NewUser>>`, `Valid<Form<T>>`, `Valid<Query<T>>`,
/// `Valid<Path<T>>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Valid<E>(pub E);

/// An extractor holding a value that can be validated.
pub trait Validated {
    /// The validated type.
    type Inner: garde::Validate<Context = ()>;
    /// The value.
    fn inner(&self) -> &Self::Inner;
}

macro_rules! validated {
    ($($wrapper:ident),*) => {$(
        impl<T: garde::Validate<Context = ()>> Validated for $wrapper<T> {
            type Inner = T;
            fn inner(&self) -> &T {
                &self.0
            }
        }
    )*};
}

validated!(Json, Form, Query, Path);

/// The `400` problem for a failed `garde` validation, one field per failure.
pub fn validation_problem(report: &garde::Report) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST)
        .with_code("validation.failed")
        .with_detail("some fields are invalid")
        .with_fields(
            report.iter().map(|(path, error)| {
                FieldError::new(path.to_string(), error.message().to_string())
            }),
        )
}

impl<E, M> FromRequest<(M, Valid<()>)> for Valid<E>
where
    E: FromRequest<M> + Validated,
    M: Send + 'static,
{
    async fn from_request(request: Request) -> Result<Self, Error> {
        let value = E::from_request(request).await?;
        match garde::Validate::validate(value.inner()) {
            Ok(()) => Ok(Valid(value)),
            Err(report) => Err(Error::from_problem(validation_problem(&report))),
        }
    }

    fn declare(needs: &mut Needs) {
        E::declare(needs);
    }
}
