//! REDIS_MODE=cluster: reads of keys on every master, invalidation from
//! every master, and no wrong value through a failover or a resharding.

use std::process::Command;
use std::thread;

use crate::common::cluster::Cluster;
use crate::common::{eventually, readers, Proxy};

const KEYS: usize = 60;

fn key(i: usize) -> String {
    format!("key:{i}")
}

/// A cluster holding `KEYS` keys valued `value(i)`, and a proxy in front of
/// it with its links to every master up.
fn start(value: impl Fn(usize) -> String) -> (Cluster, Proxy) {
    start_with(value, &[])
}

/// [`start`], with more settings for the proxy.
fn start_with(value: impl Fn(usize) -> String, env: &[(&str, &str)]) -> (Cluster, Proxy) {
    let cluster = Cluster::start();
    write_all(&cluster, value);
    cluster.sync_replicas();
    let mut vars = vec![("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")];
    vars.extend_from_slice(env);
    let proxy = Proxy::start_at(&cluster.seeds(), &vars);
    proxy.wait_for_link("up");
    (cluster, proxy)
}

/// Writes `value(i)` under every key, through the cluster.
fn write_all(cluster: &Cluster, value: impl Fn(usize) -> String) {
    let mut conn = cluster.conn();
    for i in 0..KEYS {
        let _: () = redis::cmd("SET")
            .arg(key(i))
            .arg(value(i))
            .query(&mut conn)
            .expect("SET");
    }
}

/// Until every key reads `value(i)` through the proxy.
fn wait_until_all_read(proxy: &Proxy, value: impl Fn(usize) -> String) {
    for i in 0..KEYS {
        eventually(&format!("{} to read its new value", key(i)), || {
            let reply = proxy.get_key(key(i));
            (reply.status == 200 && reply.body == value(i).as_bytes()).then_some(())
        });
    }
}

fn old(i: usize) -> String {
    format!("v{i}")
}

fn new(i: usize) -> String {
    format!("w{i}")
}

#[test]
fn keys_on_every_master_read_through_and_writes_on_every_master_invalidate() {
    let (cluster, proxy) = start(old);
    for i in 0..KEYS {
        let reply = proxy.get_key(key(i));
        assert_eq!((reply.status, reply.text()), (200, old(i)), "{}", key(i));
    }
    // Every master served some of them, and each is cached now.
    for master in cluster.masters() {
        assert!(
            master.calls("get") > 0,
            "master {} served no GET",
            master.port()
        );
    }
    assert!(proxy.get_key(key(0)).is_hit());
    // MGET across slots on the RESP port, from the cache.
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP");
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let values: Vec<String> = redis::cmd("MGET")
        .arg(&keys)
        .query(&mut conn)
        .expect("MGET");
    assert_eq!(values, (0..KEYS).map(old).collect::<Vec<_>>());
    // A write on any master reaches the cache.
    write_all(&cluster, new);
    wait_until_all_read(&proxy, new);
    assert!(proxy.metric("redis_proxy_invalidations_total") >= KEYS as f64);
    assert_eq!(proxy.get("/readyz").status, 200);
}

#[test]
fn a_failover_under_readers_serves_no_wrong_value_and_writes_after_it_invalidate() {
    let (cluster, proxy) = start(old);
    wait_until_all_read(&proxy, old);
    let running = readers::spawn(proxy.addr, KEYS, key, |i, body| body == old(i).as_bytes());
    let master = cluster.master_of(&key(0));
    let replica = cluster.replica_of(master);
    let _: () = replica.cmd(&["CLUSTER", "FAILOVER"]);
    eventually("the replica to take over", || {
        let info: String = replica.try_cmd(&["INFO", "replication"])?;
        info.contains("role:master").then_some(())
    });
    cluster.wait_ok();
    // The proxy relinks to the new master (until then it bypasses).
    eventually("the proxy to link to the new master", || {
        (proxy.link_state() == "up" && proxy.log().contains("cluster masters changed"))
            .then_some(())
    });
    running.finish();
    wait_until_all_read(&proxy, old);
    // Cached again (the watcher may relink once more as the demoted master
    // turns replica, which drops the cache: a miss, never a wrong value),
    // then written on the new master: the new value is read.
    eventually("key 0 to be cached again", || {
        proxy.get_key(key(0)).is_hit().then_some(())
    });
    write_all(&cluster, new);
    wait_until_all_read(&proxy, new);
}

