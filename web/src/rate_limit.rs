//! Rate limiting: the [`RateLimit`] middleware, GCRA (the `governor` crate) per client IP
//! and route, in a [`RateLimitStore`] of bounded memory.
//!
//! Every answer it lets through or refuses carries the headers of
//! draft-ietf-httpapi-ratelimit-headers (the `RateLimit-Limit` / `-Remaining` / `-Reset`
//! fields of its drafts up to -06, and `RateLimit-Policy`):
//!
//! ```text
//! RateLimit-Limit: 10            the burst: requests allowed at once
//! RateLimit-Remaining: 3         requests left now
//! RateLimit-Reset: 42            seconds until the bucket is full again (rounded up)
//! RateLimit-Policy: 10;w=60      10 requests per 60-second window
//! ```
//!
//! GCRA refills one request every `period / burst`, not all at once at a window's end, so
//! `RateLimit-Reset` is the time until the whole burst is back (on a success, the used
//! requests times the refill interval: an upper bound, exact to within one interval); the
//! time until the *next* request is allowed is `Retry-After` on a `429`.
//!
//! Over the limit the answer is `429 Too Many Requests` as problem+json (code
//! `rate_limit.exceeded`) with `Retry-After` (RFC 9110 §10.2.3) in seconds.
//!
//! The client is [`ClientIp`] under the rules of [`TrustedProxies`]: forwarded headers count
//! only from trusted proxies, so a client cannot pick a fresh bucket by forging
//! `X-Forwarded-For`.
//!
//! ```
//! use std::time::Duration;
//! use weft::prelude::*;
//! use weft::rate_limit::RateLimit;
//!
//! // 10 requests at once, refilled at 10 per minute, per client IP and route.
//! let limit = RateLimit::new(10, Duration::from_secs(60)).unwrap();
//! let app = App::new().middleware(limit).get("/", || async { "hi" });
//! # let _ = app;
//! ```

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderMap, StatusCode};

use crate::Request;
use crate::client_ip::{ClientIp, TrustedProxies};
use crate::error::Error;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};
use crate::problem::Problem;

/// Where a limiter keeps one GCRA state (the theoretical arrival time) per key: governor's
/// [`StateStore`], plus what the app needs to watch its memory.
///
/// A store must bound its memory: keys come from clients, and a client behind a trusted
/// proxy (or spread over many addresses) makes as many as it likes.
pub trait RateLimitStore: StateStore<Key = String> + Send + Sync + 'static {
    /// How many keys the store holds now.
    fn len(&self) -> usize;

    /// Whether the store holds no key.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The default [`RateLimitStore`]: an in-memory map of at most `max_keys` keys (100 000 by
/// default). When a new key would exceed it, the least recently used eighth of the keys is
/// evicted; an evicted client starts again with a full bucket, which is the price of
/// bounded memory (choose `max_keys` above the number of clients active within one refill
/// period). Clones share the map.
#[derive(Clone)]
pub struct MemoryStore {
    max_keys: usize,
    map: Arc<Mutex<Slots>>,
}

#[derive(Default)]
struct Slots {
    slots: HashMap<String, Slot>,
    /// A counter standing for time: the use of each slot, to find the least recent.
    tick: u64,
}

struct Slot {
    tat: Nanos,
    used: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_keys", &self.max_keys)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(100_000)
    }
}

impl MemoryStore {
    /// A store of at most `max_keys` keys (at least 1).
    pub fn new(max_keys: usize) -> MemoryStore {
        MemoryStore {
            max_keys: max_keys.max(1),
            map: Arc::default(),
        }
    }

    /// The most keys it holds.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }
}

impl Slots {
    /// Drops the least recently used eighth of the slots (at least one).
    fn evict(&mut self) {
        let count = (self.slots.len() / 8).max(1);
        let mut uses: Vec<u64> = self.slots.values().map(|slot| slot.used).collect();
        let index = count.min(uses.len()) - 1;
        let (_, &mut cutoff, _) = uses.select_nth_unstable(index);
        self.slots.retain(|_, slot| slot.used > cutoff);
    }
}

