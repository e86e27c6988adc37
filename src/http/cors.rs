//! CORS (`CORS_ALLOW_ORIGINS`): lets pages of the listed origins read the
//! proxy's answers in a browser, and answers their preflight requests.
//!
//! With no origins configured (the default) this adds nothing and costs a
//! branch per request. Otherwise a request whose `Origin` is allowed gets
//! `Access-Control-Allow-Origin` (its origin, and `Vary: Origin` since the
//! answer then depends on it; or `*`), and a preflight `OPTIONS` from it a
//! 204 allowing GET and HEAD with the `Authorization` and `If-None-Match`
//! headers. A request from any other origin gets no CORS header, so the
//! browser keeps its page from reading the answer.

use tiny_http::{Method, Request};

use crate::config::CorsOrigins;

use super::response::{self, HttpResponse};

/// How long a browser may reuse a preflight answer (seconds).
const MAX_AGE: &[u8] = b"600";

/// The CORS policy of the HTTP front end.
#[derive(Clone, Debug, Default)]
pub struct Cors {
    origins: CorsOrigins,
}

impl Cors {
    /// The policy for these origins.
    pub fn new(origins: CorsOrigins) -> Cors {
        Cors { origins }
    }

    /// The `Origin` of `request`, if CORS is on and the origin is allowed.
    #[inline]
    fn allowed_origin<'r>(&self, request: &'r Request) -> Option<&'r str> {
        // `matches!`, not `==`: no call to the derived comparison.
        if matches!(self.origins, CorsOrigins::None) {
            return None;
        }
        let origin = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Origin"))?
            .value
            .as_str();
        self.origins.allows(origin).then_some(origin)
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) from an allowed origin; None for
    /// every other request, which is routed as usual.
    #[inline]
    pub fn preflight(&self, request: &Request) -> Option<HttpResponse> {
        if !matches!(request.method(), Method::Options) {
            return None;
        }
        let origin = self.allowed_origin(request)?;
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Access-Control-Request-Method"))?;
        let mut answer = response::build(204, b"text/plain", &[][..]);
        answer.headers.clear();
        self.allow(origin, &mut answer);
        answer
            .headers
            .push(b"Access-Control-Allow-Methods", b"GET, HEAD");
        answer.headers.push(
            b"Access-Control-Allow-Headers",
            b"Authorization, If-None-Match",
        );
        answer.headers.push(b"Access-Control-Max-Age", MAX_AGE);
        Some(answer)
    }

    /// Adds the CORS headers an answer to an allowed origin carries (none
    /// for other requests). The page may also read `ETag`, `X-Cache` and
    /// `Age`.
    #[inline]
    pub fn decorate(&self, request: &Request, answer: &mut HttpResponse) {
        if let Some(origin) = self.allowed_origin(request) {
            if !matches!(request.method(), Method::Options) {
                self.allow(origin, answer);
                answer
                    .headers
                    .push(b"Access-Control-Expose-Headers", b"ETag, X-Cache, Age");
            }
        }
    }

    /// `Access-Control-Allow-Origin` (and `Vary: Origin` when it names the
    /// origin).
    fn allow(&self, origin: &str, answer: &mut HttpResponse) {
        if self.origins == CorsOrigins::Any {
            answer.headers.push(b"Access-Control-Allow-Origin", b"*");
        } else {
            // The origin matched a configured one, so it is plain ASCII.
            answer
                .headers
                .push(b"Access-Control-Allow-Origin", origin.as_bytes());
            answer.headers.push(b"Vary", b"Origin");
        }
    }
}
