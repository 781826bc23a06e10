//! Tests of the HTTP/2 message rules in `headers.rs` (RFC 9113 §8.2, §8.3, RFC 8441 §4).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::{
    MalformedHeaders, Protocol, RequestHead, push_request_fields, request_head, response_fields,
    trailer_fields, trailers,
};
use crate::h2::PrioritySignal;
use crate::hpack::HeaderField;

fn fields(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
    pairs
        .iter()
        .map(|(name, value)| {
            HeaderField::new(
                Bytes::copy_from_slice(name.as_bytes()),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect()
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/index.html?q=1"),
];

fn request(pairs: &[(&str, &str)]) -> Result<RequestHead, MalformedHeaders> {
    request_head(fields(pairs), false, 100)
}

/// The GET above followed by `extra`.
fn get_with(extra: &[(&str, &str)]) -> Result<RequestHead, MalformedHeaders> {
    let mut pairs = GET.to_vec();
    pairs.extend_from_slice(extra);
    request(&pairs)
}

fn error(result: Result<RequestHead, MalformedHeaders>) -> MalformedHeaders {
    match result {
        Ok(head) => panic!("accepted {head:?}"),
        Err(error) => error,
    }
}

#[test]
fn accepts_a_plain_get() {
    let head = get_with(&[("accept", "*/*"), ("user-agent", "test")]).unwrap();
    assert_eq!(head.method, Method::GET);
    assert_eq!(
        head.uri,
        "https://example.com/index.html?q=1".parse::<Uri>().unwrap()
    );
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers["user-agent"], "test");
    assert_eq!(head.protocol, None);
    assert_eq!(head.priority, PrioritySignal::default());
    assert_eq!(head.content_length, None);
}

#[test]
fn into_request_carries_everything() {
    let head = get_with(&[("priority", "u=1")]).unwrap();
    let request = head.into_request(());
    assert_eq!(request.version(), http::Version::HTTP_2);
    assert_eq!(request.uri().path(), "/index.html");
    let priority = request.extensions().get::<PrioritySignal>().unwrap();
    assert_eq!(priority.urgency, 1);
}

#[test]
fn refuses_pseudo_header_after_regular() {
    let pairs = [
        (":method", "GET"),
        (":scheme", "https"),
        ("accept", "*/*"),
        (":path", "/"),
    ];
    assert_eq!(error(request(&pairs)), MalformedHeaders::PseudoAfterRegular);
}

#[test]
fn refuses_duplicate_pseudo_headers() {
    for duplicate in [
        (":method", "GET"),
        (":path", "/x"),
        (":authority", "a.example"),
    ] {
        let mut pairs = GET.to_vec();
        pairs.insert(1, duplicate);
        assert_eq!(error(request(&pairs)), MalformedHeaders::DuplicatePseudo);
    }
}

#[test]
fn refuses_unknown_and_response_pseudo_headers() {
    for extra in [
        (":status", "200"),
        (":foo", "bar"),
        (":Method", "GET"),
        (":", "x"),
    ] {
        let mut pairs = vec![extra];
        pairs.extend_from_slice(&GET);
        assert_eq!(
            error(request(&pairs)),
            MalformedHeaders::UnknownPseudo,
            "{extra:?}"
        );
    }
}

#[test]
fn refuses_protocol_without_extended_connect() {
    let pairs = [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", "/chat"),
    ];
    assert_eq!(error(request(&pairs)), MalformedHeaders::UnknownPseudo);
}

#[test]
fn refuses_missing_or_empty_pseudo_headers() {
    for (missing, (name, _)) in GET.iter().enumerate() {
        let mut pairs = GET.to_vec();
        pairs.remove(missing);
        let result = request(&pairs);
        if *name == ":authority" {
            assert!(result.is_ok(), "no authority is allowed");
        } else {
            assert_eq!(error(result), MalformedHeaders::MissingPseudo, "{missing}");
        }
    }
    let pairs = [(":method", "GET"), (":scheme", "https"), (":path", "")];
    assert_eq!(error(request(&pairs)), MalformedHeaders::MissingPseudo);
}

#[test]
fn refuses_invalid_method() {
    let pairs = [(":method", "GE T"), (":scheme", "https"), (":path", "/")];
    assert_eq!(error(request(&pairs)), MalformedHeaders::InvalidValue);
}

#[test]
fn accepts_no_authority_as_origin_form() {
    let head = request(&[(":method", "GET"), (":scheme", "https"), (":path", "/a")]).unwrap();
    assert_eq!(head.uri, "/a");
    assert_eq!(head.uri.authority(), None);
}

#[test]
fn takes_authority_from_host_when_absent() {
    let pairs = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/a"),
        ("host", "example.org:8080"),
    ];
    let head = request(&pairs).unwrap();
    assert_eq!(
        head.uri,
        "http://example.org:8080/a".parse::<Uri>().unwrap()
    );
    assert_eq!(head.headers["host"], "example.org:8080");
}

#[test]
fn accepts_host_equal_to_authority() {
    let head = get_with(&[("host", "EXAMPLE.com")]).unwrap();
    assert_eq!(head.uri.host(), Some("example.com"));
}

#[test]
fn refuses_host_that_differs_from_authority() {
    let result = get_with(&[("host", "other.example")]);
    assert_eq!(error(result), MalformedHeaders::InvalidTarget);
}

#[test]
fn refuses_two_hosts() {
    let pairs = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        ("host", "a.example"),
        ("host", "a.example"),
    ];
    assert_eq!(error(request(&pairs)), MalformedHeaders::InvalidTarget);
}

