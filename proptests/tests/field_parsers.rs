//! The small header-field parsers of HTTP/2 and WebSocket, on hostile and on well-formed input:
//! RFC 9218's `priority` (a Structured Fields dictionary) and RFC 6455 §9.1's
//! `Sec-WebSocket-Extensions` list. Arbitrary bytes never panic and never yield out-of-range
//! values; what a well-behaved client writes reads back as written, whatever unknown members,
//! parameters and whitespace surround it.

use http::{HeaderMap, HeaderValue, Method, Version};
use proptest::prelude::*;
use weft_core::h2::PrioritySignal;
use weft_core::ws::deflate::{DeflateConfig, accept_offers};
use weft_core::ws::handshake::validate_request;

/// An unknown dictionary member, with or without a value and a parameter (RFC 8941 §3.2).
fn unknown_member() -> impl Strategy<Value = String> {
    (
        "[a-h][a-z0-9_-]{0,6}",
        prop::option::of(0u32..1000),
        any::<bool>(),
    )
        .prop_map(|(name, value, param)| {
            let mut member = name;
            if let Some(value) = value {
                member.push_str(&format!("={value}"));
            }
            if param {
                member.push_str(";p=1");
            }
            member
        })
}

/// ", " with optional whitespace on either side, as RFC 8941 allows between members.
fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![",", ", ", " ,", " , ", ",\t"])
}

proptest! {
    #[test]
    fn priority_never_panics_and_stays_in_range(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let signal = PrioritySignal::parse(&bytes);
        prop_assert!(signal.urgency <= 7);
    }

    #[test]
    fn priority_reads_back_what_a_client_writes(
        urgency in 0u8..=7,
        incremental in any::<bool>(),
        before in prop::collection::vec(unknown_member(), 0..3),
        after in prop::collection::vec(unknown_member(), 0..3),
        sep in separator(),
    ) {
        let mut members: Vec<String> = before;
        members.push(format!("u={urgency}"));
        if incremental {
            members.push("i".to_owned());
        }
        members.extend(after);
        let value = members.join(sep);
        let signal = PrioritySignal::parse(value.as_bytes());
        prop_assert_eq!(signal, PrioritySignal { urgency, incremental }, "{}", value);
    }

    #[test]
    fn extension_offers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = accept_offers(&DeflateConfig::default(), [&bytes[..]]);
        // The handshake reads the same header; a value it cannot parse offers nothing.
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("host", "example.com"),
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("sec-websocket-version", "13"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
            headers.insert("sec-websocket-extensions", value);
            prop_assert!(validate_request(&Method::GET, Version::HTTP_11, &headers).is_ok());
        }
    }

    #[test]
    fn our_offer_is_accepted_among_unknown_extensions(
        // RFC 6455 §9.1: a quoted parameter value must still be a token once unquoted.
        before in prop::collection::vec("x-[a-z]{1,8}(; [a-z]{1,5}=(\"[a-z0-9]{1,6}\"|[a-z0-9]{1,6}))?", 0..3),
        sep in separator(),
    ) {
        let mut items = before;
        items.push(DeflateConfig::default().offer());
        let value = items.join(sep);
        let accepted = accept_offers(&DeflateConfig::default(), [value.as_str()]);
        prop_assert!(matches!(accepted, Ok(Some(_))), "{} -> {:?}", value, accepted);
    }
}
