//! Building the HTTP responses: values, JSON bodies and errors.
//!
//! Every response carries its `Content-Length` (the chunking threshold is
//! lifted in [`HttpResponse::into_tiny`]), and every error body the proxy
//! writes is JSON with an `error` field.

use std::borrow::Cow;
use std::io::Cursor;

use base64::Engine as _;
use serde_json::{json, Value as Json};
use tiny_http::{Response, StatusCode};

use crate::service::{Found, ReadError, Source};

mod body;
mod headers;
pub use body::{Body, Held, Lent, Payload};
pub use headers::Headers;

/// What a route answers: status, headers and a body (a found value's bytes
/// are not copied again here: see [`Body`]). Turned into
/// tiny_http's type only when it is handed to the connection to write
/// ([`HttpResponse::into_tiny`]).
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers besides those tiny_http adds (Date, Server, Content-Length),
    /// rendered as they go on the wire.
    pub headers: Headers,
    body: Body,
    /// For a 304, which has no body: the length of the 200 it stands for,
    /// sent as its `Content-Length` (RFC 9110 section 8.6 allows that or
    /// none; a `Content-Length: 0` would claim the value is empty).
    unsent_length: Option<usize>,
}

impl HttpResponse {
    /// The same response with one more header (see [`Headers::push`]).
    pub fn with_header(mut self, name: &[u8], value: &[u8]) -> HttpResponse {
        self.headers.push(name, value);
        self
    }

    /// The value of a header set by the proxy, for the access log.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// tiny_http's response, with an exact `Content-Length` and no chunking
    /// whatever the size (tiny_http would chunk bodies of 32 KiB and more).
    /// The headers go as the lines already rendered (vendor patch 16), not
    /// as tiny_http `Header`s.
    pub fn into_tiny(self) -> Response<Cursor<Body>> {
        let len = self
            .unsent_length
            .unwrap_or_else(|| self.body.as_ref().len());
        Response::new(
            StatusCode(self.status),
            Vec::new(),
            Cursor::new(self.body),
            Some(len),
            None,
        )
        .with_chunked_threshold(usize::MAX)
        .with_raw_headers(self.headers.into_lines())
    }
}

/// A whole header line from two literals: `Name: value\r\n`.
macro_rules! line {
    ($name:literal, $value:literal) => {
        concat!($name, ": ", $value, "\r\n").as_bytes()
    };
}

const JSON: &[u8] = b"application/json";

/// A response with the given status, content type and body.
pub fn build(
    status: u16,
    content_type: &[u8],
    body: impl Into<Cow<'static, [u8]>>,
) -> HttpResponse {
    with_body(status, content_type, Body::Made(body.into()))
}

fn with_body(status: u16, content_type: &[u8], body: Body) -> HttpResponse {
    let mut headers = Headers::with_capacity(MADE_HEADERS);
    headers.push(b"Content-Type", content_type);
    HttpResponse {
        status,
        headers,
        body,
        unsent_length: None,
    }
}

/// Room for the headers of a response made by the proxy: its content type
/// and one more (`Allow`, `WWW-Authenticate`), or CORS's on a JSON answer.
const MADE_HEADERS: usize = 128;

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
/// digest (worked out once, when the value was read from Redis), quoted
/// hex, with `.json` for the JSON one (RFC 9110 8.8.3). Rendered into a
/// buffer on the stack: a hit allocates nothing for it.
pub struct ETag {
    bytes: [u8; ETag::MAX],
    len: usize,
}

impl ETag {
    /// `"` + 16 hex digits + `.json` + `"`.
    const MAX: usize = 1 + 16 + 5 + 1;

    /// The tag of `found`'s value, for the JSON representation or the raw
    /// one.
    pub fn of(found: &Found<impl Payload>, as_json: bool) -> ETag {
        ETag::render(found.value.digest(), as_json)
    }