#[test]
fn refuses_bad_targets() {
    let cases: [&[(&str, &str)]; 5] = [
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "no-slash"),
        ],
        &[(":method", "GET"), (":scheme", "https"), (":path", "*")],
        &[(":method", "GET"), (":scheme", "ht tp"), (":path", "/")],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "user@example.com"),
            (":path", "/"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "exa mple.com"),
            (":path", "/"),
        ],
    ];
    for pairs in cases {
        assert_eq!(
            error(request(pairs)),
            MalformedHeaders::InvalidTarget,
            "{pairs:?}"
        );
    }
}

#[test]
fn accepts_options_asterisk() {
    let pairs = [
        (":method", "OPTIONS"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", "*"),
    ];
    let head = request(&pairs).unwrap();
    assert_eq!(head.method, Method::OPTIONS);
    assert_eq!(head.uri.path(), "*");
}

#[test]
fn accepts_plain_connect_as_authority_form() {
    let pairs = [(":method", "CONNECT"), (":authority", "proxy.example:443")];
    let head = request(&pairs).unwrap();
    assert_eq!(head.method, Method::CONNECT);
    assert_eq!(head.uri.authority().unwrap(), "proxy.example:443");
    assert_eq!(head.uri.scheme(), None);
    assert_eq!(head.protocol, None);
}

#[test]
fn refuses_connect_without_port() {
    let pairs = [(":method", "CONNECT"), (":authority", "proxy.example")];
    assert_eq!(error(request(&pairs)), MalformedHeaders::InvalidTarget);
}

#[test]
fn refuses_connect_with_scheme_or_path_or_without_authority() {
    let cases: [&[(&str, &str)]; 4] = [
        &[
            (":method", "CONNECT"),
            (":authority", "a:443"),
            (":path", "/"),
        ],
        &[
            (":method", "CONNECT"),
            (":authority", "a:443"),
            (":scheme", "https"),
        ],
        &[(":method", "CONNECT")],
        &[(":method", "CONNECT"), ("host", "a:443")],
    ];
    for pairs in cases {
        assert_eq!(
            error(request(pairs)),
            MalformedHeaders::BadConnect,
            "{pairs:?}"
        );
    }
}

const WEBSOCKET: [(&str, &str); 5] = [
    (":method", "CONNECT"),
    (":protocol", "websocket"),
    (":scheme", "https"),
    (":authority", "example.com"),
    (":path", "/chat?room=1"),
];

#[test]
fn accepts_extended_connect() {
    let head = request_head(fields(&WEBSOCKET), true, 100).unwrap();
    assert_eq!(head.method, Method::CONNECT);
    assert_eq!(
        head.protocol,
        Some(Protocol(Bytes::from_static(b"websocket")))
    );
    assert_eq!(
        head.uri,
        "https://example.com/chat?room=1".parse::<Uri>().unwrap()
    );
    let request = head.into_request(());
    assert_eq!(
        request.extensions().get::<Protocol>(),
        Some(&Protocol(Bytes::from_static(b"websocket")))
    );
}

#[test]
fn refuses_extended_connect_without_scheme_path_or_authority() {
    for missing in [":scheme", ":path", ":authority"] {
        let pairs: Vec<_> = WEBSOCKET
            .iter()
            .copied()
            .filter(|(n, _)| *n != missing)
            .collect();
        let result = request_head(fields(&pairs), true, 100);
        assert_eq!(error(result), MalformedHeaders::BadConnect, "{missing}");
    }
}

#[test]
fn refuses_protocol_on_other_methods() {
    let mut pairs = WEBSOCKET.to_vec();
    pairs[0] = (":method", "GET");
    let result = request_head(fields(&pairs), true, 100);
    assert_eq!(error(result), MalformedHeaders::BadConnect);
}

#[test]
fn refuses_connection_specific_fields() {
    for field in [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
        ("te", "trailers, gzip"),
    ] {
        let result = get_with(&[field]);
        assert_eq!(
            error(result),
            MalformedHeaders::ConnectionSpecific,
            "{field:?}"
        );
    }
}

#[test]
fn accepts_te_trailers() {
    let head = get_with(&[("te", "trailers")]).unwrap();
    assert_eq!(head.headers["te"], "trailers");
}

#[test]
fn refuses_uppercase_and_invalid_names() {
    for name in ["Accept", "x-Foo", "bad name", "", "x(y)", "caf\u{e9}"] {
        let result = get_with(&[(name, "v")]);
        assert_eq!(error(result), MalformedHeaders::InvalidName, "{name:?}");
    }
}

#[test]
fn refuses_invalid_values() {
    for value in ["a\0b", "a\rb", "a\nb", " lead", "trail ", "\ttab", "tab\t"] {
        let result = get_with(&[("x-test", value)]);
        assert_eq!(error(result), MalformedHeaders::InvalidValue, "{value:?}");
    }
}

#[test]
fn accepts_inner_whitespace_and_empty_values() {
    let head = get_with(&[("x-a", "a b\tc"), ("x-empty", "")]).unwrap();
    assert_eq!(head.headers["x-a"], "a b\tc");
    assert_eq!(head.headers["x-empty"], "");
}

#[test]
fn joins_cookies_with_semicolon_space() {
    let head = get_with(&[
        ("cookie", "a=1"),
        ("accept", "*/*"),
        ("cookie", "b=2"),
        ("cookie", "c=3"),
    ])
    .unwrap();
    let cookies: Vec<_> = head.headers.get_all("cookie").iter().collect();
    assert_eq!(cookies, [HeaderValue::from_static("a=1; b=2; c=3")]);
}

#[test]
fn keeps_a_single_cookie_as_is() {
    let head = get_with(&[("cookie", "a=1; b=2")]).unwrap();
    assert_eq!(head.headers["cookie"], "a=1; b=2");
}

#[test]
fn parses_content_length() {
    let head = get_with(&[("content-length", "42")]).unwrap();
    assert_eq!(head.content_length, Some(42));
    let head = get_with(&[("content-length", "7"), ("content-length", "7")]).unwrap();
    assert_eq!(head.content_length, Some(7));
    let head = get_with(&[("content-length", "18446744073709551615")]).unwrap();
    assert_eq!(head.content_length, Some(u64::MAX));
}

#[test]
fn refuses_bad_content_length() {
    for values in [
        &["-1"][..],
        &[""],
        &["1a"],
        &["+1"],
        &["1,1"],
        &["18446744073709551616"],
        &["1", "2"],
    ] {
        let extra: Vec<_> = values.iter().map(|v| ("content-length", *v)).collect();
        let result = get_with(&extra);
        assert_eq!(
            error(result),
            MalformedHeaders::InvalidContentLength,
            "{values:?}"
        );
    }
}

#[test]
fn parses_priority_field() {
    let head = get_with(&[("priority", "u=0, i")]).unwrap();
    assert_eq!(
        head.priority,
        PrioritySignal {
            urgency: 0,
            incremental: true
        }
    );
    let head = get_with(&[("priority", "u=5"), ("priority", "i")]).unwrap();
    assert_eq!(
        head.priority,
        PrioritySignal {
            urgency: 5,
            incremental: true
        }
    );
    let head = get_with(&[("priority", "u=")]).unwrap();
    assert_eq!(head.priority, PrioritySignal::default());
}

#[test]
fn refuses_more_fields_than_the_limit() {
    let pairs = [GET.as_slice(), &[("a", "1"), ("b", "2")]].concat();
    assert!(request_head(fields(&pairs), false, 6).is_ok());
    let result = request_head(fields(&pairs), false, 5);
    assert_eq!(error(result), MalformedHeaders::TooManyFields);
}

#[test]
fn shares_the_decoded_bytes() {
    let block = Bytes::from_static(b"/shared-pathx-custom-namevalue");
    let field = |name: std::ops::Range<usize>, value: std::ops::Range<usize>| HeaderField {
        name: block.slice(name),
        value: block.slice(value),
        sensitive: false,
    };
    let mut input = fields(&[(":method", "GET"), (":scheme", "https")]);
    input.push(field(0..0, 0..12));
    input[2].name = Bytes::from_static(b":path");
    input.push(field(12..25, 25..30));
    let head = request_head(input, false, 10).unwrap();
    let value = &head.headers["x-custom-name"];
    assert_eq!(value.as_bytes().as_ptr(), block[25..].as_ptr());
    assert_eq!(head.uri.path().as_ptr(), block.as_ptr());
}

#[test]
fn trailers_accept_regular_fields() {
    let map = trailers(fields(&[("grpc-status", "0"), ("x-sum", "abc")]), 10).unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map["grpc-status"], "0");
}

