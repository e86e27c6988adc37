//! Issue #22, HTTP: `GET /proxy?key=K` on a hash, list, set, zset or
//! stream answers 200 with `{"key", "type", "value"}` (never Redis's
//! WRONGTYPE as a 5xx), binary data base64 with `"encoding"`, its reads
//! cached and invalidated like any other.

use serde_json::{json, Value as Json};

use crate::common::http::{encode, Reply};
use crate::common::{eventually, request, HttpConnection, InProcess, RedisServer};

/// Runs `args` (bytes, so binary data too) directly at Redis.
fn at_redis(redis: &RedisServer, args: &[&[u8]]) {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("a command name"));
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let _: redis::Value = cmd.query(&mut redis.conn()).expect("direct command");
}

/// `GET /proxy` of `key` with `headers`.
fn get(proxy: &InProcess, key: &[u8], headers: &[(&str, &str)]) -> Reply {
    let path = format!("/proxy?key={}", encode(key));
    request(proxy.addr, "GET", &path, headers)
}

/// One key of each type, made at Redis.
fn fill(redis: &RedisServer) {
    at_redis(redis, &[b"HSET", b"h", b"name", b"Ada", b"born", b"1815"]);
    at_redis(redis, &[b"RPUSH", b"l", b"c", b"a", b"c"]);
    at_redis(redis, &[b"SADD", b"s", b"x", b"y"]);
    at_redis(
        redis,
        &[
            b"ZADD", b"z", b"-inf", b"low", b"0.5", b"half", b"3", b"three", b"+inf", b"high",
        ],
    );
    at_redis(redis, &[b"XADD", b"x", b"1-1", b"a", b"1", b"b", b"2"]);
    at_redis(redis, &[b"XADD", b"x", b"2-0", b"a", b"3"]);
}

/// The exact JSON each key of [`fill`] answers.
fn expected() -> Vec<(&'static str, Json)> {
    vec![
        (
            "h",
            json!({"key": "h", "type": "hash", "value": {"name": "Ada", "born": "1815"}}),
        ),
        (
            "l",
            json!({"key": "l", "type": "list", "value": ["c", "a", "c"]}),
        ),
        (
            "z",
            json!({"key": "z", "type": "zset",
                   "value": [["low", "-inf"], ["half", 0.5], ["three", 3.0], ["high", "inf"]]}),
        ),
        (
            "x",
            json!({"key": "x", "type": "stream",
                   "value": [["1-1", {"a": "1", "b": "2"}], ["2-0", {"a": "3"}]]}),
        ),
    ]
}

/// The answer's body with a set's members sorted (Redis gives them in no
/// set order).
fn sorted_set(reply: &Reply) -> Json {
    let mut body = reply.json();
    if let Some(members) = body["value"].as_array_mut() {
        members.sort_by_key(|m| m.to_string());
    }
    body
}

#[test]
fn every_type_answers_200_with_its_json() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    for (key, body) in expected() {
        // JSON whatever Accept asks: a hash has no raw bytes to give.
        for accept in [&[][..], &[("Accept", "application/json")][..]] {
            let reply = get(&proxy, key.as_bytes(), accept);
            assert_eq!(reply.status, 200, "{key}: {}", reply.text());
            assert_eq!(reply.json(), body, "{key}");
            assert_eq!(reply.header("content-type"), Some("application/json"));
            let tag = reply.header("etag").expect("an ETag");
            assert!(tag.starts_with('"') && tag.ends_with(".json\""), "{tag}");
            assert_eq!(reply.header("vary"), Some("Accept"));
            assert!(reply.header("cache-control").is_some());
            assert!(reply.header("x-cache").is_some());
        }
    }
    let set = get(&proxy, b"s", &[]);
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(
        sorted_set(&set),
        json!({"key": "s", "type": "set", "value": ["x", "y"]})
    );
    // The JSON of a zset's scores, as written on the wire.
    let zset = get(&proxy, b"z", &[]).text();
    assert!(
        zset.contains(r#"[["low","-inf"],["half",0.5],["three",3.0],["high","inf"]]"#),
        "{zset}"
    );
}

#[test]
fn binary_data_is_base64_with_encoding_as_for_strings() {
    let redis = RedisServer::start();
    at_redis(&redis, &[b"HSET", b"bh", b"f\xff", b"v", b"g", b"\x00\x01"]);
    at_redis(&redis, &[b"RPUSH", b"bl", b"\xfe", b"text"]);
    at_redis(&redis, &[b"ZADD", b"bz", b"1.5", b"\x80"]);
    at_redis(&redis, &[b"XADD", b"bx", b"1-0", b"\xc0", b"ok"]);
    at_redis(&redis, &[b"SADD", b"\xffkey", b"m"]);
    let proxy = InProcess::start(&redis, &[]);
    let answers = [
        (
            &b"bh"[..],
            json!({"key": "bh", "type": "hash", "encoding": "base64",
                   "value": {"Zv8=": "dg==", "Zw==": "AAE="}}),
        ),
        (
            b"bl",
            json!({"key": "bl", "type": "list", "encoding": "base64",
                   "value": ["/g==", "dGV4dA=="]}),
        ),
        (
            b"bz",
            json!({"key": "bz", "type": "zset", "encoding": "base64",
                   "value": [["gA==", 1.5]]}),
        ),
        (
            b"bx",
            json!({"key": "bx", "type": "stream", "encoding": "base64",
                   "value": [["MS0w", {"wA==": "b2s="}]]}),
        ),
        (
            b"\xffkey",
            json!({"key": "/2tleQ==", "key_encoding": "base64", "type": "set",
                   "value": ["m"]}),
        ),
    ];
    for (key, body) in answers {
        let reply = get(&proxy, key, &[]);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json(), body);
    }
}

