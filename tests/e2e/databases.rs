//! Issue #21, `SELECT n` with the cache keyed by database: GET and MGET in
//! any database are served from the cache, each database's entries apart;
//! a change Redis announces (naming no database) drops the key in every
//! database; a write through the proxy is read back at once in its own
//! database and in the one it wrote (MOVE, COPY ... DB); FLUSHDB; and a
//! client library's `redis://host:port/1`. A real redis-server behind the
//! proxy, real clients in front; "served from the cache" is read off
//! Redis's own `INFO commandstats`.

use std::process::Command;
use std::time::Duration;

use redis_proxy::clock::ManualClock;

use crate::client_tracking::tracking;
use crate::common::{eventually, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// Redis holding `k` as "one" in database 1 and "two" in database 2, and
/// `dst` as "old" in database 2 (set before the proxy starts, so no
/// announcement of them is still on its way to drop what it caches), and
/// the proxy in front, its invalidation link up.
fn start() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    for (db, key, value) in [("1", "k", "one"), ("2", "k", "two"), ("2", "dst", "old")] {
        let mut conn = redis.conn();
        let _: () = query(&mut conn, &["SELECT", db]);
        let _: () = query(&mut conn, &["SET", key, value]);
    }
    let proxy = InProcess::start(&redis, &[RESP, ("REDIS_TIMEOUT_MS", "10000")]);
    proxy.wait_for_link("up");
    (redis, proxy)
}

/// A connection to the proxy in database `db`.
fn client_in(proxy: &InProcess, db: &str) -> redis::Connection {
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("connect to the proxy's RESP port");
    let _: () = query(&mut conn, &["SELECT", db]);
    conn
}

fn query<T: redis::FromRedisValue>(conn: &mut redis::Connection, words: &[&str]) -> T {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query(conn)
        .unwrap_or_else(|err| panic!("{words:?}: {err}"))
}

fn get(conn: &mut redis::Connection, key: &str) -> Option<String> {
    query(conn, &["GET", key])
}

/// Reads `key` twice: the first may fetch, the second must be a hit (no
/// GET reaches Redis). The value read.
fn read_then_hit(redis: &RedisServer, conn: &mut redis::Connection, key: &str) -> Option<String> {
    let first = get(conn, key);
    let calls = redis.calls("get");
    assert_eq!(get(conn, key), first, "the second read of {key}");
    assert_eq!(
        redis.calls("get"),
        calls,
        "the second read of {key} reached Redis"
    );
    first
}

#[test]
fn each_database_is_cached_apart_and_its_second_read_is_a_hit() {
    let (redis, proxy) = start();
    let mut one = client_in(&proxy, "1");
    let mut two = client_in(&proxy, "2");
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    assert_eq!(read_then_hit(&redis, &mut two, "k").as_deref(), Some("two"));
    // Database 0 has no k, and is not given either of theirs.
    let mut zero = client_in(&proxy, "0");
    assert_eq!(get(&mut zero, "k"), None);
    // MGET in a database reads that database's entries, from the cache.
    let calls = redis.calls("get");
    let values: Vec<Option<String>> = query(&mut two, &["MGET", "k", "k"]);
    assert_eq!(values, vec![Some("two".to_owned()); 2]);
    assert_eq!(
        redis.calls("get"),
        calls,
        "MGET of a cached key reached Redis"
    );
    // One connection moving between databases reads each one's own.
    let _: () = query(&mut one, &["SELECT", "2"]);
    assert_eq!(get(&mut one, "k").as_deref(), Some("two"));
    let _: () = query(&mut one, &["SELECT", "1"]);
    assert_eq!(get(&mut one, "k").as_deref(), Some("one"));
    assert_eq!(redis.calls("get"), calls);
    // INFO keyspace: the entries the proxy caches, per database.
    let info: String = query(&mut zero, &["INFO", "keyspace"]);
    for line in ["db1:keys=1,", "db2:keys=1,"] {
        assert!(info.contains(line), "{info}");
    }
    assert!(!info.contains("db0:"), "{info}");
    // The pooled connections were left in database 0: HTTP reads it.
    redis.set("k", "zero");
    eventually("the proxy to hear of the write", || {
        (proxy.get_key("k").body == b"zero").then_some(())
    });
}

#[test]
fn a_write_in_redis_in_one_database_drops_the_key_in_every_database() {
    let (redis, proxy) = start();
    let mut one = client_in(&proxy, "1");
    let mut two = client_in(&proxy, "2");
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    assert_eq!(read_then_hit(&redis, &mut two, "k").as_deref(), Some("two"));
    // Another client of Redis writes k in database 2: Redis's announcement
    // names no database, so the proxy drops k wherever it has it.
    let mut direct = redis.conn();
    let _: () = query(&mut direct, &["SELECT", "2"]);
    let _: () = query(&mut direct, &["SET", "k", "two, changed"]);
    eventually("database 2's entry to be dropped", || {
        (get(&mut two, "k").as_deref() == Some("two, changed")).then_some(())
    });
    // Database 1's entry went too (read again from Redis), still its own.
    let calls = redis.calls("get");
    assert_eq!(get(&mut one, "k").as_deref(), Some("one"));
    assert_eq!(redis.calls("get"), calls + 1);
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
}

