//! The client's IP address behind reverse proxies: [`TrustedProxies`] and the [`ClientIp`]
//! extractor.
//!
//! `X-Forwarded-For` and `Forwarded` (RFC 7239) are request headers any client can write, so
//! they are believed only when the connection's peer is a proxy the app trusts. The chain of
//! hops is the header's addresses in order, then the peer; walking it from the right, every
//! trusted proxy is skipped and the first untrusted address is the client (the right-most
//! untrusted address, which no client can forge: the proxy that appended it saw it). A peer
//! that is not trusted is the client, whatever its headers say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use http::HeaderMap;
use http::request::Parts;
use weft_service::service::ConnectionInfo;

use crate::Request;
use crate::error::Error;
use crate::extract::FromRequestParts;
use crate::handler::Outcome;
use crate::middleware::{Middleware, Next};

/// A block of IP addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a [`Cidr`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl std::fmt::Display for CidrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an IP address or CIDR block: {:?}", self.0)
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// The block of `prefix` leading bits of `network`; `None` when `prefix` is longer than
    /// the address (32 bits for IPv4, 128 for IPv6).
    pub fn new(network: IpAddr, prefix: u8) -> Option<Cidr> {
        let bits = if network.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Cidr { network, prefix })
    }

    /// Whether `ip` is in this block. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count
    /// as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let error = || CidrError(text.to_owned());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(address.trim().parse::<IpAddr>().map_err(|_| error())?);
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| error())?,
            None => bits,
        };
        Cidr::new(network, prefix).ok_or_else(error)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `Forwarded` / `X-Forwarded-For` headers are believed (none by default).
///
/// Also a [`Middleware`]: added to an app (before the layers that need it), it resolves each
/// request's [`ClientIp`] once and puts it in the request's extensions, where the extractor
/// and [`RateLimit`](crate::rate_limit::RateLimit) find it.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    blocks: Arc<[Cidr]>,
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the connection's peer.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Trusts the proxies in these blocks (`"10.0.0.0/8"`, `"192.0.2.7"`, `"fd00::/8"`).
    pub fn new<I>(blocks: I) -> Result<TrustedProxies, CidrError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let blocks = blocks
            .into_iter()
            .map(|block| block.as_ref().parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies {
            blocks: blocks.into(),
        })
    }

    /// Trusts these blocks.
    pub fn from_cidrs(blocks: impl IntoIterator<Item = Cidr>) -> TrustedProxies {
        TrustedProxies {
            blocks: blocks.into_iter().collect(),
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|block| block.contains(ip))
    }

    /// The client of a request from `peer` with `headers`: the right-most address of the
    /// chain (forwarded addresses, then the peer) that is not a trusted proxy. `Forwarded`
    /// is read when present, else `X-Forwarded-For`; an entry that is not an address
    /// (`unknown`, an obfuscated `_name`, garbage) ends the walk at the proxy that sent it.
    /// `None` only without a peer address (an in-process caller).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let hops = forwarded_hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.is_trusted(client) {
                        break;
                    }
                }
                None => break,
            }
        }
        Some(client)
    }
}

/// The `for` addresses of `Forwarded` (RFC 7239 §4, §6), or else of `X-Forwarded-For`, in
/// order; `None` for an entry that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<_> = headers.get_all(http::header::FORWARDED).iter().collect();
    if !forwarded.is_empty() {
        let mut hops = Vec::new();
        for value in forwarded {
            let Ok(value) = value.to_str() else {
                hops.push(None);
                continue;
            };
            for element in value.split(',') {
                let node = element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then_some(value.trim())
                });
                // An element without `for` says nothing about the client: skip it.
                if let Some(node) = node {
                    hops.push(parse_node(node));
                }
            }
        }
        return hops;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(value.split(',').map(|entry| parse_node(entry.trim())));
    }
    hops
}

/// A node of RFC 7239 §6 (`192.0.2.43`, `"[2001:db8::1]:4711"`, `"192.0.2.43:80"`) or of
/// `X-Forwarded-For` (`2001:db8::1`): its address, ports dropped.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (v4, port) = node.split_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's IP address, by the rules of [`TrustedProxies`].
///
/// Set by the [`TrustedProxies`] middleware (or by
/// [`RateLimit`](crate::rate_limit::RateLimit)); without either, the connection's peer (no
/// header is believed). Rejected with `500` only when there is no peer address at all (an
/// in-process caller without a connection); take `Option<ClientIp>` to allow that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client of `parts`: the extension a middleware resolved, else resolved now with
    /// `proxies` (trusting none when `None`).
    pub fn resolve(parts: &Parts, proxies: Option<&TrustedProxies>) -> Option<ClientIp> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Some(*ip);
        }
        let peer = parts
            .extensions
            .get::<ConnectionInfo>()
            .and_then(|info| info.peer)
            .map(|addr| addr.ip());
        let none = TrustedProxies::none();
        proxies
            .unwrap_or(&none)
            .client_ip(peer, &parts.headers)
            .map(ClientIp)
    }
}

impl FromRequestParts for ClientIp {
    async fn from_request_parts(parts: &mut Parts) -> Result<Self, Error> {
        ClientIp::resolve(parts, None).ok_or_else(|| {
            Error::from_problem(
                crate::Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR)
                    .with_code("client_ip.unknown")
                    .with_detail("the request came without a peer address"),
            )
        })
    }
}

impl Middleware for TrustedProxies {
    async fn handle(&self, request: Request, next: Next) -> Outcome {
        let (mut parts, body) = request.into_parts();
        parts.extensions.remove::<ClientIp>();
        if let Some(ip) = ClientIp::resolve(&parts, Some(self)) {
            parts.extensions.insert(ip);
        }
        Ok(next.run(Request::from_parts(parts, body)).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_contain_their_addresses_only() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")));
        let v6: Cidr = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:7fff::1")));
        assert!(!v6.contains(ip("2001:db8:8000::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let forged = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            proxies.client_ip(Some(ip("203.0.113.9")), &forged),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn the_right_most_untrusted_address_behind_trusted_proxies_is_the_client() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        // The client forged "1.2.3.4"; 198.51.100.7 connected to proxy 10.0.0.2, which
        // forwarded to 10.0.0.1, our peer.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.1")), &chain),
            Some(ip("198.51.100.7"))
        );
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.3")]);
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.1")), &all_trusted),
            Some(ip("10.0.0.3"))
        );
        let garbage = headers(&[("x-forwarded-for", "198.51.100.7, nonsense")]);
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.1")), &garbage),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn forwarded_is_read_per_rfc_7239_and_preferred() {
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let map = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("forwarded", "for=\"10.0.0.5:80\";by=10.0.0.1"),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.1")), &map),
            Some(ip("2001:db8:cafe::17"))
        );
        let hidden = headers(&[("forwarded", "for=_hidden, for=unknown")]);
        assert_eq!(
            proxies.client_ip(Some(ip("10.0.0.1")), &hidden),
            Some(ip("10.0.0.1"))
        );
    }
}
