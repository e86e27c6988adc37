//! Forwarding in REDIS_MODE=cluster (issue #21): each command goes to the
//! master owning its keys' slot and its reply comes back byte for byte as
//! that master gives it; keys in several slots get the node's CROSSSLOT
//! error; a pipeline spread over every master comes back in order; and
//! writes through the proxy succeed again after a failover.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::{eventually, resp_command, Proxy, RedisServer};

/// A raw connection, RESP3 after `HELLO 3` if `resp3`.
pub(super) fn open(addr: SocketAddr, resp3: bool) -> Wire {
    Wire::open_with(addr, if resp3 { 3 } else { 2 })
}

/// A cluster and a proxy forwarding to it, its links to every master up.
pub(super) fn start() -> (Cluster, Proxy) {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    (cluster, proxy)
}

/// One hash tag per master, in the order of `cluster.masters()`.
pub(super) fn tag_per_master(cluster: &Cluster) -> Vec<String> {
    let masters: Vec<u16> = cluster.masters().iter().map(|m| m.port()).collect();
    let mut tags = vec![String::new(); masters.len()];
    for i in 0.. {
        let tag = format!("t{i}");
        let owner = cluster.master_of(&tag).port();
        let at = masters.iter().position(|p| *p == owner).expect("a master");
        if tags[at].is_empty() {
            tags[at] = tag;
        }
        if tags.iter().all(|t| !t.is_empty()) {
            return tags;
        }
    }
    unreachable!()
}

/// How many `-MOVED` replies `node` gave.
pub(super) fn moved(node: &RedisServer) -> u64 {
    let info: String = node.cmd(&["INFO", "errorstats"]);
    info.lines()
        .find_map(|line| line.strip_prefix("errorstat_MOVED:count="))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// SET, GET, INCR, HSET and friends, errors included, on keys starting
/// `key`.
fn sequence(key: &str) -> Vec<Vec<String>> {
    let k = |suffix: &str| format!("{key}{suffix}");
    vec![
        vec!["SET".into(), k("s"), "value".into()],
        vec!["GET".into(), k("s")],
        vec!["GET".into(), k("missing")],
        vec!["INCR".into(), k("s")],
        vec!["INCR".into(), k("n")],
        vec!["INCRBY".into(), k("n"), "41".into()],
        vec![
            "HSET".into(),
            k("h"),
            "f".into(),
            "1".into(),
            "g".into(),
            "2".into(),
        ],
        vec!["HGETALL".into(), k("h")],
        vec!["HINCRBYFLOAT".into(), k("h"), "f".into(), "0.5".into()],
        vec!["LPUSH".into(), k("h"), "x".into()],
        vec!["EXPIRE".into(), k("s"), "100".into()],
        vec!["TTL".into(), k("s")],
        vec!["DEL".into(), k("s"), k("n")],
    ]
}

#[test]
fn commands_on_every_master_answer_byte_for_byte_as_their_master() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    for resp3 in [false, true] {
        let mut through = open(proxy.resp_addr(), resp3);
        for tag in &tags {
            let master = cluster.master_of(tag);
            let mut direct = open(master.addr(), resp3);
            // Same slot, same master, fresh keys on each side.
            let (ours, theirs) = (format!("{{{tag}}}p{resp3}"), format!("{{{tag}}}d{resp3}"));
            for (mine, direct_args) in sequence(&ours).iter().zip(sequence(&theirs)) {
                let mine: Vec<&str> = mine.iter().map(String::as_str).collect();
                let direct_args: Vec<&str> = direct_args.iter().map(String::as_str).collect();
                assert_eq!(
                    String::from_utf8_lossy(&through.call_args(&mine)),
                    String::from_utf8_lossy(&direct.call_args(&direct_args)),
                    "{mine:?} (RESP3: {resp3})"
                );
            }
            // It ran on that master.
            let hgetall = format!("{ours}h");
            assert_eq!(
                direct.call_args(&["HGET", &hgetall, "g"]),
                through.call_args(&["HGET", &hgetall, "g"])
            );
        }
    }
    // Each went straight to its master: no node had to redirect the proxy.
    for master in cluster.masters() {
        assert_eq!(moved(master), 0, "master {} answered MOVED", master.port());
    }
}

