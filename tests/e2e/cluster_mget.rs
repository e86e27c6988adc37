//! REDIS_MODE=cluster: an MGET's misses are read a master at a time, not
//! a key at a time. Each master's share goes out in one write and comes
//! back in one read, so Redis sees a few reads per master (`INFO stats`
//! total_reads_processed), not one per key. The answers stay those of the
//! cluster's own GETs, byte for byte, and a key answered with `-ASK` or
//! `-MOVED` is read again on the node named and not kept.

use std::collections::BTreeMap;

use crate::common::cluster::Cluster;
use crate::common::info::info_number;
use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, Proxy, RedisServer};

use super::cluster_moving::start;

/// `per_master` keys named `{prefix}:{i}` on each master (each key in a
/// slot of its own, no hash tags), by the master's port.
fn keys_on_every_master(cluster: &Cluster, prefix: &str, per_master: usize) -> Vec<String> {
    let node = &cluster.nodes[0];
    let ranges: Vec<redis::Value> = node.cmd(&["CLUSTER", "SLOTS"]);
    let owner = |slot: i64| -> i64 {
        for range in &ranges {
            if let redis::Value::Array(fields) = range {
                if let (redis::Value::Int(start), redis::Value::Int(end), redis::Value::Array(m)) =
                    (&fields[0], &fields[1], &fields[2])
                {
                    if *start <= slot && slot <= *end {
                        if let Some(redis::Value::Int(port)) = m.get(1) {
                            return *port;
                        }
                    }
                }
            }
        }
        panic!("no master serves slot {slot}");
    };
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    let mut keys = Vec::new();
    for i in 0.. {
        let key = format!("{prefix}:{i}");
        let slot: i64 = node.cmd(&["CLUSTER", "KEYSLOT", &key]);
        let held = count.entry(owner(slot)).or_default();
        if *held < per_master {
            *held += 1;
            keys.push(key);
        }
        if count.len() == 3 && count.values().all(|n| *n == per_master) {
            return keys;
        }
    }
    unreachable!()
}

/// A value with bytes of every kind (CR, LF, NUL, high bytes), its length
/// varying with `i`.
fn value_of(i: usize) -> Vec<u8> {
    let mut value = format!("value {i}\r\n").into_bytes();
    value.extend((0..=255u8).cycle().skip(i).take(i * 7));
    value
}

/// The MGET reply a cluster would give for `keys`, built from the
/// cluster's own per-key GETs (a key of another type is nil, as MGET
/// answers it).
fn expected(cluster: &Cluster, keys: &[String]) -> Vec<u8> {
    let mut conn = cluster.conn();
    let mut out = format!("*{}\r\n", keys.len()).into_bytes();
    for key in keys {
        let read: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET").arg(key).query(&mut conn);
        match read {
            Ok(Some(bytes)) => {
                out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
                out.extend_from_slice(&bytes);
                out.extend_from_slice(b"\r\n");
            }
            Ok(None) => out.extend_from_slice(b"$-1\r\n"),
            Err(err) if err.code() == Some("WRONGTYPE") => out.extend_from_slice(b"$-1\r\n"),
            Err(err) => panic!("GET {key}: {err}"),
        }
    }
    out
}

fn total_reads(node: &RedisServer) -> u64 {
    let info: String = node.cmd(&["INFO", "stats"]);
    info_number(&info, "total_reads_processed")
}

fn mget(wire: &mut Wire, keys: &[String]) -> Vec<u8> {
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    wire.call_args(&args)
}

