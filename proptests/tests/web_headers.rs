//! Properties of the framework's small header parsers: the client address behind trusted
//! proxies (`X-Forwarded-For`, `Forwarded`), W3C `traceparent`, and `X-Request-Id`. Arbitrary
//! input never panics; what a well-behaved proxy chain or tracer writes parses back.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use weft::client_ip::TrustedProxies;
use weft::request_id::{RequestId, TraceContext};

fn proxies() -> TrustedProxies {
    TrustedProxies::new(["10.0.0.0/8"]).expect("a valid CIDR")
}

fn client_address() -> impl Strategy<Value = Ipv4Addr> {
    // Outside 10.0.0.0/8, so never mistaken for a proxy.
    (11u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
        .prop_map(|(a, b, c, d)| Ipv4Addr::new(a, b, c, d))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the forwarding headers say, resolving the client never panics, and from an
    /// untrusted peer the answer is the peer itself.
    #[test]
    fn forwarding_headers_never_panic_and_untrusted_peers_are_not_believed(
        xff in "\\PC{0,80}",
        forwarded in "\\PC{0,80}",
        peer in client_address(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", value);
        }
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            headers.insert("forwarded", value);
        }
        let trusted_peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let _ = proxies().client_ip(Some(trusted_peer), &headers);
        let untrusted = IpAddr::V4(peer);
        prop_assert_eq!(proxies().client_ip(Some(untrusted), &headers), Some(untrusted));
    }

    /// Through a chain of trusted proxies, the client is the right-most untrusted address,
    /// whatever the client itself forged to the left of it.
    #[test]
    fn the_client_is_the_right_most_untrusted_address(
        forged in prop::collection::vec(client_address(), 0..4),
        client in client_address(),
        hops in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut chain: Vec<String> = forged.iter().map(Ipv4Addr::to_string).collect();
        chain.push(client.to_string());
        chain.extend(hops.iter().map(|h| format!("10.0.{h}.1")));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(&chain.join(", ")).unwrap());
        let peer = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
        prop_assert_eq!(proxies().client_ip(Some(peer), &headers), Some(IpAddr::V4(client)));
    }

    /// `traceparent` parsing never panics on arbitrary bytes.
    #[test]
    fn traceparent_never_panics(value in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = TraceContext::from_traceparent(&value);
    }

    /// A valid `traceparent` keeps its trace id; the one propagated downstream is valid too,
    /// names our span as its parent, and keeps the trace.
    #[test]
    fn traceparent_round_trips(trace in "[0-9a-f]{32}", parent in "[0-9a-f]{16}", flags in any::<u8>()) {
        prop_assume!(trace.bytes().any(|b| b != b'0') && parent.bytes().any(|b| b != b'0'));
        let value = format!("00-{trace}-{parent}-{flags:02x}");
        let context = TraceContext::from_traceparent(value.as_bytes()).expect("valid");
        prop_assert_eq!(context.trace_id(), trace.clone());
        prop_assert_eq!(context.parent_id(), Some(parent));
        let downstream = context.traceparent();
        let child = TraceContext::from_traceparent(downstream.as_bytes()).expect("valid downstream");
        prop_assert_eq!(child.trace_id(), trace);
        prop_assert_eq!(child.parent_id(), Some(context.span_id()));
    }

    /// Request ids: arbitrary bytes never panic, and what is accepted is within the bound.
    #[test]
    fn request_ids_are_bounded(value in prop::collection::vec(any::<u8>(), 0..300), max in 1usize..200) {
        if let Some(id) = RequestId::parse(&value, max) {
            prop_assert!(id.as_str().len() <= max);
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_graphic()));
        }
    }
}
