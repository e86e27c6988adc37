//! The backing Redis: a bounded `r2d2` pool of `redis` connections and the one
//! read the proxy makes (`GET` and `PTTL` of a key, pipelined: see
//! `read.rs`), with every failure mapped to [`BackendError`].
//!
//! The pool uses the redis crate's own r2d2 support (`redis::Client`
//! implements `r2d2::ManageConnection`) through a thin wrapper that adds what
//! it lacks for a proxy: connect, read and write timeouts, and retiring a
//! connection after any I/O failure. A connection whose read timed out may
//! still receive that late reply; handed to the next request it would answer
//! with another key's value, so it is never reused.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::ManageConnection;
use scheduled_thread_pool::ScheduledThreadPool;

use crate::config::{Config, RedisMode};

mod cluster;
mod commands;
mod connect;
mod failure;
mod fleet;
mod fold;
mod forward;
mod forward_cluster;
mod probe;
pub mod raw;
mod read;
mod read_cluster;
mod read_cluster_many;
mod read_many;
mod redirect;
mod router;
mod scan;
mod sentinel;
mod sentinel_ask;
mod server;
mod slots;
mod tracking;
use connect::{client, cluster_client, connect, connect_failure, default_db, tls_roots};
use failure::{reply_error, retire_on_failure};
pub use fleet::Linked;
pub use forward::MasterWatch;
pub use forward_cluster::{Dest, Fold};
pub use read::{Read, Ttl};
pub use read_many::is_too_large;
pub use scan::split_cursor;
pub use sentinel::Topology;
pub use server::MaxMemory;
pub use slots::{slot_of, Slot};
pub use tracking::{InvalidationLink, InvalidationSink};

/// Why a backing read failed. Cheap to clone, so one outcome can be shared by
/// every request waiting on the same fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No connection could be had within the timeout: Redis is down,
    /// unreachable, refusing us, or every connection is busy.
    Unavailable(String),
    /// Redis did not answer within the timeout.
    Timeout(String),
    /// Redis answered with an error reply (such as WRONGTYPE).
    Reply(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unavailable(why) => write!(f, "backing Redis unavailable: {why}"),
            BackendError::Timeout(why) => write!(f, "backing Redis timed out: {why}"),
            BackendError::Reply(message) => {
                write!(f, "backing Redis replied with an error: {message}")
            }
        }
    }
}

impl std::error::Error for BackendError {}

/// How the proxy reaches Redis: one server, or a cluster through the redis
/// crate's cluster client (which follows MOVED and ASK and refreshes its
/// slot map itself).
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
    /// Whichever master the sentinels name (the crate's `SentinelClient`).
    Sentinel(Arc<Topology>),
}

/// A pooled connection to the target: one node, or the cluster client's
/// connection to every node it needs.
enum RedisConn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl RedisConn {
    fn as_dyn(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            RedisConn::Single(conn) => conn,
            RedisConn::Cluster(conn) => &mut **conn,
        }
    }

    /// The `count` replies to the pipeline `packed`, giving up at the first
    /// that cannot be read: the redis crate's `req_packed_commands` reads
    /// on after a failure (for transactions' sake), each read waiting out
    /// REDIS_TIMEOUT_MS again, so a GET+PTTL read of a Redis that stopped
    /// answering took twice the bound, four times in another database.
    /// A connection that failed so is retired (`retire_on_failure`).
    fn pipeline(&mut self, packed: &[u8], count: usize) -> redis::RedisResult<Vec<redis::Value>> {
        let RedisConn::Single(conn) = self else {
            return self.as_dyn().req_packed_commands(packed, 0, count);
        };
        conn.send_packed_command(packed)?;
        let mut replies = Vec::with_capacity(count);
        while replies.len() < count {
            match conn.recv_response()? {
                // Not a reply (RESP3 push data): as the crate skips it.
                redis::Value::Push { .. } => {}
                reply => replies.push(reply),
            }
        }
        Ok(replies)
    }
}