#[test]
fn an_mget_of_misses_on_every_master_reads_each_master_in_one_go() {
    let (cluster, proxy) = start();
    let mut keys = keys_on_every_master(&cluster, "many", 25);
    let mut conn = cluster.conn();
    for (i, key) in keys.iter().enumerate() {
        let mut set = redis::cmd("SET");
        set.arg(key).arg(value_of(i));
        if i % 3 == 0 {
            set.arg("EX").arg(1000);
        }
        let _: () = set.query(&mut conn).expect("SET");
    }
    let _: () = redis::cmd("RPUSH")
        .arg("many:list")
        .arg("x")
        .query(&mut conn)
        .expect("RPUSH");
    let strings = keys.clone();
    keys.insert(10, "many:list".to_owned());
    keys.insert(30, "many:absent".to_owned());
    keys.push("many:absent:too".to_owned());
    let want = expected(&cluster, &keys);
    // Connections open and the slot map read: only the reads count below.
    let mut wire = Wire::open_with(proxy.resp_addr(), 2);
    let warm = keys_on_every_master(&cluster, "warm", 2);
    assert_eq!(
        show(&mget(&mut wire, &warm)),
        show(&expected(&cluster, &warm))
    );
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    let before: Vec<u64> = masters.iter().map(|m| total_reads(m)).collect();
    assert_eq!(show(&mget(&mut wire, &keys)), show(&want));
    for (master, before) in masters.iter().zip(before) {
        // Its 25 or so keys in a read or two (plus INFO's own, and a
        // stray PING or replica's ACK: 4 in all here), not 25 or more
        // (29 when each key was read alone).
        let reads = total_reads(master) - before;
        assert!(
            reads <= 8,
            "master {} took {reads} reads for its share of the MGET",
            master.port()
        );
    }
    // Read from masters the links cover, without a redirection: kept
    // (the absent keys and the list are not, as a GET's).
    let want = expected(&cluster, &strings);
    let gets: Vec<u64> = masters.iter().map(|m| m.calls("get")).collect();
    assert_eq!(show(&mget(&mut wire, &strings)), show(&want));
    let after: Vec<u64> = masters.iter().map(|m| m.calls("get")).collect();
    assert_eq!(gets, after, "the second MGET was answered from the cache");
}

#[test]
fn an_mget_with_a_migrating_key_and_a_moved_key_reads_both_and_keeps_neither() {
    let (cluster, proxy) = start();
    let mut keys = keys_on_every_master(&cluster, "spread", 5);
    let (asked, moved) = ("{ask}key", "{moved}key");
    let mut conn = cluster.conn();
    for (i, key) in keys
        .iter()
        .chain([&asked.to_owned(), &moved.to_owned()])
        .enumerate()
    {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value_of(i))
            .query(&mut conn)
            .expect("SET");
    }
    let (asked_value, moved_value) = (value_of(keys.len()), value_of(keys.len() + 1));
    keys.insert(3, asked.to_owned());
    keys.insert(9, moved.to_owned());
    let want = expected(&cluster, &keys);
    let mut wire = Wire::open_with(proxy.resp_addr(), 2);
    // The proxy reads its slot map now, before the slots change.
    // One key a master, cached, written again
    // below once the slots moved: when the proxy reads the new values,
    // it has applied every invalidation the moves caused before them.
    let canaries = keys_on_every_master(&cluster, "canary", 1);
    for canary in &canaries {
        let _: () = redis::cmd("SET")
            .arg(canary)
            .arg("hatched")
            .query(&mut conn)
            .expect("SET");
    }
    assert_eq!(
        show(&mget(&mut wire, &canaries)),
        show(&expected(&cluster, &canaries))
    );
    // `moved`'s slot now on another master, which the proxy's map does not
    // say (-MOVED); `asked`'s slot migrating, the key already gone (-ASK).
    let mover = cluster.master_index(moved);
    let to = (0..cluster.nodes.len())
        .find(|&i| {
            i != mover
                && cluster
                    .masters()
                    .iter()
                    .any(|m| m.port() == cluster.nodes[i].port())
        })
        .expect("another master");
    cluster.move_slot_of(moved, to);
    let source = cluster.master_of(asked);
    let target = *cluster
        .masters()
        .iter()
        .find(|m| m.port() != source.port())
        .expect("another master");
    let slot: i64 = source.cmd(&["CLUSTER", "KEYSLOT", asked]);
    let slot = slot.to_string();
    let id = |node: &RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
    let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(source)]);
    let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(target)]);
    let port = target.port().to_string();
    let _: () = source.cmd(&["MIGRATE", "127.0.0.1", &port, asked, "0", "5000"]);
    for canary in &canaries {
        let _: () = redis::cmd("SET")
            .arg(canary)
            .arg("sung")
            .query(&mut conn)
            .expect("SET");
        eventually("the proxy to apply the moves' invalidations", || {
            (wire.call_args(&["GET", canary]) == bulk(b"sung")).then_some(())
        });
    }

    let new_owner = &cluster.nodes[to];
    let (asked_gets, moved_gets) = (target.calls("get"), new_owner.calls("get"));
    assert_eq!(show(&mget(&mut wire, &keys)), show(&want));
    assert!(target.calls("get") > asked_gets, "the -ASK was followed");
    assert!(
        new_owner.calls("get") > moved_gets,
        "the -MOVED was followed"
    );
    // Neither redirected answer was kept: a GET of each reaches Redis.
    let gets = target.calls("get");
    assert_eq!(
        show(&wire.call_args(&["GET", asked])),
        show(&bulk(&asked_value))
    );
    assert_eq!(
        target.calls("get"),
        gets + 1,
        "the -ASK's answer was not kept"
    );
    let gets = new_owner.calls("get");
    assert_eq!(
        show(&wire.call_args(&["GET", moved])),
        show(&bulk(&moved_value))
    );
    assert_eq!(
        new_owner.calls("get"),
        gets + 1,
        "the -MOVED's answer was not kept"
    );
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

