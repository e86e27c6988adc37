//! CACHE_MAX_BYTES (issue 22, "Capacity in bytes"): a stream of large values
//! read through the proxy keeps what the cache holds under the bound
//! (`redis_proxy_cache_bytes`, `INFO memory`, `/stats`), pushes out the
//! least recently read keys, and a value over the per-entry limit (an
//! eighth of the bound) is answered but not kept: Redis's own
//! `INFO commandstats` counts every read of it.

use crate::common::info::info_number;
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