impl Target {
    /// A connection whose connect, reads and writes are each bounded by
    /// `timeout` (REDIS_TIMEOUT_MS), and the generation of the topology it
    /// was opened under.
    fn connect(&self, timeout: Duration) -> redis::RedisResult<(RedisConn, u64)> {
        match self {
            Target::Single(client) => connect(client, timeout).map(|c| (RedisConn::Single(c), 0)),
            Target::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Ok((RedisConn::Cluster(Box::new(conn)), 0))
            }
            Target::Sentinel(topology) => topology
                .connect()
                .map(|(conn, generation)| (RedisConn::Single(conn), generation)),
        }
    }

    /// The generation a connection must belong to, to be used: in sentinel
    /// mode, connections to a master the sentinels no longer name are old.
    fn generation(&self) -> u64 {
        match self {
            Target::Sentinel(topology) => topology.generation(),
            Target::Single(_) | Target::Cluster(_) => 0,
        }
    }
}

/// A pooled connection plus whether it must be retired.
pub struct BackendConnection {
    conn: RedisConn,
    broken: bool,
    generation: u64,
}

/// Opens connections with timeouts and retires broken ones.
struct Manager {
    target: Target,
    timeout: Duration,
}

impl ManageConnection for Manager {
    type Connection = BackendConnection;
    type Error = redis::RedisError;

    fn connect(&self) -> Result<BackendConnection, redis::RedisError> {
        let (conn, generation) = self.target.connect(self.timeout)?;
        Ok(BackendConnection {
            conn,
            broken: false,
            generation,
        })
    }

    fn is_valid(&self, conn: &mut BackendConnection) -> Result<(), redis::RedisError> {
        redis::cmd("PING").query::<()>(conn.conn.as_dyn())
    }

    fn has_broken(&self, conn: &mut BackendConnection) -> bool {
        conn.broken || conn.generation != self.target.generation() || !conn.conn.as_dyn().is_open()
    }
}

/// Reports pool connection failures at debug level; the service logs the
/// failures that reach a request.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<redis::RedisError> for QuietErrors {
    fn handle_error(&self, error: redis::RedisError) {
        log::debug!("backing Redis connection failed: {error}");
    }
}

/// The pool of connections to the backing Redis. Cheap to share by reference
/// across threads; at most `max_clients` connections are ever open.
pub struct Backend {
    pool: r2d2::Pool<Manager>,
    /// Readiness probes' own connection, outside the pool: a pool busy with
    /// misses must not make a healthy Redis look down.
    probe: Mutex<Option<(RedisConn, u64)>>,
    target: Target,
    timeout: Duration,
    /// FORWARD_TIMEOUT_MS: how long clients' forwarded commands wait for
    /// their replies on raw connections (`None`: as long as Redis takes).
    forward_timeout: Option<Duration>,
    /// Redis's command table, read once (see `commands.rs`).
    commands: commands::Cached,
    /// Connections carrying clients' own commands (see `forward.rs`).
    raw: forward::RawPool,
    /// Cluster mode's slot map and per-node raw connections (see
    /// `router.rs`); `None` in other modes.
    router: Option<router::Router>,
    /// Whom `rediss://` raw connections trust.
    roots: raw::TlsRoots,
    /// The database REDIS_ADDRESS names (`/db`), where clients start.
    default_db: i64,
    /// RESP_MAX_REPLY_BYTES: the most a forwarded batch's replies may be.
    max_reply: usize,
    /// Which cluster masters the invalidation links cover (see `fleet.rs`).
    linked: Arc<Linked>,
    /// Redis refused `MGET` or `EXISTS` to the proxy's user (see
    /// `read_many.rs`).
    mget_refused: std::sync::atomic::AtomicBool,
}

