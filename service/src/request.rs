//! What a request was addressed to, the same over HTTP/1.1 and HTTP/2: [`RequestTarget`].
//!
//! HTTP/1.1 and HTTP/2 write a request's target differently: HTTP/1.1 sends a path and a
//! `Host` field (or, to a proxy, an absolute URI), HTTP/2 sends `:scheme`, `:authority` and
//! `:path` pseudo-headers and often no `Host`. weft's servers give the application one shape
//! for both:
//!
//! - `request.uri()` is the **origin form**, path and query only (`/a?b=c`), on both
//!   protocols: the cheapest shape to produce, and the one routers match on. It is `*` for
//!   `OPTIONS *`, and `host:port` for a CONNECT (authority form), as written;
//! - the `Host` header is present whenever the request named an authority: HTTP/2's
//!   `:authority` is copied into it when the client sent no `host`, and an HTTP/1.1
//!   absolute-form target's authority replaces the `Host` field (which RFC 9112 §3.2.2 tells
//!   servers to ignore in that case);
//! - the [`RequestTarget`] extension holds the scheme, the authority and the form the
//!   request-target was sent in, for whoever needs to rebuild the full URL.
//!
//! ```
//! use http::Request;
//! use weft_service::body::Body;
//! use weft_service::request::RequestTarget;
//!
//! fn full_url(request: &Request<Body>) -> Option<String> {
//!     let target = request.extensions().get::<RequestTarget>()?;
//!     let authority = target.authority()?;
//!     Some(format!("{}://{}{}", target.scheme(), authority, request.uri()))
//! }
//! # let _ = full_url;
//! ```

use http::HeaderValue;
use http::uri::{Authority, Scheme};

/// Where a request was addressed, as the client wrote it: in every request's extensions
/// (`request.extensions().get::<RequestTarget>()`), over HTTP/1.1 and HTTP/2 alike.
///
/// An authority that came from the `Host` field is parsed when asked for, not for every
/// request: most applications never ask, and parsing it copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    scheme: Scheme,
    authority: Named,
    form: TargetForm,
}

/// Where the authority was named, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// In the target itself (HTTP/2's `:authority`, an absolute or authority form).
    Target(Authority),
    /// In the `Host` field, kept as received.
    Host(HeaderValue),
    Nowhere,
}

impl RequestTarget {
    /// A target of `scheme`, `authority` and `form`.
    pub fn new(scheme: Scheme, authority: Option<Authority>, form: TargetForm) -> Self {
        let authority = authority.map_or(Named::Nowhere, Named::Target);
        RequestTarget {
            scheme,
            authority,
            form,
        }
    }

    /// A target whose authority is the `Host` field's value, if there is one.
    pub fn from_host(scheme: Scheme, host: Option<HeaderValue>, form: TargetForm) -> Self {
        let authority = host.map_or(Named::Nowhere, Named::Host);
        RequestTarget {
            scheme,
            authority,
            form,
        }
    }

    /// `https` or `http`: HTTP/2's `:scheme`, an HTTP/1.1 absolute-form target's scheme,
    /// else `https` on a TLS connection and `http` on a cleartext one.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The host (and port) the request was addressed to: HTTP/2's `:authority`, an HTTP/1.1
    /// absolute-form or authority-form target's, else the `Host` field. `None` when the
    /// request named none (an HTTP/1.0 request without `Host`), or named an empty one.
    pub fn authority(&self) -> Option<Authority> {
        match &self.authority {
            Named::Target(authority) => Some(authority.clone()),
            Named::Host(host) => Authority::try_from(host.as_bytes())
                .ok()
                .filter(|authority| !authority.as_str().is_empty()),
            Named::Nowhere => None,
        }
    }

    /// The form the request-target was sent in.
    pub fn form(&self) -> TargetForm {
        self.form
    }
}

/// The form of a request-target (RFC 9112 §3.2). HTTP/2 requests are in origin form (or
/// asterisk form for `OPTIONS *`, authority form for CONNECT) whatever `:authority` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetForm {
    /// `/path?query`, the usual form.
    Origin,
    /// `http://host/path`, as sent to proxies (HTTP/1.1 only).
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

impl From<weft_core::h1::TargetForm> for TargetForm {
    fn from(form: weft_core::h1::TargetForm) -> Self {
        match form {
            weft_core::h1::TargetForm::Origin => TargetForm::Origin,
            weft_core::h1::TargetForm::Absolute => TargetForm::Absolute,
            weft_core::h1::TargetForm::Authority => TargetForm::Authority,
            weft_core::h1::TargetForm::Asterisk => TargetForm::Asterisk,
        }
    }
}
