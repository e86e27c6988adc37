//! The proxy is one standalone Redis in every mode (the auditor's cluster
//! finding 7): in cluster mode `CLUSTER SLOTS`, `NODES`, `SHARDS` and the
//! rest were forwarded to a node, so a cluster-aware client given the
//! proxy's address learnt the nodes' addresses and used them directly,
//! bypassing the proxy. Each cluster command, and READONLY, READWRITE and
//! ASKING, is now answered byte for byte as a Redis not in cluster mode
//! answers it, and redis-py's `RedisCluster` fails at start.

use crate::common::resp_wire::{show, Wire};
use crate::common::{run_ok, InProcess, RedisServer};

use super::forward_cluster::{open, start};

/// Every `CLUSTER` subcommand a client may send to learn the topology, the
/// others' shapes (arity errors, unknown subcommands, one the proxy
/// refuses elsewhere), and READONLY, READWRITE, ASKING.
const REQUESTS: &[&[&str]] = &[
    &["CLUSTER", "SLOTS"],
    &["CLUSTER", "NODES"],
    &["CLUSTER", "SHARDS"],
    &["CLUSTER", "INFO"],
    &["CLUSTER", "MYID"],
    &["CLUSTER", "MYSHARDID"],
    &["CLUSTER", "LINKS"],
    &["cluster", "slots"],
    &["CLUSTER", "KEYSLOT", "a"],
    &["CLUSTER", "KEYSLOT"],
    &["CLUSTER", "COUNTKEYSINSLOT", "1"],
    &["CLUSTER", "GETKEYSINSLOT", "1", "1"],
    &["CLUSTER", "HELP"],
    &["CLUSTER"],
    &["CLUSTER", "NOSUCH"],
    &["CLUSTER", "FAILOVER"],
    &["CLUSTER", "REPLICAS", "x"],
    &["READONLY"],
    &["READWRITE"],
    &["ASKING"],
    &["READONLY", "x"],
];

/// Sends every request of `requests` to `standalone` and `through`, and
/// asserts the same reply bytes.
fn same_as_standalone(standalone: &mut Wire, through: &mut Wire, requests: &[&[&str]], what: &str) {
    for request in requests {
        let expected = standalone.call_args(request);
        assert!(
            expected.starts_with(b"-"),
            "{request:?}: {}",
            show(&expected)
        );
        assert_eq!(
            show(&through.call_args(request)),
            show(&expected),
            "{request:?} ({what})"
        );
    }
}

#[test]
fn in_cluster_mode_the_cluster_commands_answer_as_a_standalone_redis() {
    let (cluster, proxy) = start();
    let standalone = RedisServer::start();
    for resp3 in [false, true] {
        let mut direct = open(standalone.addr(), resp3);
        let mut through = open(proxy.resp_addr(), resp3);
        let what = format!("cluster mode, resp3 {resp3}");
        same_as_standalone(&mut direct, &mut through, REQUESTS, &what);
        // The connection goes on.
        assert_eq!(through.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
    }
    // A cluster-aware client fails at start instead of going round the
    // proxy to the nodes.
    let script = format!(
        r#"import redis
from redis.cluster import RedisCluster
try:
    c = RedisCluster(host='127.0.0.1', port={})
    print('connected', sorted(n.port for n in c.get_nodes()))
except Exception as err:
    print('refused', type(err).__name__, err)
"#,
        proxy.resp_addr().port()
    );
    let out = run_ok("python3", &["-c", &script], &[]);
    assert!(
        out.starts_with("refused ") && out.contains("luster"),
        "redis-py RedisCluster: {out}"
    );
    assert!(
        !cluster
            .nodes
            .iter()
            .any(|n| out.contains(&n.port().to_string())),
        "{out}"
    );
}

#[test]
fn in_standalone_mode_readonly_readwrite_and_asking_answer_as_redis() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut direct = Wire::connect(redis.addr());
    let mut through = Wire::connect(proxy.resp_addr());
    let requests: Vec<&[&str]> = REQUESTS
        .iter()
        .copied()
        // Refused in other modes for changing the cluster's shape, with the
        // proxy's own words (docs/forwarding.md, "Refused").
        .filter(|request| request.get(1) != Some(&"FAILOVER"))
        .collect();
    same_as_standalone(&mut direct, &mut through, &requests, "standalone mode");
}
