//! A throwaway Redis Cluster: three masters and three replicas, made with
//! `redis-cli --cluster create` from plain redis-servers.

use std::net::TcpListener;
use std::process::Command;

use super::redis_server::RedisServer;
use super::{eventually, hand_out_port, TempDir};

/// The cluster's nodes (killed on drop) and their config files.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

/// A port for a cluster node whose bus port (+10000) is free too. Both
/// stay below the range `free_port` hands out (20000+) and Linux's
/// ephemeral range (32768+): nodes from 4000, buses from 14000.
fn node_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    hand_out_port(&NEXT, 4_000, 6_000, |port| {
        TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
    })
}

impl Cluster {
    /// Starts six nodes, joins them into a cluster (one replica per master)
    /// and waits until every node says `cluster_state:ok` and every replica
    /// is in sync.
    pub fn start() -> Cluster {
        let dir = TempDir::new("cluster");
        let nodes: Vec<RedisServer> = (0..6).map(|_| cluster_node(&dir)).collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { nodes, _dir: dir };
        cluster.wait_ok();
        cluster
    }

    /// Starts one more node and joins it (`CLUSTER MEET`) as a master that
    /// owns no slot yet; waits until it and every node know each other.
    /// Returns its index in `nodes`.
    #[allow(dead_code)] // Not every test binary grows a cluster.
    pub fn add_master(&mut self) -> usize {
        let node = cluster_node(&self._dir);
        let seed = self.nodes[0].port().to_string();
        let _: () = node.cmd(&["CLUSTER", "MEET", "127.0.0.1", &seed]);
        let id: String = node.cmd(&["CLUSTER", "MYID"]);
        self.nodes.push(node);
        let running = self.nodes.iter().filter(|node| node.is_running()).count();
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            eventually("every node to know every other", || {
                let nodes: String = node.try_cmd(&["CLUSTER", "NODES"])?;
                let known = nodes.lines().filter(|l| !l.contains("handshake")).count();
                (nodes.contains(&id) && known == running).then_some(())
            });
        }
        self.wait_ok();
        self.nodes.len() - 1
    }

    /// Moves the slot of `key` (and the keys in it) from its master to
    /// `nodes[to]`, as `redis-cli --cluster reshard` does: IMPORTING,
    /// MIGRATING, MIGRATE, then SETSLOT NODE on the target, the source and
    /// every other master.
    #[allow(dead_code)] // Not every test binary reshards.
    pub fn move_slot_of(&self, key: &str, to: usize) {
        let source = self.master_of(key);
        let target = &self.nodes[to];
        let slot: i64 = source.cmd(&["CLUSTER", "KEYSLOT", key]);
        let slot = slot.to_string();
        let id = |node: &RedisServer| -> String { node.cmd(&["CLUSTER", "MYID"]) };
        let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id(source)]);
        let _: () = source.cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id(target)]);
        let keys: Vec<String> = source.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
        let port = target.port().to_string();
        for key in &keys {
            let _: () = source.cmd(&["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]);
        }
        let owner = id(target);
        let _: () = target.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &owner]);
        for master in self.masters() {
            if master.port() != target.port() {
                let _: () = master.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &owner]);
            }
        }
    }

    /// Until every node says `cluster_state:ok` and every replica's link
    /// to its master is up.
    pub fn wait_ok(&self) {
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            eventually("the cluster to be ok on every node", || {
                let info: String = node.try_cmd(&["CLUSTER", "INFO"])?;
                info.contains("cluster_state:ok").then_some(())
            });
            eventually("every replica to be in sync", || {
                let info: String = node.try_cmd(&["INFO", "replication"])?;
                (info.contains("role:master") || info.contains("master_link_status:up"))
                    .then_some(())
            });
        }
    }

    /// Until every master's replica has every write so far (`WAIT`):
    /// replication is asynchronous, and a replica promoted before it caught
    /// up would rightly lack the newest keys.
    pub fn sync_replicas(&self) {
        for master in self.masters() {
            let acked: i64 = master.cmd(&["WAIT", "1", "10000"]);
            assert_eq!(acked, 1, "master {}'s replica caught up", master.port());
        }
    }

    /// `127.0.0.1:P1,127.0.0.1:P2`: two seed nodes, as REDIS_ADDRESS.
    pub fn seeds(&self) -> String {
        format!(
            "127.0.0.1:{},127.0.0.1:{}",
            self.nodes[0].port(),
            self.nodes[1].port()
        )
    }

    /// A cluster connection, to write as an application would.
    pub fn conn(&self) -> redis::cluster::ClusterConnection {
        let running = self.nodes.iter().filter(|node| node.is_running());
        redis::cluster::ClusterClient::new(running.map(|node| node.url()).collect::<Vec<_>>())
            .and_then(|client| client.get_connection())
            .expect("a cluster connection")
    }

    /// The node that now serves `key` as master.
    pub fn master_of(&self, key: &str) -> &RedisServer {
        &self.nodes[self.master_index(key)]
    }

    /// Where in `nodes` the master of `key` is.
    pub fn master_index(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| {
                let role: String = node.cmd(&["INFO", "replication"]);
                if !role.contains("role:master") {
                    return false;
                }
                let slot: i64 = node.cmd(&["CLUSTER", "KEYSLOT", key]);
                let owner: Vec<redis::Value> = node.cmd(&["CLUSTER", "SLOTS"]);
                owner.iter().any(|range| match range {
                    redis::Value::Array(fields) => match (&fields[0], &fields[1], &fields[2]) {
                        (
                            redis::Value::Int(start),
                            redis::Value::Int(end),
                            redis::Value::Array(m),
                        ) => {
                            *start <= slot
                                && slot <= *end
                                && m.get(1) == Some(&redis::Value::Int(i64::from(node.port())))
                        }
                        _ => false,
                    },
                    _ => false,
                })
            })
            .expect("a master serves the key")
    }

    /// The masters, by role.
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .filter(|node| {
                let role: String = node.cmd(&["INFO", "replication"]);
                role.contains("role:master")
            })
            .collect()
    }

    /// A replica of `master`.
    pub fn replica_of(&self, master: &RedisServer) -> &RedisServer {
        let needle = format!("master_port:{}", master.port());
        self.nodes
            .iter()
            .find(|node| {
                let info: String = node.cmd(&["INFO", "replication"]);
                info.contains(&needle)
            })
            .expect("the master has a replica")
    }
}

/// A redis-server with cluster support on a free port, its node file in
/// `dir`, not yet part of any cluster.
fn cluster_node(dir: &TempDir) -> RedisServer {
    let port = node_port();
    let conf = dir.path().join(format!("nodes-{port}.conf"));
    RedisServer::start_on(
        port,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &conf.to_string_lossy(),
            "--cluster-node-timeout",
            "2000",
        ],
    )
}
