//! Issue 22, cache every read of every type, over RESP: for each command of
//! the default list (one row of [`CASES`] each), the second identical read
//! through the proxy is served from the cache (Redis's own
//! `INFO commandstats` counts one call of it, after `CONFIG RESETSTAT`), its
//! bytes are Redis's own in RESP2 and in RESP3 on a miss and on a hit, and a
//! write by another client of Redis is seen through the proxy within the
//! invalidation link's delay; the commands whose replies depend on time,
//! chance or server state reach Redis every time.
//!
//! Every row is tried and every failure listed, so one run says which
//! commands are not cached yet.

use crate::common::reply_cache::{
    answers_within_patience, calls, miss_then_hit, read_twice, reset_stats,
};
use crate::common::resp_wire::{show, Wire};
use crate::common::{InProcess, RedisServer};

/// One cached read: Redis prepared directly with `setup` (before the proxy
/// starts, so no announcement of it is on its way), `read` through the
/// proxy, then `write` by another client of Redis changes what `read`
/// answers. Every row has keys of its own.
pub struct Case {
    pub setup: &'static [&'static str],
    pub read: &'static str,
    pub write: &'static str,
}

const fn case(setup: &'static [&'static str], read: &'static str, write: &'static str) -> Case {
    Case { setup, read, write }
}

