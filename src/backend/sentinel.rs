//! Sentinel mode: the master is whichever one the sentinels name now.
//!
//! The redis crate's `SentinelClient` asks the sentinels for the master and
//! checks with `ROLE` that it is one; a watcher thread asks again every
//! second (see `sentinel_ask.rs` for how each wait is bounded). When the
//! master changes, the generation goes up. Everyone else uses the master
//! last found, without network I/O under a lock: pooled connections carry
//! the generation they were opened under, and one from an older generation
//! is retired instead of used (a demoted master still answers GET, with
//! data that may be old). The invalidation link follows the generation too
//! (`tracking.rs`).

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo};

use super::fleet::{Fleet, Linked, Member};
use super::sentinel_ask::{Asker, HostPort, Named, Sentinel};
use super::slots::Addr;
use super::tracking::spawn_link_to;
use super::InvalidationSink;
use crate::config::Config;
use crate::log_limit::LogLimiter;

/// How often the watcher asks the sentinels which master is current.
pub(super) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a master left at a failover is not gone back to while the
/// current one still answers as master (see `Topology::refused`).
const LEFT_FOR: Duration = Duration::from_secs(60);

/// The master last found, with the crate's client for it.
struct Known {
    addr: HostPort,
    client: redis::Client,
}

/// The sentinels' view of the master, shared by the pool, the probe, the
/// invalidation link and the watcher.
pub struct Topology {
    asker: Asker,
    /// The current master, once known; `found` is signalled when it is set.
    master: Mutex<Option<Known>>,
    found: Condvar,
    /// Why the last round found no master, for errors while none is known.
    why_not: Mutex<String>,
    /// Whether the last round found none (see `explain`).
    lost: AtomicBool,
    /// The sentinel that answered last: asked first next round.
    preferred: AtomicUsize,
    /// Goes up each time the master changes.
    generation: AtomicU64,
    timeout: Duration,
    /// Masters left at a failover, and when (see `refused`).
    left: Mutex<Vec<(HostPort, Instant)>>,
    /// The highest config epoch a sentinel named the current master at.
    epoch: Mutex<Option<u64>>,
    /// "Not followed": one line per interval, not one per sentinel asked.
    refusals: LogLimiter,
    /// Blocking commands' and subscriptions' connections, shut down when
    /// the master changes (see `Backend::watch_master`).
    lanes: Mutex<Lanes>,
}

/// Connections to shut when the master changes, by key.
#[derive(Default)]
struct Lanes {
    next: u64,
    open: Vec<(u64, TcpStream)>,
}

