//! Extractors that read the body: [`Json`], [`Form`], `Bytes`, `String`, `Body` and the whole
//! `Request`, each bounded by [`BodyLimits`].

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use weft_service::body::{Body, BodyError};

use super::{FromRequest, ViaRequest};
use crate::Request;
use crate::error::{Error, HttpError};
use crate::problem::Problem;
use crate::response::Json;

/// How many body bytes the extractors read at most, per kind; set with
/// [`App::body_limits`](crate::App::body_limits). Over the limit: `413 Content Too Large`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyLimits {
    /// [`Json`] bodies: 1 MiB by default.
    pub json: usize,
    /// [`Form`] bodies: 64 KiB by default.
    pub form: usize,
    /// `Bytes` and `String` bodies: 2 MiB by default.
    pub bytes: usize,
    /// [`Multipart`](crate::multipart::Multipart) bodies: parts, fields, files and the total
    /// (see [`MultipartLimits`](crate::multipart::MultipartLimits) for the defaults).
    pub multipart: crate::multipart::MultipartLimits,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            json: 1024 * 1024,
            form: 64 * 1024,
            bytes: 2 * 1024 * 1024,
            multipart: crate::multipart::MultipartLimits::default(),
        }
    }
}

/// The limits of this request: a `BodyLimits` extension a middleware set for its routes, else
/// the app's, else the defaults.
pub(crate) fn limits(parts: &Parts) -> &BodyLimits {
    static DEFAULT: std::sync::OnceLock<BodyLimits> = std::sync::OnceLock::new();
    parts
        .extensions
        .get::<BodyLimits>()
        .or_else(|| crate::services::AppContext::of(parts).map(|context| &context.body_limits))
        .unwrap_or_else(|| DEFAULT.get_or_init(BodyLimits::default))
}

/// Why a JSON body was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum JsonRejection {
    /// `Content-Type` is not `application/json` (or `+json`): 415.
    UnsupportedMediaType,
    /// The body is longer than the limit: 413.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON: 400.
    Syntax(serde_json::Error),
    /// The JSON does not fit the expected type (a missing or mistyped field): 422.
    Data(serde_json::Error),
    /// The body could not be read (the client stopped sending): 400.
    Read(BodyError),
}

impl std::fmt::Display for JsonRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonRejection::UnsupportedMediaType => {
                f.write_str("expected a request with `Content-Type: application/json`")
            }
            JsonRejection::TooLarge { limit } => {
                write!(f, "the JSON body is larger than the limit of {limit} bytes")
            }
            JsonRejection::Syntax(error) => write!(f, "the body is not valid JSON: {error}"),
            JsonRejection::Data(error) => write!(f, "the JSON does not match: {error}"),
            JsonRejection::Read(error) => write!(f, "the body could not be read: {error}"),
        }
    }
}

impl std::error::Error for JsonRejection {}

impl HttpError for JsonRejection {
    fn status(&self) -> StatusCode {
        match self {
            JsonRejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            JsonRejection::Syntax(_) | JsonRejection::Read(_) => StatusCode::BAD_REQUEST,
            JsonRejection::Data(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn problem(&self) -> Problem {
        let code = match self {
            JsonRejection::UnsupportedMediaType => "json.media_type",
            JsonRejection::TooLarge { .. } => "json.too_large",
            JsonRejection::Syntax(_) => "json.syntax",
            JsonRejection::Data(_) => "json.data",
            JsonRejection::Read(_) => "body.read",
        };
        let problem = Problem::new(self.status())
            .with_code(code)
            .with_detail(self.to_string());
        match self {
            // serde_json names the path of the failing field in its message ("missing field
            // `name`"); the line and column say where.
            JsonRejection::Data(error) => problem.with_field(
                format!("line {} column {}", error.line(), error.column()),
                error.to_string(),
            ),
            _ => problem,
        }
    }
}

/// Whether `headers` say the body is JSON: `application/json` or `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    // The common case without parsing: what nearly every client sends.
    if headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"application/json"))
    {
        return true;
    }
    let Some(mime) = content_type(headers) else {
        return false;
    };
    mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

fn content_type(headers: &HeaderMap) -> Option<mime::Mime> {
    headers.get(CONTENT_TYPE)?.to_str().ok()?.parse().ok()
}

async fn read(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    body.collect(limit).await
}

impl<T: DeserializeOwned + Send + 'static> FromRequest<ViaRequest> for Json<T> {
    async fn from_request(request: Request) -> Result<Self, Error> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            return Err(Error::http(JsonRejection::UnsupportedMediaType));
        }
        let limit = limits(&parts).json;
        let bytes = read(body, limit).await.map_err(|error| match error {
            BodyError::TooLarge => Error::http(JsonRejection::TooLarge { limit }),
            other => Error::http(JsonRejection::Read(other)),
        })?;
        Json::from_bytes(&bytes).map_err(Error::http)
    }
}

