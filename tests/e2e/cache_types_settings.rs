//! Issue 22's settings for reads of every type: CACHE_COMMANDS narrows
//! (`-NAME`), extends (`+NAME`) or turns off (`none`) the default list, and
//! a value it cannot mean stops start-up naming it; CACHE_MAX_BYTES bounds
//! what a stream of large hash and list replies takes, and a reply over the
//! per-entry limit (an eighth of it) is relayed whole but not kept. What
//! reached Redis is read off its own `INFO commandstats`.

use crate::cache_types::{start, CASES};
use crate::common::reply_cache::{calls, miss_then_hit, reset_stats};
use crate::common::resp_wire::{show, Wire};
use crate::common::{refused_start, InProcess, RedisServer};

/// Reads `line` `times` times through `proxy`: how many reached Redis
/// (each answer checked against Redis's own).
fn calls_for(redis: &RedisServer, proxy: &mut Wire, line: &str, times: u64) -> u64 {
    let want = Wire::connect(redis.addr()).call(line);
    reset_stats(redis);
    for _ in 0..times {
        assert_eq!(show(&proxy.call(line)), show(&want), "{line}");
    }
    calls(redis, line)
}

#[test]
fn cache_commands_minus_hgetall_sends_every_hgetall_to_redis() {
    let (redis, proxy) = start(&[("CACHE_COMMANDS", "-HGETALL")]);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(calls_for(&redis, &mut through, "HGETALL h:all", 3), 3);
    // The rest of the list is still cached.
    for line in ["HGET h:get f", "HKEYS h:keys", "SMEMBERS set:m"] {
        assert_eq!(calls_for(&redis, &mut through, line, 3), 1, "{line}");
    }
}

#[test]
fn cache_commands_minus_get_and_mget_sends_them_to_redis() {
    // GET and MGET are in the default list like the rest: dropped, they
    // reach Redis each time (their cache has a path of its own).
    let (redis, proxy) = start(&[("CACHE_COMMANDS", "-GET,-MGET")]);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(calls_for(&redis, &mut through, "GET str:get", 3), 3);
    assert!(calls_for(&redis, &mut through, "MGET str:m1 str:m2", 3) >= 3);
    assert_eq!(calls_for(&redis, &mut through, "HGET h:get f", 3), 1);
}

#[test]
fn without_get_in_cache_commands_no_string_is_kept_with_invalidation_off_too() {
    // INVALIDATION=off lets the cache keep any key; CACHE_COMMANDS still
    // says whether strings are kept at all.
    let redis = RedisServer::start();
    redis.set("str:off", "v1");
    let proxy = InProcess::start(
        &redis,
        &[("INVALIDATION", "off"), ("CACHE_COMMANDS", "-GET,-MGET")],
    );
    assert_eq!(proxy.get_key("str:off").body, b"v1");
    redis.set("str:off", "v2");
    assert_eq!(proxy.get_key("str:off").body, b"v2", "a string was kept");
}

#[test]
fn cache_commands_plus_geopos_caches_a_read_beyond_the_default_list() {
    let redis = RedisServer::start();
    let _: i64 = redis.cmd(&["GEOADD", "geo", "13.361389", "38.115556", "Palermo"]);
    let read = "GEOPOS geo Palermo";
    // Not in the default list: forwarded every time.
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(calls_for(&redis, &mut through, read, 3), 3);
    drop(through);
    drop(proxy);
    let proxy = InProcess::start(
        &redis,
        &[("RESP_PORT", "auto"), ("CACHE_COMMANDS", "+GEOPOS")],
    );
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(calls_for(&redis, &mut through, read, 3), 1);
}

#[test]
fn cache_commands_none_sends_every_read_to_redis() {
    let (redis, proxy) = start(&[("CACHE_COMMANDS", "none")]);
    let mut through = Wire::connect(proxy.resp_addr());
    let mut direct = Wire::connect(redis.addr());
    let mut cached = Vec::new();
    for read in CASES.iter().map(|case| case.read) {
        let want = direct.call(read);
        reset_stats(&redis);
        assert_eq!(show(&through.call(read)), show(&want), "{read}");
        let first = calls(&redis, read);
        assert_eq!(show(&through.call(read)), show(&want), "{read}");
        if calls(&redis, read) == first {
            cached.push(read);
        }
    }
    assert!(cached.is_empty(), "served from the cache: {cached:?}");
}

