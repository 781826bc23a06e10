//! Content negotiation by `Accept` (RFC 9110 §12.5.1): one resource, several representations,
//! the client's preference picks.
//!
//! - [`negotiate`] picks one of the offered media types for an `Accept` header;
//! - [`Accept`] is the parsed header as an extractor, with [`Accept::choose`] and
//!   [`Accept::respond`], which answers a [`Negotiate`] (several representations) with the
//!   preferred one, or `406 Not Acceptable` problem+json (code `negotiate.not_acceptable`)
//!   listing what is offered. Either way the response carries `Vary: Accept`, so caches keep
//!   one copy per `Accept`.
//!
//! ```
//! use weft::negotiate::{Accept, Negotiate};
//!
//! async fn user(accept: Accept) -> weft::Result<weft::Response> {
//!     let user = serde_json::json!({ "name": "ada" });
//!     accept.respond(
//!         Negotiate::new()
//!             .json(user)
//!             .html("<p>ada</p>")
//!             .text("ada"),
//!     )
//! }
//! # let _ = weft::App::new().get("/user", user).build().unwrap();
//! ```
//!
//! # Matching rules
//! Each offered type gets the weight (`q`) of the most specific range matching it: `type/sub`
//! with parameters, then `type/sub`, then `type/*`, then `*/*` (§12.5.1). `q=0` means "not
//! this"; the offered type with the highest weight wins, and among equal weights the one
//! offered first (the server's preference). Malformed entries (no `/`, a bad `q`) are ignored;
//! an absent header, or one with no valid entry at all, accepts anything.

use http::StatusCode;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue, VARY};
use http::request::Parts;
use serde::Serialize;
use weft_service::body::Body;

use crate::error::{Error, HttpError};
use crate::extract::FromRequestParts;
use crate::problem::Problem;
use crate::response::{IntoResponse, Json, Response};

/// One entry of an `Accept` header: a media range and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// The type, lowercase; `*` for any.
    pub kind: String,
    /// The subtype, lowercase; `*` for any.
    pub subtype: String,
    /// Parameters other than `q`, names lowercase, values as sent (unquoted).
    pub params: Vec<(String, String)>,
    /// The weight in thousandths: `1000` is `q=1` (the default), `0` is "not acceptable".
    pub q: u16,
}

impl MediaRange {
    /// How specific the range is: `*/*` 0, `type/*` 1, `type/sub` 2, plus one per parameter.
    pub fn specificity(&self) -> usize {
        match (self.kind.as_str(), self.subtype.as_str()) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2 + self.params.len(),
        }
    }

    /// Whether the range covers the media type `offered` (parsed the same way): types
    /// compared case-insensitively, and every parameter of the range present in `offered`.
    pub fn matches(&self, offered: &MediaRange) -> bool {
        let kind = self.kind == "*" || self.kind == offered.kind;
        let subtype = self.subtype == "*" || self.subtype == offered.subtype;
        kind && subtype
            && self.params.iter().all(|(name, value)| {
                offered
                    .params
                    .iter()
                    .any(|(n, v)| n == name && v.eq_ignore_ascii_case(value))
            })
    }
}

/// Parses one media range (`text/html;level=1;q=0.5`), or `None` when malformed.
fn parse_range(entry: &str) -> Option<MediaRange> {
    let mut pieces = entry.split(';');
    let essence = pieces.next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if !is_token(kind) || !is_token(subtype) || (kind == "*" && subtype != "*") {
        return None;
    }
    let mut range = MediaRange {
        kind: kind.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        params: Vec::new(),
        q: 1000,
    };
    for param in pieces {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = param.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if !is_token(&name) {
            return None;
        }
        if name == "q" {
            range.q = parse_q(value)?;
            // Parameters after `q` are accept-extensions (RFC 7231), not part of the range.
            break;
        }
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        range.params.push((name, value.to_owned()));
    }
    Some(range)
}

/// RFC 9110 §12.4.2: `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, digit) in fraction.bytes().enumerate() {
        thousandths += u16::from(digit - b'0') * [100, 10, 1][i];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every valid entry of an `Accept` field value, in order; malformed entries are skipped.
pub fn parse_accept(value: &str) -> Vec<MediaRange> {
    value.split(',').filter_map(parse_range).collect()
}

/// The weight the ranges give `offered`: that of the most specific matching range (the first
/// of equal specificity), or `0` when none matches.
fn weight(ranges: &[MediaRange], offered: &MediaRange) -> u16 {
    let mut best: Option<&MediaRange> = None;
    for range in ranges.iter().filter(|r| r.matches(offered)) {
        if best.is_none_or(|b| range.specificity() > b.specificity()) {
            best = Some(range);
        }
    }
    best.map_or(0, |r| r.q)
}

/// Picks from `offered` by `ranges`; an empty `ranges` accepts anything (the first offered).
fn choose<'a>(ranges: &[MediaRange], offered: &[&'a str]) -> Option<&'a str> {
    if ranges.is_empty() {
        return offered.first().copied();
    }
    let mut best: Option<(&'a str, u16)> = None;
    for &media_type in offered {
        let Some(parsed) = parse_range(media_type) else {
            continue;
        };
        let q = weight(ranges, &parsed);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((media_type, q));
        }
    }
    best.map(|(media_type, _)| media_type)
}

