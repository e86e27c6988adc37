//! REDIS_MODE=cluster while slots move: a value read from a master no
//! invalidation link covers yet is served but never kept (coherence
//! invariant 1), and a key of a migrating slot is read with `ASKING` on
//! the node it moved to, through RESP and HTTP alike, and not kept.

use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::{eventually, Proxy};

/// A cluster and a proxy in front of it that caches only while Redis
/// announces writes (no TTL-only fallback), its links to every master up.
pub(super) fn start() -> (Cluster, Proxy) {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[
            ("REDIS_MODE", "cluster"),
            ("RESP_PORT", "auto"),
            ("INVALIDATION", "tracking"),
        ],
    );
    proxy.wait_for_link("up");
    (cluster, proxy)
}

fn bulk(value: &str) -> Vec<u8> {
    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
}

#[test]
fn a_read_from_a_master_no_link_covers_is_served_and_not_kept() {
    let (mut cluster, proxy) = start();
    let key = "fo0";
    let mut through = Wire::open_with(proxy.resp_addr(), 2);
    assert_eq!(through.call_args(&["SET", key, "old"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["GET", key]), bulk("old"));
    // A master added to the cluster, which refuses the proxy's link: no
    // link covers it for as long as the test runs (once the watcher sees
    // it, the link is down and the cache bypassed altogether; until then,
    // the links to the three first masters are up and the cache in use).
    let added = cluster.add_master();
    let new = &cluster.nodes[added];
    let _: () = new.cmd(&["ACL", "SETUSER", "default", "-client|tracking"]);
    cluster.move_slot_of(key, added);
    // The first read is redirected (-MOVED) to the new master; the second
    // goes to it straight: neither may be kept.
    let gets = new.calls("get");
    assert_eq!(through.call_args(&["GET", key]), bulk("old"));
    assert_eq!(through.call_args(&["GET", key]), bulk("old"));
    assert_eq!(
        new.calls("get"),
        gets + 2,
        "both reads reached the new master"
    );
    // A read the reply cache keeps elsewhere (STRLEN), fetched through
    // the forwarder: not kept while a master of the map has no link.
    let strlens = new.calls("strlen");
    assert_eq!(through.call_args(&["STRLEN", key]), b":3\r\n");
    assert_eq!(through.call_args(&["STRLEN", key]), b":3\r\n");
    assert_eq!(
        new.calls("strlen"),
        strlens + 2,
        "both STRLENs reached the new master"
    );
    // A write straight at the new master, which no link announces: the
    // proxy must not answer the old value.
    let _: () = new.cmd(&["SET", key, "direct"]);
    assert_eq!(through.call_args(&["GET", key]), bulk("direct"));
    assert_eq!(through.call_args(&["STRLEN", key]), b":6\r\n");
    let reply = proxy.get_key(key);
    assert_eq!((reply.status, reply.text()), (200, "direct".to_owned()));
    assert!(!reply.is_hit());
}

#[test]
fn a_key_of_a_migrating_slot_is_read_with_asking_and_not_kept() {
    let (cluster, proxy) = start();
    let key = "{ask}key";
    let source = cluster.master_of(key);
    let target = *cluster
        .masters()
        .iter()
        .find(|m| m.port() != source.port())
        .expect("another master");
    let mut through = Wire::open_with(proxy.resp_addr(), 2);
    assert_eq!(through.call_args(&["SET", key, "v1"]), b"+OK\r\n");
    let slot: i64 = source.cmd(&["CLUSTER", "KEYSLOT", key]);
    let slot = slot.to_string();
    let id = |node: &crate::common::RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
    let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(source)]);
    let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(target)]);
    let port = target.port().to_string();
    let _: () = source.cmd(&["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]);
    // The source answers -ASK: the proxy asks the target, and keeps
    // nothing (every read reaches the target).
    let gets = target.calls("get");
    assert_eq!(through.call_args(&["GET", key]), bulk("v1"));
    assert_eq!(
        through.call_args(&["MGET", key, key]),
        b"*2\r\n$2\r\nv1\r\n$2\r\nv1\r\n"
    );
    let reply = proxy.get_key(key);
    assert_eq!((reply.status, reply.text()), (200, "v1".to_owned()));
    assert!(!reply.is_hit());
    assert!(
        target.calls("get") >= gets + 3,
        "every read reached the target"
    );
    let mut direct = Wire::open_with(target.addr(), 2);
    assert_eq!(direct.call_args(&["ASKING"]), b"+OK\r\n");
    assert_eq!(direct.call_args(&["SET", key, "v2"]), b"+OK\r\n");
    eventually("the proxy to read the new value", || {
        (through.call_args(&["GET", key]) == bulk("v2")).then_some(())
    });
}
