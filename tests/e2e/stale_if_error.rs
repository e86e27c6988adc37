//! STALE_IF_ERROR_SECS: while Redis cannot be read, an entry past its
//! freshness is served marked `STALE` rather than a 503; but never an
//! entry a write or a flush invalidated, and nothing at all once the link
//! was lost without the setting (docs/coherence.md).

use std::time::Duration;

use redis_proxy::clock::ManualClock;

use crate::coherence::{cache, flushes, resp_get, wait_invalidations, INVALIDATIONS};
use crate::common::{eventually, Endpoints, InProcess, RedisServer};

/// Entries served stale so far.
fn stale_served(proxy: &Endpoints) -> f64 {
    proxy.metric("redis_proxy_stale_served_total")
}

#[test]
fn stale_if_error_serves_an_expired_entry_marked_stale_while_redis_is_down() {
    let mut redis = RedisServer::start();
    redis.set("k", "v");
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("INVALIDATION", "off"),
            ("STALE_IF_ERROR_SECS", "600"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
        &hand,
    );
    cache(&proxy, "k", "v");
    redis.stop();
    // Once it has expired, it is served as stale rather than a 503.
    hand.advance(Duration::from_secs(60));
    let reply = proxy.get_key("k");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-cache"), Some("STALE"));
    assert_eq!(reply.body, b"v");
    assert_eq!(resp_get(&proxy, "k").as_deref(), Some("v"));
    assert_eq!(stale_served(&proxy), 2.0);
    // A key never cached is still a 503.
    assert_eq!(proxy.get_key("never").status, 503);
}

#[test]
fn stale_if_error_serves_what_a_lost_link_left_but_never_an_invalidated_entry() {
    let mut redis = RedisServer::start();
    for key in ["kept", "changed", "flushed"] {
        redis.set(key, "old");
    }
    let proxy = InProcess::start(
        &redis,
        &[("STALE_IF_ERROR_SECS", "600"), ("REDIS_TIMEOUT_MS", "300")],
    );
    for key in ["kept", "changed"] {
        cache(&proxy, key, "old");
    }
    let before = proxy.metric(INVALIDATIONS);
    redis.set("changed", "new");
    wait_invalidations(&proxy, before + 1.0);
    redis.stop();
    eventually("the link loss to be noticed", || {
        (flushes(&proxy, "link_lost") == 1.0).then_some(())
    });
    let kept = proxy.get_key("kept");
    assert_eq!(
        (kept.status, kept.header("x-cache"), kept.body.as_slice()),
        (200, Some("STALE"), &b"old"[..])
    );
    // Removed by its invalidation: never served, stale or not.
    assert_eq!(proxy.get_key("changed").status, 503);
}

#[test]
fn without_stale_if_error_a_lost_link_serves_nothing_cached() {
    let mut redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[("REDIS_TIMEOUT_MS", "300")]);
    cache(&proxy, "k", "v");
    redis.stop();
    eventually("the link loss to be noticed", || {
        (flushes(&proxy, "link_lost") == 1.0).then_some(())
    });
    assert_eq!(proxy.get_key("k").status, 503);
    assert_eq!(stale_served(&proxy), 0.0);
}

#[test]
fn a_flush_is_never_undone_by_stale_if_error() {
    let mut redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(
        &redis,
        &[("STALE_IF_ERROR_SECS", "600"), ("REDIS_TIMEOUT_MS", "300")],
    );
    cache(&proxy, "k", "v");
    let _: () = redis.cmd(&["FLUSHALL"]);
    eventually("the flush to arrive", || {
        (flushes(&proxy, "flushall") == 1.0).then_some(())
    });
    redis.stop();
    assert_eq!(proxy.get_key("k").status, 503);
}