#[test]
fn a_key_gone_is_404_as_before() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    assert_eq!(get(&proxy, b"h", &[]).status, 200);
    at_redis(&redis, &[b"DEL", b"h"]);
    let gone = eventually("the deleted hash to be a 404", || {
        let reply = get(&proxy, b"h", &[]);
        (reply.status == 404).then_some(reply)
    });
    assert_eq!(gone.json(), json!({"error": "key not found", "key": "h"}));
    assert_eq!(get(&proxy, b"never", &[]).status, 404);
}

#[test]
fn the_second_read_is_a_hit_that_does_not_reach_redis() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    let first = get(&proxy, b"h", &[]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let hits = proxy.metric("redis_proxy_cache_hits_total");
    let second = get(&proxy, b"h", &[]);
    assert_eq!(second.json(), first.json());
    assert_eq!(
        proxy.metric("redis_proxy_cache_hits_total") - hits,
        2.0,
        "two hits, the cached TYPE looked up once and the HGETALL"
    );
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(redis.calls("hgetall"), 1, "the hit must not reach Redis");
    assert_eq!(redis.calls("type"), 1, "nor its TYPE");
    assert_eq!(
        redis.calls("get"),
        1,
        "nor the GET Redis refuses: the cached TYPE says the key is a hash"
    );
}

#[test]
fn if_none_match_on_a_typed_value_answers_304() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    let first = get(&proxy, b"z", &[]);
    let tag = first.header("etag").expect("an ETag").to_owned();
    let again = get(&proxy, b"z", &[("If-None-Match", &tag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    assert_eq!(
        again.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    // Another type's value gets another tag.
    assert_ne!(get(&proxy, b"l", &[]).header("etag"), Some(tag.as_str()));
}

#[test]
fn a_write_at_redis_is_seen_after_the_links_invalidation() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    let before = get(&proxy, b"h", &[]);
    assert_eq!(before.json()["value"]["name"], "Ada");
    // Cached: what follows is the invalidation's doing, not a read that
    // went to Redis anyway.
    assert!(get(&proxy, b"h", &[]).is_hit());
    at_redis(&redis, &[b"HSET", b"h", b"name", b"Grace"]);
    eventually("the write to be seen over HTTP", || {
        let reply = get(&proxy, b"h", &[]);
        assert_eq!(reply.status, 200, "{}", reply.text());
        (reply.json()["value"]["name"] == "Grace").then_some(())
    });
}

/// Makes `key` hold a value of type `kind` (or none), atomically.
fn become_type(conn: &mut redis::Connection, key: &[u8], kind: &str) {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("DEL").arg(key);
    match kind {
        "string" => pipe.cmd("SET").arg(key).arg("v"),
        "hash" => pipe.cmd("HSET").arg(key).arg("f").arg("v"),
        "list" => pipe.cmd("RPUSH").arg(key).arg("v"),
        "set" => pipe.cmd("SADD").arg(key).arg("v"),
        "zset" => pipe.cmd("ZADD").arg(key).arg("1").arg("v"),
        "stream" => pipe.cmd("XADD").arg(key).arg("*").arg("f").arg("v"),
        _ => &mut pipe,
    };
    let _: redis::Value = pipe.query(conn).expect("MULTI");
}

const TYPES: [&str; 7] = ["string", "hash", "list", "set", "zset", "stream", "none"];

#[test]
fn one_key_through_every_type_is_never_a_5xx() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    let mut conn = redis.conn();
    // Twice round, so each type follows another: every cached TYPE and
    // value read must go when the key changes.
    for kind in TYPES.iter().chain(TYPES.iter()) {
        become_type(&mut conn, b"k", kind);
        eventually(&format!("the key to read as a {kind}"), || {
            let reply = get(&proxy, b"k", &[("Accept", "application/json")]);
            assert!(
                matches!(reply.status, 200 | 404 | 409),
                "{kind}: {} {}",
                reply.status,
                reply.text()
            );
            let seen = match reply.status {
                404 => "none",
                200 if reply.json().get("type").is_none() => "string",
                200 => return (reply.json()["type"] == *kind).then_some(()),
                _ => return None,
            };
            (seen == *kind).then_some(())
        });
    }
}

#[test]
fn reads_racing_type_changes_are_never_a_5xx() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut conn = redis.conn();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // Every type in turn, until the reader has read enough.
            for kind in TYPES.iter().cycle() {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                become_type(&mut conn, b"race", kind);
            }
        })
    };
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..400 {
        let reply = get(&proxy, b"race", &[]);
        assert!(reply.status < 500, "{} {}", reply.status, reply.text());
        *statuses.entry(reply.status).or_insert(0) += 1;
    }
    done.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(statuses.contains_key(&200), "{statuses:?}");
}

#[test]
fn head_on_a_typed_value_gives_the_get_headers_without_a_body() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    let body = get(&proxy, b"l", &[]).body;
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.send("HEAD", "/proxy?key=l", &[]).expect("send");
    let head = conn.read_reply(true).expect("HEAD reply");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(head.header("content-type"), Some("application/json"));
    // Still in step: no body bytes were sent.
    assert_eq!(conn.get("/proxy?key=l").body, body);
}

#[test]
fn the_page_shows_a_hash_as_its_json_in_a_real_browser() {
    let redis = RedisServer::start();
    fill(&redis);
    let proxy = InProcess::start(&redis, &[]);
    let url = format!("http://{}/?key=h", proxy.addr);
    let out = crate::browser::chromium(&url, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(dom.contains("id=\"type\">hash<"), "{dom}");
    assert!(dom.contains("\"name\": \"Ada\""), "{dom}");
    assert!(!log.contains("CONSOLE"), "{log}");
}
