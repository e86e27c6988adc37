//! Transactions through the proxy (#21): MULTI/EXEC/DISCARD and WATCH as
//! Redis answers them, byte for byte, run on a Redis connection the client
//! holds of its own; reads inside them never from the cache; their writes
//! dropped from the cache before EXEC's reply; nothing of one client's
//! transaction left behind for another. Raw RESP here and in
//! `forward_transactions_state.rs` (what a transaction leaves behind);
//! redis-py, node-redis and ioredis in `forward_transactions_clients.rs`.

use std::net::SocketAddr;

use crate::common::resp_conn::RespConn;
use crate::common::{InProcess, RedisServer};

/// RESP on; the invalidation link as `invalidation` says.
pub(crate) fn proxy(redis: &RedisServer, invalidation: &str) -> InProcess {
    InProcess::start(
        redis,
        &[("RESP_PORT", "auto"), ("INVALIDATION", invalidation)],
    )
}

/// One step of a script: a command, or (`@SET key value`) a write made
/// directly at the Redis behind, by another client, between two commands.
type Step = &'static [&'static str];

/// Transactions of every shape Redis's `multi.c` tells apart; the replies
/// cover RESP3's types (map, set, double, null) inside EXEC.
const SCRIPT: &[Step] = &[
    &["MULTI"],
    &["SET", "k", "v"],
    &["INCR", "n"],
    &["GET", "k"],
    &["HSET", "h", "f", "1"],
    &["HGETALL", "h"],
    &["EXEC"],
    // A queueing error (wrong arity) aborts the whole transaction.
    &["MULTI"],
    &["SET", "k"],
    &["INCR", "n"],
    &["EXEC"],
    &["GET", "n"],
    // So does an unknown command, and EXEC with arguments.
    &["MULTI"],
    &["NOSUCHCOMMAND", "x"],
    &["EXEC"],
    &["MULTI"],
    &["EXEC", "now"],
    &["EXEC"],
    // An error while EXEC runs fails only that command.
    &["MULTI"],
    &["INCR", "k"],
    &["SET", "k2", "x"],
    &["EXEC"],
    // DISCARD drops what was queued.
    &["MULTI"],
    &["SET", "k", "discarded"],
    &["DISCARD"],
    &["GET", "k"],
    // Outside a transaction.
    &["EXEC"],
    &["DISCARD"],
    // Nested MULTI and WATCH inside MULTI are refused; the transaction
    // goes on.
    &["MULTI"],
    &["MULTI"],
    &["INCR", "n"],
    &["EXEC"],
    &["MULTI"],
    &["WATCH", "k"],
    &["GET", "k"],
    &["EXEC"],
    // WATCH without a conflict, and UNWATCH.
    &["WATCH", "k", "n"],
    &["MULTI"],
    &["GET", "k"],
    &["EXEC"],
    &["WATCH", "k"],
    &["UNWATCH"],
    &["GET", "k"],
    // An empty transaction; RESP3's set, double and null inside EXEC.
    &["MULTI"],
    &["EXEC"],
    &["MULTI"],
    &["SADD", "s", "a"],
    &["SMEMBERS", "s"],
    &["ZADD", "z", "1.5", "m"],
    &["ZSCORE", "z", "m"],
    &["GET", "absent"],
    &["EXEC"],
    &["PING"],
];

/// A WATCH conflict: the watched key changes (another client, directly at
/// Redis) before EXEC, which then runs nothing (a null reply).
const CONFLICT: &[Step] = &[
    &["SET", "w", "1"],
    &["WATCH", "w"],
    &["GET", "w"],
    &["@SET", "w", "2"],
    &["MULTI"],
    &["SET", "w", "mine"],
    &["EXEC"],
    &["GET", "w"],
    // The watch ended with that EXEC: the next one runs.
    &["MULTI"],
    &["SET", "w", "mine"],
    &["EXEC"],
    &["GET", "w"],
];

/// A fresh connection to `addr`, in RESP3 if asked (HELLO's own reply,
/// which the proxy writes itself, is read and left out).
pub(crate) fn open(addr: SocketAddr, resp3: bool) -> RespConn {
    let mut conn = RespConn::open(addr);
    if resp3 {
        conn.send(&["HELLO", "3"]);
        assert!(conn.reply().starts_with(b"%"), "HELLO 3 answers a map");
    }
    conn
}

