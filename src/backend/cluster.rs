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
use super::InvalidationSink;
use crate::config::Config;

/// How often the watcher compares the cluster's masters with its links.
const TOPOLOGY_EVERY: Duration = Duration::from_secs(1);

/// A master, as `host:port`.
type Master = (String, u16);

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
    loop {
        let masters = match masters(config, &mut seed) {
            Ok(masters) => masters,
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
