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

/// 507: `key`'s value (of type `type_name`) would cost more than `limit`
/// bytes to answer as JSON (see `http/typed.rs`), named with the limit in
/// `"limit"` for clients to match on. The proxy refuses to build it, as it
/// would not keep it: the value can be read over RESP, or in parts.
pub fn too_large(key: &[u8], type_name: &str, limit: usize) -> HttpResponse {
    let message = format!(
        "the {type_name}'s JSON would take more than the proxy builds for one value \
         ({limit} bytes, an eighth of CACHE_MAX_BYTES); read it in parts over RESP"
    );
    let mut body = json!({ "error": message, "type": type_name, "limit": limit });
    put_bytes(&mut body, "key", "key_encoding", key);
    super::json(507, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Source;
    use std::time::Duration;

    fn body(response: HttpResponse) -> Json {
        serde_json::from_slice(response.body.as_ref()).expect("JSON")
    }

    #[test]
    fn a_type_without_a_json_form_is_a_422_naming_it() {
        let response = unknown_type(b"\xffv", "vectorset");
        assert_eq!(response.status, 422);
        let body = body(response);
        assert_eq!(body["type"], "vectorset");
        assert_eq!(body["key"], "/3Y=");
        assert_eq!(body["key_encoding"], "base64");
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("vectorset")));
    }

    #[test]
    fn a_304_declares_the_length_of_the_200_it_stands_for() {
        let found = Found {
            value: (),
            source: Source::Hit,
            fresh_for: Duration::from_secs(5),
            age: Duration::from_millis(1500),
        };
        let tag = ETag::typed("list", 42);
        assert_ne!(tag.as_str(), ETag::typed("set", 42).as_str());
        assert!(tag.as_str().ends_with(".json\""));
        let value = || (json!(["a"]), false);
        let full = typed(b"k", "list", value(), &found, &tag, true);
        let length = full.body.as_ref().len();
        assert_eq!(full.header("Content-Type"), Some("application/json"));
        assert_eq!(
            (full.header("X-Cache"), full.header("Age")),
            (Some("HIT"), Some("2"))
        );
        assert_eq!(full.header("Cache-Control"), Some("max-age=7"));
        assert_eq!(
            body(full),
            json!({"key": "k", "type": "list", "value": ["a"]})
        );
        let not_modified = typed(b"k", "list", value(), &found, &tag, false);
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.body.as_ref().is_empty());
        assert_eq!(not_modified.unsent_length, Some(length));
        assert_eq!(not_modified.header("ETag"), Some(tag.as_str()));
    }
}