/// The offered media type the `Accept` header prefers (see the [module docs](self) for the
/// rules), or `None` when it accepts none of them. No header accepts the first offered.
pub fn negotiate<'a>(accept: Option<&HeaderValue>, offered: &[&'a str]) -> Option<&'a str> {
    let ranges = accept
        .map(|value| parse_accept(&String::from_utf8_lossy(value.as_bytes())))
        .unwrap_or_default();
    choose(&ranges, offered)
}

/// The request's `Accept` header, parsed (every `Accept` field, in order): an extractor that
/// never rejects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    ranges: Vec<MediaRange>,
}

impl Accept {
    /// Parses an `Accept` field value.
    pub fn parse(value: &str) -> Self {
        Accept {
            ranges: parse_accept(value),
        }
    }

    /// The valid entries; empty when the client accepts anything.
    pub fn ranges(&self) -> &[MediaRange] {
        &self.ranges
    }

    /// The offered media type the client prefers, or `None` when it accepts none.
    pub fn choose<'a>(&self, offered: &[&'a str]) -> Option<&'a str> {
        choose(&self.ranges, offered)
    }

    /// The representation of `negotiate` the client prefers, with `Content-Type` and
    /// `Vary: Accept`; a [`NotAcceptable`] error (`406`, also with `Vary: Accept`) when it
    /// accepts none.
    // The crate's `Error` is what every handler returns; its size is its own (see error.rs).
    #[allow(clippy::result_large_err)]
    pub fn respond(&self, mut negotiate: Negotiate) -> Result<Response, Error> {
        let offered: Vec<&str> = negotiate
            .representations
            .iter()
            .map(|r| r.media_type.as_str())
            .collect();
        let vary = HeaderValue::from_static("accept");
        let chosen = self
            .choose(&offered)
            .and_then(|chosen| offered.iter().position(|o| *o == chosen));
        let Some(at) = chosen else {
            let offered = offered.iter().map(|s| (*s).to_owned()).collect();
            return Err(Error::http(NotAcceptable { offered }).with_header(VARY, vary));
        };
        let representation = negotiate.representations.swap_remove(at);
        let mut response = (representation.render)();
        if let Ok(value) = HeaderValue::from_str(&representation.media_type) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response.headers_mut().append(VARY, vary);
        Ok(response)
    }
}

impl FromRequestParts for Accept {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        let ranges = parts
            .headers
            .get_all(ACCEPT)
            .iter()
            .flat_map(|value| parse_accept(&String::from_utf8_lossy(value.as_bytes())))
            .collect();
        Ok(Accept { ranges })
    }
}

/// The client accepts none of the offered representations: `406` with code
/// `negotiate.not_acceptable`, the detail listing what is offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAcceptable {
    /// The media types offered.
    pub offered: Vec<String>,
}

impl std::fmt::Display for NotAcceptable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "none of the available representations is acceptable; available: {}",
            self.offered.join(", ")
        )
    }
}

impl std::error::Error for NotAcceptable {}

impl HttpError for NotAcceptable {
    fn status(&self) -> StatusCode {
        StatusCode::NOT_ACCEPTABLE
    }

    fn problem(&self) -> Problem {
        Problem::new(self.status())
            .with_code("negotiate.not_acceptable")
            .with_detail(self.to_string())
    }
}

type Render = Box<dyn FnOnce() -> Response + Send>;

/// One representation: its media type and how to make it (only the chosen one is made).
struct Representation {
    media_type: String,
    render: Render,
}

/// Several representations of one resource, answered with [`Accept::respond`]; offered in
/// the order added, which breaks ties between equally acceptable types.
#[derive(Default)]
pub struct Negotiate {
    representations: Vec<Representation>,
}

impl std::fmt::Debug for Negotiate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.representations.iter().map(|r| &r.media_type))
            .finish()
    }
}

impl Negotiate {
    /// No representation yet.
    pub fn new() -> Self {
        Negotiate::default()
    }