impl Topology {
    /// A sentinel client for each configured sentinel and the master set,
    /// and the thread that watches them.
    pub(super) fn start(config: &Config) -> redis::RedisResult<Arc<Topology>> {
        let Some(settings) = &config.sentinel else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "sentinel mode without REDIS_SENTINEL_MASTER",
            )));
        };
        let mut sentinels = Vec::new();
        for url in &config.redis_nodes {
            let mut info = url.as_str().into_connection_info()?;
            let client = sentinel_client(config, &settings.master, info.addr().clone())?;
            // Our own checks reach the sentinel as the crate does.
            let mut auth = redis::RedisConnectionInfo::default();
            if let Some(password) = &settings.password {
                auth = auth.set_password(String::from_utf8_lossy(password.expose()));
            }
            info = info.set_redis_settings(auth);
            sentinels.push(Sentinel::new(info, client));
        }
        let topology = Arc::new(Topology {
            asker: Asker {
                sentinels,
                name: settings.master.clone(),
                config: config.clone(),
                timeout: config.redis_timeout,
            },
            master: Mutex::new(None),
            found: Condvar::new(),
            why_not: Mutex::new("the sentinels have not been asked yet".to_owned()),
            lost: AtomicBool::new(false),
            preferred: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            timeout: config.redis_timeout,
            lanes: Mutex::new(Lanes::default()),
            left: Mutex::new(Vec::new()),
            epoch: Mutex::new(None),
            refusals: LogLimiter::new(Duration::from_secs(10)),
        });
        let watched = Arc::clone(&topology);
        thread::Builder::new()
            .name("sentinel-watch".to_owned())
            .spawn(move || loop {
                watched.refresh();
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
        self.known().as_ref().map(|known| known.addr.clone())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        self.master.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client for the master last found, and the generation it belongs
    /// to. No network I/O: while none is known yet, waits at most
    /// REDIS_TIMEOUT_MS for the watcher to find one, then says why not.
    pub(super) fn master_client(&self) -> redis::RedisResult<(redis::Client, u64)> {
        let known = self.known();
        let (known, _) = self
            .found
            .wait_timeout_while(known, self.timeout, |known| known.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        match &*known {
            Some(known) => Ok((known.client.clone(), self.generation())),
            None => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!(
                    "no master known yet for '{}' (failover in progress?): {}",
                    self.asker.name,
                    self.why_not.lock().unwrap_or_else(PoisonError::into_inner)
                ),
            ))),
        }
    }

    /// Asks the sentinels again (the watcher): every wait bounded, nothing
    /// locked meanwhile. A round that finds no master keeps the last one.
    fn refresh(&self) {
        let first = self.preferred.load(Ordering::Relaxed);
        let current = self.master();
        let refuse = |named: &Named| self.refused(current.as_ref(), named);
        let found = match self.asker.round(first, refuse) {
            Ok(found) => found,
            Err(why) => {
                let why = why.join("; ");
                log::debug!("no master found this round: {why}");
                *self.why_not.lock().unwrap_or_else(PoisonError::into_inner) = why;
                self.lost.store(true, Ordering::SeqCst);
                return;
            }
        };
        self.lost.store(false, Ordering::SeqCst);
        self.preferred.store(found.by, Ordering::Relaxed);
        let mut known = self.known();
        let old = known.as_ref().map(|known| known.addr.clone());
        let mut epoch = self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        if old.as_ref() == Some(&found.addr) {
            *epoch = (*epoch).max(found.epoch);
            return;
        }
        *epoch = found.epoch;
        drop(epoch);
        if let Some(old) = &old {
            let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
            left.retain(|(addr, since)| *addr != found.addr && since.elapsed() < LEFT_FOR);
            left.push((old.clone(), Instant::now()));
            drop(left);
            log::warn!(
                "the sentinels name a new master: {:?} (was {:?}; config epoch {}); connections to the old one are retired",
                found.addr,
                old,
                shown(found.epoch)
            );
        }
        *known = Some(Known {
            addr: found.addr,
            client: found.client,
        });
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.found.notify_all();
        drop(known);
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, stream) in lanes.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Why `named`, named by a sentinel, is not followed: it is a master
    /// the proxy left at a failover less than `LEFT_FOR` ago, named at a
    /// config epoch no higher than the current master's (or one unknown),
    /// and the `current` one still answers `ROLE` as master (within the
    /// timeout). A sentinel that missed the failover (restarted with its
    /// old config) names the old master at the old epoch, and it may still
    /// answer as one (the sentinels have not reconfigured it yet):
    /// following it would send writes to a master the others have demoted,
    /// to be lost. A fail-back (A -> B -> A) is named at a higher epoch
    /// than B's, and followed at once, though B answers as master for
    /// seconds more.
    fn refused(&self, current: Option<&HostPort>, named: &Named) -> Option<String> {
        let addr = &named.addr;
        let (host, port) = current.filter(|current| *current != addr)?;
        let ours = *self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!((named.epoch, ours), (Some(theirs), Some(ours)) if theirs > ours) {
            return None;
        }
        let left = self
            .left
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(gone, since)| gone == addr && since.elapsed() < LEFT_FOR);
        if !left || !matches!(self.asker.is_master(host, *port), Ok(true)) {
            return None;
        }
        let why = format!(
            "a master left at a failover less than {} s ago, at config epoch {} (the current master's: {}), while {host}:{port} still answers as master: not followed",
            LEFT_FOR.as_secs(),
            shown(named.epoch),
            shown(ours)
        );
        self.refusals.warn(format_args!(
            "a sentinel names {}:{}, {why}",
            addr.0, addr.1
        ));
        Some(why)
    }

    /// Shuts `stream`, a connection opened under `generation`, down when
    /// the master changes (at once if it has); the key to unwatch it by.
    pub(super) fn watch_lane(&self, stream: TcpStream, generation: u64) -> u64 {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.next += 1;
        // Checked under the lock the change shuts them under: a change
        // either finds this one listed or is seen here.
        if generation != self.generation() {
            let _ = stream.shutdown(Shutdown::Both);
        } else {
            let key = lanes.next;
            lanes.open.push((key, stream));
        }
        lanes.next
    }

    /// Stops watching the connection `watch_lane` gave `key` for.
    pub(super) fn unwatch_lane(&self, key: u64) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.open.retain(|(listed, _)| *listed != key);
    }

    /// A connection to the current master, bounded by REDIS_TIMEOUT_MS,
    /// with the generation it belongs to.
    pub(super) fn connect(&self) -> redis::RedisResult<(redis::Connection, u64)> {
        let (client, generation) = self.master_client()?;
        let conn = super::connect(&client, self.timeout).map_err(|err| {
            let kind = match err.is_timeout() {
                true => std::io::ErrorKind::TimedOut,
                false => std::io::ErrorKind::ConnectionRefused,
            };
            redis::RedisError::from(std::io::Error::new(kind, self.explain(err.to_string())))
        })?;
        Ok((conn, generation))
    }

    /// `why` a connection to the master last found failed, with what the
    /// sentinels say when they name no master now: the master is down
    /// and a failover may be in progress, which reads otherwise like a
    /// misconfigured REDIS_SENTINEL_MASTER or a Redis gone for good.
    pub(super) fn explain(&self, why: String) -> String {
        let Some((host, port)) = self.master() else {
            return why;
        };
        if !self.lost.load(Ordering::SeqCst) {
            return format!("master {host}:{port}: {why}");
        }
        format!(
            "master {host}:{port}: {why}; the sentinels name no master for '{}' now (failover in progress?): {}",
            self.asker.name,
            self.why_not.lock().unwrap_or_else(PoisonError::into_inner)
        )
    }
}