#[test]
fn trailers_refuse_pseudo_headers_and_bad_fields() {
    let cases: [(&[(&str, &str)], MalformedHeaders); 5] = [
        (&[(":status", "200")], MalformedHeaders::PseudoInTrailers),
        (
            &[("x", "1"), (":path", "/")],
            MalformedHeaders::PseudoInTrailers,
        ),
        (&[("X-Upper", "1")], MalformedHeaders::InvalidName),
        (&[("x", "a\nb")], MalformedHeaders::InvalidValue),
        (
            &[("connection", "close")],
            MalformedHeaders::ConnectionSpecific,
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(
            trailers(fields(pairs), 10).unwrap_err(),
            expected,
            "{pairs:?}"
        );
    }
    let result = trailers(fields(&[("a", "1"), ("b", "2")]), 1);
    assert_eq!(result.unwrap_err(), MalformedHeaders::TooManyFields);
}

fn names_and_values(out: &[HeaderField]) -> Vec<(&[u8], &[u8], bool)> {
    out.iter()
        .map(|f| (&f.name[..], &f.value[..], f.sensitive))
        .collect()
}

#[test]
fn response_fields_put_status_first_and_drop_connection_fields() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("connection", HeaderValue::from_static("close"));
    headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("te", HeaderValue::from_static("gzip"));
    headers.insert("x-custom", HeaderValue::from_static("1"));
    let mut out = vec![HeaderField::new("kept", "before")];
    response_fields(StatusCode::NOT_FOUND, &headers, &mut out);
    assert_eq!(
        names_and_values(&out),
        [
            (&b"kept"[..], &b"before"[..], false),
            (b":status", b"404", false),
            (b"content-type", b"text/plain", false),
            (b"x-custom", b"1", false),
        ]
    );
}

