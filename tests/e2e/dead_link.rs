//! A client's own Redis connection (a blocking command's, a
//! subscription's, a transaction's) ending under it: Redis killed
//! (SIGKILL) while the client waits or holds it. Straight at Redis the
//! client's socket is closed, which clients (redis-py, so RQ and Celery)
//! take for a lost connection and retry; through the proxy too: the client
//! is closed without a word, not answered an error, which they take for a
//! server's refusal and give up on. A new command while Redis is down
//! still gets an error naming the cause, on a connection that stays usable
//! (#21). The sentinel failover's side is in `sentinel_held.rs`.

use crate::common::wire::{show, Wire};
use crate::common::{eventually, read_until_closed};
use crate::forward_blocking::{start, wait_blocked};
use crate::forward_pubsub::subscribers;

#[test]
fn blocked_clients_whose_redis_is_killed_are_closed_without_a_word_as_at_redis() {
    let (mut redis, proxy) = start(&[]);
    let mut blocked = Vec::new();
    for addr in [redis.addr(), proxy.resp_addr()] {
        for protocol in [2, 3] {
            let mut wire = Wire::open_with(addr, protocol);
            wire.send_args(&["BLPOP", "dl-queue", "0"]);
            blocked.push((addr, protocol, wire));
        }
    }
    wait_blocked(&redis, 4);
    redis.stop();
    for (addr, protocol, mut wire) in blocked {
        let rest = read_until_closed(&mut wire.stream);
        assert_eq!(show(&rest), "", "BLPOP in RESP{protocol} at {addr}");
    }
    // A new command while Redis is down: an error naming the cause, and
    // the connection goes on (#21), blocking commands included.
    let mut wire = Wire::connect(proxy.resp_addr());
    for line in ["LPUSH dl-queue x", "BLPOP dl-queue 0"] {
        let reply = wire.call_text(line);
        assert!(
            reply.starts_with("-ERR backing Redis unavailable: "),
            "{line}: {reply}"
        );
    }
    assert_eq!(wire.call("PING"), b"+PONG\r\n");
    redis.restart();
    assert_eq!(wire.call_text("LPUSH dl-queue x"), ":1\r\n");
    assert_eq!(
        wire.call_text("BLPOP dl-queue 0"),
        "*2\r\n$8\r\ndl-queue\r\n$1\r\nx\r\n"
    );
}

#[test]
fn subscribers_whose_redis_is_killed_are_closed_without_a_word_as_at_redis() {
    let (mut redis, proxy) = start(&[]);
    let mut subscribed = Vec::new();
    for addr in [redis.addr(), proxy.resp_addr()] {
        for protocol in [2, 3] {
            let mut wire = Wire::open_with(addr, protocol);
            let confirmed = wire.call_args(&["SUBSCRIBE", "dl-channel"]);
            assert!(
                show(&confirmed).contains("subscribe"),
                "{}",
                show(&confirmed)
            );
            subscribed.push((addr, protocol, wire));
        }
    }
    assert_eq!(subscribers(&redis, "dl-channel"), 4);
    redis.stop();
    for (addr, protocol, mut wire) in subscribed {
        let rest = read_until_closed(&mut wire.stream);
        assert_eq!(show(&rest), "", "subscriber in RESP{protocol} at {addr}");
    }
    redis.restart();
    // A new subscriber through the proxy hears what is published.
    let mut wire = Wire::connect(proxy.resp_addr());
    wire.call_args(&["SUBSCRIBE", "dl-channel"]);
    eventually("the new subscriber at Redis", || {
        (subscribers(&redis, "dl-channel") == 1).then_some(())
    });
    let _: i64 = redis.cmd(&["PUBLISH", "dl-channel", "after"]);
    assert_eq!(
        show(&wire.reply()),
        show(b"*3\r\n$7\r\nmessage\r\n$10\r\ndl-channel\r\n$5\r\nafter\r\n")
    );
}

/// A connection held for WATCH or MULTI that Redis closed is found out at
/// the client's next command: the client is closed then, as its own
/// connection to Redis would have been (redis-py turns that into a
/// `WatchError` to retry the transaction; an error reply it would raise).
#[test]
fn a_client_whose_watch_or_multi_connection_redis_closed_is_closed_as_at_redis() {
    let (mut redis, proxy) = start(&[]);
    let mut held = Vec::new();
    for addr in [redis.addr(), proxy.resp_addr()] {
        let mut watching = Wire::connect(addr);
        assert_eq!(watching.call("WATCH dl-key"), b"+OK\r\n");
        let mut queued = Wire::connect(addr);
        assert_eq!(queued.call("MULTI"), b"+OK\r\n");
        assert_eq!(queued.call("SET dl-key v"), b"+QUEUED\r\n");
        held.push((addr, "GET dl-key", watching));
        held.push((addr, "EXEC", queued));
    }
    redis.restart();
    for (addr, line, mut wire) in held {
        wire.send(&crate::common::resp_wire::encode_line(line));
        let rest = read_until_closed(&mut wire.stream);
        assert_eq!(show(&rest), "", "{line} at {addr}");
    }
    let mut wire = Wire::connect(proxy.resp_addr());
    assert_eq!(wire.call("WATCH dl-key"), b"+OK\r\n");
    assert_eq!(wire.call("GET dl-key"), b"$-1\r\n");
}

/// Cluster mode: the node a client's own connection goes to is killed
/// (a blocked `BLPOP`, an `SSUBSCRIBE`, a `WATCH`): each client is closed
/// without a word, straight at the node and through the proxy alike.
#[test]
fn a_cluster_node_killed_under_its_clients_own_connections_closes_them_as_at_the_node() {
    let (mut cluster, proxy) = crate::forward_cluster::start();
    let node = cluster.master_index("{dl}queue");
    let mut held = Vec::new();
    for addr in [cluster.nodes[node].addr(), proxy.resp_addr()] {
        let mut blocked = Wire::connect(addr);
        blocked.send_args(&["BLPOP", "{dl}queue", "0"]);
        held.push((addr, "BLPOP", blocked));
        let mut subscriber = Wire::connect(addr);
        let confirmed = subscriber.call_args(&["SSUBSCRIBE", "{dl}channel"]);
        assert!(
            show(&confirmed).contains("ssubscribe"),
            "{}",
            show(&confirmed)
        );
        held.push((addr, "SSUBSCRIBE", subscriber));
        let mut watching = Wire::connect(addr);
        assert_eq!(watching.call("WATCH {dl}key"), b"+OK\r\n");
        held.push((addr, "WATCH", watching));
    }
    wait_blocked(&cluster.nodes[node], 2);
    cluster.nodes[node].stop();
    for (addr, what, mut wire) in held {
        if what == "WATCH" {
            wire.send(&crate::common::resp_wire::encode_line("GET {dl}key"));
        }
        let rest = read_until_closed(&mut wire.stream);
        assert_eq!(show(&rest), "", "{what} at {addr}");
    }
}
