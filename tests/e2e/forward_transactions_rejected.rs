//! What Redis refuses around a transaction, and what it ignores, through
//! the proxy as at Redis: an EXEC it refuses (`EXEC x`) ends the
//! transaction and every WATCH (`-EXECABORT`), so the proxy must stop
//! taking that client's writes for queued ones (their keys dropped from
//! the cache: read-your-writes); a refused DISCARD, MULTI or WATCH inside
//! MULTI changes nothing. And an empty request (`*0`, `*-1`, a blank
//! inline line), which Redis ignores without a reply, is never sent there
//! while the connection is pinned or subscribed, where the proxy would
//! wait for a reply that never comes.

use crate::common::resp_conn::RespConn;
use crate::common::RedisServer;

use super::forward_transactions::proxy;

/// The client's commands, one at a time; after each, another client reads
/// `k` (through the proxy, and directly at the other Redis).
const STEPS: Steps = &[
    &["SET", "k", "old"],
    &["MULTI"],
    &["SET", "k", "queued"],
    &["EXEC", "x"],
    // Outside MULTI now: runs at once, and others see it.
    &["SET", "k", "new"],
    &["EXEC"],
    // Refused inside MULTI, which goes on (flagged: EXEC aborts it).
    &["MULTI"],
    &["DISCARD", "x"],
    &["MULTI", "x"],
    &["WATCH", "k"],
    &["SET", "k", "dropped"],
    &["EXEC"],
    &["SET", "k", "newer"],
    // A refused EXEC unwatches too.
    &["WATCH", "k"],
    &["EXEC", "x"],
    &["SET", "k", "newest"],
    &["MULTI"],
    &["EXEC", "a", "b"],
    &["SET", "k", "last"],
    &["EXEC"],
];

#[test]
fn an_exec_redis_refuses_ends_the_transaction_and_later_writes_are_seen_by_others() {
    let direct = RedisServer::start();
    let behind = RedisServer::start();
    // No invalidation link: only the proxy's own note of the write drops
    // the key from its cache.
    let proxy = proxy(&behind, "off");
    let (mut mine, mut other) = (
        RespConn::open(proxy.resp_addr()),
        RespConn::open(proxy.resp_addr()),
    );
    let (mut at_redis, mut reader) = (RespConn::open(direct.addr()), RespConn::open(direct.addr()));
    for step in STEPS {
        let got = mine.call(step);
        let want = at_redis.call(step);
        assert_eq!(
            got, want,
            "reply to {step:?} (proxy left, redis-server right)"
        );
        let got = other.call(&["GET", "k"]);
        let want = reader.call(&["GET", "k"]);
        assert_eq!(got, want, "another client's GET k after {step:?}");
    }
}

/// Commands, each its words.
type Steps<'a> = &'a [&'a [&'a str]];

/// Empty requests Redis ignores, with no reply.
const EMPTY: &[u8] = b"*0\r\n*-1\r\n\r\n  \r\n";

/// Sends `before`, the empty requests, then `after` (all RESP commands) to
/// `addr` in one write, then `after` again one at a time; the replies.
fn around_empty(addr: std::net::SocketAddr, before: Steps, after: Steps) -> Vec<String> {
    let mut conn = RespConn::open(addr);
    let encode = |steps: Steps| -> Vec<u8> {
        let mut wire = Vec::new();
        for step in steps {
            let args: Vec<&[u8]> = step.iter().map(|w| w.as_bytes()).collect();
            wire.extend(crate::common::resp_command(&args));
        }
        wire
    };
    let mut wire = encode(before);
    wire.extend_from_slice(EMPTY);
    wire.extend(encode(after));
    conn.send_raw(&wire);
    // A reply that never comes fails here, at the read's timeout.
    let mut replies: Vec<String> = (0..before.len() + after.len())
        .map(|_| String::from_utf8_lossy(&conn.reply()).into_owned())
        .collect();
    for step in after {
        conn.send_raw(EMPTY);
        replies.push(conn.call(step));
    }
    replies
}

#[test]
fn empty_requests_are_ignored_as_redis_ignores_them_after_watch_inside_multi_and_subscribed() {
    let direct = RedisServer::start();
    let behind = RedisServer::start();
    let proxy = proxy(&behind, "auto");
    let cases: &[(Steps, Steps)] = &[
        (&[&["SET", "k", "v"]], &[&["PING"], &["GET", "k"]]),
        (
            &[&["WATCH", "k"]],
            &[&["PING"], &["GET", "k"], &["ECHO", "e"]],
        ),
        (&[&["MULTI"]], &[&["PING"], &["GET", "k"]]),
        (&[&["SUBSCRIBE", "ch"]], &[&["PING"], &["PING", "p"]]),
    ];
    for (before, after) in cases {
        let want = around_empty(direct.addr(), before, after);
        let got = around_empty(proxy.resp_addr(), before, after);
        assert_eq!(
            got, want,
            "after {before:?} (proxy left, redis-server right)"
        );
    }
}