/// A config epoch for the log.
fn shown(epoch: Option<u64>) -> String {
    epoch.map_or_else(|| "unknown".to_owned(), |epoch| epoch.to_string())
}

/// The crate's client asking the sentinel at `addr` alone for `master`,
/// reaching the master as REDIS_ADDRESS says (credentials, TLS).
fn sentinel_client(
    config: &Config,
    master: &str,
    addr: ConnectionAddr,
) -> redis::RedisResult<redis::sentinel::SentinelClient> {
    let Some(settings) = &config.sentinel else {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "sentinel mode without REDIS_SENTINEL_MASTER",
        )));
    };
    let first = config.redis_url.as_str().into_connection_info()?;
    let redis = first.redis_settings();
    let sentinel_tls = matches!(addr, ConnectionAddr::TcpTls { .. });
    let mut builder = SentinelClientBuilder::new([addr], master, SentinelServerType::Master)?
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
    // The sentinels get the same CA and client certificate as the master:
    // a sentinel with TLS asks for client certificates as redis-server does
    // (`tls-auth-clients`, yes by default), and is usually set up alongside.
    let certificates = super::connect::certificates(config);
    if matches!(first.addr(), ConnectionAddr::TcpTls { .. }) {
        builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
        if let Some(certificates) = &certificates {
            builder = builder.set_client_to_redis_certificates(certificates.clone());
        }
    }
    if let Some(certificates) = certificates.filter(|_| sentinel_tls) {
        builder = builder.set_client_to_sentinel_certificates(certificates);
    }
    builder.build()
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
