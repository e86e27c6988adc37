//! Cluster mode's errors worded as Redis words them, or naming the
//! mistake: a `SCAN` cursor no master of the map can have is Redis's
//! `-ERR invalid cursor`; REDIS_MODE=cluster in front of a Redis that is
//! not in cluster mode says so, on every path, instead of the redis
//! crate's `ClusterConnectionNotFound`.

use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::{eventually, Proxy, RedisServer};

#[test]
fn a_scan_cursor_no_master_can_have_is_an_invalid_cursor_as_at_redis() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let mut direct = Wire::connect(cluster.nodes[0].addr());
    let mut through = Wire::connect(proxy.resp_addr());
    let invalid = direct.call_args(&["SCAN", "x"]);
    assert_eq!(String::from_utf8_lossy(&invalid), "-ERR invalid cursor\r\n");
    // Not a number: the node's own answer, passed on. A number whose low
    // bits name a master past the map's three (1023, 3, u64::MAX): the
    // proxy's answer, the same.
    for cursor in ["x", "1023", "3", "18446744073709551615"] {
        let reply = through.call_args(&["SCAN", cursor]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(&invalid),
            "SCAN {cursor}"
        );
    }
    // The connection goes on, and a real cursor scans.
    assert!(through.call_args(&["SCAN", "0"]).starts_with(b"*2\r\n"));
}

#[test]
fn cluster_mode_in_front_of_a_redis_not_in_cluster_mode_says_so() {
    let redis = RedisServer::start();
    let proxy = Proxy::start_at(
        &redis.url(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    let want = format!(
        "Redis at 127.0.0.1:{} is not in cluster mode (cluster_enabled:0): \
         use REDIS_MODE=standalone",
        redis.port()
    );
    // A read (the router's CLUSTER SLOTS), a forwarded command (the
    // command table, read on a pooled connection) and readiness (the
    // probe's own connection).
    let read = proxy.get_key("k");
    assert_eq!(read.status, 503, "{}", read.text());
    assert!(read.text().contains(&want), "{}", read.text());
    let mut through = Wire::connect(proxy.resp_addr());
    let set = String::from_utf8_lossy(&through.call_args(&["SET", "k", "v"])).into_owned();
    assert!(set.starts_with("-ERR ") && set.contains(&want), "{set}");
    let get = String::from_utf8_lossy(&through.call_args(&["GET", "k"])).into_owned();
    assert!(get.starts_with("-ERR ") && get.contains(&want), "{get}");
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains(&want), "{}", ready.text());
    // And the log says it from the start, requests or not.
    eventually("the watcher's warning", || {
        proxy
            .warnings()
            .iter()
            .any(|w| w.contains(&want))
            .then_some(())
    });
}
