//! Building the HTTP responses: values, JSON bodies and errors.
//!
//! Every response carries its `Content-Length` (the chunking threshold is
//! lifted in [`HttpResponse::into_tiny`]), and every error body the proxy
//! writes is JSON with an `error` field.

use std::borrow::Cow;
use std::io::Cursor;

use base64::Engine as _;
use serde_json::{json, Value as Json};
use tiny_http::{Header, Response, StatusCode};

use crate::service::{Found, ReadError, Source, Value};

/// What a route answers: status, headers and a body (a found value is the
/// service's [`Value`] itself, not a copy of it made here). Turned into
/// tiny_http's type only when it is handed to the connection to write
/// ([`HttpResponse::into_tiny`]).
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers besides those tiny_http adds (Date, Server, Content-Length).
    pub headers: Vec<Header>,
    body: Body,
    /// For a 304, which has no body: the length of the 200 it stands for,
    /// sent as its `Content-Length` (RFC 9110 section 8.6 allows that or
    /// none; a `Content-Length: 0` would claim the value is empty).
    unsent_length: Option<usize>,
}

/// A response's bytes: made for it, or a found value. A value over 256
/// bytes is shared with the cache; a smaller one was copied out of it under
/// the lock (see [`Value`]), and is not copied again here.
pub enum Body {
    /// Bytes made for this response (JSON, metrics, the page).
    Made(Cow<'static, [u8]>),
    /// A cached value.
    Shared(Value),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Made(bytes) => bytes,
            Body::Shared(value) => value.bytes(),
        }
    }
}

impl HttpResponse {
    /// The same response with one more header.
    pub fn with_header(mut self, header: Header) -> HttpResponse {
        self.headers.push(header);
        self
    }

    /// The value of a header set by the proxy, for the access log.
    pub fn header(&self, name: &'static str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    }

    /// tiny_http's response, with an exact `Content-Length` and no chunking
    /// whatever the size (tiny_http would chunk bodies of 32 KiB and more).
    pub fn into_tiny(self) -> Response<Cursor<Body>> {
        let len = self
            .unsent_length
            .unwrap_or_else(|| self.body.as_ref().len());
        Response::new(
            StatusCode(self.status),
            self.headers,
            Cursor::new(self.body),
            Some(len),
            None,
        )
        .with_chunked_threshold(usize::MAX)
    }
}

const JSON: &[u8] = b"application/json";
const TEXT: &[u8] = b"text/plain; charset=utf-8";
const BINARY: &[u8] = b"application/octet-stream";

/// A response with the given status, content type and body.
pub fn build(
    status: u16,
    content_type: &[u8],
    body: impl Into<Cow<'static, [u8]>>,
) -> HttpResponse {
    with_body(status, content_type, Body::Made(body.into()))
}

fn with_body(status: u16, content_type: &[u8], body: Body) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![header(b"Content-Type", content_type)],
        body,
        unsent_length: None,
    }
}

/// A header from a constant name and an ASCII value the proxy made (a
/// literal, digits, hex): building one cannot fail; a non-ASCII value would
/// be a bug caught by the tests.
pub fn header(name: &[u8], value: &[u8]) -> Header {
    match Header::from_bytes(name, value) {
        Ok(header) => header,
        Err(()) => unreachable!("header values made by the proxy are ASCII"),
    }
}

/// A JSON body with the given status.
pub fn json(status: u16, body: &Json) -> HttpResponse {
    build(status, JSON, body.to_string().into_bytes())
}

/// An error: `{"error": message}`, and the key when there is one.
pub fn error(status: u16, message: &str, key: Option<&[u8]>) -> HttpResponse {
    let mut body = json!({ "error": message });
    if let Some(key) = key {
        put_bytes(&mut body, "key", "key_encoding", key);
    }
    json(status, &body)
}

/// Puts `bytes` in `body[field]`: as a string when they are UTF-8, else
/// base64-encoded with `body[encoding_field] = "base64"`, so no key or value
/// is ever turned into another one (`%FF` and `%EF%BF%BD` stay apart).
fn put_bytes(body: &mut Json, field: &str, encoding_field: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => body[field] = Json::String(text.to_owned()),
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            body[field] = Json::String(encoded);
            body[encoding_field] = Json::String("base64".to_owned());
        }
    }
}

/// The strong entity tag of a found value in one representation: its
/// digest, quoted hex, with `.json` for the JSON one (RFC 9110 8.8.3).
pub fn etag(found: &Found, as_json: bool) -> String {
    let suffix = if as_json { ".json" } else { "" };
    format!("\"{:016x}{suffix}\"", found.value.digest())
}

/// Whether `If-None-Match` (`header`, all of its values joined) matches
/// `tag`: `*`, or any listed tag by the weak comparison RFC 9110 13.1.2
/// asks for with GET and HEAD (a `W/` prefix is ignored on both sides).
pub fn none_match(header: &str, tag: &str) -> bool {
    let tag = tag.trim_start_matches("W/");
    let mut rest = header.trim();
    if rest == "*" {
        return true;
    }
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        rest = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(open) = rest.strip_prefix('"') else {
            return false;
        };
        let Some(end) = open.find('"') else {
            return false;
        };
        if &rest[..end + 2] == tag {
            return true;
        }
        rest = &open[end + 1..];
    }
}