#[test]
fn status_digits_cover_every_code() {
    for code in [100, 101, 200, 204, 301, 418, 599, 999] {
        let mut out = Vec::new();
        response_fields(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            &mut out,
        );
        assert_eq!(out[0].value, code.to_string().as_bytes());
    }
}

#[test]
fn response_fields_mark_secrets_sensitive() {
    let mut headers = HeaderMap::new();
    headers.append("set-cookie", HeaderValue::from_static("a=1"));
    headers.append("set-cookie", HeaderValue::from_static("b=2"));
    headers.insert("authorization", HeaderValue::from_static("Basic x"));
    headers.insert("proxy-authorization", HeaderValue::from_static("Basic y"));
    headers.insert("cookie", HeaderValue::from_static("c=3"));
    let mut marked = HeaderValue::from_static("token");
    marked.set_sensitive(true);
    headers.insert("x-token", marked);
    headers.insert("x-plain", HeaderValue::from_static("p"));
    let mut out = Vec::new();
    response_fields(StatusCode::OK, &headers, &mut out);
    let sensitive: Vec<_> = out
        .iter()
        .filter(|f| f.sensitive)
        .map(|f| &f.name[..])
        .collect();
    assert_eq!(sensitive.len(), 6, "{sensitive:?}");
    assert!(!sensitive.contains(&&b"x-plain"[..]));
    assert!(!sensitive.contains(&&b":status"[..]));
}

