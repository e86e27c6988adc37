//! One round of asking the sentinels which master is current, every wait
//! in it bounded by REDIS_TIMEOUT_MS.
//!
//! The redis crate's sync `SentinelClient` connects to sentinels and checks
//! `ROLE` on the master with no connect or read timeout: a sentinel or a
//! master that hangs (stopped, or a dead host whose kernel still accepts)
//! would hold a lookup forever. So each sentinel has a `SentinelClient` of
//! its own (the crate's lookup: `SENTINEL MASTERS`, the flags, `ROLE`), run
//! on a thread of its own and waited for at most REDIS_TIMEOUT_MS; one that
//! does not answer is abandoned and its sentinel skipped until its thread
//! returns, so at most one thread per sentinel is ever stuck. Before the
//! crate is asked, the sentinel and the master it names are each checked
//! on connections of our own with timeouts (`SENTINEL
//! GET-MASTER-ADDR-BY-NAME`, `ROLE`): a hung one is skipped as a killed one
//! is, and the crate's lookup does not get stuck on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use redis::sentinel::SentinelClient;
use redis::{ConnectionAddr, ConnectionInfo};

use super::connect::{client, client_for, connect};
use crate::config::Config;

/// A `host:port`.
pub(super) type HostPort = (String, u16);

/// One sentinel: where it is, and the crate's client asking only it.
pub(super) struct Sentinel {
    info: ConnectionInfo,
    client: Arc<Mutex<SentinelClient>>,
    /// Set while a lookup on `client` is out: one that did not return
    /// within the timeout is still waiting, and the sentinel is skipped.
    busy: Arc<AtomicBool>,
}

impl Sentinel {
    pub(super) fn new(info: ConnectionInfo, client: SentinelClient) -> Sentinel {
        Sentinel {
            info,
            client: Arc::new(Mutex::new(client)),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `host:port`, for messages.
    pub(super) fn name(&self) -> String {
        host_port(self.info.addr()).map_or_else(
            || self.info.addr().to_string(),
            |(host, port)| format!("{host}:{port}"),
        )
    }
}

/// What a round needs: the sentinels, the master set's name, how to reach
/// a master, and the bound on every wait.
pub(super) struct Asker {
    pub(super) sentinels: Vec<Sentinel>,
    pub(super) name: String,
    pub(super) config: Config,
    pub(super) timeout: Duration,
}

/// What one sentinel names: the master's address, and the config epoch of
/// the configuration naming it (`SENTINEL MASTER`'s `config-epoch`; `None`
/// if it did not say). Sentinel numbers each failover's configuration with
/// a higher epoch: a sentinel that missed one names an older master at an
/// older epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Named {
    pub(super) addr: HostPort,
    pub(super) epoch: Option<u64>,
}

/// A master the sentinels agree on: its address and the crate's client.
pub(super) struct Found {
    pub(super) addr: HostPort,
    pub(super) client: redis::Client,
    /// The config epoch the sentinel named it at, if it said.
    pub(super) epoch: Option<u64>,
    /// Which sentinel named it (to be asked first next round).
    pub(super) by: usize,
}

impl Asker {
    /// Asks the sentinels in turn, from `first`, until one names a master
    /// that answers as one and that `refuse` does not refuse (it says
    /// why); else why not, for each sentinel.
    pub(super) fn round(
        &self,
        first: usize,
        refuse: impl Fn(&Named) -> Option<String>,
    ) -> Result<Found, Vec<String>> {
        let count = self.sentinels.len();
        let mut why = Vec::with_capacity(count);
        for index in (0..count).map(|i| (first + i) % count) {
            match self.ask(index, &refuse) {
                Ok((named, client)) => {
                    return Ok(Found {
                        addr: named.addr,
                        client,
                        epoch: named.epoch,
                        by: index,
                    })
                }
                Err(reason) => why.push(reason),
            }
        }
        Err(why)
    }

