//! `GET /proxy?key=K` on a key that is not a string (issue #22): answered
//! 200 with `{"key", "type", "value"}` instead of passing Redis's WRONGTYPE
//! on as a 502, since a key's type is the client's data, never an error.
//!
//! A string is served as before, its path and cost unchanged: only when
//! its GET fails with WRONGTYPE does this module read `TYPE K`, then the
//! whole value with the type's read (HGETALL, LRANGE 0 -1, SMEMBERS,
//! ZRANGE 0 -1 WITHSCORES, XRANGE - +), both through
//! [`Service::read_reply`], so they are cached, coalesced and invalidated
//! like any read of the reply cache. They are read in RESP3, which tells a
//! map, a set and a score apart (see `typed_json`).
//!
//! A key that changes type between the reads: the read that meets
//! WRONGTYPE starts over from `TYPE`, once; a second change answers 409
//! with a JSON body saying so (the client asks again), never a 5xx. A key
//! gone meanwhile is a 404, as any missing key; one that became a string is
//! served by the string path. A type the proxy has no JSON form for (a
//! module's, a vector set) answers 422 naming it.
//!
//! What one answer makes the proxy build is bounded: a value whose reply
//! weighs more than the per-item limit (an eighth of CACHE_MAX_BYTES, what
//! the cache keeps at most), counting each of its lines at `LINE_COST`
//! (a JSON node per element), answers 507 naming the limit, before any
//! JSON is made: millions of elements would otherwise cost the proxy
//! gigabytes of JSON tree and body for one request.

use tiny_http::Request;

use super::response::{self, ETag, HttpResponse};
use super::typed_json::{self, Reading, Type};
use crate::service::{Client, Found, ReadError, Service, Source};

/// Reads of `TYPE` and the value before giving up with 409: the first, and
/// one more after the key changed type under them.
const ATTEMPTS: usize = 2;

/// What each line of a reply (an element, or an aggregate's header) is
/// counted as, beyond its bytes, against the limit: about what its node
/// in the JSON tree costs (a `serde_json::Value` is 32 bytes, a string's
/// heap block and a map entry's more).
const LINE_COST: usize = 64;

/// Whether a failed string GET means the key holds another type.
pub fn is_wrong_type(err: &ReadError) -> bool {
    matches!(err, ReadError::Reply(message) if typed_json::is_wrong_type(message))
}

/// The reply cache's `TYPE key`, when it names a type other than string:
/// then a string miss need not send Redis the GET it would refuse with
/// WRONGTYPE, and [`answer`] starts from it, so `TYPE` is looked up once,
/// and a typed value read from the cache reaches Redis not at all. A
/// cached `TYPE` is filed under its key like any reply, so a change of the
/// key drops it. Costs a lookup on a string miss only (which is about to
/// ask Redis); `at`: when the request came.
pub fn known_other_type(key: &[u8], service: &Service, at: std::time::Instant) -> Option<Found> {
    let typed = service.cached_reply(client(service), &[b"TYPE", key], at)?;
    let other = matches!(
        typed_json::parse_type(typed.value.bytes()),
        Ok(Type::Known(_) | Type::Other(_))
    );
    other.then_some(typed)
}

/// How the typed reads ask the reply cache: in RESP3 (see the module's
/// doc), in REDIS_ADDRESS's database.
fn client(service: &Service) -> Client {
    Client {
        resp3: true,
        db: service.default_db(),
        dedicated: false,
    }
}

