//! The syntax of a Host field value (RFC 9112 §3.2, RFC 3986 §3.2.2-§3.2.3).
//!
//! `http::uri::Authority` is too loose for this (it accepts `example:com`) and too strict
//! (it refuses percent-encoded names), so the grammar is checked here directly.

/// Whether `value` is `uri-host [ ":" port ]`, or empty (allowed when the target has no
/// authority). RFC 9112 §3.2 requires a 400 for anything else.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    let (host, rest) = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        if !is_ip_literal(&value[1..close]) {
            return false;
        }
        (&value[..=close], &value[close + 1..])
    } else {
        let colon = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        (&value[..colon], &value[colon..])
    };
    // port = *DIGIT
    let port_ok = match rest {
        [] => true,
        [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    !host.is_empty() && port_ok && (host[0] == b'[' || is_reg_name(host))
}

/// reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is a subset of it.
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// IP-literal = "[" ( IPv6address / IPvFuture ) "]", given without the brackets.
fn is_ip_literal(inside: &[u8]) -> bool {
    if let Some(future) = inside
        .strip_prefix(b"v")
        .or_else(|| inside.strip_prefix(b"V"))
    {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let version = future.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let rest = &future[version..];
        return version > 0
            && rest.len() > 1
            && rest[0] == b'.'
            && rest[1..]
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<core::net::Ipv6Addr>().is_ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::is_valid_host;

    #[test]
    fn accepts_names_addresses_and_ports() {
        for host in [
            "",
            "example.com",
            "example.com:8080",
            "a:",
            "127.0.0.1:80",
            "ex%41mple.com",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]",
            "[v1.fe80::a+en1]",
            "under_score~tilde",
        ] {
            assert!(
                is_valid_host(host.as_bytes()),
                "{host:?} should be accepted"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_uri_host_and_port() {
        for host in [
            "user@example.com",
            "example:com",
            "a:1:2",
            ":80",
            "exa mple.com",
            "ex%4mple.com",
            "ex%zzmple.com",
            "[zzz]",
            "[1.2.3.4]",
            "[::1::2]",
            "[fe80::1%25eth0]",
            "[::1",
            "[::1]x",
            "[v.x]",
            "a/b",
            "a\"b",
        ] {
            assert!(
                !is_valid_host(host.as_bytes()),
                "{host:?} should be refused"
            );
        }
    }
}