#[test]
fn an_invalid_cache_commands_stops_start_up_naming_the_variable() {
    for value in ["+", "-", "-HGETALL;HGET", "+h get", "+a|b"] {
        // A proxy that took the value runs on (waiting for Redis at port
        // 1); one that refused it exits at once.
        let stderr = refused_start(&[
            ("REDIS_ADDRESS", "redis://127.0.0.1:1"),
            ("CACHE_COMMANDS", value),
        ]);
        assert!(
            stderr.contains("CACHE_COMMANDS"),
            "CACHE_COMMANDS={value}: {stderr}"
        );
    }
}

/// A hash of `fields` fields of 1000 bytes each, as HSET's words.
fn hset(key: &str, fields: usize) -> Vec<String> {
    let mut words = vec!["HSET".to_owned(), key.to_owned()];
    for i in 0..fields {
        words.push(format!("field:{i}"));
        words.push(format!("{key}:{i}:").repeat(1000)[..1000].to_owned());
    }
    words
}

#[test]
fn cache_max_bytes_holds_under_large_hash_and_list_replies_and_a_too_large_one_is_not_kept() {
    const MAX_BYTES: usize = 1 << 20;
    const KEYS: usize = 20;
    // Each reply is some 100 kB: ten of them fill the bound.
    const FIELDS: usize = 100;
    let redis = RedisServer::start();
    let mut direct = Wire::connect(redis.addr());
    let mut reads = Vec::new();
    for i in 0..KEYS {
        let (hash, list) = (format!("big:h{i}"), format!("big:l{i}"));
        let words = hset(&hash, FIELDS);
        direct.call_args(&words.iter().map(String::as_str).collect::<Vec<_>>());
        let mut rpush = vec!["RPUSH", &list];
        rpush.extend(words[3..].iter().step_by(2).map(String::as_str));
        direct.call_args(&rpush);
        reads.push(format!("HGETALL {hash}"));
        reads.push(format!("LRANGE {list} 0 -1"));
    }
    // Over an eighth of the bound: relayed, never kept.
    let words = hset("huge", 2 * FIELDS);
    direct.call_args(&words.iter().map(String::as_str).collect::<Vec<_>>());
    let max = MAX_BYTES.to_string();
    let proxy = InProcess::start(&redis, &[("CACHE_MAX_BYTES", &max), ("RESP_PORT", "auto")]);
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());

    let mut most = 0.0f64;
    for read in &reads {
        let want = direct.call(read);
        assert!(want.len() > 90_000, "{read}: {} bytes", want.len());
        assert!(through.call(read) == want, "{read} through the proxy");
        let bytes = proxy.metric("redis_proxy_cache_bytes");
        assert!(
            bytes <= MAX_BYTES as f64,
            "{bytes} bytes cached after {read}"
        );
        most = most.max(bytes);
    }
    // The replies were cached: full to within two of them.
    assert!(
        most > (MAX_BYTES - 2 * 110_000) as f64,
        "the cache held at most {most} bytes: large replies are not cached"
    );
    let mut info = Wire::connect(proxy.resp_addr());
    let text = info.call_text("INFO memory");
    let cached: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cache_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cache_bytes in INFO: {text}"));
    assert!(cached as usize <= MAX_BYTES, "INFO: {cached}");
    // The last reply read is a hit.
    let last = reads.last().expect("reads");
    assert_eq!(calls_for(&redis, &mut through, last, 2), 0, "{last}");

    // The reply over the limit: answered whole, from Redis each time.
    let before = proxy.metric("redis_proxy_cache_bytes");
    let huge = direct.call("HGETALL huge");
    assert!(huge.len() > MAX_BYTES / 8, "{}", huge.len());
    reset_stats(&redis);
    for _ in 0..2 {
        assert!(through.call("HGETALL huge") == huge, "HGETALL huge");
    }
    assert_eq!(redis.calls("hgetall"), 2, "a too-large reply was kept");
    assert_eq!(proxy.metric("redis_proxy_cache_bytes"), before);
    // And a normal one is still cached after it.
    let first = &reads[0];
    let want = direct.call(first);
    if let Some(wrong) = miss_then_hit(&redis, &mut through, first, &want) {
        panic!("after the too-large reply: {wrong}");
    }
}