    /// `application/json`: `value` serialized, only if chosen.
    pub fn json<T: Serialize + Send + 'static>(self, value: T) -> Self {
        self.with_response("application/json", move || Json(value))
    }

    /// `text/html; charset=utf-8`.
    pub fn html(self, html: impl Into<String>) -> Self {
        self.with("text/html; charset=utf-8", html.into())
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(self, text: impl Into<String>) -> Self {
        self.with("text/plain; charset=utf-8", text.into())
    }

    /// Any media type with a body (`"application/xml"`, `"text/csv"`).
    pub fn with(self, media_type: impl Into<String>, body: impl Into<Body>) -> Self {
        let body = body.into();
        self.with_response(media_type, move || Response::new(body))
    }

    /// Any media type with a response made only if it is chosen; its `Content-Type` is set
    /// to `media_type`.
    pub fn with_response<R, F>(mut self, media_type: impl Into<String>, render: F) -> Self
    where
        R: IntoResponse,
        F: FnOnce() -> R + Send + 'static,
    {
        self.representations.push(Representation {
            media_type: media_type.into(),
            render: Box::new(move || render().into_response()),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use weft_service::service::Service;

    use super::*;
    use crate::{App, Request};

    fn pick<'a>(accept: &str, offered: &[&'a str]) -> Option<&'a str> {
        negotiate(Some(&HeaderValue::from_str(accept).unwrap()), offered)
    }

    const OFFERED: &[&str] = &["application/json", "text/html", "text/plain"];

    #[test]
    fn no_header_takes_the_first_offered() {
        assert_eq!(negotiate(None, OFFERED), Some("application/json"));
        assert_eq!(negotiate(None, &[]), None);
    }

    #[test]
    fn the_highest_q_wins_and_ties_keep_the_server_order() {
        assert_eq!(
            pick("text/html;q=0.9, text/plain", OFFERED),
            Some("text/plain")
        );
        assert_eq!(pick("text/*", OFFERED), Some("text/html"));
        assert_eq!(pick("*/*", OFFERED), Some("application/json"));
        assert_eq!(
            pick("text/plain;q=0.5, */*;q=0.1", OFFERED),
            Some("text/plain")
        );
    }

    #[test]
    fn the_most_specific_range_gives_the_weight() {
        // text/html is excluded by its exact range even though text/* welcomes it.
        assert_eq!(pick("text/*, text/html;q=0", OFFERED), Some("text/plain"));
        assert_eq!(
            pick("text/html;q=0, */*", OFFERED),
            Some("application/json")
        );
        assert_eq!(
            pick(
                "text/html;level=1, text/html;q=0.1, text/plain;q=0.5",
                &["text/html;level=1"]
            ),
            Some("text/html;level=1")
        );
        assert_eq!(
            pick(
                "text/html;level=1;q=0, text/html",
                &["text/html; level=1", "text/html"]
            ),
            Some("text/html")
        );
    }

    #[test]
    fn q_zero_and_unmatched_types_are_never_chosen() {
        assert_eq!(pick("application/json;q=0", OFFERED), None);
        assert_eq!(pick("image/png", OFFERED), None);
        assert_eq!(pick("*/*;q=0", OFFERED), None);
    }

    #[test]
    fn malformed_entries_are_ignored() {
        assert_eq!(pick("garbage, text/plain", OFFERED), Some("text/plain"));
        assert_eq!(
            pick("text/html;q=2, text/plain", OFFERED),
            Some("text/plain")
        );
        assert_eq!(
            pick("text/html;q=0.1234, */plain", OFFERED),
            Some("application/json")
        );
        assert_eq!(pick(",,;;,", OFFERED), Some("application/json"));
        assert_eq!(pick("TEXT/PLAIN;Q=1.000", OFFERED), Some("text/plain"));
    }

    #[test]
    fn q_values_follow_the_rfc_grammar() {
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.000"), Some(1000));
        for bad in ["1.5", "2", "-0", "0.1234", "", ".5", "0.x", "1.001"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    fn call(service: &crate::AppService, accept: Option<&str>) -> Response {
        let mut request = Request::new(crate::Body::empty());
        *request.uri_mut() = "/user".parse().unwrap();
        if let Some(accept) = accept {
            request
                .headers_mut()
                .insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        block_on(service.call(request))
    }

    fn body(response: Response) -> String {
        String::from_utf8(
            block_on(response.into_body().collect(1 << 20))
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn app() -> crate::AppService {
        async fn user(accept: Accept) -> crate::Result<Response> {
            accept.respond(
                Negotiate::new()
                    .json(serde_json::json!({ "name": "ada" }))
                    .html("<p>ada</p>")
                    .text("ada")
                    .with("text/csv", "name\nada\n"),
            )
        }
        App::new().get("/user", user).build().unwrap()
    }

    #[test]
    fn responds_with_the_preferred_representation_and_vary() {
        let service = app();
        for (accept, content_type, text) in [
            (None, "application/json", r#"{"name":"ada"}"#),
            (Some("text/html"), "text/html; charset=utf-8", "<p>ada</p>"),
            (Some("text/*;q=0.5, text/csv"), "text/csv", "name\nada\n"),
            (
                Some("text/plain, application/json;q=0.9"),
                "text/plain; charset=utf-8",
                "ada",
            ),
        ] {
            let response = call(&service, accept);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[CONTENT_TYPE], content_type);
            assert_eq!(response.headers()[VARY], "accept");
            assert_eq!(body(response), text);
        }
    }

    #[test]
    fn nothing_acceptable_is_a_406_problem_listing_the_offer() {
        let response = call(&app(), Some("image/png, application/json;q=0"));
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            crate::problem::PROBLEM_JSON
        );
        assert_eq!(response.headers()[VARY], "accept");
        let problem: serde_json::Value = serde_json::from_str(&body(response)).unwrap();
        assert_eq!(problem["code"], "negotiate.not_acceptable");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("application/json") && detail.contains("text/csv"),
            "{detail}"
        );
    }
}
