//! The invalidation link: one dedicated connection to Redis, named
//! `redis-proxy-invalidation`, on which `CLIENT TRACKING ON BCAST` makes Redis
//! announce every key written by anyone (and a flush as a null) as a RESP3
//! push. BCAST, because per-connection tracking on pooled connections loses
//! invalidations when a pooled connection drops (redis/redis#11767), and idle
//! pooled connections never read their pushes.
//!
//! Two threads: the link thread connects, sets tracking up, watches the
//! connection (a PING each second, answered within REDIS_TIMEOUT_MS, or the
//! link is lost) and reconnects with backoff (100 ms doubling to 5 s); the
//! redis crate hands every push to the applier thread through a channel, so
//! invalidations are applied the moment they arrive, in arrival order, a
//! batch of keys under one lock of the cache.
//!
//! Why reads go through `PubSub::get_message` although nothing is subscribed:
//! it reads with `read(false)`, so a read timeout (how the thread wakes to
//! PING) does not make the crate skip the next reply, as `recv_response`
//! would; pushes reach the channel either way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};

use crate::config::{Config, Invalidation, RedisMode};
use crate::log_limit::LogLimiter;

/// The name operators find in `CLIENT LIST`.
pub const LINK_NAME: &str = "redis-proxy-invalidation";
/// How often the link checks Redis still answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// First and longest waits before reconnecting.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MOST: Duration = Duration::from_secs(5);

/// What the link tells the cache. Implemented by the service; called from
/// the link's threads only.
pub trait InvalidationSink: Send + Sync {
    /// Tracking is on: Redis announces every write from now on.
    fn link_up(&self);
    /// The link is gone: writes may go unannounced until it is back.
    fn link_lost(&self);
    /// `INVALIDATION=auto` and Redis refused tracking: TTL only from now on.
    fn tracking_off(&self);
    /// These keys changed in Redis.
    fn invalidate(&self, keys: &[&[u8]]);
    /// Redis was flushed: every key changed.
    fn flush(&self);
}

