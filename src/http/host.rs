//! The `Host` header a request must carry (RFC 9112 section 3.2).

use tiny_http::{HTTPVersion, Request};

/// RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request
/// without a `Host` header, and to any request with more than one (two
/// hosts are two readings of one request, which a front end and this proxy
/// could take apart). HTTP/1.0 needs none. One pass over the headers, no
/// allocation.
pub(super) fn problem(request: &Request) -> Option<&'static str> {
    let hosts = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Host"))
        .take(2)
        .count();
    match hosts {
        1 => None,
        0 if *request.http_version() == HTTPVersion(1, 0) => None,
        0 => Some("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)"),
        _ => Some("more than one Host header (RFC 9112 section 3.2)"),
    }
}