#[test]
fn trailer_fields_drop_connection_fields() {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", HeaderValue::from_static("0"));
    headers.insert("upgrade", HeaderValue::from_static("h2c"));
    headers.insert("set-cookie", HeaderValue::from_static("a=1"));
    let mut out = Vec::new();
    trailer_fields(&headers, &mut out);
    assert_eq!(
        names_and_values(&out),
        [
            (&b"grpc-status"[..], &b"0"[..], false),
            (b"set-cookie", b"a=1", true)
        ]
    );
}

#[test]
fn push_request_fields_in_order() {
    let uri: Uri = "https://example.com/style.css?v=2".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("text/css"));
    headers.insert("connection", HeaderValue::from_static("close"));
    let mut out = Vec::new();
    push_request_fields(&Method::GET, &uri, &headers, &mut out).unwrap();
    assert_eq!(
        names_and_values(&out),
        [
            (&b":method"[..], &b"GET"[..], false),
            (b":scheme", b"https", false),
            (b":authority", b"example.com", false),
            (b":path", b"/style.css?v=2", false),
            (b"accept", b"text/css", false),
        ]
    );
    out.clear();
    let uri: Uri = "http://example.com".parse().unwrap();
    push_request_fields(&Method::HEAD, &uri, &HeaderMap::new(), &mut out).unwrap();
    assert_eq!(&out[0].value[..], b"HEAD");
    assert_eq!(&out[3].value[..], b"/");
}

#[test]
fn push_request_fields_refuse_unsafe_methods_and_relative_uris() {
    let uri: Uri = "https://example.com/".parse().unwrap();
    let mut out = Vec::new();
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let result = push_request_fields(&method, &uri, &HeaderMap::new(), &mut out);
        assert_eq!(result, Err(MalformedHeaders::InvalidValue));
    }
    let relative: Uri = "/only-a-path".parse().unwrap();
    let result = push_request_fields(&Method::GET, &relative, &HeaderMap::new(), &mut out);
    assert_eq!(result, Err(MalformedHeaders::MissingPseudo));
    assert!(out.is_empty());
}