impl StateStore for MemoryStore {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.tick += 1;
        let tick = map.tick;
        if let Some(slot) = map.slots.get_mut(key) {
            slot.used = tick;
            let (value, tat) = f(Some(slot.tat))?;
            slot.tat = tat;
            return Ok(value);
        }
        let (value, tat) = f(None)?;
        if map.slots.len() >= self.max_keys {
            map.evict();
        }
        map.slots.insert(key.clone(), Slot { tat, used: tick });
        Ok(value)
    }
}

impl RateLimitStore for MemoryStore {
    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .len()
    }
}

/// What a request is counted under.
type KeyFn = dyn Fn(&Parts, Option<ClientIp>) -> Option<String> + Send + Sync;

/// Limits the rate of requests per client IP and route (or per a key of the app's own),
/// with GCRA: up to `burst` requests at once, refilled evenly over `period`.
///
/// Requests without a key (no peer address, or a key function that says `None`) are not
/// limited. See the [module documentation](self) for the answers.
pub struct RateLimit<S: RateLimitStore = MemoryStore, C: Clock = DefaultClock> {
    limiter: Arc<RateLimiter<String, S, C, StateInformationMiddleware>>,
    store: S,
    clock: C,
    quota: Quota,
    proxies: Option<TrustedProxies>,
    key: Arc<KeyFn>,
}

impl<S: RateLimitStore, C: Clock> std::fmt::Debug for RateLimit<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("quota", &self.quota)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

/// The default key: the client's IP, the method and the route's pattern, so that each route
/// has its own bucket.
fn ip_and_route(parts: &Parts, ip: Option<ClientIp>) -> Option<String> {
    let ip = ip?;
    let pattern = parts
        .extensions
        .get::<crate::extract::PathParams>()
        .and_then(|params| params.pattern().cloned());
    let pattern = pattern.as_deref().unwrap_or_else(|| parts.uri.path());
    Some(format!("{} {} {pattern}", ip.0, parts.method))
}

impl RateLimit {
    /// `burst` requests at once, refilled at `burst` per `period` (one every
    /// `period / burst`), per client IP and route, in a [`MemoryStore`] of 100 000 keys.
    /// `None` when `burst` or `period` is zero.
    pub fn new(burst: u32, period: Duration) -> Option<RateLimit> {
        let quota = Quota::with_period(period / burst.max(1))?.allow_burst(NonZeroU32::new(burst)?);
        Some(RateLimit::with_quota(quota))
    }

    /// A limiter of governor's `quota`, per client IP and route, in a [`MemoryStore`].
    pub fn with_quota(quota: Quota) -> RateLimit {
        RateLimit::with_parts(quota, MemoryStore::default(), DefaultClock::default())
    }
}

