//! Cluster mode: a redirection is followed only to a node of the slot map.
//! An error reply is text a script can write, so a `-MOVED` naming any
//! other host must not make the proxy connect (and log in) there. A node
//! the map does not know yet (a replica a failover just promoted) is
//! followed once the map, read again, names it a master. A `-MOVED` on a
//! connection a client holds, or a `-READONLY` from a demoted master (or
//! its `-UNBLOCKED` to a blocked command), has the next command read the
//! map again. A redirection to the node that
//! sent it is a script's own error, passed on and never sent again; a
//! script's `-READONLY` has the map read again at most once a second.

use std::net::TcpListener;

use super::forward_cluster::moved;
use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::{eventually, Proxy, RedisServer};

/// `CLUSTER FAILOVER` on `replica`, once it is in sync, until it reports
/// itself a master.
fn fail_over(cluster: &Cluster, replica: &RedisServer) {
    cluster.wait_ok();
    let _: () = replica.cmd(&["CLUSTER", "FAILOVER"]);
    eventually("the replica to take over", || {
        let info: String = replica.try_cmd(&["INFO", "replication"])?;
        info.contains("role:master").then_some(())
    });
}

#[test]
fn a_script_written_moved_to_an_unknown_host_is_passed_on_not_followed() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    // A host that would see the proxy's connection (and its AUTH).
    let trap = TcpListener::bind("127.0.0.1:0").expect("a listener");
    trap.set_nonblocking(true).expect("non-blocking");
    let addr = trap.local_addr().expect("its address");
    let mut wire = Wire::connect(proxy.resp_addr());
    for kind in ["MOVED", "ASK"] {
        let script = format!("return redis.error_reply('{kind} 1 {addr}')");
        let reply = wire.call_args(&["EVAL", &script, "0"]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("-{kind} 1 {addr}\r\n"),
            "the node's reply, passed on"
        );
        assert!(
            trap.accept().is_err(),
            "the proxy connected to {addr} after a {kind}"
        );
    }
    // A script that writes, then answers a redirection to the very node
    // that ran it: passed on, never sent again (the write runs once).
    let owner = cluster.master_of("cnt");
    let slot: i64 = owner.cmd(&["CLUSTER", "KEYSLOT", "cnt"]);
    for (runs, kind) in [(1, "MOVED"), (2, "ASK")] {
        let own = format!("{kind} {slot} 127.0.0.1:{}", owner.port());
        let script = format!("redis.call('incr', KEYS[1]); return redis.error_reply('{own}')");
        let reply = wire.call_args(&["EVAL", &script, "1", "cnt"]);
        assert_eq!(String::from_utf8_lossy(&reply), format!("-{own}\r\n"));
        let count: i64 = owner.cmd(&["GET", "cnt"]);
        assert_eq!(count, runs, "the script ran once per EVAL ({kind})");
    }
    // Nor does such a -MOVED have the next batches read the slot map again
    // (before: one CLUSTER SLOTS per script run; the watcher's own reads,
    // about one a second, are the slack).
    let slots_reads = || slots_reads(&cluster);
    let before = slots_reads();
    let own = format!("MOVED {slot} 127.0.0.1:{}", owner.port());
    let script = format!("return redis.error_reply('{own}')");
    for _ in 0..10 {
        wire.call_args(&["EVAL", &script, "1", "cnt"]);
        assert_eq!(wire.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
    }
    assert!(
        slots_reads() < before + 5,
        "{} map reads",
        slots_reads() - before
    );
    // The connection and the proxy go on.
    assert_eq!(wire.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
}

#[test]
fn a_script_written_readonly_does_not_have_every_batch_read_the_map() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let mut wire = Wire::connect(proxy.resp_addr());
    assert_eq!(wire.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
    let slots_reads = || slots_reads(&cluster);
    // A master's -READONLY cannot be told from a demoted one's, so it
    // marks the map stale; a script returning it in a loop had every
    // following batch read the map (20 runs: 20 reads). Now at most one
    // a second is: here a few, with the watcher's own (about one a
    // second) as slack.
    let before = slots_reads();
    let script = "return redis.error_reply('READONLY not really')";
    for _ in 0..20 {
        let reply = wire.call_args(&["EVAL", script, "1", "{t}k"]);
        assert_eq!(reply, b"-READONLY not really\r\n");
        assert_eq!(wire.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
    }
    assert!(
        slots_reads() < before + 10,
        "{} map reads",
        slots_reads() - before
    );
}

#[test]
fn the_first_write_after_a_manual_failover_runs_on_the_promoted_replica() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let key = "{fo}0";
    let master = cluster.master_of(key);
    let replica = cluster.replica_of(master);
    let mut wire = Wire::connect(proxy.resp_addr());
    // The proxy reads the slot map: the replica is not one of its masters.
    assert_eq!(wire.call_args(&["SET", key, "a"]), b"+OK\r\n");
    cluster.sync_replicas();
    fail_over(&cluster, replica);
    // The old master answers -MOVED naming the replica, a node the map
    // does not know: the proxy reads the map again and sends the SET
    // there, and the client gets the SET's own reply.
    let reply = wire.call_args(&["SET", key, "b"]);
    assert_eq!(String::from_utf8_lossy(&reply), "+OK\r\n");
    assert_eq!(replica.cmd::<String>(&["GET", key]), "b");
    assert!(moved(master) > 0, "the old master redirected the proxy");
    assert_eq!(wire.call_args(&["GET", key]), b"$1\r\nb\r\n");
}

#[test]
fn after_a_manual_failover_blocking_pops_and_flushall_recover_without_a_plain_write() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let key = "{q}jobs";
    let first = cluster.master_of(key);
    let second = cluster.replica_of(first);
    let mut wire = Wire::connect(proxy.resp_addr());
    let show = |reply: Vec<u8>| String::from_utf8_lossy(&reply).into_owned();
    // The proxy reads its map; from here on it sees only BLPOP and FLUSHALL.
    assert_eq!(show(wire.call_args(&["FLUSHALL"])), "+OK\r\n");
    fail_over(&cluster, second);
    // A blocking command runs on a connection of its own, not redirected:
    // the old master's -MOVED reaches the client (a cluster client retries
    // it), and the next one goes to the new master.
    let moved = show(wire.call_args(&["BLPOP", key, "1"]));
    assert!(moved.starts_with("-MOVED "), "{moved}");
    let _: () = second.cmd(&["RPUSH", key, "job"]);
    assert_eq!(
        show(wire.call_args(&["BLPOP", key, "1"])),
        "*2\r\n$7\r\n{q}jobs\r\n$3\r\njob\r\n"
    );
    // Another shard's turn: FLUSHALL reaches every master of the map, the
    // demoted one answers -READONLY, and the next FLUSHALL goes to the new
    // masters.
    let other = *cluster
        .masters()
        .iter()
        .find(|m| m.port() != second.port() && m.port() != first.port())
        .expect("another master");
    let promoted = cluster.replica_of(other);
    fail_over(&cluster, promoted);
    // A key of its own (a node answers -MOVED for the others).
    (0..)
        .find(|i| {
            let key = format!("left{i}");
            promoted.try_cmd::<()>(&["SET", &key, "x"]).is_some()
        })
        .expect("a key of the promoted replica's slots");
    let readonly = show(wire.call_args(&["FLUSHALL"]));
    assert!(readonly.starts_with("-READONLY "), "{readonly}");
    assert_eq!(show(wire.call_args(&["FLUSHALL"])), "+OK\r\n");
    assert_eq!(promoted.cmd::<i64>(&["DBSIZE"]), 0);
}

