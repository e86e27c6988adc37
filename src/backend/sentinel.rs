//! Sentinel mode: the master is whichever one the sentinels name now.
//!
//! The redis crate's `SentinelClient` asks the sentinels for the master and
//! checks with `ROLE` that it is one. A watcher thread asks again every
//! second; when the master changes, the generation goes up. Pooled
//! connections carry the generation they were opened under, and one from
//! an older generation is retired instead of used: a demoted master still
//! answers GET, with data that may be old. The invalidation link follows
//! the generation too (`tracking.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo};

use super::fleet::{Fleet, Linked, Member};
use super::slots::Addr;
use super::tracking::spawn_link_to;
use super::InvalidationSink;
use crate::config::Config;

/// How often the watcher asks the sentinels which master is current.
pub(super) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The sentinels' view of the master, shared by the pool, the probe, the
/// invalidation link and the watcher.
pub struct Topology {
    client: Mutex<SentinelClient>,
    /// The current master as `host:port`, once known.
    master: Mutex<Option<(String, u16)>>,
    /// Goes up each time the master changes.
    generation: AtomicU64,
    timeout: Duration,
}

impl Topology {
    /// A sentinel client for the configured sentinels and master set, and
    /// the thread that watches them.
    pub(super) fn start(config: &Config) -> redis::RedisResult<Arc<Topology>> {
        let Some(settings) = &config.sentinel else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "sentinel mode without REDIS_SENTINEL_MASTER",
            )));
        };
        let mut sentinels = Vec::new();
        for url in &config.redis_nodes {
            let info = url.as_str().into_connection_info()?;
            sentinels.push(info.addr().clone());
        }
        let first = config.redis_url.as_str().into_connection_info()?;
        let redis = first.redis_settings();
        let mut builder =
            SentinelClientBuilder::new(sentinels, &settings.master, SentinelServerType::Master)?
                .set_client_to_redis_protocol(redis::ProtocolVersion::RESP2);
        if let Some(username) = redis.username() {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = redis.password() {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(password) = &settings.password {
            builder =
                builder.set_client_to_sentinel_password(String::from_utf8_lossy(password.expose()));
        }
        if matches!(first.addr(), ConnectionAddr::TcpTls { .. }) {
            builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
            if let Some(ca) = &config.redis_tls_ca {
                builder = builder.set_client_to_redis_certificates(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                });
            }
        }
        let topology = Arc::new(Topology {
            client: Mutex::new(builder.build()?),
            master: Mutex::new(None),
            generation: AtomicU64::new(0),
            timeout: config.redis_timeout,
        });
        let watched = Arc::clone(&topology);
        thread::Builder::new()
            .name("sentinel-watch".to_owned())
            .spawn(move || loop {
                if let Err(err) = watched.refresh() {
                    log::debug!("sentinels unreachable: {err}");
                }
                thread::sleep(WATCH_EVERY);
            })
            .map_err(|err| {
                redis::RedisError::from((redis::ErrorKind::Io, "thread", err.to_string()))
            })?;
        Ok(topology)
    }

    /// Which master pooled connections must have been opened to: a number
    /// that goes up with each change of master.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The current master, once known.
    pub fn master(&self) -> Option<(String, u16)> {
        self.master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A client for the master the sentinels name now (its role checked),
    /// noting a change of master, and the generation it belongs to.
    pub(super) fn master_client(&self) -> redis::RedisResult<(redis::Client, u64)> {
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_client()?;
        let address = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                Some((host.clone(), *port))
            }
            _ => None,
        };
        let mut master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if address.is_some() && *master != address {
            if master.is_some() {
                log::warn!(
                    "the sentinels name a new master: {:?} (was {:?}); connections to the old one are retired",
                    address,
                    *master
                );
            }
            *master = address;
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        Ok((client, self.generation()))
    }

    /// Asks the sentinels again.
    fn refresh(&self) -> redis::RedisResult<()> {
        self.master_client().map(drop)
    }

    /// A connection to the current master, bounded by REDIS_TIMEOUT_MS,
    /// with the generation it belongs to.
    pub(super) fn connect(&self) -> redis::RedisResult<(redis::Connection, u64)> {
        let (client, generation) = self.master_client()?;
        let conn = super::connect(&client, self.timeout)?;
        Ok((conn, generation))
    }
}

/// Starts the thread that keeps the invalidation link on the current
/// master: when the sentinels name another, the link is reported lost
/// (the cache dropped and bypassed) and a new one starts on the new master.
pub(super) fn spawn_link(
    config: &Config,
    topology: Arc<Topology>,
    sink: Arc<dyn InvalidationSink>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let config = config.clone();
    thread::Builder::new()
        .name("sentinel-link".to_owned())
        .spawn(move || follow(&config, &topology, sink))
}

fn follow(config: &Config, topology: &Topology, sink: Arc<dyn InvalidationSink>) {
    // Reads are checked by the topology's generation instead (a connection
    // to a master the sentinels no longer name is not used).
    let fleet = Fleet::new(sink, Arc::new(Linked::new(false)));
    loop {
        let generation = topology.generation();
        let Some((host, port)) = topology.master() else {
            thread::sleep(WATCH_EVERY);
            continue;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let master = Addr {
            host: host.clone(),
            port,
        };
        let member = Member::new(&fleet, fleet.begin(vec![master]), 0);
        let started = spawn_link_to(config, &(host.clone(), port), member, &stop);
        if let Err(err) = started {
            log::warn!("cannot start the invalidation link to {host}:{port}: {err}");
        }
        while topology.generation() == generation {
            thread::sleep(WATCH_EVERY / 4);
        }
        stop.store(true, Ordering::SeqCst);
    }
}