impl<S: RateLimitStore + Clone, C: Clock + Clone + Send + Sync + 'static> RateLimit<S, C> {
    /// A limiter of `quota` in `store`, reading the time from `clock` (governor's
    /// `FakeRelativeClock` in tests, to advance time by hand).
    pub fn with_parts(quota: Quota, store: S, clock: C) -> RateLimit<S, C> {
        let limiter: RateLimiter<String, S, C, StateInformationMiddleware> =
            RateLimiter::new(quota, store.clone(), clock.clone());
        RateLimit {
            limiter: Arc::new(limiter),
            store,
            clock,
            quota,
            proxies: None,
            key: Arc::new(ip_and_route),
        }
    }

    /// This limiter with a store of its own (a [`MemoryStore`] of another bound, or the
    /// app's store); counts so far are not carried over.
    pub fn store<S2: RateLimitStore + Clone>(self, store: S2) -> RateLimit<S2, C> {
        let mut limiter = RateLimit::with_parts(self.quota, store, self.clock);
        limiter.proxies = self.proxies;
        limiter.key = self.key;
        limiter
    }

    /// Believes `Forwarded` / `X-Forwarded-For` from these proxies to find the client (when
    /// no [`TrustedProxies`] middleware ran before, which takes precedence).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// Counts all the routes of a client together (the key is the client IP alone).
    pub fn per_ip(mut self) -> Self {
        self.key = Arc::new(|_, ip| ip.map(|ip| ip.0.to_string()));
        self
    }

    /// Counts requests under the key `key` gives (an API key, a user id), with the client
    /// as [`ClientIp`] resolved; `None` leaves the request unlimited.
    pub fn key_with<F>(mut self, key: F) -> Self
    where
        F: Fn(&Parts, Option<ClientIp>) -> Option<String> + Send + Sync + 'static,
    {
        self.key = Arc::new(key);
        self
    }

    /// The store of the counts (to watch its size).
    pub fn state_store(&self) -> &S {
        &self.store
    }

    /// The headers of draft-ietf-httpapi-ratelimit-headers for `remaining` requests left,
    /// the bucket full again in `reset`.
    fn headers(&self, remaining: u32, reset: Duration) -> HeaderMap {
        let limit = self.quota.burst_size().get();
        let window = seconds(self.quota.burst_size_replenished_in());
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        put("ratelimit-limit", limit.to_string());
        put("ratelimit-remaining", remaining.to_string());
        put("ratelimit-reset", seconds(reset).to_string());
        put("ratelimit-policy", format!("{limit};w={window}"));
        headers
    }
}

/// A duration in whole seconds, rounded up.
fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

impl<S, C> Middleware for RateLimit<S, C>
where
    S: RateLimitStore + Clone,
    C: Clock + Clone + Send + Sync + 'static,
{
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let (mut parts, body) = request.into_parts();
        let ip = ClientIp::resolve(&parts, self.proxies.as_ref());
        if let Some(ip) = ip {
            parts.extensions.insert(ip);
        }
        let Some(key) = (self.key)(&parts, ip) else {
            return Ok(next.run(Request::from_parts(parts, body)).await);
        };
        let checked = self.limiter.check_key(&key);
        match checked {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.quota.burst_size().get().saturating_sub(remaining);
                let reset = self.quota.replenish_interval() * used;
                let mut response = next.run(Request::from_parts(parts, body)).await;
                let headers = self.headers(remaining, reset);
                response.headers_mut().extend(headers);
                Ok(response)
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after = seconds(wait).max(1);
                tracing::debug!(key, retry_after, "rate limit exceeded");
                let mut error = Error::from_problem(
                    Problem::new(StatusCode::TOO_MANY_REQUESTS)
                        .with_code("rate_limit.exceeded")
                        .with_detail(format!("too many requests: try again in {retry_after} s")),
                )
                .with_header(RETRY_AFTER, HeaderValue::from(retry_after));
                // Full again once the next request is allowed and the rest of the burst
                // has refilled after it.
                let burst = self.quota.burst_size().get();
                let full = wait + self.quota.replenish_interval() * (burst - 1);
                for (name, value) in &self.headers(0, full) {
                    error = error.with_header(name.clone(), value.clone());
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(store: &MemoryStore, key: &str) {
        let _ = store.measure_and_replace(&key.to_owned(), |_| Ok::<_, ()>(((), Nanos::from(1))));
    }

    #[test]
    fn the_memory_store_never_holds_more_than_its_bound() {
        let store = MemoryStore::new(100);
        for i in 0..1000 {
            touch(&store, &format!("key {i}"));
            assert!(store.len() <= 100);
        }
        assert!(store.len() > 80);
    }

    #[test]
    fn the_memory_store_evicts_the_least_recently_used_keys() {
        let store = MemoryStore::new(8);
        for i in 0..8 {
            touch(&store, &format!("{i}"));
        }
        touch(&store, "0");
        touch(&store, "new");
        let map = store.map.lock().unwrap();
        assert!(map.slots.contains_key("0"));
        assert!(!map.slots.contains_key("1"));
        assert!(map.slots.contains_key("new"));
    }
}