/// An MGET whose misses span the masters is held to RESP_MAX_REPLY_BYTES
/// as a whole, each master's share under it: refused past it, answered
/// under it, and the connections with replies left unread are not used
/// again (the next MGET's answers are its own).
#[test]
fn an_mget_spanning_masters_is_held_to_resp_max_reply_bytes_as_a_whole() {
    let cluster = Cluster::start();
    let big = keys_on_every_master(&cluster, "big", 2);
    let small = keys_on_every_master(&cluster, "small", 3);
    let mut conn = cluster.conn();
    let value = |key: &str| key.repeat(600 * 1024 / key.len());
    for key in &big {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value(key))
            .query(&mut conn)
            .expect("SET");
    }
    for (i, key) in small.iter().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value_of(i))
            .query(&mut conn)
            .expect("SET");
    }
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[
            ("REDIS_MODE", "cluster"),
            ("RESP_PORT", "auto"),
            ("RESP_MAX_REPLY_BYTES", "2097152"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    proxy.wait_for_link("up");
    let mut wire = Wire::open_with(proxy.resp_addr(), 2);
    // Six values of 600 KiB, two a master: 3.6 MiB against 2 MiB.
    assert_eq!(
        show(&mget(&mut wire, &big)),
        show(b"-ERR backing Redis unavailable: reply larger than RESP_MAX_REPLY_BYTES\r\n")
    );
    for _ in 0..3 {
        assert_eq!(
            show(&mget(&mut wire, &small)),
            show(&expected(&cluster, &small))
        );
    }
    // One a master: 1.8 MiB, answered whole.
    let one = keys_on_every_master(&cluster, "big", 1);
    let reply = mget(&mut wire, &one);
    assert_eq!(reply.len(), expected(&cluster, &one).len());
    assert!(
        reply == expected(&cluster, &one),
        "the values, byte for byte"
    );
}

/// A master that cannot be reached fails the reads of its keys, so the
/// MGET fails with the proxy's error rather than answer nil for them; once
/// the cluster promotes its replica (and the map is read again), the same
/// MGET is answered whole.
#[test]
fn an_mget_with_a_master_down_fails_then_answers_after_the_failover() {
    let (mut cluster, proxy) = start();
    let keys = keys_on_every_master(&cluster, "down", 3);
    let mut conn = cluster.conn();
    for (i, key) in keys.iter().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value_of(i))
            .query(&mut conn)
            .expect("SET");
    }
    cluster.sync_replicas();
    let want = expected(&cluster, &keys);
    let mut wire = Wire::open_with(proxy.resp_addr(), 2);
    let crashed = cluster.master_index(&keys[0]);
    cluster.nodes[crashed].stop();
    let reply = mget(&mut wire, &keys);
    assert!(
        reply.starts_with(b"-ERR backing Redis unavailable"),
        "{}",
        show(&reply)
    );
    cluster.wait_ok();
    eventually("the MGET to be answered whole by the new master", || {
        (mget(&mut wire, &keys) == want).then_some(())
    });
}