impl Backend {
    /// Sets up the pool without connecting, so the proxy starts (and serves
    /// cache hits) while Redis is down, and connects when it comes up.
    pub fn new(config: &Config) -> Result<Backend, BackendError> {
        let target = match config.redis_mode {
            RedisMode::Standalone => {
                client(config, &config.redis_url, redis::ProtocolVersion::RESP2).map(Target::Single)
            }
            RedisMode::Cluster => cluster_client(config).map(Target::Cluster),
            RedisMode::Sentinel => Topology::start(config).map(Target::Sentinel),
        }
        .map_err(|err| BackendError::Unavailable(err.to_string()))?;
        let size = config.max_clients.get();
        // r2d2 opens connections on a thread pool of 3 by default: behind a
        // far-away Redis, a cold burst would connect three at a time.
        let connectors = Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(size)
                .thread_name_pattern("redis-connect-{}")
                .build(),
        );
        let pool = r2d2::Pool::builder()
            .max_size(u32::try_from(size).unwrap_or(u32::MAX))
            .thread_pool(connectors)
            .min_idle(Some(0))
            // The redis crate's check is a PING: a round trip per request.
            // Broken connections are caught by `has_broken` instead.
            .test_on_check_out(false)
            .connection_timeout(config.redis_timeout)
            .error_handler(Box::new(QuietErrors))
            .build_unchecked(Manager {
                target: target.clone(),
                timeout: config.redis_timeout,
            });
        let router = match config.redis_mode {
            RedisMode::Cluster => Some(
                router::Router::new(config)
                    .map_err(|err| BackendError::Unavailable(err.to_string()))?,
            ),
            RedisMode::Standalone | RedisMode::Sentinel => None,
        };
        let roots = tls_roots(config)
            .map_err(|err| BackendError::Unavailable(format!("REDIS_TLS_CA: {err}")))?;
        Ok(Backend {
            pool,
            probe: Mutex::new(None),
            target,
            timeout: config.redis_timeout,
            forward_timeout: config.forward_timeout,
            commands: commands::Cached::default(),
            raw: forward::RawPool::default(),
            router,
            roots,
            default_db: default_db(config),
            max_reply: config.resp_max_reply,
            linked: Arc::new(Linked::new(
                config.redis_mode == RedisMode::Cluster
                    && config.invalidation != crate::config::Invalidation::Off,
            )),
            mget_refused: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// What the cluster's invalidation links keep up to date: which
    /// masters' writes are announced, so which nodes' reads may be stored.
    pub fn linked(&self) -> Arc<Linked> {
        Arc::clone(&self.linked)
    }

    /// The database clients start in: the one REDIS_ADDRESS names.
    pub fn default_db(&self) -> i64 {
        self.default_db
    }

    /// `GET key` and `PTTL key` in database `db` on the backing Redis, in
    /// one round trip: the value (`None` when the key is absent) and how
    /// long the key has left there, counted from before the read was sent.
    /// Pooled connections sit in REDIS_ADDRESS's database: for another,
    /// the pipeline is `SELECT db`, the read, `SELECT` back (see
    /// `read::pack_in`), and a connection not seen back home is retired.
    /// In cluster mode the read goes to the key's master on a raw
    /// connection (see `read_cluster.rs`).
    pub fn get(&self, db: i64, key: &[u8]) -> Result<Read, BackendError> {
        if let Some(router) = &self.router {
            return self.get_cluster(router, db, key);
        }
        if db == self.default_db {
            let packed = read::pack(key);
            let replies = self.query(|conn| conn.pipeline(&packed, 2))?;
            return read::parse(replies);
        }
        let packed = read::pack_in(db, self.default_db, key);
        let replies = self.query(|conn| read::unselect(conn.pipeline(&packed, 4)?))?;
        read::parse(replies?)
    }

    /// The sentinels' view, in sentinel mode: the invalidation link follows
    /// it.
    pub fn topology(&self) -> Option<Arc<Topology>> {
        match &self.target {
            Target::Sentinel(topology) => Some(Arc::clone(topology)),
            Target::Single(_) | Target::Cluster(_) => None,
        }
    }

    /// Runs read-only commands (`send` sends them and reads every reply). A
    /// pooled connection that Redis closed while it sat idle (Redis
    /// restarted, or timed it out) fails at once; it is retired and the
    /// commands retried on another, at most once per pooled connection,
    /// which is safe because every command we send is a read.
    fn query<T>(
        &self,
        send: impl Fn(&mut RedisConn) -> redis::RedisResult<T>,
    ) -> Result<T, BackendError> {
        let mut retries = self.pool.max_size();
        loop {
            let mut pooled = self.checkout()?;
            if pooled.generation != self.target.generation() && retries > 0 {
                // Opened to a master the sentinels no longer name.
                pooled.broken = true;
                retries -= 1;
                continue;
            }
            match send(&mut pooled.conn) {
                Ok(value) => return Ok(value),
                Err(err) if retries > 0 && err.is_connection_dropped() => {
                    pooled.broken = true;
                    retries -= 1;
                    log::debug!("retrying on a fresh connection after: {err}");
                }
                Err(err) => {
                    let kind = err.kind();
                    let failed = retire_on_failure(&mut pooled, err, self.timeout);
                    return Err(self.in_cluster_terms(failed, kind));
                }
            }
        }
    }

    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, BackendError> {
        self.pool
            .get()
            .map_err(|err| BackendError::Unavailable(err.to_string()))
    }
}