/// `CLUSTER SLOTS` calls the masters of `cluster` have answered so far.
fn slots_reads(cluster: &Cluster) -> u64 {
    cluster
        .masters()
        .iter()
        .map(|m| m.calls("cluster|slots"))
        .sum()
}

#[test]
fn a_pop_blocked_through_a_cluster_failover_gets_one_error_and_the_next_reaches_the_new_master() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let key = "{bq}jobs";
    let first = cluster.master_of(key);
    let second = cluster.replica_of(first);
    let mut wire = Wire::connect(proxy.resp_addr());
    let show = |reply: Vec<u8>| String::from_utf8_lossy(&reply).into_owned();
    // A queue's worker: it sends only BLPOP, blocked on the master when
    // the failover demotes it.
    wire.send_args(&["BLPOP", key, "0"]);
    eventually("the BLPOP blocked at the master", || {
        (crate::common::wire::info_clients(first, "blocked_clients") == 1).then_some(())
    });
    fail_over(&cluster, second);
    // The demoted master's one error, as a client straight at it gets ...
    assert_eq!(
        show(wire.reply()),
        "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
    );
    // ... and none more: it marked the map stale, so the next BLPOP goes
    // to the new master (not to the old one, whose -MOVED was a second).
    let _: () = second.cmd(&["RPUSH", key, "job"]);
    assert_eq!(
        show(wire.call_args(&["BLPOP", key, "1"])),
        "*2\r\n$8\r\n{bq}jobs\r\n$3\r\njob\r\n"
    );
}
