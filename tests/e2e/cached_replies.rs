//! Issue #22's core, end to end: the reply of a cacheable read of any type
//! is served from the cache on a repeat (Redis counts one call), byte for
//! byte what Redis sends, and a change made directly at Redis reaches it
//! through the invalidation link. (The full matrix of commands is
//! `typetests`'s.)

use crate::common::resp_wire::Wire;
use crate::common::{eventually, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// HGETALL twice through the proxy reaches Redis once, and both answers are
/// Redis's own bytes, in RESP2 and in RESP3 (each protocol's reply cached
/// apart).
#[test]
fn hgetall_twice_reaches_redis_once() {
    let redis = RedisServer::start();
    redis.cmd::<i64>(&["HSET", "h", "name", "ann", "age", "30"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    let resp = proxy.resp.expect("RESP port");
    let mut direct2 = Wire::connect(redis.addr());
    let mut direct3 = Wire::open_with(redis.addr(), 3);
    let expected2 = direct2.call("HGETALL h");
    let expected3 = direct3.call("HGETALL h");
    let before = redis.calls("hgetall");
    let mut client = Wire::connect(resp);
    assert_eq!(client.call("HGETALL h"), expected2);
    assert_eq!(client.call("hgetall h"), expected2);
    assert_eq!(
        redis.calls("hgetall") - before,
        1,
        "the second came from the cache"
    );
    let mut client3 = Wire::open_with(resp, 3);
    assert_eq!(client3.call("HGETALL h"), expected3);
    assert_eq!(client3.call("HGETALL h"), expected3);
    assert_eq!(
        redis.calls("hgetall") - before,
        2,
        "RESP3's reply is cached apart"
    );
}

/// A write made directly at Redis (not through the proxy) is seen once the
/// link's invalidation arrives: polled, never slept for. SINTER is
/// dropped by a change of either of its keys.
#[test]
fn a_change_at_redis_reaches_cached_replies() {
    let redis = RedisServer::start();
    redis.cmd::<i64>(&["HSET", "h", "f", "1"]);
    redis.cmd::<i64>(&["SADD", "a", "x", "y"]);
    redis.cmd::<i64>(&["SADD", "b", "y", "z"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    assert_eq!(client.call("HGET h f"), b"$1\r\n1\r\n");
    assert_eq!(client.call("SINTER a b"), b"*1\r\n$1\r\ny\r\n");
    let calls = redis.calls("sinter");
    assert_eq!(client.call("SINTER a b"), b"*1\r\n$1\r\ny\r\n");
    assert_eq!(redis.calls("sinter"), calls, "served from the cache");

    redis.cmd::<i64>(&["HSET", "h", "f", "2"]);
    eventually("HGET to see the change made at Redis", || {
        (client.call("HGET h f") == b"$1\r\n2\r\n").then_some(())
    });
    // A change of the second key drops the reply filed under both.
    redis.cmd::<i64>(&["SADD", "b", "x"]);
    eventually("SINTER to see a change of its second key", || {
        let reply = client.call("SINTER a b");
        (reply.starts_with(b"*2\r\n")).then_some(())
    });
    // And of the first, once cached again.
    assert!(client.call("SINTER a b").starts_with(b"*2\r\n"));
    redis.cmd::<i64>(&["SREM", "a", "x", "y"]);
    eventually("SINTER to see a change of its first key", || {
        (client.call("SINTER a b") == b"*0\r\n").then_some(())
    });
}

/// A CLIENT TRACKING client of the proxy is told of every key of a reply
/// served from the cache, as GET's key is told.
#[test]
fn a_tracking_client_is_told_of_the_keys_of_a_cached_reply() {
    use crate::client_tracking::{start, tracking};
    let (redis, proxy) = start(&[]);
    redis.cmd::<i64>(&["HSET", "h", "f", "1"]);
    redis.cmd::<i64>(&["SADD", "a", "x"]);
    redis.cmd::<i64>(&["SADD", "b", "x"]);
    proxy.wait_for_invalidations(3.0);
    // Another client fills the cache first: the tracking client's reads
    // are then hits.
    let mut filler = Wire::open_with(proxy.resp.expect("RESP port"), 3);
    filler.call("HGETALL h");
    filler.call("EXISTS a b");
    let calls = (redis.calls("hgetall"), redis.calls("exists"));
    let mut client = tracking(&proxy, &[]);
    client.catch_up(&redis);
    assert_eq!(client.call(&["HGETALL", "h"]), "%[$f $1]");
    assert_eq!(client.call(&["EXISTS", "a", "b"]), ":2");
    assert_eq!((redis.calls("hgetall"), redis.calls("exists")), calls);
    redis.cmd::<i64>(&["HSET", "h", "f", "2"]);
    assert_eq!(client.next(), ">[$invalidate *[$h]]");
    redis.cmd::<i64>(&["SADD", "b", "y"]);
    assert_eq!(client.next(), ">[$invalidate *[$b]]");
}

/// Cluster mode: the read goes to its key's master with the PTTL of its
/// key, is cached, and a write at that master reaches it through that
/// master's link; a cross-slot read is Redis's CROSSSLOT error, never
/// cached.
#[test]
fn cluster_replies_are_cached_by_their_keys_master() {
    let (cluster, proxy) = crate::forward_cluster::start();
    let master = cluster.master_of("{c}h");
    master.cmd::<i64>(&["HSET", "{c}h", "f", "1"]);
    proxy.wait_for_invalidations(1.0);
    let mut client = Wire::connect(proxy.resp_addr());
    let before = master.calls("hgetall");
    assert_eq!(client.call("HGETALL {c}h"), b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    assert_eq!(client.call("HGETALL {c}h"), b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    assert_eq!(master.calls("hgetall") - before, 1);
    master.cmd::<i64>(&["HSET", "{c}h", "f", "2"]);
    eventually("the write at the master to reach the cached reply", || {
        (client.call("HGETALL {c}h") == b"*2\r\n$1\r\nf\r\n$1\r\n2\r\n").then_some(())
    });
    let tags = crate::forward_cluster::tag_per_master(&cluster);
    let (a, b) = (format!("{{{}}}a", tags[0]), format!("{{{}}}b", tags[1]));
    for _ in 0..2 {
        let reply = client.call_args(&["SINTER", &a, &b]);
        assert!(
            reply.starts_with(b"-CROSSSLOT"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// Each database's replies are apart: the same request after `SELECT 1`
/// is Redis's answer there, cached there, and a pipeline of writes and
/// reads through the proxy reads its own writes.
#[test]
fn replies_are_cached_per_database_and_read_their_own_writes() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    proxy.wait_for_link("up");
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    client.call("RPUSH l zero");
    assert_eq!(client.call("SELECT 1"), b"+OK\r\n");
    client.call("RPUSH l one");
    proxy.wait_for_invalidations(2.0);
    let before = redis.calls("lrange");
    assert_eq!(client.call("LRANGE l 0 -1"), b"*1\r\n$3\r\none\r\n");
    assert_eq!(client.call("LRANGE l 0 -1"), b"*1\r\n$3\r\none\r\n");
    assert_eq!(client.call("SELECT 0"), b"+OK\r\n");
    assert_eq!(client.call("LRANGE l 0 -1"), b"*1\r\n$4\r\nzero\r\n");
    assert_eq!(client.call("LRANGE l 0 -1"), b"*1\r\n$4\r\nzero\r\n");
    assert_eq!(redis.calls("lrange") - before, 2, "one fetch per database");
    // Pipelined: each read sees the write before it.
    let mut wire = Vec::new();
    for line in ["RPUSH l a", "LRANGE l 0 -1", "RPUSH l b", "LRANGE l 0 -1"] {
        wire.extend_from_slice(&crate::common::resp_wire::encode_line(line));
    }
    client.send(&wire);
    let replies = client.replies(4);
    assert_eq!(replies[1], b"*2\r\n$4\r\nzero\r\n$1\r\na\r\n");
    assert_eq!(replies[3], b"*3\r\n$4\r\nzero\r\n$1\r\na\r\n$1\r\nb\r\n");
}

/// What is never served from the cache: an error reply (relayed, not
/// kept), a read inside MULTI (queued at Redis), and anything with
/// CACHE_COMMANDS=none.
#[test]
fn errors_transactions_and_cache_commands_none_reach_redis() {
    let redis = RedisServer::start();
    redis.set("s", "v");
    redis.cmd::<i64>(&["HSET", "h", "f", "1"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    let before = redis.calls("hgetall");
    for _ in 0..2 {
        let reply = client.call("HGETALL s");
        assert!(reply.starts_with(b"-WRONGTYPE"), "{reply:?}");
    }
    assert_eq!(redis.calls("hgetall") - before, 2, "errors are not kept");
    assert_eq!(client.call("HGETALL h"), b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    let before = redis.calls("hgetall");
    assert_eq!(client.call("MULTI"), b"+OK\r\n");
    assert_eq!(client.call("HGETALL h"), b"+QUEUED\r\n");
    assert_eq!(client.call("EXEC"), b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    assert_eq!(redis.calls("hgetall") - before, 1, "run by EXEC at Redis");
    drop(proxy);

    let proxy = InProcess::start(&redis, &[RESP, ("CACHE_COMMANDS", "none")]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    let before = redis.calls("hgetall");
    for _ in 0..2 {
        assert_eq!(client.call("HGETALL h"), b"*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    }
    assert_eq!(redis.calls("hgetall") - before, 2);
}

/// Near the bounds a hit on the RESP port keeps its key's file recent (the
/// event loop's hit asks the command table for the keys then, away from
/// the bounds it need not): a hot HGETALL survives a stream of GETs that
/// would otherwise push its file out, and its reply with it.
#[test]
fn a_hot_reply_keeps_its_file_near_the_bounds_on_the_resp_port() {
    let redis = RedisServer::start();
    redis.cmd::<i64>(&["HSET", "h", "name", "ann"]);
    for i in 0..30 {
        redis.cmd::<String>(&["SET", &format!("k{i}"), "v"]);
    }
    let proxy = InProcess::start(&redis, &[RESP, ("CACHE_CAPACITY", "8")]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    let expected = client.call("HGETALL h");
    let before = redis.calls("hgetall");
    for i in 0..30 {
        assert_eq!(client.call("HGETALL h"), expected);
        assert_eq!(redis.calls("hgetall"), before, "read {i} was a hit");
        client.call(&format!("GET k{i}"));
    }
}
