//! The read-through contract: fill, hits, expiry, LRU order, capacity, and
//! values and keys of every shape.

use std::time::Duration;

use redis_proxy::clock::ManualClock;

use crate::common::{request, HttpConnection, InProcess, RedisServer};

#[test]
fn miss_reads_redis_then_hit_serves_the_cache() {
    let redis = RedisServer::start();
    redis.set("greeting", "hello");
    let proxy = InProcess::start(&redis, &[]);

    let first = proxy.get_key("greeting");
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"hello");
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(
        first.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(first.header("content-length"), Some("5"));

    let second = proxy.get_key("greeting");
    assert_eq!(second.body, b"hello");
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(redis.calls("get"), 1, "the hit must not reach Redis");
}

#[test]
fn without_invalidation_a_cached_value_survives_a_change_in_redis() {
    let redis = RedisServer::start();
    redis.set("k", "v1");
    let proxy = InProcess::start(&redis, &[("INVALIDATION", "off")]);
    assert_eq!(proxy.get_key("k").body, b"v1");
    redis.set("k", "v2");
    let reply = proxy.get_key("k");
    assert_eq!(reply.body, b"v1");
    assert!(reply.is_hit());
}

#[test]
fn entry_expires_after_the_global_expiry() {
    let redis = RedisServer::start();
    redis.set("k", "old");
    // TTL only, on a clock the test moves: the write below is not announced.
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(&redis, &[("INVALIDATION", "off")], &hand);
    assert_eq!(proxy.get_key("k").body, b"old");
    redis.set("k", "new");
    hand.advance(Duration::from_secs(59));
    assert!(proxy.get_key("k").is_hit());
    // Without reading in between, the next read after expiry goes to Redis.
    hand.advance(Duration::from_secs(1));
    let reply = proxy.get_key("k");
    assert!(!reply.is_hit());
    assert_eq!(reply.body, b"new");
}

#[test]
fn reads_do_not_extend_the_expiry() {
    let redis = RedisServer::start();
    redis.set("k", "old");
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(&redis, &[("INVALIDATION", "off")], &hand);
    assert_eq!(proxy.get_key("k").body, b"old");
    redis.set("k", "new");
    // Read all through the lifetime: had a read extended it, the entry
    // would still be fresh at 60 s.
    for _ in 0..59 {
        hand.advance(Duration::from_secs(1));
        assert_eq!(proxy.get_key("k").body, b"old");
    }
    hand.advance(Duration::from_secs(1));
    let reply = proxy.get_key("k");
    assert!(!reply.is_hit());
    assert_eq!(reply.body, b"new");
}

#[test]
fn evicts_the_least_recently_read_key() {
    let redis = RedisServer::start();
    for key in ["a", "b", "c", "d"] {
        redis.set(key, format!("{key}1"));
    }
    // TTL only: the writes below tell what is cached without evicting it.
    let proxy = InProcess::start(&redis, &[("CACHE_CAPACITY", "3"), ("INVALIDATION", "off")]);
    for key in ["a", "b", "c", "a", "d"] {
        assert_eq!(proxy.get_key(key).status, 200);
    }
    for key in ["a", "b", "c", "d"] {
        redis.set(key, format!("{key}2"));
    }
    // a, c and d are still cached (reading them evicts nothing) ...
    for key in ["a", "c", "d"] {
        let reply = proxy.get_key(key);
        assert!(reply.is_hit(), "{key} should be cached");
        assert_eq!(reply.body, format!("{key}1").as_bytes());
    }
    // ... and b, read least recently when d came in, is gone.
    let reply = proxy.get_key("b");
    assert!(!reply.is_hit());
    assert_eq!(reply.body, b"b2");
}

#[test]
fn capacity_is_exact() {
    let redis = RedisServer::start();
    for i in 0..6 {
        redis.set(format!("k{i}"), "v");
    }
    let proxy = InProcess::start(&redis, &[("CACHE_CAPACITY", "5")]);
    for i in 0..5 {
        assert!(!proxy.get_key(format!("k{i}")).is_hit());
    }
    for i in 0..5 {
        assert!(proxy.get_key(format!("k{i}")).is_hit(), "k{i} fits");
    }
    assert!(!proxy.get_key("k5").is_hit());
    // Exactly one key (k0, read least recently) made room for k5.
    let hits: Vec<bool> = (1..6)
        .map(|i| proxy.get_key(format!("k{i}")).is_hit())
        .collect();
    assert_eq!(hits, vec![true; 5]);
    assert!(!proxy.get_key("k0").is_hit());
}