/// The answer about `key`, whose GET Redis answered WRONGTYPE, or whose
/// `TYPE` the cache holds (`typed`, from [`known_other_type`]: the first
/// attempt starts from it). Blocking (up to two reads from Redis, each
/// bounded by REDIS_TIMEOUT_MS): called by a worker holding its WORKERS
/// place.
pub fn answer(
    request: &Request,
    key: &[u8],
    service: &Service,
    mut typed: Option<Found>,
) -> HttpResponse {
    let client = client(service);
    for _ in 0..ATTEMPTS {
        let typed = match typed.take() {
            Some(found) => found,
            None => match service.read_reply(client, &[b"TYPE", key]) {
                Ok(found) => found,
                Err(err) => return failed(key, &err),
            },
        };
        let kind = match typed_json::parse_type(typed.value.bytes()) {
            Ok(Type::Known(kind)) => kind,
            Ok(Type::None) => return response::absent(key),
            Ok(Type::String) => return string(request, key, service),
            Ok(Type::Other(name)) => return response::unknown_type(key, &name),
            Err(why) => return unexpected(key, &why.0),
        };
        let read = match service.read_reply(client, &kind.read(key)) {
            Ok(found) => found,
            Err(err) if is_wrong_type(&err) => continue,
            Err(err) => return failed(key, &err),
        };
        let limit = service.max_entry_bytes();
        if json_cost(read.value.bytes()) > limit {
            return response::too_large(key, kind.name(), limit);
        }
        let value = match typed_json::render(kind, read.value.bytes()) {
            Ok(Reading::Value { value, base64 }) => (value, base64),
            Ok(Reading::Gone) => return response::absent(key),
            Ok(Reading::WrongType) => continue,
            Ok(Reading::Error(message)) => return failed(key, &ReadError::Reply(message)),
            Err(why) => return unexpected(key, &why.0),
        };
        let tag = ETag::typed(kind.name(), read.value.digest());
        let modified = !super::if_none_match(request)
            .is_some_and(|header| response::none_match(&header, tag.as_str()));
        let found = both(&typed, &read);
        return response::typed(key, kind.name(), value, &found, &tag, modified);
    }
    changing(key)
}

/// What answering `reply` as JSON is counted as against the limit: its
/// bytes, and `LINE_COST` a line (found by its CRLF, so a value holding
/// CRLFs only counts for more).
fn json_cost(reply: &[u8]) -> usize {
    let lines = memchr::memmem::find_iter(reply, b"\r\n").count();
    reply.len().saturating_add(lines.saturating_mul(LINE_COST))
}

/// A key that was not a string at GET and is one at `TYPE`: read again by
/// the string path (a miss of it, since its GET failed).
fn string(request: &Request, key: &[u8], service: &Service) -> HttpResponse {
    match service.get(key) {
        Ok(Some(found)) => super::answer_found(request, key, found.map(response::Held::from)),
        Ok(None) => response::absent(key),
        Err(err) if is_wrong_type(&err) => changing(key),
        Err(err) => response::backend_error(key, &err),
    }
}

/// What the answer says of the two reads it is made of: a HIT only when
/// both were, fresh for as long as both are, as old as the older.
fn both(typed: &Found, read: &Found) -> Found<()> {
    let source = match (typed.source, read.source) {
        (Source::Miss, _) | (_, Source::Miss) => Source::Miss,
        (Source::Stale, _) | (_, Source::Stale) => Source::Stale,
        (Source::Hit, Source::Hit) => Source::Hit,
    };
    Found {
        value: (),
        source,
        fresh_for: typed.fresh_for.min(read.fresh_for),
        age: typed.age.max(read.age),
    }
}

/// A failed read: as a failed string read is answered (503, 504, or 502
/// for an error reply such as NOPERM), except that WRONGTYPE is never
/// passed on as a 5xx: the key is changing type under the reads.
fn failed(key: &[u8], err: &ReadError) -> HttpResponse {
    if is_wrong_type(err) {
        return changing(key);
    }
    response::backend_error(key, err)
}

/// 409: the key changed type again while it was being read.
fn changing(key: &[u8]) -> HttpResponse {
    response::error(
        409,
        "the key changed type while it was being read; ask again",
        Some(key),
    )
}

/// 502: a reply the proxy could not read as it expects (Redis's or the
/// proxy's fault, never the client's).
fn unexpected(key: &[u8], why: &str) -> HttpResponse {
    response::backend_error(key, &ReadError::Reply(why.to_owned()))
}
