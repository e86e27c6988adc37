//! `Accept` is read as media ranges (RFC 9110 section 12.5.1): JSON only
//! when a range names `application/json` exactly with a weight above 0 and
//! not below a raw type's; `q=0` means not acceptable, and
//! `application/jsonp` is another type.

use crate::common::{request, InProcess, RedisServer};

#[test]
fn accept_is_parsed_as_media_ranges_with_weights() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[]);
    let cases = [
        ("application/json", true),
        ("text/html, application/json;q=0.9, */*;q=0.8", true),
        ("text/plain;q=0.5, Application/JSON", true),
        ("application/json;q=0, text/plain", false),
        ("application/jsonp", false),
        ("text/plain, application/json;q=0.1", false),
        ("*/*", false),
    ];
    // Twice: the first read is a miss, the second a hit.
    for _ in 0..2 {
        for (accept, json) in cases {
            let reply = request(proxy.addr, "GET", "/proxy?key=k", &[("Accept", accept)]);
            assert_eq!(reply.status, 200, "{accept}");
            let (content_type, body) = if json {
                ("application/json", r#"{"key":"k","value":"v"}"#)
            } else {
                ("text/plain; charset=utf-8", "v")
            };
            assert_eq!(
                (reply.header("content-type"), reply.text().as_str()),
                (Some(content_type), body),
                "Accept: {accept}"
            );
        }
    }
}
