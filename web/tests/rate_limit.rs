//! Rate limiting through the real dispatcher (`TestClient`, HTTP/1.1 and HTTP/2): 429 with
//! `Retry-After` and the RateLimit headers, per-route buckets, trusted and untrusted proxies,
//! the bounded store. Time is governor's `FakeRelativeClock`: it never moves unless a test
//! advances it, so no assertion depends on timing.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use governor::Quota;
use governor::clock::FakeRelativeClock;
use weft::client_ip::{ClientIp, TrustedProxies};
use weft::prelude::*;
use weft::rate_limit::{MemoryStore, RateLimit, RateLimitStore};
use weft::test::{TestClient, TestResponse};

/// 3 requests at once, one more every 20 s.
fn quota() -> Quota {
    Quota::with_period(Duration::from_secs(20))
        .unwrap()
        .allow_burst(3.try_into().unwrap())
}

fn limited(
    store: MemoryStore,
    clock: FakeRelativeClock,
) -> RateLimit<MemoryStore, FakeRelativeClock> {
    RateLimit::with_parts(quota(), store, clock)
}

fn app(limit: RateLimit<MemoryStore, FakeRelativeClock>) -> App {
    App::new()
        .middleware(limit)
        .get("/a", || async { "a" })
        .get("/b", || async { "b" })
        .get(
            "/ip",
            |ClientIp(ip): ClientIp| async move { ip.to_string() },
        )
}

fn clients(app: App) -> [TestClient; 2] {
    let client = TestClient::new(app.build().unwrap());
    // Another peer for HTTP/2, so that each protocol starts with a full bucket.
    let other = client.clone().peer("192.0.2.2:4000".parse().unwrap());
    [client, other.http2()]
}

fn header<'a>(response: &'a TestResponse, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[test]
fn a_burst_over_the_limit_is_answered_429_with_retry_after_and_ratelimit_headers() {
    for client in clients(app(limited(
        MemoryStore::new(100),
        FakeRelativeClock::default(),
    ))) {
        for remaining in [2, 1, 0] {
            let response = client.get("/a").send();
            response.assert_status(200);
            assert_eq!(header(&response, "ratelimit-limit"), "3");
            assert_eq!(
                header(&response, "ratelimit-remaining"),
                remaining.to_string()
            );
            assert_eq!(header(&response, "ratelimit-policy"), "3;w=60");
            let used = 3 - remaining;
            assert_eq!(
                header(&response, "ratelimit-reset"),
                (used * 20).to_string()
            );
        }
        let refused = client.get("/a").send();
        refused.assert_status(429);
        assert_eq!(header(&refused, "content-type"), "application/problem+json");
        let problem: serde_json::Value = refused.json();
        assert_eq!(problem["code"], "rate_limit.exceeded");
        assert_eq!(header(&refused, "retry-after"), "20");
        assert_eq!(header(&refused, "ratelimit-remaining"), "0");
        assert_eq!(header(&refused, "ratelimit-limit"), "3");
        // The next request in 20 s, the whole burst of 3 back in 60 s.
        assert_eq!(header(&refused, "ratelimit-reset"), "60");
        assert_eq!(header(&refused, "ratelimit-policy"), "3;w=60");
    }
}

#[test]
fn time_refills_the_bucket() {
    let clock = FakeRelativeClock::default();
    let client = TestClient::new(
        app(limited(MemoryStore::new(100), clock.clone()))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        client.get("/a").send().assert_status(200);
    }
    client.get("/a").send().assert_status(429);
    clock.advance(Duration::from_secs(20));
    let response = client.get("/a").send();
    response.assert_status(200);
    assert_eq!(header(&response, "ratelimit-remaining"), "0");
    client.get("/a").send().assert_status(429);
}

#[test]
fn each_route_and_each_client_has_its_own_bucket() {
    let client = TestClient::new(
        app(limited(MemoryStore::new(100), FakeRelativeClock::default()))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        client.get("/a").send().assert_status(200);
    }
    client.get("/a").send().assert_status(429);
    client.get("/b").send().assert_status(200);
    let other = client.clone().peer("192.0.2.1:4000".parse().unwrap());
    other.get("/a").send().assert_status(200);
    other.clone().http2().get("/a").send().assert_status(200);
}

#[test]
fn per_ip_counts_all_routes_together() {
    let limit = limited(MemoryStore::new(100), FakeRelativeClock::default()).per_ip();
    let client = TestClient::new(app(limit).build().unwrap());
    client.get("/a").send().assert_status(200);
    client.get("/b").send().assert_status(200);
    client.get("/a").send().assert_status(200);
    client.get("/b").send().assert_status(429);
}

