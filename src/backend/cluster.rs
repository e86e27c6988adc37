//! Invalidation in cluster mode: one link per master, and a watcher that
//! relinks when the set of masters changes.
//!
//! Each master announces the writes made on it, so a link to every master
//! hears every write in the cluster (a key migrated between masters is
//! deleted on one and restored on the other, both announced). The sync
//! cluster connection carries no pushes, so each link is a plain
//! connection, as in standalone mode. The watcher asks a seed node for
//! `CLUSTER SLOTS` every second; when the masters differ (a failover, a
//! master added or removed), it reports the link lost (the cache is dropped
//! and bypassed), stops the old links and starts new ones. The service sees
//! the link up only while every master's link is; between a change and the
//! watcher seeing it, reads reach masters it has no link to, and are not
//! stored ([`Linked`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use redis::Value;

use super::fleet::{Fleet, Linked, Member};
use super::slots::{Addr, SlotMap};
use super::tracking::spawn_link_to;
use super::{Backend, BackendError, InvalidationSink};
use crate::config::Config;

/// How often the watcher compares the cluster's masters with its links.
const TOPOLOGY_EVERY: Duration = Duration::from_secs(1);

/// A master, as `host:port`.
type Master = (String, u16);

/// What a node not in cluster mode (`cluster_enabled:0`) answers
/// `CLUSTER SLOTS`: `-ERR This instance has cluster support disabled`.
const DISABLED: &[u8] = b"cluster support disabled";

/// Whether `reply` (a node's, whole) says the node is not in cluster mode.
pub(super) fn disabled(reply: &[u8]) -> bool {
    reply.starts_with(b"-") && reply.windows(DISABLED.len()).any(|w| w == DISABLED)
}

/// The error for REDIS_MODE=cluster in front of a Redis at `addr` that is
/// not a cluster node: the redis crate says only that it found no node
/// (`ClusterConnectionNotFound`), which names neither cause nor fix.
pub(super) fn not_in_cluster_mode(addr: &dyn std::fmt::Display) -> String {
    format!("Redis at {addr} is not in cluster mode (cluster_enabled:0): use REDIS_MODE=standalone")
}

impl Backend {
    /// `err`, which the redis crate's cluster connection (the pool's, the
    /// probe's) failed with, in plainer words where they can be had: when
    /// it found no node to use (`ClusterConnectionNotFound`), the router's
    /// own reading of the map says why (a node that refused, or is not in
    /// cluster mode). A failure path only: the map is read again only if
    /// it was marked stale or never read.
    pub(super) fn in_cluster_terms(
        &self,
        err: BackendError,
        kind: redis::ErrorKind,
    ) -> BackendError {
        match (&self.router, kind) {
            (Some(router), redis::ErrorKind::ClusterConnectionNotFound) => match router.map(self) {
                Err(why) => why,
                Ok(_) => err,
            },
            _ => err,
        }
    }
}

/// Starts the watcher, which starts the links and keeps `linked` saying
/// which masters they cover.
pub(super) fn spawn_links(
    config: &Config,
    sink: Arc<dyn InvalidationSink>,
    linked: Arc<Linked>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let config = config.clone();
    thread::Builder::new()
        .name("cluster-watch".to_owned())
        .spawn(move || watch(&config, sink, linked))
}

/// Keeps one link per master, for as long as the process runs.
fn watch(config: &Config, sink: Arc<dyn InvalidationSink>, linked: Arc<Linked>) {
    let fleet = Fleet::new(sink, linked);
    let mut seed = None;
    let mut warned = false;
    loop {
        let masters = match masters(config, &mut seed) {
            Ok(masters) => masters,
            // Said once at start-up, not only on each request that fails.
            Err(why)
                if why.contains("cluster_enabled:0") && !std::mem::replace(&mut warned, true) =>
            {
                log::warn!("{why}");
                thread::sleep(TOPOLOGY_EVERY);
                continue;
            }
            Err(why) => {
                log::debug!("cluster topology unknown: {why}");
                thread::sleep(TOPOLOGY_EVERY);
                continue;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let generation = fleet.begin(
            masters
                .iter()
                .map(|(host, port)| Addr {
                    host: host.clone(),
                    port: *port,
                })
                .collect(),
        );
        log::info!(
            "cluster masters: {}; one invalidation link each",
            masters
                .iter()
                .map(|(host, port)| format!("{host}:{port}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (index, master) in masters.iter().enumerate() {
            let member = Member::new(&fleet, generation, index);
            if let Err(err) = spawn_link_to(config, master, member, &stop) {
                log::warn!("cannot start the invalidation link to {master:?}: {err}");
            }
        }
        loop {
            thread::sleep(TOPOLOGY_EVERY);
            match self::masters(config, &mut seed) {
                Ok(now) if now != masters => {
                    log::info!("cluster masters changed: relinking");
                    break;
                }
                Ok(_) => {}
                Err(why) => log::debug!("cluster topology unknown: {why}"),
            }
        }
        stop.store(true, Ordering::SeqCst);
    }
}

/// The masters, from `CLUSTER SLOTS` on the connection kept in `seed`, or
/// on the first seed node that answers (kept for the next time): one
/// connection per proxy, not one a second.
fn masters(config: &Config, seed: &mut Option<redis::Connection>) -> Result<Vec<Master>, String> {
    let slots =
        |conn: &mut redis::Connection| redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(conn);
    if let Some(conn) = seed {
        match slots(conn) {
            Ok(answer) => return masters_of(&answer),
            Err(err) => log::debug!("cluster seed connection failed: {err}"),
        }
        *seed = None;
    }
    let mut last = "no seed nodes".to_owned();
    for node in &config.redis_nodes {
        let answer = super::client(config, node, redis::ProtocolVersion::RESP2)
            .and_then(|client| super::connect(&client, config.redis_timeout))
            .and_then(|mut conn| slots(&mut conn).map(|answer| (conn, answer)));
        match answer {
            Ok((conn, answer)) => {
                *seed = Some(conn);
                return masters_of(&answer);
            }
            Err(err) if err.to_string().contains("cluster support disabled") => {
                let addr = format!(
                    "{}:{}",
                    node.host_str().unwrap_or_default(),
                    node.port_or_known_default().unwrap_or_default()
                );
                last = not_in_cluster_mode(&addr);
            }
            Err(err) => last = format!("{node}: {err}"),
        }
    }
    Err(last)
}

/// The masters of a `CLUSTER SLOTS` reply (see `slots.rs`), sorted.
fn masters_of(slots: &Value) -> Result<Vec<Master>, String> {
    let map = SlotMap::parse(slots)?;
    Ok(map
        .masters()
        .iter()
        .map(|addr| (addr.host.clone(), addr.port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::slots::tests::node;
    use super::*;

    #[test]
    fn masters_are_the_first_node_of_each_range() {
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                node("10.0.0.1", 7000),
            ]),
        ]);
        assert_eq!(
            masters_of(&slots),
            Ok(vec![
                ("10.0.0.1".to_owned(), 7000),
                ("10.0.0.2".to_owned(), 7001)
            ])
        );
        assert!(masters_of(&Value::Array(vec![])).is_err());
    }
}