impl<T: DeserializeOwned> Json<T> {
    /// Parses a JSON document, telling syntax errors (400) from shape errors (422).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JsonRejection> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = T::deserialize(&mut deserializer).map_err(classify)?;
        deserializer.end().map_err(JsonRejection::Syntax)?;
        Ok(Json(value))
    }
}

fn classify(error: serde_json::Error) -> JsonRejection {
    match error.classify() {
        serde_json::error::Category::Data => JsonRejection::Data(error),
        _ => JsonRejection::Syntax(error),
    }
}

/// A `application/x-www-form-urlencoded` body deserialized into `T`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form<T>(pub T);

/// Why a form body was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum FormRejection {
    /// `Content-Type` is not `application/x-www-form-urlencoded`: 415.
    UnsupportedMediaType,
    /// The body is longer than the limit: 413.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The form does not fit the expected type: 400.
    Invalid(serde_urlencoded::de::Error),
    /// The body could not be read: 400.
    Read(BodyError),
}

impl std::fmt::Display for FormRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormRejection::UnsupportedMediaType => f.write_str(
                "expected a request with `Content-Type: application/x-www-form-urlencoded`",
            ),
            FormRejection::TooLarge { limit } => {
                write!(f, "the form is larger than the limit of {limit} bytes")
            }
            FormRejection::Invalid(error) => write!(f, "the form does not match: {error}"),
            FormRejection::Read(error) => write!(f, "the body could not be read: {error}"),
        }
    }
}

impl std::error::Error for FormRejection {}

impl HttpError for FormRejection {
    fn status(&self) -> StatusCode {
        match self {
            FormRejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FormRejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            FormRejection::Invalid(_) | FormRejection::Read(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn problem(&self) -> Problem {
        let code = match self {
            FormRejection::UnsupportedMediaType => "form.media_type",
            FormRejection::TooLarge { .. } => "form.too_large",
            FormRejection::Invalid(_) => "form.invalid",
            FormRejection::Read(_) => "body.read",
        };
        Problem::new(self.status())
            .with_code(code)
            .with_detail(self.to_string())
    }
}

impl<T: DeserializeOwned + Send + 'static> FromRequest<ViaRequest> for Form<T> {
    async fn from_request(request: Request) -> Result<Self, Error> {
        let (parts, body) = request.into_parts();
        let is_form = content_type(&parts.headers).is_some_and(|mime| {
            mime.type_() == mime::APPLICATION && mime.subtype() == mime::WWW_FORM_URLENCODED
        });
        if !is_form {
            return Err(Error::http(FormRejection::UnsupportedMediaType));
        }
        let limit = limits(&parts).form;
        let bytes = read(body, limit).await.map_err(|error| match error {
            BodyError::TooLarge => Error::http(FormRejection::TooLarge { limit }),
            other => Error::http(FormRejection::Read(other)),
        })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|error| Error::http(FormRejection::Invalid(error)))
    }
}

/// Why a raw body was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyRejection {
    /// Longer than the limit: 413.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not UTF-8, for a `String`: 400.
    NotUtf8,
    /// The body could not be read: 400.
    Read(BodyError),
}

impl std::fmt::Display for BodyRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyRejection::TooLarge { limit } => {
                write!(f, "the body is larger than the limit of {limit} bytes")
            }
            BodyRejection::NotUtf8 => f.write_str("the body is not UTF-8 text"),
            BodyRejection::Read(error) => write!(f, "the body could not be read: {error}"),
        }
    }
}

impl std::error::Error for BodyRejection {}

impl HttpError for BodyRejection {
    fn status(&self) -> StatusCode {
        match self {
            BodyRejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn problem(&self) -> Problem {
        let code = match self {
            BodyRejection::TooLarge { .. } => "body.too_large",
            BodyRejection::NotUtf8 => "body.not_utf8",
            BodyRejection::Read(_) => "body.read",
        };
        Problem::new(self.status())
            .with_code(code)
            .with_detail(self.to_string())
    }
}

impl FromRequest<ViaRequest> for Bytes {
    async fn from_request(request: Request) -> Result<Self, Error> {
        let (parts, body) = request.into_parts();
        let limit = limits(&parts).bytes;
        read(body, limit).await.map_err(|error| match error {
            BodyError::TooLarge => Error::http(BodyRejection::TooLarge { limit }),
            other => Error::http(BodyRejection::Read(other)),
        })
    }
}

impl FromRequest<ViaRequest> for String {
    async fn from_request(request: Request) -> Result<Self, Error> {
        let bytes = Bytes::from_request(request).await?;
        String::from_utf8(bytes.into()).map_err(|_| Error::http(BodyRejection::NotUtf8))
    }
}

/// The body as a stream, unread: for handlers that read it themselves.
impl FromRequest<ViaRequest> for Body {
    async fn from_request(request: Request) -> Result<Self, Error> {
        Ok(request.into_body())
    }
}

/// The whole request.
impl FromRequest<ViaRequest> for Request {
    async fn from_request(request: Request) -> Result<Self, Error> {
        Ok(request)
    }
}