const PROXY: &str = "10.0.0.1:5000";

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
    let limit =
        limited(MemoryStore::new(100), FakeRelativeClock::default()).trusted_proxies(proxies);
    let service = app(limit).build().unwrap();
    let proxy: SocketAddr = PROXY.parse().unwrap();
    for client in [
        TestClient::new(service.clone()).peer(proxy),
        TestClient::new(service.clone()).peer(proxy).http2(),
    ] {
        let ip = client
            .get("/ip")
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .send();
        assert_eq!(ip.text(), "198.51.100.7");
        let forwarded = client
            .get("/ip")
            .header("forwarded", "for=\"[2001:db8::7]:4711\"")
            .send();
        assert_eq!(forwarded.text(), "2001:db8::7");
    }
    // An untrusted peer's forged header is ignored: it is the client, and its forgeries
    // share its one bucket.
    let untrusted = TestClient::new(service).peer("203.0.113.5:1234".parse().unwrap());
    for i in 0..3 {
        untrusted
            .get("/a")
            .header("x-forwarded-for", format!("1.1.1.{i}"))
            .send()
            .assert_status(200);
    }
    untrusted
        .get("/a")
        .header("x-forwarded-for", "1.1.1.99")
        .send()
        .assert_status(429);
    let ip = untrusted
        .get("/ip")
        .header("x-forwarded-for", "1.1.1.1")
        .send();
    assert_eq!(ip.text(), "203.0.113.5");
}

#[test]
fn ten_thousand_clients_through_the_proxy_keep_the_store_at_its_bound() {
    let store = MemoryStore::new(1000);
    let limit = limited(store.clone(), FakeRelativeClock::default())
        .trusted_proxies(TrustedProxies::new(["10.0.0.1"]).unwrap());
    let client = TestClient::new(app(limit).build().unwrap()).peer(PROXY.parse().unwrap());
    for i in 0..10_000u32 {
        let [_, _, a, b] = (i + (1 << 24)).to_be_bytes();
        let forwarded = format!("100.64.{a}.{b}");
        client
            .get("/a")
            .header("x-forwarded-for", forwarded)
            .send()
            .assert_status(200);
        assert!(store.len() <= 1000, "{} keys", store.len());
    }
    assert!(store.len() >= 800, "{} keys", store.len());
    // The limiter still works for a fresh client.
    let fresh = || client.get("/a").header("x-forwarded-for", "198.51.100.200");
    for _ in 0..3 {
        fresh().send().assert_status(200);
    }
    fresh().send().assert_status(429);
    assert!(store.len() <= 1000);
}

/// curl with the response head (`-i`), lower-cased for header matching.
fn curl(args: &[&str]) -> String {
    let mut with_head = vec!["-i"];
    with_head.extend_from_slice(args);
    support::curl(&with_head).to_lowercase()
}

#[test]
fn curl_on_loopback_sees_a_429_with_retry_after_and_its_request_id_echoed() {
    use weft::request_id::RequestIds;
    use weft::{Runtime, ServerConfig};

    // 2 requests at once, one more per half hour: nothing refills within the test.
    let limit = RateLimit::new(2, Duration::from_secs(3600)).unwrap();
    let mut config = ServerConfig::new(["127.0.0.1:0".parse().unwrap()]);
    config.workers = 1;
    let server = App::new()
        .middleware(RequestIds::new())
        .middleware(limit)
        .get("/", || async { "hi" })
        .build()
        .unwrap()
        .listen_on(Runtime::ALL[0], config)
        .unwrap();
    let url = format!("http://{}/", server.local_addrs()[0]);
    for (i, protocol) in ["--http1.1", "--http2-prior-knowledge"]
        .into_iter()
        .enumerate()
    {
        let id = format!("x-request-id: curl-{i}");
        let ok = curl(&[protocol, "-H", &id, &url]);
        assert!(ok.contains(" 200"), "{protocol}: {ok}");
        assert!(ok.contains(&id), "{protocol}: {ok}");
        assert!(ok.contains("ratelimit-limit: 2"), "{protocol}: {ok}");
    }
    for (i, protocol) in ["--http1.1", "--http2-prior-knowledge"]
        .into_iter()
        .enumerate()
    {
        let id = format!("x-request-id: refused-{i}");
        let refused = curl(&[protocol, "-H", &id, &url]);
        assert!(refused.contains(" 429"), "{protocol}: {refused}");
        // About half an hour (whole seconds, rounded up; the test's own time is taken off).
        let retry_after: u64 = refused
            .lines()
            .find_map(|line| line.strip_prefix("retry-after: "))
            .unwrap_or_else(|| panic!("{protocol}: no retry-after: {refused}"))
            .trim()
            .parse()
            .unwrap();
        assert!(
            (1000..=1800).contains(&retry_after),
            "{protocol}: {refused}"
        );
        assert!(refused.contains(&id), "{protocol}: {refused}");
        assert!(
            refused.contains("ratelimit-remaining: 0"),
            "{protocol}: {refused}"
        );
        assert!(
            refused.contains("content-type: application/problem+json"),
            "{protocol}: {refused}"
        );
        assert!(
            refused.contains("\"code\":\"rate_limit.exceeded\""),
            "{protocol}: {refused}"
        );
    }
    server.shutdown();
    server.join().unwrap();
}