/// The default list of issue 22, each command once or more (ZRANGE in each
/// of its forms).
pub const CASES: &[Case] = &[
    // Strings.
    case(&["SET str:get hello"], "GET str:get", "SET str:get bye"),
    // (Not an absent key: GET and MGET never cache one, as documented.)
    case(
        &["MSET str:m1 a str:m2 b"],
        "MGET str:m1 str:m2 str:m1",
        "SET str:m2 c",
    ),
    case(
        &["SET str:range abcdefgh"],
        "GETRANGE str:range 1 3",
        "SETRANGE str:range 1 XYZ",
    ),
    case(&["SET str:len abc"], "STRLEN str:len", "APPEND str:len def"),
    // Hashes.
    case(&["HSET h:get f v g w"], "HGET h:get f", "HSET h:get f v2"),
    case(
        &["HSET h:mget a 1 b 2"],
        "HMGET h:mget a none b",
        "HDEL h:mget a",
    ),
    case(
        &["HSET h:all name ann age 30"],
        "HGETALL h:all",
        "HSET h:all city rome",
    ),
    case(&["HSET h:keys a 1 b 2"], "HKEYS h:keys", "HSET h:keys c 3"),
    case(&["HSET h:vals a 1 b 2"], "HVALS h:vals", "HSET h:vals a 9"),
    case(&["HSET h:len a 1 b 2"], "HLEN h:len", "HSET h:len c 3"),
    case(&["HSET h:ex f 1"], "HEXISTS h:ex f", "HDEL h:ex f"),
    case(&["HSET h:sl f abc"], "HSTRLEN h:sl f", "HSET h:sl f abcdef"),
    // Sets.
    case(&["SADD set:m a b c"], "SMEMBERS set:m", "SADD set:m d"),
    case(&["SADD set:is a b"], "SISMEMBER set:is a", "SREM set:is a"),
    case(
        &["SADD set:mis a b"],
        "SMISMEMBER set:mis a z",
        "SADD set:mis z",
    ),
    case(&["SADD set:c a b"], "SCARD set:c", "SADD set:c x"),
    case(
        &["SADD set:i1 a b c", "SADD set:i2 b c d"],
        "SINTER set:i1 set:i2",
        "SREM set:i2 b",
    ),
    case(
        &["SADD set:u1 a b", "SADD set:u2 b c"],
        "SUNION set:u1 set:u2",
        "SADD set:u1 e",
    ),
    case(
        &["SADD set:d1 a b c", "SADD set:d2 b"],
        "SDIFF set:d1 set:d2",
        "SADD set:d2 a",
    ),
    // Sorted sets: ZRANGE in each of its forms.
    case(
        &["ZADD z:r 1 a 2 b 3.5 c"],
        "ZRANGE z:r 0 -1",
        "ZADD z:r 0 x",
    ),
    case(
        &["ZADD z:rw 1 a 2 b 3.5 c"],
        "ZRANGE z:rw 0 -1 WITHSCORES",
        "ZINCRBY z:rw 0.25 a",
    ),
    case(
        &["ZADD z:rbs 1 a 2 b 3.5 c"],
        "ZRANGE z:rbs 1 (4 BYSCORE LIMIT 1 2 WITHSCORES",
        "ZADD z:rbs 1.5 x",
    ),
    case(
        &["ZADD z:rrev 1 a 2 b 3.5 c"],
        "ZRANGE z:rrev 0 1 REV",
        "ZADD z:rrev 9 x",
    ),
    case(
        &["ZADD z:rlex 0 a 0 b 0 c 0 d"],
        "ZRANGE z:rlex [b + BYLEX",
        "ZREM z:rlex c",
    ),
    case(
        &["ZADD z:bs 1 a 2 b 3.5 c"],
        "ZRANGEBYSCORE z:bs -inf +inf WITHSCORES",
        "ZADD z:bs 2.5 x",
    ),
    case(
        &["ZADD z:rbys 1 a 2 b 3.5 c"],
        "ZREVRANGEBYSCORE z:rbys +inf 2",
        "ZADD z:rbys 7 x",
    ),
    case(
        &["ZADD z:rev 1 a 2 b 3.5 c"],
        "ZREVRANGE z:rev 0 -1 WITHSCORES",
        "ZREM z:rev b",
    ),
    case(
        &["ZADD z:lex 0 a 0 b 0 c"],
        "ZRANGEBYLEX z:lex - +",
        "ZADD z:lex 0 bb",
    ),
    case(
        &["ZADD z:rlx 0 a 0 b 0 c"],
        "ZREVRANGEBYLEX z:rlx + [b",
        "ZADD z:rlx 0 bb",
    ),
    case(&["ZADD z:s 1 a 2.5 b"], "ZSCORE z:s b", "ZINCRBY z:s 1 b"),
    case(
        &["ZADD z:ms 1 a 2.5 b"],
        "ZMSCORE z:ms a none b",
        "ZADD z:ms 4 a",
    ),
    case(&["ZADD z:card 1 a 2 b"], "ZCARD z:card", "ZADD z:card 3 c"),
    case(
        &["ZADD z:cnt 1 a 2 b 5 c"],
        "ZCOUNT z:cnt 1 3",
        "ZADD z:cnt 3 d",
    ),
    case(&["ZADD z:rk 1 a 2 b 3 c"], "ZRANK z:rk c", "ZADD z:rk 0 x"),
    case(
        &["ZADD z:rrk 1 a 2 b 3 c"],
        "ZREVRANK z:rrk a",
        "ZADD z:rrk 9 x",
    ),
    // Lists.
    case(&["RPUSH l:r a b c"], "LRANGE l:r 0 -1", "RPUSH l:r d"),
    case(&["RPUSH l:i a b c"], "LINDEX l:i 1", "LSET l:i 1 X"),
    case(&["RPUSH l:len a b"], "LLEN l:len", "LPUSH l:len z"),
    case(&["RPUSH l:p a b c b"], "LPOS l:p b", "LREM l:p 1 b"),
    // Streams.
    case(
        &["XADD x:r 1-1 f v", "XADD x:r 2-1 f w g x"],
        "XRANGE x:r - +",
        "XADD x:r 3-1 h y",
    ),
    case(
        &["XADD x:rev 1-1 f v", "XADD x:rev 2-1 f w"],
        "XREVRANGE x:rev + - COUNT 1",
        "XADD x:rev 3-1 f z",
    ),
    case(&["XADD x:len 1-1 f v"], "XLEN x:len", "XADD x:len 2-1 f w"),
    // Bitmaps.
    case(&["SETBIT b:g 7 1"], "GETBIT b:g 7", "SETBIT b:g 7 0"),
    case(&["SETBIT b:c 7 1"], "BITCOUNT b:c", "SETBIT b:c 100 1"),
    case(&["SETBIT b:p 7 1"], "BITPOS b:p 1", "SETBIT b:p 0 1"),
    // Any type.
    // (Present keys: a reply that found a key absent is not kept, as
    // docs/caching.md says, and as GET never keeps an absent key.)
    case(
        &["SET k:e1 1", "SET k:e2 2"],
        "EXISTS k:e1 k:e2 k:e1",
        "DEL k:e2",
    ),
    case(&["SET k:t v"], "TYPE k:t", "DEL k:t"),
];

/// Reads that depend on time, chance or server state: never cached.
pub const NEVER_CACHED: &[&str] = &[
    "TTL nc:str",
    "PTTL nc:str",
    "OBJECT ENCODING nc:h",
    "RANDOMKEY",
    "SRANDMEMBER nc:s",
    "HRANDFIELD nc:h",
    "ZRANDMEMBER nc:z",
    "SCAN 0",
    "HSCAN nc:h 0",
    "DBSIZE",
    "TIME",
];

