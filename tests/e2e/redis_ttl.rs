//! Issue 19: an entry never outlives its key's TTL in Redis.
//!
//! Redis announces an expiry only when it reclaims the key: on access, or
//! when its active expiry cycle gets to it (seconds later on a busy server).
//! The test Redis runs with active expiry off (`DEBUG SET-ACTIVE-EXPIRE 0`),
//! so it never announces the expiry by itself: only a proxy that learned
//! the TTL stops serving the key.

use std::time::Duration;

use redis_proxy::clock::ManualClock;

use crate::common::{eventually, InProcess, Proxy, RedisServer};

/// A Redis that reclaims expired keys only when they are read.
fn lazy_redis() -> RedisServer {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let _: () = redis.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    redis
}

/// `Cache-Control: max-age=N`'s N.
fn max_age(reply: &crate::common::http::Reply) -> u64 {
    reply
        .header("cache-control")
        .and_then(|value| value.strip_prefix("max-age="))
        .and_then(|n| n.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no max-age: {:?}", reply.headers))
}

#[test]
fn a_key_is_not_served_past_its_ttl_in_redis_over_http_and_resp() {
    let redis = lazy_redis();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    assert_eq!(proxy.link_state(), "up");
    // Long enough to be read into the cache on a loaded machine; far
    // shorter than GLOBAL_CACHE_EXPIRY (60 s).
    for key in ["http", "resp", "mget"] {
        let _: () = redis.cmd(&["SET", key, "short-lived", "PX", "2000"]);
    }
    redis.set("plain", "stays");
    let hit = eventually("the key to be cached", || {
        let reply = proxy.get_key("http");
        reply.is_hit().then_some(reply)
    });
    assert!(
        max_age(&hit) <= 2,
        "max-age beyond the TTL: {:?}",
        hit.headers
    );
    let mut resp = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    let mut get = |key: &str| -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut resp)
            .expect("GET through the proxy")
    };
    assert_eq!(get("resp").as_deref(), Some("short-lived"));

    let invalidations = proxy.metric("redis_proxy_invalidations_total");
    let message = "the proxy to stop serving a key whose TTL in Redis has ended \
                   (Redis has not announced the expiry; a proxy that does not \
                   cap entries by PTTL serves it for GLOBAL_CACHE_EXPIRY)";
    eventually(message, || {
        (proxy.get_key("http").status == 404).then_some(())
    });
    eventually(message, || get("resp").is_none().then_some(()));
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    eventually(message, || {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg("mget")
            .arg("plain")
            .query(&mut conn)
            .expect("MGET through the proxy");
        (values == [None, Some("stays".to_owned())]).then_some(())
    });
    // Redis announced nothing by itself: only the proxy's own reads of the
    // expired keys made it reclaim (and announce) them.
    assert!(proxy.metric("redis_proxy_invalidations_total") <= invalidations + 3.0);
    // A key without a TTL is still cached.
    assert!(proxy.get_key("plain").is_hit());
}

#[test]
fn stale_if_error_never_serves_a_key_past_its_ttl_in_redis() {
    let mut redis = lazy_redis();
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(
        &redis,
        &[
            ("INVALIDATION", "off"),
            ("GLOBAL_CACHE_EXPIRY", "1"),
            ("STALE_IF_ERROR_SECS", "600"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
        &hand,
    );
    // Ends in Redis 60 s from now (by the proxy's clock, which the test
    // moves): after the 1 s lifetime, well within the 600 s
    // stale-if-error period. Stale-if-error may serve it until then, never
    // after.
    let _: () = redis.cmd(&["SET", "k", "v", "PX", "60000"]);
    assert_eq!(proxy.get_key("k").body, b"v");
    assert!(proxy.get_key("k").is_hit());
    redis.stop();
    hand.advance(Duration::from_secs(2));
    let reply = proxy.get_key("k");
    assert_eq!(
        (reply.status, reply.header("x-cache")),
        (200, Some("STALE")),
        "stale-if-error serves it within the TTL"
    );
    // Past its end in Redis (which the proxy counts from before its read,
    // so no later than Redis's own): no longer served.
    hand.advance(Duration::from_secs(58));
    assert_eq!(proxy.get_key("k").status, 503);
}

#[test]
fn a_user_without_pttl_is_served_but_nothing_is_cached_and_a_warning_says_why() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let address = redis.acl_user("old", "pw", &RedisServer::proxy_acl_without("+pttl"));
    let proxy = Proxy::start_at(&address, &[]);
    proxy.wait_for_link("up");
    for _ in 0..3 {
        let reply = proxy.get_key("k");
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
        assert!(!reply.is_hit(), "cached without knowing the TTL");
    }
    eventually("the warning", || {
        proxy
            .log()
            .contains("the proxy's Redis user needs +pttl")
            .then_some(())
    });
}
