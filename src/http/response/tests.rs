//! Unit tests of the response builders: freshness, `If-None-Match`, and
//! the headers of an answer about a found value.

use super::{freshness, none_match, not_modified, value, ETag};
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

/// The headers of a found value as the proxy rendered them per hit before
/// the ETag and numbers went to stack buffers (format! and to_string): the
/// reference the new rendering must equal byte for byte.
fn rendered_before(found: &Found, as_json: bool) -> Vec<(String, String)> {
    let suffix = if as_json { ".json" } else { "" };
    let tag = format!("\"{:016x}{suffix}\"", found.value.digest());
    let content_type = if as_json {
        "application/json"
    } else if found.value.is_utf8() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let (max_age, age) = freshness(found);
    let mut headers = vec![
        ("Content-Type".to_owned(), content_type.to_owned()),
        ("ETag".to_owned(), tag),
        ("Cache-Control".to_owned(), format!("max-age={max_age}")),
        ("Vary".to_owned(), "Accept".to_owned()),
        ("X-Cache".to_owned(), found.source.name().to_owned()),
    ];
    if found.source != Source::Miss {
        headers.push(("Age".to_owned(), age.to_string()));
    }
    headers
}

fn pairs(headers: &super::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn headers_rendered_on_the_stack_equal_the_ones_formatted_per_hit() {
    let values: [&[u8]; 4] = [b"", b"v", &[0xff, 0x00], &[b'x'; 300]];
    let ms = Duration::from_millis;
    let times = [
        (ms(0), ms(0)),
        (ms(300), ms(59_700)),
        (ms(8_000), ms(2_000)),
        (ms(60_000), ms(0)),
        (Duration::from_secs(u64::MAX), ms(0)),
        (ms(1), Duration::from_secs(u64::MAX)),
    ];
    for bytes in values {
        for source in [Source::Hit, Source::Miss, Source::Stale] {
            for (age, left) in times {
                let found = Found {
                    value: Value::new(bytes),
                    source,
                    fresh_for: left,
                    age,
                };
                for as_json in [false, true] {
                    let expected = rendered_before(&found, as_json);
                    let tag = ETag::of(&found, as_json);
                    assert_eq!(tag.as_str(), expected[1].1);
                    let unmodified = not_modified(b"k", &found, as_json, &tag);
                    assert_eq!(pairs(&unmodified.headers), expected[1..]);
                    let answer = value(b"k", found.clone(), as_json, &tag);
                    assert_eq!(pairs(&answer.headers), expected);
                }
            }
        }
    }
}

#[test]
fn an_etag_is_every_digit_of_the_digest_zero_padded() {
    for digest in [0, 1, 0xf, 0x0123_4567_89ab_cdef, 1 << 63, u64::MAX] {
        for (as_json, suffix) in [(false, ""), (true, ".json")] {
            let expected = format!("\"{digest:016x}{suffix}\"");
            assert_eq!(ETag::render(digest, as_json).as_str(), expected);
        }
    }
}

/// `response` as tiny_http writes it for an HTTP/1.1 request with these
/// headers (the part vendor patch 16 changed: the headers go as lines
/// rendered once), with the `Date` line's value masked.
fn wire(response: super::HttpResponse, request_headers: &[tiny_http::Header]) -> String {
    let mut out = Vec::with_capacity(4096);
    response
        .into_tiny()
        .raw_print(
            &mut out,
            tiny_http::HTTPVersion(1, 1),
            request_headers,
            false,
            None,
        )
        .expect("rendering into a Vec cannot fail");
    let text = String::from_utf8(out).expect("the answer is ASCII");
    let date = text.find("Date: ").expect("tiny_http adds a Date") + 6;
    let end = date + text[date..].find("\r\n").expect("a whole line");
    format!("{}<date>{}", &text[..date], &text[end..])
}

#[test]
fn a_hit_hands_tiny_http_one_buffer_of_header_lines() {
    let found = Found {
        value: Value::new(&[b'v'; 100]),
        source: Source::Hit,
        fresh_for: Duration::from_secs(3591),
        age: Duration::from_secs(9),
    };
    let tag = ETag::of(&found, false);
    // Not one tiny_http `Header` (two allocations each, six on a hit): the
    // lines go as one buffer (vendor patch 16).
    let tiny = value(b"k", found.clone(), false, &tag).into_tiny();
    assert!(tiny.headers().is_empty(), "{:?}", tiny.headers());
    // And on the wire they are what they were, where they were.
    let expected = format!(
        "HTTP/1.1 200 OK\r\nServer: tiny-http (Rust)\r\nDate: <date>\r\n\
         Content-Type: text/plain; charset=utf-8\r\nETag: {}\r\n\
         Cache-Control: max-age=3600\r\nVary: Accept\r\nX-Cache: HIT\r\nAge: 9\r\n\
         Content-Length: 100\r\n\r\n{}",
        tag.as_str(),
        "v".repeat(100)
    );
    assert_eq!(wire(value(b"k", found, false, &tag), &[]), expected);
}

#[test]
fn header_lines_keep_their_place_before_connection_and_length() {
    let found = Found {
        value: Value::new(b"{}"),
        source: Source::Stale,
        fresh_for: Duration::ZERO,
        age: Duration::from_millis(61_500),
    };
    let tag = ETag::of(&found, true);
    let close =
        tiny_http::Header::from_bytes(&b"Connection"[..], &b"close"[..]).expect("an ASCII header");
    let expected = format!(
        "HTTP/1.1 304 Not Modified\r\nServer: tiny-http (Rust)\r\nDate: <date>\r\n\
         ETag: {}\r\nCache-Control: max-age=62\r\nVary: Accept\r\nX-Cache: STALE\r\n\
         Age: 62\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        tag.as_str(),
        r#"{"key":"k","value":"{}"}"#.len()
    );
    assert_eq!(
        wire(not_modified(b"k", &found, true, &tag), &[close]),
        expected
    );
}
