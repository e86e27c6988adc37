//! CORS (`CORS_ALLOW_ORIGINS`): lets pages of the listed origins read the
//! proxy's answers in a browser, and answers their preflight requests.
//!
//! With no origins configured (the default) this adds nothing and costs a
//! branch per request. With a list, a request whose `Origin` is listed gets
//! `Access-Control-Allow-Origin` naming it, and a preflight `OPTIONS` from
//! it to a path the proxy serves a 204 allowing GET and HEAD with the
//! `Authorization` and `If-None-Match` headers; a request from any other
//! origin, or with none, gets no CORS header, so the browser keeps its page
//! from reading the answer. Since the CORS headers then depend on `Origin`,
//! every answer says `Vary: Origin`, those without them included: a shared
//! cache must not hand one origin's copy (or the copy made for a request
//! without `Origin`) to another. With `*`, every answer carries the same
//! `Access-Control-Allow-Origin: *`, `Origin` or not, so nothing varies.

use tiny_http::{Method, Request};

use crate::config::CorsOrigins;

use super::response::{self, HttpResponse};

/// The headers besides the CORS-safelisted ones a page may read.
const EXPOSE: &[u8] = b"Access-Control-Expose-Headers: ETag, X-Cache, Age\r\n";

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
    /// `Access-Control-Request-Method`) from an allowed origin to a path
    /// the proxy serves; None for every other request, which is routed as
    /// usual (a preflight to an unknown path gets the 404 any request
    /// there gets).
    #[inline]
    pub fn preflight(&self, request: &Request) -> Option<HttpResponse> {
        if !matches!(request.method(), Method::Options) || !super::serves_target(request.url()) {
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

    /// Adds the CORS headers an answer carries: with `*`, the same on
    /// every answer; with a list, `Access-Control-Allow-Origin` for a
    /// listed origin, and `Vary: Origin` on every answer (a preflight's
    /// too). The page may also read `ETag`, `X-Cache` and `Age`.
    #[inline]
    pub fn decorate(&self, request: &Request, answer: &mut HttpResponse) {
        match self.origins {
            CorsOrigins::None => {}
            CorsOrigins::Any => {
                if !matches!(request.method(), Method::Options) {
                    answer
                        .headers
                        .push_line(b"Access-Control-Allow-Origin: *\r\n");
                    answer.headers.push_line(EXPOSE);
                }
            }
            CorsOrigins::List(_) => {
                if let Some(origin) = self.allowed_origin(request) {
                    if !matches!(request.method(), Method::Options) {
                        self.allow(origin, answer);
                        answer.headers.push_line(EXPOSE);
                    }
                }
                answer.headers.push_line(b"Vary: Origin\r\n");
            }
        }
    }

    /// `Access-Control-Allow-Origin` for `origin`, allowed.
    fn allow(&self, origin: &str, answer: &mut HttpResponse) {
        if self.origins == CorsOrigins::Any {
            answer.headers.push(b"Access-Control-Allow-Origin", b"*");
        } else {
            // The origin matched a configured one, so it is plain ASCII.
            answer
                .headers
                .push(b"Access-Control-Allow-Origin", origin.as_bytes());
        }
    }
}
