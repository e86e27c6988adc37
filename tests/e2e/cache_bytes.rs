//! CACHE_MAX_BYTES (issue 22, "Capacity in bytes"): a stream of large values
//! read through the proxy keeps what the cache holds under the bound
//! (`redis_proxy_cache_bytes`, `INFO memory`, `/stats`), pushes out the
//! least recently read keys, and a value over the per-entry limit (an
//! eighth of the bound) is answered but not kept: Redis's own
//! `INFO commandstats` counts every read of it. And what one cached reply
//! of a small hash is charged ("Memory per cached hash").

use crate::common::info::info_number;
use crate::common::resp_wire::Wire;
use crate::common::{InProcess, RedisServer};

const MAX_BYTES: usize = 1 << 20;
const VALUE: usize = 100_000;
const KEYS: usize = 30;

/// A value of `len` bytes that says which key it belongs to.
fn value_of(key: &str, len: usize) -> Vec<u8> {
    key.bytes().cycle().take(len).collect()
}

#[test]
fn a_stream_of_large_values_stays_under_cache_max_bytes_and_a_too_large_one_is_not_kept() {
    let redis = RedisServer::start();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("big:{i}")).collect();
    for key in &keys {
        redis.set(key, value_of(key, VALUE));
    }
    // Over an eighth of the bound: relayed, never kept.
    let huge = value_of("huge", MAX_BYTES / 8 + 1);
    redis.set("huge", &huge);
    let max = MAX_BYTES.to_string();
    let proxy = InProcess::start(&redis, &[("CACHE_MAX_BYTES", &max), ("RESP_PORT", "auto")]);
    let client = redis::Client::open(proxy.resp_url()).expect("a client");
    let mut conn = client.get_connection().expect("connect to the proxy");
    let mut get = |key: &str| -> Vec<u8> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut conn)
            .expect("GET through the proxy")
    };

    let mut most = 0.0f64;
    for key in &keys {
        assert_eq!(get(key), value_of(key, VALUE), "{key}");
        let bytes = proxy.metric("redis_proxy_cache_bytes");
        assert!(
            bytes <= MAX_BYTES as f64,
            "{bytes} bytes cached after {key}"
        );
        most = most.max(bytes);
    }
    let scrape = proxy.scrape();
    assert_eq!(
        scrape.value("redis_proxy_cache_max_bytes"),
        MAX_BYTES as f64
    );
    // Full to within one value, which the bound alone limits: ten fit.
    assert!(most > (MAX_BYTES - VALUE) as f64, "{most}");
    let entries = scrape.value("redis_proxy_cache_entries");
    assert_eq!(entries, (MAX_BYTES / VALUE) as f64);
    assert!(scrape.value("redis_proxy_cache_evictions_total") >= (KEYS - 10) as f64);

    // The same figures in /stats and INFO.
    let stats = proxy.get("/stats").json();
    assert_eq!(stats["cache_max_bytes"], MAX_BYTES as u64);
    let cached = stats["cache_bytes"].as_u64().expect("cache_bytes");
    assert!(cached as usize <= MAX_BYTES && cached as f64 > (MAX_BYTES - VALUE) as f64);
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut client.get_connection().expect("connect"))
        .expect("INFO memory");
    assert_eq!(info_number(&info, "cache_bytes"), cached);
    assert_eq!(info_number(&info, "cache_max_bytes"), MAX_BYTES as u64);

    // The newest key is served from the cache; the oldest was evicted
    // and goes back to Redis.
    let calls = redis.calls("get");
    assert_eq!(get(&keys[KEYS - 1]), value_of(&keys[KEYS - 1], VALUE));
    assert_eq!(redis.calls("get"), calls, "the newest key is cached");
    assert_eq!(get(&keys[0]), value_of(&keys[0], VALUE));
    assert_eq!(redis.calls("get"), calls + 1, "the oldest key was evicted");

    // The value over the limit: answered exactly, twice from Redis.
    let before = proxy.metric("redis_proxy_cache_bytes");
    let calls = redis.calls("get");
    assert_eq!(get("huge"), huge);
    assert_eq!(get("huge"), huge);
    assert_eq!(
        redis.calls("get"),
        calls + 2,
        "a too-large value is not kept"
    );
    assert_eq!(proxy.metric("redis_proxy_cache_bytes"), before);
}

/// `HSET key` with 10 fields of 10-byte values, as `make bench` step 10
/// writes them.
fn hset_10(key: &str) -> Vec<String> {
    let mut words = vec!["HSET".to_owned(), key.to_owned()];
    for i in 0..10 {
        words.push(format!("field:{i}"));
        words.push("h".repeat(10));
    }
    words
}

#[test]
fn a_cached_hash_reply_is_charged_its_reply_and_a_one_entry_file_with_both_keys_inline() {
    let redis = RedisServer::start();
    let mut direct = Wire::connect(redis.addr());
    let words = hset_10("hash:1");
    direct.call_args(&words.iter().map(String::as_str).collect::<Vec<_>>());
    direct.call("SELECT 1");
    let words = hset_10("h:1");
    direct.call_args(&words.iter().map(String::as_str).collect::<Vec<_>>());
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    proxy.wait_for_link("up");
    // An entry's node and table share (78), a shared reply's count and
    // digest (16), and a file's byte before each request it lists.
    let charge = |reply: usize, request: usize| 78 + 16 + reply + 78 + 1 + request;

    // RESP2, database 0: `hgetall hash:1` is 15 canonical bytes (a length
    // byte before each argument), inline in its node as `hash:1` is in
    // its file's.
    let mut resp2 = Wire::connect(proxy.resp_addr());
    let before = proxy.metric("redis_proxy_cache_bytes");
    let reply = resp2.call("HGETALL hash:1");
    assert_eq!(reply.len(), 305);
    let grew = proxy.metric("redis_proxy_cache_bytes") - before;
    assert_eq!(grew, charge(305, 15) as f64, "one HGETALL in database 0");

    // RESP3, database 1: the kind bits and the database ride inline too.
    let mut resp3 = Wire::open_with(proxy.resp_addr(), 3);
    resp3.call("SELECT 1");
    let before = proxy.metric("redis_proxy_cache_bytes");
    let reply = resp3.call("HGETALL h:1");
    assert!(reply.starts_with(b"%10\r\n") && reply.len() == 305);
    let grew = proxy.metric("redis_proxy_cache_bytes") - before;
    assert_eq!(grew, charge(305, 12) as f64, "one HGETALL in database 1");
    // Both were cached: a second read of each reaches no Redis.
    let calls = redis.calls("hgetall");
    assert_eq!(resp2.call("HGETALL hash:1").len(), 305);
    assert_eq!(resp3.call("HGETALL h:1").len(), 305);
    assert_eq!(redis.calls("hgetall"), calls);
}
