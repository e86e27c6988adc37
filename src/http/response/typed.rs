//! The answer about a key of a type other than string (issue #22): its
//! JSON, with the validators and freshness every found value's answer
//! carries (see `describe`).
//!
//! Such a value has one representation, JSON, whatever `Accept` asks for
//! (there are no raw bytes to give), so its `ETag` is always a `.json` one.
//! `Vary: Accept` stays: the same URL answers a string by `Accept`.

use std::borrow::Cow;

use serde_json::{json, Value as Json};

use super::{describe, put_bytes, Body, ETag, Headers, HttpResponse, FOUND_HEADERS};
use crate::service::Found;

impl ETag {
    /// The tag of a value of type `type_name` whose whole-value read Redis
    /// answered with bytes of digest `reply_digest`: the type is mixed in,
    /// so a key that becomes another type with a like reply gets another
    /// tag. Stable across proxies and restarts, as a string's.
    pub fn typed(type_name: &str, reply_digest: u64) -> ETag {
        let digest = xxhash_rust::xxh3::xxh3_64_with_seed(type_name.as_bytes(), reply_digest);
        ETag::render(digest, true)
    }
}

/// 200 with `{"key", "type", "value"}` (`"encoding": "base64"` when the
/// value's strings are base64, `"key_encoding"` for a key that is not
/// UTF-8), or, when `modified` is false (the client's `If-None-Match`
/// matched `tag`), the 304 standing for it. `found` says where the reads
/// came from and how fresh they are (`X-Cache`, `Cache-Control`, `Age`).
pub fn typed(
    key: &[u8],
    type_name: &str,
    (value, base64): (Json, bool),
    found: &Found<()>,
    tag: &ETag,
    modified: bool,
) -> HttpResponse {
    let mut body = json!({ "type": type_name, "value": value });
    put_bytes(&mut body, "key", "key_encoding", key);
    if base64 {
        body["encoding"] = Json::String("base64".to_owned());
    }
    let bytes = body.to_string().into_bytes();
    let mut headers = Headers::with_capacity(FOUND_HEADERS);
    if modified {
        headers.push_line(line!("Content-Type", "application/json"));
    }
    describe(found, tag, &mut headers);
    if modified {
        HttpResponse {
            status: 200,
            headers,
            body: Body::Made(bytes.into()),
            unsent_length: None,
        }
    } else {
        HttpResponse {
            status: 304,
            headers,
            body: Body::Made(Cow::Borrowed(&[])),
            unsent_length: Some(bytes.len()),
        }
    }
}

/// 422: `key` holds a type the proxy has no JSON form for (a module's, a
/// vector set), named in `"type"` for clients to match on. A 4xx: nothing
/// failed, and asking again gets the same.
pub fn unknown_type(key: &[u8], name: &str) -> HttpResponse {
    let message = format!(
        "the proxy has no JSON form for Redis type '{name}' \
         (string, hash, list, set, zset and stream are served)"
    );
    let mut body = json!({ "error": message, "type": name });
    put_bytes(&mut body, "key", "key_encoding", key);
    super::json(422, &body)
}