#[test]
fn slots_migrated_under_readers_serve_no_wrong_value() {
    let (cluster, proxy) = start(old);
    wait_until_all_read(&proxy, old);
    let running = readers::spawn(proxy.addr, KEYS, key, |i, body| body == old(i).as_bytes());
    let masters = cluster.masters();
    let id = |node: &crate::common::RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
    let out = Command::new("redis-cli")
        .args([
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", masters[0].port()),
        ])
        .args([
            "--cluster-from",
            &id(masters[0]),
            "--cluster-to",
            &id(masters[1]),
        ])
        .args(["--cluster-slots", "2000", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.wait_ok();
    running.finish();
    // The moved keys are read from their new master, and its writes invalidate.
    wait_until_all_read(&proxy, old);
    write_all(&cluster, new);
    wait_until_all_read(&proxy, new);
}

#[test]
fn a_crashed_master_is_replaced_and_the_proxy_links_to_its_successor() {
    let (mut cluster, proxy) = start(old);
    wait_until_all_read(&proxy, old);
    let running = readers::spawn(proxy.addr, KEYS, key, |i, body| body == old(i).as_bytes());
    let crashed = cluster.master_index(&key(0));
    cluster.nodes[crashed].stop();
    // Its link is lost at once: the cache is dropped and bypassed ...
    eventually("the proxy to notice", || {
        (proxy.link_state() != "up").then_some(())
    });
    // ... until the cluster promotes the replica and the proxy links to it:
    // a link to the dead address alone would never come back.
    cluster.wait_ok();
    eventually("the proxy to link to the new master", || {
        (proxy.link_state() == "up").then_some(())
    });
    running.finish();
    wait_until_all_read(&proxy, old);
    assert!(proxy.get_key(key(0)).is_hit(), "cached again");
    write_all(&cluster, new);
    wait_until_all_read(&proxy, new);
}

#[test]
fn concurrent_misses_for_a_key_on_any_master_coalesce_into_one_get() {
    // Reads wait as long as the test holds the master.
    let (cluster, proxy) = start_with(old, &[("REDIS_TIMEOUT_MS", "60000")]);
    // One key on each master.
    let mut seen = Vec::new();
    let keys: Vec<usize> = (0..KEYS)
        .filter(|i| {
            let master = cluster.master_index(&key(*i));
            let first = !seen.contains(&master);
            seen.push(master);
            first
        })
        .collect();
    assert_eq!(keys.len(), 3);
    for i in keys {
        let master = cluster.master_of(&key(i));
        let before = master.calls("get");
        // The master holds every command for 5 s (nothing, not even CLIENT
        // UNPAUSE, ends a pause early) while 8 readers miss on the key (half
        // the HTTP workers: the others answer /metrics).
        let _: () = master.cmd(&["CLIENT", "PAUSE", "5000", "ALL"]);
        let coalesced = proxy.metric("redis_proxy_coalesced_total");
        let addr = proxy.addr;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let path = format!("/proxy?key={}", key(i));
                thread::spawn(move || crate::common::http::request(addr, "GET", &path, &[]))
            })
            .collect();
        eventually("7 readers to wait on the first one's GET", || {
            (proxy.metric("redis_proxy_coalesced_total") - coalesced == 7.0).then_some(())
        });
        for reader in waiting {
            let reply = reader.join().expect("reader");
            assert_eq!((reply.status, reply.text()), (200, old(i)));
        }
        assert_eq!(master.calls("get") - before, 1, "{} read once", key(i));
    }
}

#[test]
fn a_cluster_that_is_down_answers_503_and_is_not_ready() {
    let (mut cluster, proxy) = start(old);
    assert_eq!(proxy.get("/readyz").status, 200);
    // A master and its replica gone: their slots have no one to serve them.
    let master = cluster.master_index(&key(0));
    let healthy = (1..KEYS)
        .find(|i| cluster.master_index(&key(*i)) != master)
        .expect("a key on another master");
    let replica_port = cluster.replica_of(&cluster.nodes[master]).port();
    let replica = cluster
        .nodes
        .iter()
        .position(|node| node.port() == replica_port)
        .expect("the replica is a node");
    cluster.nodes[master].stop();
    cluster.nodes[replica].stop();
    eventually("the cluster to say it is down", || {
        let node = cluster.nodes.iter().find(|node| node.is_running())?;
        let info: String = node.try_cmd(&["CLUSTER", "INFO"])?;
        info.contains("cluster_state:fail").then_some(())
    });
    // A key on a master still running: that master answers CLUSTERDOWN.
    let reply = proxy.get_key(key(healthy));
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply.text().to_lowercase().contains("clusterdown"),
        "{}",
        reply.text()
    );
    eventually("/readyz to say not ready", || {
        (proxy.get("/readyz").status == 503).then_some(())
    });
}
