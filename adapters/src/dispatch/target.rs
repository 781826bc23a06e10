//! One request shape for both protocols (see [`weft_service::request`]): the URI in origin
//! form, `Host` present whenever an authority was named, and the [`RequestTarget`] extension.

use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri};
use weft_service::request::{RequestTarget, TargetForm};

/// Shapes a request read from HTTP/1.1, whose target was sent in `form`, on a connection
/// that is TLS or not.
pub(super) fn shape_h1<B>(request: &mut Request<B>, form: weft_core::h1::TargetForm, tls: bool) {
    let form = TargetForm::from(form);
    let scheme = request
        .uri()
        .scheme()
        .cloned()
        .unwrap_or_else(|| connection_scheme(tls));
    // Absolute and authority forms carry theirs; the others name it in `Host`, which is kept
    // as received (the usual case costs no parse).
    let target = match request.uri().authority().cloned() {
        Some(authority) => {
            if form == TargetForm::Absolute {
                *request.uri_mut() = origin_form(request.uri());
                // RFC 9112 §3.2.2: the target's authority wins over `Host`.
                set_host(request, &authority);
            }
            RequestTarget::new(scheme, Some(authority), form)
        }
        None => RequestTarget::from_host(scheme, request.headers().get(HOST).cloned(), form),
    };
    request.extensions_mut().insert(target);
}

/// Shapes a request read from HTTP/2 (its URI absolute when `:authority` or `host` was sent),
/// on a connection that is TLS or not.
pub(super) fn shape_h2<B>(request: &mut Request<B>, tls: bool) {
    let uri = request.uri().clone();
    let form = if request.method() == Method::CONNECT && uri.path_and_query().is_none() {
        TargetForm::Authority
    } else if uri.path() == "*" {
        TargetForm::Asterisk
    } else {
        TargetForm::Origin
    };
    let scheme = uri
        .scheme()
        .cloned()
        .unwrap_or_else(|| connection_scheme(tls));
    let authority = uri.authority().cloned().or_else(|| host_authority(request));
    if form != TargetForm::Authority && uri.authority().is_some() {
        *request.uri_mut() = origin_form(&uri);
    }
    if let Some(authority) = &authority {
        if !request.headers().contains_key(HOST) {
            set_host(request, authority);
        }
    }
    insert(request, scheme, authority, form);
}

fn insert<B>(
    request: &mut Request<B>,
    scheme: Scheme,
    authority: Option<Authority>,
    form: TargetForm,
) {
    request
        .extensions_mut()
        .insert(RequestTarget::new(scheme, authority, form));
}

fn connection_scheme(tls: bool) -> Scheme {
    if tls { Scheme::HTTPS } else { Scheme::HTTP }
}

/// The authority of the (single, valid) `Host` field.
fn host_authority<B>(request: &Request<B>) -> Option<Authority> {
    let host = request.headers().get(HOST)?;
    Authority::try_from(host.as_bytes())
        .ok()
        .filter(|authority| !authority.as_str().is_empty())
}

fn set_host<B>(request: &mut Request<B>, authority: &Authority) {
    if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
        request.headers_mut().insert(HOST, value);
    }
}

/// `uri`'s path and query alone (`/` when it has no path).
fn origin_form(uri: &Uri) -> Uri {
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::from(path)
}