/// Runs `script` one command at a time on a connection to `addr`; a write
/// step goes to `redis` directly. Every reply, byte for byte.
fn run(script: &[Step], addr: SocketAddr, redis: &RedisServer, resp3: bool) -> Vec<Vec<u8>> {
    let mut conn = open(addr, resp3);
    let mut replies = Vec::new();
    for step in script {
        if step[0] == "@SET" {
            redis.set(step[1], step[2]);
            continue;
        }
        conn.send(step);
        replies.push(conn.reply());
    }
    replies
}

/// Runs `script` as one pipeline: every command written at once.
fn run_pipelined(script: &[Step], addr: SocketAddr, resp3: bool) -> Vec<Vec<u8>> {
    let mut conn = open(addr, resp3);
    let mut all = Vec::new();
    for step in script {
        let args: Vec<&[u8]> = step.iter().map(|w| w.as_bytes()).collect();
        all.extend(crate::common::resp_command(&args));
    }
    conn.send_raw(&all);
    script.iter().map(|_| conn.reply()).collect()
}

/// Puts the replies side by side, one line per command, for a failure.
fn assert_same(script: &[Step], proxied: &[Vec<u8>], direct: &[Vec<u8>]) {
    let commands: Vec<&Step> = script.iter().filter(|s| s[0] != "@SET").collect();
    for (i, (p, d)) in proxied.iter().zip(direct).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(p),
            String::from_utf8_lossy(d),
            "reply {i} to {:?} (proxy left, redis-server right)",
            commands[i]
        );
    }
    assert_eq!(proxied.len(), direct.len());
}

/// The same script against redis-server directly and through the proxy,
/// each with a fresh Redis of its own: the same bytes.
fn byte_exact(resp3: bool) {
    for (script, pipelined) in [(SCRIPT, false), (SCRIPT, true), (CONFLICT, false)] {
        let direct = RedisServer::start();
        let behind = RedisServer::start();
        let proxy = proxy(&behind, "auto");
        let (want, got) = match pipelined {
            false => (
                run(script, direct.addr(), &direct, resp3),
                run(script, proxy.resp_addr(), &behind, resp3),
            ),
            true => (
                run_pipelined(script, direct.addr(), resp3),
                run_pipelined(script, proxy.resp_addr(), resp3),
            ),
        };
        assert_same(script, &got, &want);
        // What EXEC ran reached Redis, and what DISCARD dropped did not.
        let keys = ["k", "n", "k2", "w"];
        for key in keys {
            let at_direct: Option<String> = direct.cmd(&["GET", key]);
            let at_behind: Option<String> = behind.cmd(&["GET", key]);
            assert_eq!(at_behind, at_direct, "{key} at Redis");
        }
    }
}

#[test]
fn transactions_through_the_proxy_answer_byte_for_byte_as_redis_in_resp2() {
    byte_exact(false);
}

#[test]
fn transactions_through_the_proxy_answer_byte_for_byte_as_redis_in_resp3() {
    byte_exact(true);
}

