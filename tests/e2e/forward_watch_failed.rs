//! A WATCH that fails leaves nothing behind, as at Redis (the
//! auditor's cluster finding 3): Redis keeps no watch state after a WATCH
//! it refused, so the client must not be left holding a Redis connection
//! in watch state. In cluster mode such a connection pins every later
//! command to one master (keys of the others answered `-MOVED`, reads no
//! longer from the cache), and redis-py, which sends no UNWATCH after a
//! failed WATCH, pools that connection poisoned. A WATCH that succeeded
//! before the failed one keeps its keys watched, as at Redis; EXEC and
//! DISCARD outside MULTI answer the errors Redis gives and change nothing.

use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, InProcess, RedisServer};

use super::forward_cluster::{open, start, tag_per_master};

/// Until a `GET key` through `wire` is answered `expected` without
/// reaching `master` (from the cache).
fn served_from_cache(wire: &mut Wire, master: &RedisServer, key: &str, expected: &[u8]) {
    eventually(&format!("a GET {key} served from the cache"), || {
        let before = master.calls("get");
        assert_eq!(show(&wire.call_args(&["GET", key])), show(expected));
        (master.calls("get") == before).then_some(())
    });
}

/// A SET and a GET of a key of every master (tagged `tags`) through
/// `wire`, each answered as by that master.
fn every_master_answers(wire: &mut Wire, tags: &[String], what: &str) {
    for tag in tags {
        let key = format!("{{{tag}}}plain");
        let set = wire.call_args(&["SET", &key, "v"]);
        assert_eq!(show(&set), "+OK\\r\\n", "SET {key} after {what}");
        let get = wire.call_args(&["GET", &key]);
        assert_eq!(show(&get), "$1\\r\\nv\\r\\n", "GET {key} after {what}");
    }
}

#[test]
fn a_watch_refused_in_cluster_mode_leaves_no_connection_held() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    let (a, b) = (format!("{{{}}}wa", tags[0]), format!("{{{}}}wb", tags[1]));
    let mut direct = open(cluster.masters()[0].addr(), false);
    let mut through = open(proxy.resp_addr(), false);
    // Keys of two slots: the node's CROSSSLOT, byte for byte, and after it
    // EXEC and DISCARD answer as the node does (nothing is watched).
    for request in [vec!["WATCH", &a, &b], vec!["EXEC"], vec!["DISCARD"]] {
        let expected = direct.call_args(&request);
        assert_eq!(
            show(&through.call_args(&request)),
            show(&expected),
            "{request:?}"
        );
    }
    every_master_answers(&mut through, &tags, "a refused WATCH");
    let first = cluster.master_of(&tags[0]);
    served_from_cache(
        &mut through,
        first,
        &format!("{{{}}}plain", tags[0]),
        b"$1\r\nv\r\n",
    );
    // The same, pipelined: the requests after the WATCH go where its
    // failure says.
    let mut pipelined = open(proxy.resp_addr(), false);
    let mut wire = crate::common::resp_command(&[b"WATCH", a.as_bytes(), b.as_bytes()]);
    for tag in &tags {
        let key = format!("{{{tag}}}piped");
        wire.extend(crate::common::resp_command(&[b"SET", key.as_bytes(), b"p"]));
    }
    pipelined.send(&wire);
    let replies = pipelined.replies(1 + tags.len());
    let crossslot: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    assert_eq!(show(&replies[0]), show(crossslot));
    let shown: Vec<String> = replies.iter().map(|r| show(r)).collect();
    assert!(replies[1..].iter().all(|r| r == b"+OK\r\n"), "{shown:?}");
    // A refused WATCH after one that succeeded changes nothing: the first
    // key stays watched, as at Redis.
    let mut watcher = open(proxy.resp_addr(), false);
    let mut other = open(proxy.resp_addr(), false);
    assert_eq!(watcher.call_args(&["WATCH", &a]), b"+OK\r\n");
    let refused = watcher.call_args(&["WATCH", &a, &b]);
    assert!(refused.starts_with(b"-CROSSSLOT"), "{}", show(&refused));
    assert_eq!(other.call_args(&["SET", &a, "theirs"]), b"+OK\r\n");
    assert_eq!(watcher.call_args(&["MULTI"]), b"+OK\r\n");
    assert_eq!(watcher.call_args(&["SET", &a, "mine"]), b"+QUEUED\r\n");
    assert_eq!(watcher.call_args(&["EXEC"]), b"*-1\r\n", "the WATCH held");
    every_master_answers(&mut watcher, &tags, "EXEC");
}

#[test]
fn a_watch_a_node_answers_ask_leaves_no_connection_held() {
    let (cluster, proxy) = start();
    let tags = tag_per_master(&cluster);
    // The key's slot MIGRATING to another master, the key absent at the
    // source: the source answers a WATCH of it with -ASK.
    let key = format!("{{{}}}asked", tags[0]);
    let source = cluster.master_of(&key);
    let target = cluster
        .masters()
        .into_iter()
        .find(|m| m.port() != source.port())
        .expect("another master");
    let slot: i64 = source.cmd(&["CLUSTER", "KEYSLOT", &key]);
    let slot = slot.to_string();
    let id = |node: &RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
    let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(source)]);
    let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(target)]);
    let mut through = open(proxy.resp_addr(), false);
    let asked = through.call_args(&["WATCH", &key]);
    let expected = format!("-ASK {slot} 127.0.0.1:{}\r\n", target.port());
    assert_eq!(show(&asked), show(expected.as_bytes()));
    let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "STABLE"]);
    let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "STABLE"]);
    assert_eq!(
        show(&through.call_args(&["EXEC"])),
        "-ERR EXEC without MULTI\\r\\n"
    );
    every_master_answers(&mut through, &tags, "a WATCH answered -ASK");
    let first = cluster.master_of(&tags[0]);
    served_from_cache(
        &mut through,
        first,
        &format!("{{{}}}plain", tags[0]),
        b"$1\r\nv\r\n",
    );
}

#[test]
fn a_watch_redis_refuses_leaves_no_connection_held_in_standalone_mode() {
    let redis = RedisServer::start();
    // The proxy's user may do anything but WATCH: Redis answers -NOPERM.
    let address = redis.acl_user("nowatch", "pw", &["+@all", "-watch"]);
    let proxy = InProcess::start_at(&address, &[("RESP_PORT", "auto")]);
    proxy.wait_for_settled_link();
    let mut direct = Wire::connect(redis.addr());
    assert_eq!(direct.call_args(&["AUTH", "nowatch", "pw"]), b"+OK\r\n");
    let mut through = Wire::connect(proxy.resp_addr());
    redis.set("k", "v");
    for request in [
        vec!["WATCH", "k", "other"],
        vec!["EXEC"],
        vec!["DISCARD"],
        vec!["WATCH"],
    ] {
        let expected = direct.call_args(&request);
        assert_eq!(
            show(&through.call_args(&request)),
            show(&expected),
            "{request:?}"
        );
    }
    // Not held: reads come from the cache again.
    served_from_cache(&mut through, &redis, "k", b"$1\r\nv\r\n");
    assert_eq!(through.call_args(&["MULTI"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["SET", "k", "w"]), b"+QUEUED\r\n");
    assert_eq!(through.call_args(&["EXEC"]), b"*1\r\n+OK\r\n");
    served_from_cache(&mut through, &redis, "k", b"$1\r\nw\r\n");
}