#[test]
fn absent_key_is_404_and_not_cached() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    let reply = proxy.get_key("later");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["key"], "later");
    assert!(body["error"].is_string());

    redis.set("later", "now here");
    let reply = proxy.get_key("later");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"now here");
}

#[test]
fn binary_values_are_served_byte_for_byte() {
    let redis = RedisServer::start();
    let value: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    redis.set("bin", &value);
    let proxy = InProcess::start(&redis, &[]);
    for _ in 0..2 {
        let reply = proxy.get_key("bin");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, value);
        assert_eq!(
            reply.header("content-type"),
            Some("application/octet-stream")
        );
    }
}

#[test]
fn empty_value_is_a_value() {
    let redis = RedisServer::start();
    redis.set("empty", "");
    let proxy = InProcess::start(&redis, &[]);
    for expect_hit in [false, true] {
        let reply = proxy.get_key("empty");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-length"), Some("0"));
        assert!(reply.body.is_empty());
        assert_eq!(reply.is_hit(), expect_hit);
    }
}

#[test]
fn json_answers_when_asked() {
    let redis = RedisServer::start();
    redis.set("t", "plain ✓");
    redis.set("b", b"\xff\x00\x01");
    let proxy = InProcess::start(&redis, &[]);
    let accept = [("Accept", "application/json")];

    let reply = request(proxy.addr, "GET", "/proxy?key=t", &accept);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        serde_json::json!({"key": "t", "value": "plain ✓"})
    );

    let reply = request(proxy.addr, "GET", "/proxy?key=b", &accept);
    assert_eq!(
        reply.json(),
        serde_json::json!({"key": "b", "value": "/wAB", "encoding": "base64"})
    );
}

#[test]
fn keys_with_spaces_unicode_and_reserved_characters() {
    let redis = RedisServer::start();
    let keys = ["a b", "ключ ✓", "&=/%+?#", "trailing "];
    for key in keys {
        redis.set(key, format!("value of {key}"));
    }
    let proxy = InProcess::start(&redis, &[]);
    for key in keys {
        let reply = proxy.get_key(key);
        assert_eq!(reply.status, 200, "{key:?}");
        assert_eq!(reply.body, format!("value of {key}").as_bytes());
    }
    // `+` in a query means a space.
    let reply = proxy.get("/proxy?key=a+b");
    assert_eq!(reply.body, b"value of a b");
}

#[test]
fn large_value_has_a_content_length_and_is_not_chunked() {
    let redis = RedisServer::start();
    let value: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    redis.set("big", &value);
    let proxy = InProcess::start(&redis, &[]);
    for _ in 0..2 {
        let reply = proxy.get_key("big");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("transfer-encoding"), None);
        assert_eq!(reply.header("content-length"), Some("8388608"));
        assert!(reply.body == value, "8 MiB body differs");
    }
}

#[test]
fn head_gives_the_get_status_and_headers_without_a_body() {
    let redis = RedisServer::start();
    redis.set("k", "twelve bytes");
    let proxy = InProcess::start(&redis, &[]);
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.send("HEAD", "/proxy?key=k", &[]).expect("send");
    let head = conn.read_reply(true).expect("HEAD reply");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("12"));
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // The connection is still in step: no body bytes were sent.
    let get = conn.get("/proxy?key=k");
    assert_eq!(get.body, b"twelve bytes");

    conn.send("HEAD", "/proxy?key=absent", &[]).expect("send");
    assert_eq!(conn.read_reply(true).expect("reply").status, 404);
}

#[test]
fn sixty_four_parallel_clients_all_get_the_right_values() {
    let redis = RedisServer::start();
    for i in 0..32 {
        redis.set(format!("key{i}"), format!("value{i}"));
    }
    let proxy = InProcess::start(&redis, &[("CACHE_CAPACITY", "16")]);
    let addr = proxy.addr;
    let threads: Vec<_> = (0..64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conn = HttpConnection::connect(addr);
                for round in 0..50 {
                    let i = (t * 7 + round * 3) % 32;
                    let reply = conn.get(&format!("/proxy?key=key{i}"));
                    assert_eq!(reply.status, 200);
                    assert_eq!(reply.text(), format!("value{i}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}
