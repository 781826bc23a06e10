//! RFC 9457 problem details: the one error format of the framework.
//!
//! Every rejection weft makes (a route not found, a method not allowed, a body too large, a
//! field that failed validation, a guard that said no) and every error a handler returns is
//! answered as `application/problem+json` by default, so that clients parse one shape. Page
//! routes can switch to HTML ([`ErrorFormat::Html`]).

use std::fmt;

use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use weft_service::body::Body;

use crate::response::Response;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: a machine-readable `code`, a human `title` and `detail`, and the
/// fields that failed, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type: the status's reason phrase by default.
    pub title: String,
    /// The HTTP status code.
    #[serde(serialize_with = "serialize_status")]
    pub status: StatusCode,
    /// What went wrong with this request, for a human.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A stable, machine-readable code (`"json.syntax"`, `"route.not_found"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The request path the problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every input field that failed, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One failing input field of a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where the field is: `"id"`, `"address.city"`, `"items[2]"`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A failing `field` and why.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem with `status`, titled with its reason phrase, and coded with it in snake
    /// case (`"not_found"`) until a more specific code is set.
    pub fn new(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        Problem {
            kind: "about:blank".to_owned(),
            title: title.to_owned(),
            status,
            detail: None,
            code: Some(status_code_name(title)),
            instance: None,
            errors: Vec::new(),
        }
    }

    /// Sets the human explanation.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the problem type URI.
    pub fn with_type(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Adds a failing field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError::new(field, message));
        self
    }

    /// Adds failing fields.
    pub fn with_fields(mut self, fields: impl IntoIterator<Item = FieldError>) -> Self {
        self.errors.extend(fields);
        self
    }

    /// The problem as a JSON document.
    pub fn to_json(&self) -> Vec<u8> {
        // A Problem holds only strings, numbers and lists: serializing it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The problem as a small HTML page (names and messages escaped).
    pub fn to_html(&self) -> String {
        let mut page = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{status} {title}</title></head>\n<body><h1>{status} {title}</h1>\n",
            status = self.status.as_u16(),
            title = escape_html(&self.title)
        );
        if let Some(detail) = &self.detail {
            page.push_str(&format!("<p>{}</p>\n", escape_html(detail)));
        }
        if !self.errors.is_empty() {
            page.push_str("<ul>\n");
            for error in &self.errors {
                page.push_str(&format!(
                    "<li><strong>{}</strong>: {}</li>\n",
                    escape_html(&error.field),
                    escape_html(&error.message)
                ));
            }
            page.push_str("</ul>\n");
        }
        page.push_str("</body></html>\n");
        page
    }

    /// The problem as a response in `format`.
    pub fn to_response(&self, format: ErrorFormat) -> Response {
        let (body, content_type) = match format {
            ErrorFormat::ProblemJson => (Body::from(self.to_json()), PROBLEM_JSON),
            ErrorFormat::Html => (Body::from(self.to_html()), "text/html; charset=utf-8"),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for error in &self.errors {
            write!(f, "; {}: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// `"Not Found"` → `"not_found"`, `"I'm a teapot"` → `"im_a_teapot"`.
fn status_code_name(reason: &str) -> String {
    let mut name = String::with_capacity(reason.len());
    for c in reason.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if c == ' ' || c == '-' {
            name.push('_');
        }
    }
    name
}

/// How errors are rendered: problem+json (the default, for APIs) or an HTML page (for page
/// routes, set per route, group or app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    /// `application/problem+json` (RFC 9457).
    #[default]
    ProblemJson,
    /// A small `text/html` page with the same facts.
    Html,
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_rfc_9457_members() {
        let problem = Problem::new(StatusCode::BAD_REQUEST)
            .with_code("json.syntax")
            .with_detail("expected value at line 1")
            .with_field("id", "not a number");
        let value: serde_json::Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(value["type"], "about:blank");
        assert_eq!(value["title"], "Bad Request");
        assert_eq!(value["status"], 400);
        assert_eq!(value["code"], "json.syntax");
        assert_eq!(value["errors"][0]["field"], "id");
        assert!(value.get("instance").is_none());
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let page = Problem::new(StatusCode::NOT_FOUND)
            .with_detail("<script>")
            .to_html();
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }
}