/// The keys [`NEVER_CACHED`] reads.
const NEVER_CACHED_SETUP: &[&str] = &[
    "SET nc:str v EX 1000",
    "HSET nc:h a 1 b 2",
    "SADD nc:s a b",
    "ZADD nc:z 1 a 2 b",
];

/// Redis with every row's `setup` done, and the proxy in front (RESP on,
/// its invalidation link up), with `env` added.
pub fn start(env: &[(&str, &str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let mut direct = Wire::connect(redis.addr());
    let setup = CASES.iter().flat_map(|c| c.setup).chain(NEVER_CACHED_SETUP);
    for line in setup {
        let reply = direct.call(line);
        assert!(!reply.starts_with(b"-"), "{line}: {}", show(&reply));
    }
    let mut env = env.to_vec();
    env.push(("RESP_PORT", "auto"));
    let proxy = InProcess::start(&redis, &env);
    proxy.wait_for_link("up");
    (redis, proxy)
}

/// Asserts no row went wrong, listing those that did.
pub fn assert_none_wrong(what: &str, reads: usize, wrong: &[String]) {
    assert!(
        wrong.is_empty(),
        "{} of {reads} reads {what}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn each_cached_read_is_a_hit_on_a_repeat_and_sees_another_client_s_write() {
    let (redis, proxy) = start(&[]);
    let mut through = Wire::connect(proxy.resp_addr());
    let mut direct = Wire::connect(redis.addr());
    let mut wrong = Vec::new();
    for case in CASES {
        let before = direct.call(case.read);
        wrong.extend(miss_then_hit(&redis, &mut through, case.read, &before));
        // Another client of Redis changes what the read answers.
        let reply = direct.call(case.write);
        assert!(!reply.starts_with(b"-"), "{}: {}", case.write, show(&reply));
        let after = direct.call(case.read);
        assert_ne!(
            after, before,
            "{} does not change {}",
            case.write, case.read
        );
        if !answers_within_patience(&mut through, case.read, &after) {
            wrong.push(format!(
                "{}: after {} still answers {} (Redis: {})",
                case.read,
                case.write,
                show(&through.call(case.read)),
                show(&after)
            ));
        }
    }
    assert_none_wrong(
        "are not served from the cache, or not coherent",
        CASES.len(),
        &wrong,
    );
}

#[test]
fn cached_replies_are_redis_bytes_in_resp2_and_resp3_on_a_miss_and_a_hit() {
    let (redis, proxy) = start(&[]);
    // RESP2 first, then RESP3 on the same proxy: a RESP3 client is never
    // given a cached RESP2 reply (its bytes would differ where the types
    // do; where they do not, as for GET's values, one entry may serve both).
    let mut replies = Vec::new();
    let mut wrong = Vec::new();
    for protocol in [2, 3] {
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        let mut direct = Wire::open_with(redis.addr(), protocol);
        for case in CASES {
            let want = direct.call(case.read);
            if protocol == 3 {
                replies.push(want.clone());
            }
            wrong.extend(
                read_twice(&redis, &mut through, case.read, &want, protocol == 2)
                    .map(|w| format!("RESP{protocol} {w}")),
            );
        }
    }
    // The rows mean something in RESP3: maps (HGETALL), sets (SMEMBERS),
    // doubles (ZSCORE), nulls (in HMGET's array), as well as arrays.
    for kind in [&b"%"[..], b"~", b",", b"*"] {
        assert!(
            replies.iter().any(|r| r.starts_with(kind)),
            "no {} reply",
            show(kind)
        );
    }
    assert!(replies.iter().any(|r| r.windows(3).any(|w| w == b"_\r\n")));
    assert_none_wrong(
        "differ from Redis's bytes or reach Redis twice",
        2 * CASES.len(),
        &wrong,
    );
}

#[test]
fn never_cached_reads_reach_redis_every_time_beside_cached_ones() {
    let (redis, proxy) = start(&[]);
    let mut through = Wire::connect(proxy.resp_addr());
    // The key the never-cached reads look at is itself cached when read
    // with a cacheable command (the proxy tells them apart).
    let want = Wire::connect(redis.addr()).call("HGETALL nc:h");
    let cached = miss_then_hit(&redis, &mut through, "HGETALL nc:h", &want);
    let mut wrong: Vec<String> = cached.into_iter().collect();
    for line in NEVER_CACHED {
        reset_stats(&redis);
        for _ in 0..3 {
            let reply = through.call(line);
            assert!(!reply.starts_with(b"-"), "{line}: {}", show(&reply));
        }
        let ran = calls(&redis, line);
        if ran != 3 {
            wrong.push(format!("{line}: Redis ran it {ran} times for 3 reads"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