/// The running link (in cluster mode, the thread that keeps one per master).
/// Dropping it ends a standalone link within a second (a proxy started in a
/// test process leaves no thread behind connecting to a Redis that is gone);
/// the cluster and sentinel watchers run for as long as the process does.
pub struct InvalidationLink {
    _threads: Vec<thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Drop for InvalidationLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Why a link could not be set up.
enum SetupError {
    /// Redis answered with an error: it refuses tracking to us (too old,
    /// an ACL rule, a managed service that disables it).
    Refused(String),
    /// Redis could not be reached or did not answer.
    Unreachable(String),
}

impl InvalidationLink {
    /// Starts the link for `config` (which must not say `INVALIDATION=off`),
    /// reporting to `sink`; in sentinel mode it follows `topology`.
    pub fn spawn(
        config: &Config,
        sink: Arc<dyn InvalidationSink>,
        topology: Option<Arc<super::Topology>>,
    ) -> std::io::Result<InvalidationLink> {
        if let Some(topology) = topology {
            let follower = super::sentinel::spawn_link(config, topology, sink)?;
            return Ok(InvalidationLink {
                _threads: vec![follower],
                stop: Arc::default(),
            });
        }
        if config.redis_mode == RedisMode::Cluster {
            let watcher = super::cluster::spawn_links(config, sink)?;
            return Ok(InvalidationLink {
                _threads: vec![watcher],
                stop: Arc::default(),
            });
        }
        let client = super::client(config, &config.redis_url, redis::ProtocolVersion::RESP3)
            .map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let settings = Settings::new(config, client, Arc::clone(&stop));
        Ok(InvalidationLink {
            _threads: settings.spawn(sink)?,
            stop,
        })
    }
}

/// Starts a link to the Redis at `host:port` (the configured credentials
/// and TLS), reporting to `sink` until `stop`: one per cluster master, or
/// the sentinels' current master.
pub(super) fn spawn_link_to(
    config: &Config,
    (host, port): &(String, u16),
    sink: Arc<dyn InvalidationSink>,
    stop: &Arc<AtomicBool>,
) -> Result<(), String> {
    let mut url = config.redis_url.clone();
    url.set_host(Some(host)).map_err(|err| err.to_string())?;
    url.set_port(Some(*port))
        .map_err(|()| "not a port".to_owned())?;
    let client = super::client(config, &url, redis::ProtocolVersion::RESP3)
        .map_err(|err| err.to_string())?;
    Settings::new(config, client, Arc::clone(stop))
        .spawn(sink)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// One link: which Redis, and how to run it.
pub(super) struct Settings {
    client: redis::Client,
    timeout: Duration,
    prefixes: Vec<Vec<u8>>,
    auto: bool,
    /// Set when the link is no longer wanted (its cluster master is gone):
    /// it ends within a second, reporting nothing more.
    stop: Arc<AtomicBool>,
}

impl Settings {
    /// A link to `client` as `config` says, until `stop` is set.
    pub(super) fn new(config: &Config, client: redis::Client, stop: Arc<AtomicBool>) -> Settings {
        Settings {
            client,
            timeout: config.redis_timeout,
            prefixes: config.invalidation_prefixes.clone(),
            auto: config.invalidation == Invalidation::Auto,
            stop,
        }
    }

    /// Starts the link's thread and its applier's.
    pub(super) fn spawn(
        self,
        sink: Arc<dyn InvalidationSink>,
    ) -> std::io::Result<Vec<thread::JoinHandle<()>>> {
        let (pushes, received) = mpsc::channel();
        let applier = {
            let sink = Arc::clone(&sink);
            thread::Builder::new()
                .name("invalidation-apply".to_owned())
                .spawn(move || apply(&received, &*sink))?
        };
        let link = thread::Builder::new()
            .name("invalidation-link".to_owned())
            .spawn(move || self.run(&pushes, &*sink))?;
        Ok(vec![link, applier])
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Connects, listens, reconnects, for as long as the process runs (or
    /// until `auto` meets a Redis that refuses tracking, or `stop`).
    fn run(&self, pushes: &mpsc::Sender<PushInfo>, sink: &dyn InvalidationSink) {
        let warnings = LogLimiter::new(Duration::from_secs(5));
        let mut backoff = BACKOFF_FIRST;
        while !self.stopped() {
            match self.connect(pushes) {
                Ok(mut conn) => {
                    if self.stopped() {
                        return;
                    }
                    sink.link_up();
                    log::info!("invalidation link up: Redis announces every write");
                    backoff = BACKOFF_FIRST;
                    let why = self.listen(&mut conn);
                    if self.stopped() {
                        return;
                    }
                    sink.link_lost();
                    let _ = warnings.warn(format_args!(
                        "invalidation link lost ({why}): cache dropped and bypassed until it is back"
                    ));
                }
                Err(SetupError::Refused(why)) if self.auto => {
                    log::warn!(
                        "Redis refused client tracking ({why}): INVALIDATION=auto falls back to off; entries live out GLOBAL_CACHE_EXPIRY"
                    );
                    sink.tracking_off();
                    return;
                }
                Err(SetupError::Refused(why)) => {
                    let _ = warnings.warn(format_args!(
                        "INVALIDATION=tracking but Redis refused it ({why}): cache bypassed; retrying"
                    ));
                }
                Err(SetupError::Unreachable(why)) => {
                    log::debug!("invalidation link: Redis unreachable: {why}");
                }
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MOST);
        }
    }

    /// Opens the link's connection and turns tracking on.
    fn connect(&self, pushes: &mpsc::Sender<PushInfo>) -> Result<redis::Connection, SetupError> {
        let classify = |err: redis::RedisError| match err.code() {
            Some(_) => SetupError::Refused(err.to_string()),
            None => SetupError::Unreachable(err.to_string()),
        };
        let mut conn = super::connect(&self.client, self.timeout).map_err(classify)?;
        conn.set_push_sender(pushes.clone());
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(LINK_NAME)
            .query::<()>(&mut conn)
            .map_err(classify)?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON").arg("BCAST");
        for prefix in &self.prefixes {
            tracking.arg("PREFIX").arg(prefix.as_slice());
        }
        tracking.query::<()>(&mut conn).map_err(classify)?;
        Ok(conn)
    }

    /// Waits on the link, pinging every second; returns why it ended.
    fn listen(&self, conn: &mut redis::Connection) -> String {
        let mut pubsub = conn.as_pubsub();
        loop {
            if let Err(err) = pubsub.set_read_timeout(Some(PING_EVERY)) {
                return err.to_string();
            }
            // Nothing is subscribed: this returns only on an error, most
            // often the timeout that says it is time to PING.
            match pubsub.get_message() {
                Err(err) if err.is_timeout() => {}
                Err(err) => return err.to_string(),
                Ok(_) => {}
            }
            if self.stopped() {
                return "no longer wanted".to_owned();
            }
            if let Err(err) = pubsub.set_read_timeout(Some(self.timeout)) {
                return err.to_string();
            }
            if let Err(err) = pubsub.ping::<Value>() {
                return format!("no answer to PING within {:?}: {err}", self.timeout);
            }
        }
    }
}

/// Applies pushes as they arrive, in order, until the link is gone for good.
fn apply(pushes: &Receiver<PushInfo>, sink: &dyn InvalidationSink) {
    for push in pushes {
        if push.kind != PushKind::Invalidate {
            continue;
        }
        match push.data.first() {
            Some(Value::Array(keys)) => {
                let keys: Vec<&[u8]> = keys
                    .iter()
                    .filter_map(|key| match key {
                        Value::BulkString(bytes) => Some(bytes.as_slice()),
                        Value::SimpleString(text) => Some(text.as_bytes()),
                        _ => None,
                    })
                    .collect();
                sink.invalidate(&keys);
            }
            // `>2 invalidate _`: FLUSHALL or FLUSHDB.
            Some(Value::Nil) | None => sink.flush(),
            Some(other) => {
                log::warn!("unexpected invalidation push: {other:?}; flushing to stay safe");
                sink.flush();
            }
        }
    }
}