    fn render(digest: u64, as_json: bool) -> ETag {
        let mut bytes = [b'"'; ETag::MAX];
        // Two digits a byte, most significant first.
        for (pair, byte) in bytes[1..17].chunks_exact_mut(2).zip(digest.to_be_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        let mut len = 17;
        if as_json {
            bytes[len..len + 5].copy_from_slice(b".json");
            len += 5;
        }
        // bytes[len] is already the closing quote.
        ETag {
            bytes,
            len: len + 1,
        }
    }

    /// The tag, quotes included, as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The tag, quotes included.
    pub fn as_str(&self) -> &str {
        // Quotes, hex digits and `.json`: always ASCII.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    pairs
};

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
/// `Vary: Accept` (two representations), `X-Cache`. The lines are put
/// together on the stack (the literals as fixed-size copies, the two
/// numbers rendered in place) and go into the answer's buffer of header
/// lines as one copy; they are made of the proxy's own literals, hex and
/// decimal digits, so they need no check for line breaks (see
/// [`Headers::push_own`]).
fn describe<V>(found: &Found<V>, tag: &ETag, headers: &mut Headers) {
    let (max_age, age) = freshness(found);
    let mut digits = itoa::Buffer::new();
    let mut lines = Lines::default();
    lines.put(b"ETag: ");
    lines.put(tag.as_bytes());
    lines.put(b"\r\nCache-Control: max-age=");
    lines.put(digits.format(max_age).as_bytes());
    lines.put(b"\r\nVary: Accept\r\n");
    match found.source {
        Source::Hit => lines.put(b"X-Cache: HIT\r\nAge: "),
        Source::Stale => lines.put(b"X-Cache: STALE\r\nAge: "),
        Source::Miss => lines.put(b"X-Cache: MISS"),
    }
    if found.source != Source::Miss {
        lines.put(digits.format(age).as_bytes());
    }
    lines.put(b"\r\n");
    headers.push_own(lines.as_bytes());
}

/// [`describe`]'s lines, at most 133 bytes: `ETag` of a JSON
/// representation (31), `Cache-Control` and `Age` with 20 digits each (45
/// and 27), `Vary` (14), `X-Cache` (16).
struct Lines {
    bytes: [u8; 160],
    len: usize,
}

impl Default for Lines {
    fn default() -> Lines {
        Lines {
            bytes: [0; 160],
            len: 0,
        }
    }
}

impl Lines {
    /// Appends `part` (inlined, so a literal is copied as a fixed-size
    /// move, without a call).
    #[inline(always)]
    fn put(&mut self, part: &[u8]) {
        let end = self.len + part.len();
        if let Some(room) = self.bytes.get_mut(self.len..end) {
            room.copy_from_slice(part);
            self.len = end;
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Room for the header lines of an answer about a found value: about 170
/// bytes of its own (`Content-Type`, `ETag` of a JSON representation,
/// `Cache-Control` and `Age` of up to 20 digits each, `Vary`, `X-Cache`)
/// and those CORS may add (about 110 bytes and the origin), so the buffer
/// is not grown on the way out.
const FOUND_HEADERS: usize = 384;

/// `max-age` and `Age`, in whole seconds. A downstream cache counts `Age`
/// against `max-age` (RFC 9111 section 4.2), so `max-age` is the entry's
/// whole lifetime and `Age` the time since it was read from Redis; `Age` is
/// rounded up and `max-age` is it plus the whole seconds left, so what a
/// downstream cache keeps (`max-age` - `Age`) is what is left of the entry,
/// rounded down, never more. (A miss is `Age` 0: `max-age` is its lifetime.)
fn freshness<V>(found: &Found<V>) -> (u64, u64) {
    let age = found.age.as_secs() + u64::from(found.age.subsec_nanos() > 0);
    (age.saturating_add(found.fresh_for.as_secs()), age)
}

/// 304: the client's copy (tagged `tag`) is the current one. It declares
/// the length of the 200 it stands for (the representation `as_json` asks
/// for of `key`'s value) and carries no body.
pub fn not_modified(
    key: &[u8],
    found: &Found<impl Payload>,
    as_json: bool,
    tag: &ETag,
) -> HttpResponse {
    let mut headers = Headers::with_capacity(FOUND_HEADERS);
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
pub fn value(key: &[u8], found: Found<impl Payload>, as_json: bool, tag: &ETag) -> HttpResponse {
    let content_type = if as_json {
        line!("Content-Type", "application/json")
    } else if found.value.is_utf8() {
        line!("Content-Type", "text/plain; charset=utf-8")
    } else {
        line!("Content-Type", "application/octet-stream")
    };
    let mut headers = Headers::with_capacity(FOUND_HEADERS);
    headers.push_line(content_type);
    describe(&found, tag, &mut headers);
    let body = if as_json {
        let json = json_value(key, found.value.bytes()).to_string();
        Body::Made(json.into_bytes().into())
    } else {
        found.value.into_body()
    };
    HttpResponse {
        status: 200,
        headers,
        body,
        unsent_length: None,
    }
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
    error(401, message, None).with_header(
        b"WWW-Authenticate",
        b"Basic realm=\"redis-proxy\", Bearer realm=\"redis-proxy\"",
    )
}

/// 405 with the methods the path does take.
pub fn method_not_allowed(allow: &[u8]) -> HttpResponse {
    error(405, "method not allowed", None).with_header(b"Allow", allow)
}

mod typed;
pub use typed::{too_large, typed, unknown_type};

#[cfg(test)]
mod tests;