/// The validators and freshness every answer about a found value carries:
/// `ETag`, `Cache-Control: max-age` and `Age` (see [`freshness`]),
/// `Vary: Accept` (two representations), `X-Cache`.
fn describe(found: &Found, tag: &str, headers: &mut Vec<Header>) {
    headers.push(header(b"ETag", tag.as_bytes()));
    let (max_age, age) = freshness(found);
    let max_age = format!("max-age={max_age}");
    headers.push(header(b"Cache-Control", max_age.as_bytes()));
    headers.push(header(b"Vary", b"Accept"));
    headers.push(header(b"X-Cache", found.source.name().as_bytes()));
    if found.source != Source::Miss {
        headers.push(header(b"Age", age.to_string().as_bytes()));
    }
}

/// `max-age` and `Age`, in whole seconds. A downstream cache counts `Age`
/// against `max-age` (RFC 9111 section 4.2), so `max-age` is the entry's
/// whole lifetime and `Age` the time since it was read from Redis; `Age` is
/// rounded up and `max-age` is it plus the whole seconds left, so what a
/// downstream cache keeps (`max-age` - `Age`) is what is left of the entry,
/// rounded down, never more. (A miss is `Age` 0: `max-age` is its lifetime.)
fn freshness(found: &Found) -> (u64, u64) {
    let age = found.age.as_secs() + u64::from(found.age.subsec_nanos() > 0);
    (age.saturating_add(found.fresh_for.as_secs()), age)
}

/// 304: the client's copy (tagged `tag`) is the current one. It declares
/// the length of the 200 it stands for (the representation `as_json` asks
/// for of `key`'s value) and carries no body.
pub fn not_modified(key: &[u8], found: &Found, as_json: bool, tag: &str) -> HttpResponse {
    let mut headers = Vec::with_capacity(5);
    describe(found, tag, &mut headers);
    let length = if as_json {
        json_value(key, found.value.bytes()).to_string().len()
    } else {
        found.value.bytes().len()
    };
    HttpResponse {
        status: 304,
        headers,
        body: Body::Made(Cow::Borrowed(&[])),
        unsent_length: Some(length),
    }
}

/// The JSON representation of a found value: `{"key", "value"}`.
fn json_value(key: &[u8], value: &[u8]) -> Json {
    let mut body = json!({});
    put_bytes(&mut body, "key", "key_encoding", key);
    put_bytes(&mut body, "value", "encoding", value);
    body
}

/// A found value: raw bytes, or `{"key", "value"}` when JSON was asked for.
pub fn value(key: &[u8], found: Found, as_json: bool, tag: &str) -> HttpResponse {
    let mut headers = Vec::with_capacity(6);
    describe(&found, tag, &mut headers);
    let mut response = if as_json {
        json(200, &json_value(key, found.value.bytes()))
    } else {
        let content_type = if found.value.is_utf8() { TEXT } else { BINARY };
        with_body(200, content_type, Body::Shared(found.value))
    };
    response.headers.append(&mut headers);
    response
}

/// A key Redis does not have.
pub fn absent(key: &[u8]) -> HttpResponse {
    error(404, "key not found", Some(key))
}

/// A failed backing read: 503 when Redis cannot be reached, 504 when it did
/// not answer in time, 502 when it answered with an error.
pub fn backend_error(key: &[u8], err: &ReadError) -> HttpResponse {
    let status = match err {
        ReadError::Unavailable(_) => 503,
        ReadError::Timeout(_) => 504,
        ReadError::Reply(_) => 502,
    };
    error(status, &err.to_string(), Some(key))
}

/// 401 with the schemes the proxy takes.
pub fn unauthorized(message: &str) -> HttpResponse {
    error(401, message, None).with_header(header(
        b"WWW-Authenticate",
        b"Basic realm=\"redis-proxy\", Bearer realm=\"redis-proxy\"",
    ))
}

/// 405 with the methods the path does take.
pub fn method_not_allowed(allow: &[u8]) -> HttpResponse {
    error(405, "method not allowed", None).with_header(header(b"Allow", allow))
}

#[cfg(test)]
mod tests {
    use super::{freshness, none_match};
    use crate::service::{Found, Source, Value};
    use std::time::Duration;

    #[test]
    fn max_age_minus_age_is_what_is_left_rounded_down() {
        let found = |source, age: f64, left: f64| Found {
            value: Value::new(b"v"),
            source,
            fresh_for: Duration::from_secs_f64(left),
            age: Duration::from_secs_f64(age),
        };
        // A miss: its whole lifetime, no age.
        assert_eq!(freshness(&found(Source::Miss, 0.0, 60.0)), (60, 0));
        // Hits: max-age the lifetime, Age rounded up, never more left
        // downstream than here.
        assert_eq!(freshness(&found(Source::Hit, 0.3, 59.7)), (60, 1));
        assert_eq!(freshness(&found(Source::Hit, 8.0, 2.0)), (10, 8));
        assert_eq!(freshness(&found(Source::Hit, 2.5, 2.0)), (5, 3));
        // Stale: nothing left.
        assert_eq!(freshness(&found(Source::Stale, 60.0, 0.0)), (60, 60));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = "\"00ff\"";
        assert!(none_match("\"00ff\"", tag));
        assert!(none_match("W/\"00ff\"", tag));
        assert!(none_match("\"aa\", W/\"00ff\"", tag));
        assert!(none_match("  \"aa\" ,\"00ff\"  ", tag));
        assert!(none_match("*", tag));
        assert!(!none_match("\"00ff.json\"", tag));
        assert!(!none_match("\"aa\"", tag));
        assert!(!none_match("00ff", tag));
        assert!(!none_match("\"00ff", tag));
        assert!(!none_match("", tag));
        // Commas are legal inside a tag.
        assert!(none_match("\"a,b\"", "\"a,b\""));
    }
}