    fn ask(
        &self,
        index: usize,
        refuse: &impl Fn(&Named) -> Option<String>,
    ) -> Result<(Named, redis::Client), String> {
        let sentinel = &self.sentinels[index];
        let who = sentinel.name();
        let named = self
            .named_by(sentinel)
            .map_err(|err| format!("sentinel {who}: {}", bounded(&err, self.timeout)))?;
        let Some(named) = named else {
            return Err(format!(
                "sentinel {who} knows no master named '{}'",
                self.name
            ));
        };
        let (host, port) = named.addr.clone();
        if let Some(why) = refuse(&named) {
            return Err(format!("sentinel {who} names {host}:{port}: {why}"));
        }
        match self.is_master(&host, port) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                "sentinel {who} names {host}:{port}, which is not a master (failover in progress?)"
            ))
            }
            Err(err) => {
                return Err(format!(
                    "master {host}:{port} named by sentinel {who}: {}",
                    bounded(&err, self.timeout)
                ))
            }
        }
        let client = self
            .crate_lookup(sentinel)
            .map_err(|why| format!("sentinel {who}: {why}"))?;
        let addr = host_port(client.get_connection_info().addr())
            .ok_or_else(|| format!("sentinel {who} named a master without host and port"))?;
        // The crate asked again: its epoch is known only if it agrees.
        let epoch = named.epoch.filter(|_| addr == named.addr);
        let named = Named { addr, epoch };
        if let Some(why) = refuse(&named) {
            let (host, port) = &named.addr;
            return Err(format!("sentinel {who} names {host}:{port}: {why}"));
        }
        Ok((named, client))
    }

    /// The master `sentinel` names for the set, with its config epoch, on a
    /// connection of our own. Both asked in one pipeline: the sentinel
    /// answers them before its timers run, so from one configuration.
    fn named_by(&self, sentinel: &Sentinel) -> redis::RedisResult<Option<Named>> {
        let client = client_for(&self.config, sentinel.info.clone())?;
        let mut conn = connect(&client, self.timeout)?;
        let (addr, master): (redis::Value, redis::Value) = redis::pipe()
            .ignore_errors()
            .cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.name)
            .cmd("SENTINEL")
            .arg("MASTER")
            .arg(&self.name)
            .query(&mut conn)?;
        let addr: Option<HostPort> = redis::from_redis_value(addr.extract_error()?)?;
        Ok(addr.map(|addr| Named {
            addr,
            epoch: config_epoch(master),
        }))
    }

    /// Whether the Redis at `host:port` answers `ROLE` as a master, within
    /// the timeout.
    pub(super) fn is_master(&self, host: &str, port: u16) -> redis::RedisResult<bool> {
        let mut url = self.config.redis_url.clone();
        let moved = url.set_host(Some(host)).is_ok() && url.set_port(Some(port)).is_ok();
        if !moved {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "not a usable master address",
            )));
        }
        let client = client(&self.config, &url, redis::ProtocolVersion::RESP2)?;
        let mut conn = connect(&client, self.timeout)?;
        let role: redis::Role = redis::cmd("ROLE").query(&mut conn)?;
        Ok(matches!(role, redis::Role::Primary { .. }))
    }

    /// The crate's lookup through `sentinel` alone, waited for at most the
    /// timeout. At most one per sentinel is out: one that hangs keeps its
    /// thread until its socket unblocks, and its sentinel is skipped.
    fn crate_lookup(&self, sentinel: &Sentinel) -> Result<redis::Client, String> {
        if sentinel.busy.swap(true, Ordering::SeqCst) {
            return Err("an earlier lookup through it has not returned (hung?)".to_owned());
        }
        let (tell, told) = mpsc::channel();
        let client = Arc::clone(&sentinel.client);
        let busy = Arc::clone(&sentinel.busy);
        let spawned = thread::Builder::new()
            .name("sentinel-lookup".to_owned())
            .spawn(move || {
                let found = client
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_client();
                busy.store(false, Ordering::SeqCst);
                let _ = tell.send(found);
            });
        if let Err(err) = spawned {
            sentinel.busy.store(false, Ordering::SeqCst);
            return Err(format!("cannot start a lookup thread: {err}"));
        }
        match told.recv_timeout(self.timeout) {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(err)) if err.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel => {
                Err(format!(
                    "names no healthy master for '{}' (failover in progress?)",
                    self.name
                ))
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "its lookup got no answer within {} ms (it or the master it names hangs)",
                self.timeout.as_millis()
            )),
        }
    }
}

/// `host` and `port` of a TCP address.
pub(super) fn host_port(addr: &ConnectionAddr) -> Option<HostPort> {
    match addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some((host.clone(), *port))
        }
        _ => None,
    }
}

/// `config-epoch` in a `SENTINEL MASTER` reply (field, value, ...); `None`
/// for an error or a reply without it.
fn config_epoch(master: redis::Value) -> Option<u64> {
    let fields: std::collections::HashMap<String, String> = redis::from_redis_value(master).ok()?;
    fields.get("config-epoch")?.parse().ok()
}

/// An error, a timeout worded as one.
fn bounded(err: &redis::RedisError, timeout: Duration) -> String {
    if err.is_timeout() {
        format!("no answer within {} ms (hung?)", timeout.as_millis())
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> redis::Value {
        redis::Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn the_config_epoch_is_read_from_a_sentinel_master_reply() {
        let fields = ["name", "mymaster", "config-epoch", "7", "flags", "master"];
        let reply = redis::Value::Array(fields.map(bulk).to_vec());
        assert_eq!(config_epoch(reply), Some(7));
        let without = redis::Value::Array(vec![bulk("name"), bulk("mymaster")]);
        assert_eq!(config_epoch(without), None);
        assert_eq!(config_epoch(redis::Value::Nil), None);
    }
}
