//! The `Host` header a request must carry (RFC 9112 section 3.2).

use std::net::Ipv6Addr;

use tiny_http::{HTTPVersion, Request};

/// RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request
/// without a `Host` header, to any request with more than one (two hosts
/// are two readings of one request, which a front end and this proxy could
/// take apart), and to one whose value is not `uri-host [ ":" port ]`.
/// HTTP/1.0 needs none. One pass over the headers, no allocation.
pub(super) fn problem(request: &Request) -> Option<&'static str> {
    let mut hosts = request.headers().iter().filter(|h| h.field.equiv("Host"));
    match (hosts.next(), hosts.next()) {
        (Some(host), None) if is_host_and_port(host.value.as_str()) => None,
        (Some(_), None) => {
            Some("the Host header is not a host with an optional port (RFC 9112 section 3.2)")
        }
        (None, _) if *request.http_version() == HTTPVersion(1, 0) => None,
        (None, _) => Some("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)"),
        (Some(_), Some(_)) => Some("more than one Host header (RFC 9112 section 3.2)"),
    }
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 3986 section 3.2.2):
/// a bracketed IPv6 (or IPvFuture) literal, or a reg-name, which covers
/// IPv4 addresses and may be empty (RFC 9112 section 3.2: the Host of a
/// target without an authority is sent empty); then a port of digits,
/// possibly none. No userinfo (`@`), no zone in a literal.
fn is_host_and_port(value: &str) -> bool {
    let (host, port) = match value.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((inside, rest)) if is_ip_literal(inside) => (None, rest),
            _ => return false,
        },
        None => match value.find(':') {
            Some(colon) => (Some(&value[..colon]), &value[colon..]),
            None => (Some(value), ""),
        },
    };
    host.is_none_or(is_reg_name)
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit())))
}

/// The inside of `[...]`: an IPv6 address, or `v` HEXDIG+ `.` then
/// unreserved, sub-delims and `:` (IPvFuture). Parsing a `&str` into an
/// `Ipv6Addr` allocates nothing.
fn is_ip_literal(inside: &str) -> bool {
    match inside.strip_prefix(['v', 'V']) {
        Some(future) => future.split_once('.').is_some_and(|(version, rest)| {
            !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_hexdigit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b == b':' || is_unreserved_or_sub_delim(b))
        }),
        None => inside.parse::<Ipv6Addr>().is_ok(),
    }
}

/// reg-name = *( unreserved / pct-encoded / sub-delims ).
fn is_reg_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if is_unreserved_or_sub_delim(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// RFC 3986 section 2.3's unreserved and section 2.2's sub-delims.
fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::is_host_and_port;

    #[test]
    fn hosts_and_ports_by_rfc_3986() {
        for valid in [
            "",
            "x",
            "x:",
            ":80",
            "example.com:8080",
            "127.0.0.1",
            "[::1]:8080",
            "[::1]",
            "[::ffff:192.0.2.1]",
            "[v1.fe:x]",
            "a%2Fb",
            "a-b_c~d!$&'()*+,;=",
        ] {
            assert!(is_host_and_port(valid), "{valid:?}");
        }
        for invalid in [
            "a b",
            "a\tb",
            "x:port",
            "x:80:80",
            "x: 80",
            "@evil",
            "u@h",
            "a/b",
            "a?b",
            "a#b",
            "a\\b",
            "%",
            "%2",
            "%zz",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[x]",
            "[::1%eth0]",
            "[v.x]",
            "[v1.]",
            "[vg.x]",
            "::1",
            "a\0",
        ] {
            assert!(!is_host_and_port(invalid), "{invalid:?}");
        }
    }
}