#[test]
fn a_write_through_the_proxy_in_database_1_is_read_back_at_once() {
    let (redis, proxy) = start();
    let mut writer = client_in(&proxy, "1");
    let mut reader = client_in(&proxy, "1");
    const ROUNDS: u64 = 300;
    let calls = redis.calls("get");
    let mut stale = 0;
    for i in 0..ROUNDS {
        let value = format!("v{i}");
        let _: () = query(&mut writer, &["SET", "k", &value]);
        // Twice: the first read may fill the cache, the second may hit it;
        // neither may see the value before the write.
        for _ in 0..2 {
            if get(&mut reader, "k").as_deref() != Some(value.as_str()) {
                stale += 1;
            }
        }
    }
    assert_eq!(stale, 0, "stale reads after writes through the proxy");
    // Some of those reads were hits (each write's own announcement may
    // still drop a fill it arrives after, so not all).
    let fetched = redis.calls("get") - calls;
    assert!(
        fetched < 2 * ROUNDS,
        "{fetched} GETs reached Redis: no hit at all"
    );
    // Database 2 kept its own.
    let mut two = client_in(&proxy, "2");
    assert_eq!(get(&mut two, "k").as_deref(), Some("two"));
}

#[test]
fn move_and_copy_to_another_database_are_read_back_there_at_once() {
    let (redis, proxy) = start();
    let mut one = client_in(&proxy, "1");
    let mut two = client_in(&proxy, "2");
    // Database 2 caches `dst`; database 1 caches `k`.
    assert_eq!(
        read_then_hit(&redis, &mut two, "dst").as_deref(),
        Some("old")
    );
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    // COPY k dst DB 2 REPLACE, through the proxy in database 1, writes
    // database 2's dst: its next read there sees the copy.
    let copied: i64 = query(&mut one, &["COPY", "k", "dst", "DB", "2", "REPLACE"]);
    assert_eq!(copied, 1);
    assert_eq!(get(&mut two, "dst").as_deref(), Some("one"));
    // MOVE k 2 empties database 1's k and fills database 2's.
    let _: i64 = query(&mut two, &["DEL", "k"]);
    let moved: i64 = query(&mut one, &["MOVE", "k", "2"]);
    assert_eq!(moved, 1);
    assert_eq!(get(&mut one, "k"), None);
    assert_eq!(get(&mut two, "k").as_deref(), Some("one"));
}

#[test]
fn flushdb_in_database_1_is_read_back_at_once() {
    let (redis, proxy) = start();
    let mut one = client_in(&proxy, "1");
    let mut two = client_in(&proxy, "2");
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    assert_eq!(read_then_hit(&redis, &mut two, "k").as_deref(), Some("two"));
    let _: () = query(&mut one, &["FLUSHDB"]);
    assert_eq!(get(&mut one, "k"), None);
    // Database 2 is untouched in Redis, and read right (the proxy dropped
    // every entry: a flush names no key).
    assert_eq!(get(&mut two, "k").as_deref(), Some("two"));
}

#[test]
fn redis_py_with_a_url_naming_database_1_reads_from_the_cache() {
    let (redis, proxy) = start();
    let url = format!("{}/1", proxy.resp_url());
    let script = format!(
        "import redis\nr = redis.Redis.from_url('{url}')\nprint(r.get('k'))\nprint(r.get('k'))"
    );
    let run = || {
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let calls = redis.calls("get");
    assert_eq!(run(), "b'one'\nb'one'\n");
    assert_eq!(
        redis.calls("get"),
        calls + 1,
        "the second read reached Redis"
    );
    // Another process, another connection: still the cache's.
    assert_eq!(run(), "b'one'\nb'one'\n");
    assert_eq!(redis.calls("get"), calls + 1);
}

#[test]
fn a_tracking_client_is_told_of_keys_it_read_in_another_database() {
    let (redis, proxy) = start();
    let mut client = tracking(&proxy, &[]);
    client.catch_up(&redis);
    assert_eq!(client.call(&["SELECT", "2"]), "+OK");
    assert_eq!(client.call(&["GET", "k"]), "$two");
    // Served from the cache the second time, and tracked all the same.
    let calls = redis.calls("get");
    assert_eq!(client.call(&["GET", "k"]), "$two");
    assert_eq!(redis.calls("get"), calls, "the second read reached Redis");
    // A write in database 2 by another client of Redis: the push names the
    // key, no database, as Redis's own do.
    let mut direct = redis.conn();
    let _: () = query(&mut direct, &["SELECT", "2"]);
    let _: () = query(&mut direct, &["SET", "k", "two, changed"]);
    assert_eq!(client.next(), ">[$invalidate *[$k]]");
    assert_eq!(client.call(&["GET", "k"]), "$two, changed");
}

#[test]
fn an_entry_in_another_database_ends_with_its_key_s_ttl_there() {
    let redis = RedisServer::start();
    // k has 30 s left in database 1 (and is absent from 0): its entry must
    // end then, before the 60 s lifetime. The proxy's clock is the test's.
    let mut direct = redis.conn();
    let _: () = query(&mut direct, &["SELECT", "1"]);
    let _: () = query(&mut direct, &["SET", "k", "one", "EX", "30"]);
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(&redis, &[RESP, ("REDIS_TIMEOUT_MS", "10000")], &hand);
    proxy.wait_for_link("up");
    let mut one = client_in(&proxy, "1");
    // Cached: its TTL was read in database 1 (read in 0, k would have
    // been gone there, and nothing cached).
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    hand.advance(Duration::from_secs(29));
    assert_eq!(read_then_hit(&redis, &mut one, "k").as_deref(), Some("one"));
    // At its end in Redis the entry is no hit: read from Redis again (which,
    // by its own clock, still has it).
    hand.advance(Duration::from_secs(1));
    let calls = redis.calls("get");
    assert_eq!(get(&mut one, "k").as_deref(), Some("one"));
    assert_eq!(redis.calls("get"), calls + 1, "served past its TTL");
}