#[test]
fn a_pipeline_over_every_master_comes_back_in_request_order() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for round in 0..20 {
        for tag in &tags {
            let key = format!("{{{tag}}}k{round}");
            let value = format!("v{round}-{tag}");
            request.extend(resp_command(&[b"SET", key.as_bytes(), value.as_bytes()]));
            expected.extend_from_slice(b"+OK\r\n");
            request.extend(resp_command(&[b"STRLEN", key.as_bytes()]));
            expected.extend(format!(":{}\r\n", value.len()).into_bytes());
            request.extend(resp_command(&[b"APPEND", key.as_bytes(), b"!"]));
            expected.extend(format!(":{}\r\n", value.len() + 1).into_bytes());
        }
        request.extend(resp_command(&[b"PING"]));
        expected.extend_from_slice(b"+PONG\r\n");
    }
    let mut raw = open(proxy.resp_addr(), false);
    raw.send(&request);
    let mut replies = vec![0; expected.len()];
    raw.stream.read_exact(&mut replies).expect("every reply");
    assert_eq!(
        String::from_utf8_lossy(&replies),
        String::from_utf8_lossy(&expected)
    );
    // SCAN walks every master behind one cursor; KEYS asks them all.
    let written: BTreeSet<String> = (0..20)
        .flat_map(|round| tags.iter().map(move |tag| format!("{{{tag}}}k{round}")))
        .collect();
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|client| client.get_connection())
        .expect("a RESP connection");
    let (mut cursor, mut scanned, mut calls) = (0u64, Vec::new(), 0);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(7)
            .query(&mut conn)
            .expect("SCAN");
        scanned.extend(keys);
        calls += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(calls > tags.len(), "{calls} calls");
    scanned.sort();
    assert_eq!(scanned, written.iter().cloned().collect::<Vec<_>>());
    let keys: BTreeSet<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
    assert_eq!(keys, written);
    // Keyless commands for every master: DBSIZE sums, FLUSHALL reaches all.
    let total: i64 = cluster
        .masters()
        .iter()
        .map(|m| m.cmd::<i64>(&["DBSIZE"]))
        .sum();
    assert_eq!(total, 20 * tags.len() as i64);
    assert_eq!(
        raw.call_args(&["DBSIZE"]),
        format!(":{total}\r\n").into_bytes()
    );
    assert_eq!(raw.call_args(&["FLUSHALL"]), b"+OK\r\n");
    for master in cluster.masters() {
        assert_eq!(master.cmd::<i64>(&["DBSIZE"]), 0, "{}", master.port());
    }
    assert_eq!(raw.call_args(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn keys_in_several_slots_get_crossslot_as_a_node_answers_and_hash_tags_share_one() {
    let (cluster, proxy) = start();
    let node = &cluster.nodes[0];
    let mut direct = open(node.addr(), false);
    let mut through = open(proxy.resp_addr(), false);
    let crossslot = direct.call_args(&["MSET", "a", "1", "b", "2"]);
    assert_eq!(
        crossslot,
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(through.call_args(&["MSET", "a", "1", "b", "2"]), crossslot);
    assert_eq!(through.call_args(&["DEL", "a", "b"]), crossslot);
    // The arity is checked first, on a node as through the proxy.
    let arity = direct.call_args(&["RENAME", "a", "b", "c"]);
    assert_eq!(
        String::from_utf8_lossy(&through.call_args(&["RENAME", "a", "b", "c"])),
        String::from_utf8_lossy(&arity)
    );
    assert!(arity.starts_with(b"-ERR wrong number of arguments"));
    assert_eq!(
        through.call_args(&["MSET", "{t}a", "1", "{t}b", "2"]),
        b"+OK\r\n"
    );
    let owner = cluster.master_of("{t}");
    assert_eq!(owner.cmd::<String>(&["GET", "{t}b"]), "2");
    assert_eq!(through.call_args(&["DEL", "{t}a", "{t}b"]), b":2\r\n");
    // The connection is still usable after the refusal, in order.
    assert_eq!(through.call_args(&["PING"]), b"+PONG\r\n");
}

#[test]
fn forwarded_writes_succeed_again_after_a_failover() {
    let (cluster, proxy) = start();
    let key = "{f}counter";
    let master = cluster.master_of(key);
    let replica = cluster.replica_of(master);
    let (master_port, replica_port) = (master.port(), replica.port());
    // A writer through the proxy, counting replies of each kind, and
    // errors after the switch apart.
    let stop = Arc::new(AtomicBool::new(false));
    let switched = Arc::new(AtomicBool::new(false));
    let addr = proxy.resp_addr();
    let writer = {
        let (stop, switched) = (Arc::clone(&stop), Arc::clone(&switched));
        thread::spawn(move || {
            let mut raw = open(addr, false);
            let (mut ok, mut during, mut after) = (0u64, Vec::new(), Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let done = switched.load(Ordering::SeqCst);
                let reply = raw.call_args(&["INCR", key]);
                match (reply.first(), done) {
                    (Some(b':'), _) => ok += 1,
                    (_, false) => during.push(String::from_utf8_lossy(&reply).into_owned()),
                    (_, true) => after.push(String::from_utf8_lossy(&reply).into_owned()),
                }
            }
            (ok, during, after)
        })
    };
    eventually("writes to go through", || {
        (master.try_cmd::<i64>(&["GET", key])? > 10).then_some(())
    });
    let _: () = replica.cmd(&["CLUSTER", "FAILOVER"]);
    eventually("the replica to take over", || {
        let info: String = replica.try_cmd(&["INFO", "replication"])?;
        info.contains("role:master").then_some(())
    });
    cluster.wait_ok();
    switched.store(true, Ordering::SeqCst);
    // Writes keep landing, now on the new master.
    let before: i64 = replica.cmd(&["GET", key]);
    eventually("writes to reach the new master", || {
        (replica.cmd::<i64>(&["GET", key]) > before + 10).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let (ok, during, after) = writer.join().expect("the writer");
    assert!(ok > 20, "{ok} writes succeeded");
    // A manual failover moves the slots at once: the old master answers
    // MOVED, the proxy refreshes its map and sends the write again, so
    // errors can come only from the switch itself (a write held past
    // REDIS_TIMEOUT_MS while the old master pauses its clients).
    assert!(after.is_empty(), "errors after the switch: {after:?}");
    assert!(during.len() < 5, "errors during the switch: {during:?}");
    let old = cluster
        .nodes
        .iter()
        .find(|n| n.port() == master_port)
        .expect("the old master");
    assert!(moved(old) > 0, "the old master redirected the proxy");
    let mut through = open(proxy.resp_addr(), false);
    let counted: i64 = replica.cmd(&["GET", key]);
    assert_eq!(
        through.call_args(&["GET", key]),
        format!("${}\r\n{counted}\r\n", counted.to_string().len()).into_bytes()
    );
    assert_eq!(cluster.master_of(key).port(), replica_port);
}

#[test]
fn forwarded_writes_recover_after_a_master_crashes() {
    let (mut cluster, proxy) = start();
    let key = "{c}counter";
    let crashed = cluster.master_index(key);
    let successor = cluster.replica_of(&cluster.nodes[crashed]).port();
    let mut raw = open(proxy.resp_addr(), false);
    assert_eq!(raw.call_args(&["SET", key, "0"]), b"+OK\r\n");
    cluster.sync_replicas();
    cluster.nodes[crashed].stop();
    // Errors while the cluster notices and promotes the replica, then
    // the write goes through to the new master.
    let mut errors = 0;
    eventually("a write to succeed after the failover", || {
        let reply = raw.call_args(&["INCR", key]);
        if reply.first() == Some(&b':') {
            return Some(());
        }
        errors += 1;
        None
    });
    cluster.wait_ok();
    // From then on every write succeeds, each counted once. (One that
    // failed during the switch may still have run: a reply lost to
    // REDIS_TIMEOUT_MS.)
    let successor = cluster
        .nodes
        .iter()
        .find(|n| n.port() == successor)
        .expect("the successor");
    let mut count: i64 = successor.cmd(&["GET", key]);
    for _ in 0..20 {
        count += 1;
        assert_eq!(
            raw.call_args(&["INCR", key]),
            format!(":{count}\r\n").into_bytes()
        );
    }
    assert_eq!(successor.cmd::<i64>(&["GET", key]), count);
    assert!(errors > 0, "the crash went unnoticed");
}

#[test]
fn a_slot_migrating_is_followed_with_asking_and_then_moved() {
    let (cluster, proxy) = start();
    let source = cluster.master_of("{m}");
    let target = *cluster
        .masters()
        .iter()
        .find(|m| m.port() != source.port())
        .expect("another master");
    let slot: i64 = source.cmd(&["CLUSTER", "KEYSLOT", "{m}"]);
    let slot = slot.to_string();
    let id = |node: &RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
    let mut through = open(proxy.resp_addr(), false);
    assert_eq!(through.call_args(&["SET", "{m}a", "1"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["SET", "{m}b", "10"]), b"+OK\r\n");
    // {m}a moves to the target; {m}b stays behind for now.
    let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(source)]);
    let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(target)]);
    let port = target.port().to_string();
    let migrate = |key: &str| {
        let _: () = source.cmd(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key]);
    };
    migrate("{m}a");
    // The source answers -ASK for {m}a and for a new key: the proxy sends
    // ASKING and the command to the target, and passes on only its reply.
    assert_eq!(through.call_args(&["INCR", "{m}a"]), b":2\r\n");
    assert_eq!(through.call_args(&["SET", "{m}new", "x"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["INCR", "{m}b"]), b":11\r\n");
    let asked: String = source.cmd(&["INFO", "errorstats"]);
    assert!(asked.contains("errorstat_ASK:count="), "{asked}");
    let on_target: i64 = target.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]);
    assert_eq!(on_target, 2, "{{m}}a and {{m}}new live on the target");
    // The migration ends: the source answers -MOVED, the proxy reads the
    // new map and sends the command to the target.
    migrate("{m}b");
    for master in cluster.masters() {
        let _: () = master.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &id(target)]);
    }
    assert_eq!(through.call_args(&["INCR", "{m}b"]), b":12\r\n");
    assert_eq!(through.call_args(&["INCR", "{m}a"]), b":3\r\n");
    assert!(moved(source) > 0, "the source redirected the proxy");
    let moved_before = moved(source);
    assert_eq!(through.call_args(&["INCR", "{m}a"]), b":4\r\n");
    assert_eq!(moved(source), moved_before, "the map was refreshed");
}