#[test]
fn reads_inside_a_transaction_or_a_watch_never_come_from_the_cache() {
    // TTL-only cache: nothing tells the proxy that `k` changed in Redis, so
    // a plain GET serves the old value; a transaction's must not.
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "off");
    redis.set("k", "old");
    let mut conn = open(proxy.resp_addr(), false);
    assert_eq!(conn.call(&["GET", "k"]), "$3\r\nold\r\n");
    redis.set("k", "new");
    assert_eq!(
        conn.call(&["GET", "k"]),
        "$3\r\nold\r\n",
        "the cache would serve the old value"
    );
    assert_eq!(conn.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(conn.call(&["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(conn.call(&["EXEC"]), "*1\r\n$3\r\nnew\r\n");
    // While watching, reads go to the client's own Redis connection too.
    assert_eq!(conn.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(conn.call(&["GET", "k"]), "$3\r\nnew\r\n");
    assert_eq!(
        conn.call(&["MGET", "k", "k"]),
        "*2\r\n$3\r\nnew\r\n$3\r\nnew\r\n"
    );
    assert_eq!(conn.call(&["UNWATCH"]), "+OK\r\n");
    // In RESP3 as well, pipelined.
    let mut resp3 = open(proxy.resp_addr(), true);
    assert_eq!(resp3.call(&["GET", "k"]), "$3\r\nold\r\n");
    let args: Vec<&[u8]> = vec![b"MULTI", b"GET", b"k", b"EXEC"];
    let mut wire = crate::common::resp_command(&args[..1]);
    wire.extend(crate::common::resp_command(&args[1..3]));
    wire.extend(crate::common::resp_command(&args[3..]));
    resp3.send_raw(&wire);
    assert_eq!(resp3.reply(), b"+OK\r\n");
    assert_eq!(resp3.reply(), b"+QUEUED\r\n");
    assert_eq!(resp3.reply(), b"*1\r\n$3\r\nnew\r\n");
}

#[test]
fn a_transactions_writes_are_read_back_at_once_on_every_connection_and_over_http() {
    // TTL-only cache: only the proxy's own drop after EXEC makes it fresh.
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "off");
    for (key, value) in [("k", "old"), ("a", "x"), ("d", "gone"), ("p", "old")] {
        redis.set(key, value);
    }
    let mut reader = open(proxy.resp_addr(), false);
    for key in ["k", "a", "d", "p"] {
        assert!(reader.call(&["GET", key]).starts_with('$'));
        assert_eq!(proxy.get_key(key).status, 200);
        assert!(proxy.get_key(key).is_hit(), "{key} is cached");
    }
    let mut writer = open(proxy.resp_addr(), false);
    assert_eq!(writer.call(&["MULTI"]), "+OK\r\n");
    for command in [
        &["SET", "k", "new"][..],
        &["APPEND", "a", "y"],
        &["DEL", "d"],
    ] {
        assert_eq!(writer.call(command), "+QUEUED\r\n");
    }
    assert_eq!(writer.call(&["EXEC"]), "*3\r\n+OK\r\n:2\r\n:1\r\n");
    assert_eq!(reader.call(&["GET", "k"]), "$3\r\nnew\r\n");
    assert_eq!(reader.call(&["GET", "a"]), "$2\r\nxy\r\n");
    assert_eq!(reader.call(&["GET", "d"]), "$-1\r\n");
    assert_eq!(proxy.get_key("k").body, b"new");
    assert_eq!(proxy.get_key("a").body, b"xy");
    assert_eq!(proxy.get_key("d").status, 404);
    // A read pipelined right behind EXEC on the same connection, and one on
    // another connection as soon as EXEC's reply is in.
    let mut wire = Vec::new();
    for step in [
        &["MULTI"][..],
        &["SET", "p", "new"],
        &["EXEC"],
        &["GET", "p"],
    ] {
        let args: Vec<&[u8]> = step.iter().map(|w| w.as_bytes()).collect();
        wire.extend(crate::common::resp_command(&args));
    }
    writer.send_raw(&wire);
    for want in ["+OK\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n"] {
        assert_eq!(String::from_utf8_lossy(&writer.reply()), want);
    }
    assert_eq!(reader.call(&["GET", "p"]), "$3\r\nnew\r\n");
    assert_eq!(String::from_utf8_lossy(&writer.reply()), "$3\r\nnew\r\n");
    assert_eq!(proxy.get_key("p").body, b"new");
}

#[test]
fn a_transaction_too_long_to_remember_still_leaves_nothing_stale() {
    // The proxy remembers the first MiB or so of a transaction's queued
    // commands for their keys; past that, EXEC must drop everything, so a
    // write queued after it is read back too.
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "off");
    redis.set("k", "old");
    let mut conn = open(proxy.resp_addr(), false);
    assert_eq!(conn.call(&["GET", "k"]), "$3\r\nold\r\n");
    assert!(proxy.get_key("k").is_hit());
    let big = "x".repeat(64 * 1024);
    assert_eq!(conn.call(&["MULTI"]), "+OK\r\n");
    for i in 0..24 {
        assert_eq!(
            conn.call(&["SET", &format!("big:{i}"), &big]),
            "+QUEUED\r\n"
        );
    }
    assert_eq!(conn.call(&["SET", "k", "new"]), "+QUEUED\r\n");
    let exec = conn.call(&["EXEC"]);
    assert!(
        exec.starts_with("*25\r\n"),
        "{}",
        &exec[..exec.len().min(40)]
    );
    assert_eq!(conn.call(&["GET", "k"]), "$3\r\nnew\r\n");
    assert_eq!(proxy.get_key("k").body, b"new");
}
