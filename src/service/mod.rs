//! The read-through logic every front end calls: look the key up in the
//! cache, and on a miss fetch it from Redis once, however many requests ask
//! for it at the same time, then fill the cache, unless Redis said the key
//! changed while the fetch was in flight.
//!
//! [`Service`] puts together parts that each have one job: the read-through
//! core (`read_through.rs`: the cache and the fetches in flight under one
//! lock), the read split between the RESP event loop and a worker
//! (`claim.rs`), the fetch from Redis and the fill (`fill.rs`), admission
//! to the WORKERS places (`admission.rs`), PROXY_PASSWORD (`auth.rs`), what
//! the front ends report for counting (`counts.rs`), and what the
//! invalidation link tells the cache and the front ends' tracking clients
//! (`coherence.rs`).
//!
//! The lock is held only for map and list work: never across Redis I/O or
//! response writing. [`Service::get`] takes it once on a hit and twice on a
//! miss (look up, then fill), hashing the key each time. The RESP front end
//! looks up on its event loop with [`Service::claim`], which on a miss leads
//! or joins the fetch under that same lock, and a worker finishes the read
//! ([`Service::finish`]): twice as well. A stale-if-error answer takes it
//! once more. Values of up to 256 bytes (`SHARED_ABOVE`) are copied under
//! the lock on a hit (HTTP's hits, through [`Service::cached_with`], into a
//! buffer the worker reuses; others into a copy of their own); larger ones
//! are shared (a refcounted allocation), so a hit clones a pointer, not the
//! value.

mod admission;
mod auth;
mod claim;
mod coherence;
mod counts;
mod databases;
mod fill;
mod flight;
mod forward;
mod many;
mod read_through;
mod replies;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::cache::Life;
use crate::clock::Clock;
use crate::config::{Config, Forwarding, Invalidation};
use crate::limit::Permit;
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;

use admission::Admission;
use auth::Auth;
pub use claim::{Claim, Deferred, Ticket};
pub use coherence::{Change, ChangeListener, LinkState};
pub use counts::Forwarded;
use fill::Fetched;
pub use forward::{
    log_held_ended, Batch, Carried, Client, Held, Lane, Pin, Plan, Queued, Taken, Upstream,
};
use read_through::{Probe, ReadThrough};
pub use replies::ReplyLookup;
pub use types::{Found, ReadError, Source, Value, SHARED_ABOVE};

/// What one backing fetch ended with; shared with every waiter.
type FetchResult = Result<Option<Fetched>, ReadError>;

/// The read-through cache shared by every worker of every front end.
///
/// Thread-safe; share it with an `Arc`. Every method holds the lock only for
/// O(1) map and list work (a flush swaps the whole LRU out).
pub struct Service {
    core: ReadThrough,
    backend: Backend,
    wait_limit: Duration,
    metrics: Arc<Metrics>,
    backend_warnings: LogLimiter,
    /// For Redis refusing `PTTL` (nothing is cached then).
    ttl_warnings: LogLimiter,
    admission: Admission,
    /// RESP reads handed to a worker that will wait for a place (see
    /// `claim.rs`).
    deferred: Arc<std::sync::atomic::AtomicUsize>,
    auth: Auth,
    max_key_bytes: usize,
    /// RESP_MAX_REQUEST_BYTES.
    max_request: usize,
    /// RESP_MAX_REPLY_BYTES: the most an MGET's reply may be (see
    /// `many.rs`).
    max_reply: usize,
    /// INVALIDATION as configured, for `INFO`.
    invalidation: Invalidation,
    /// RESP_FORWARD.
    forwarding: Forwarding,
    /// The front end that passes changes on to its own tracking clients.
    listener: std::sync::OnceLock<Arc<dyn ChangeListener>>,
    /// What the proxy knows of Redis itself: `databases`, for `SELECT`;
    /// its version and memory settings, for `HELLO` and `INFO`.
    databases: databases::Databases,
    /// RESP_REPORTED_VERSION, if it fixes the version reported.
    reported_version: Option<String>,
    /// Whether Redis's settings are read with its version (`CONFIG GET`):
    /// only while the RESP port forwards (see `databases.rs`).
    reads_settings: bool,
    /// CACHE_COMMANDS: whose replies are cached (see `replies/`).
    cache_commands: replies::CacheCommands,
    /// Whether CACHE_COMMANDS names MGET, which has a path of its own:
    /// worked out once, since the RESP port asks per request (GET's is the
    /// core's, [`ReadThrough::caches_strings`]).
    caches_mget: bool,
}

impl Service {
    /// A service with an empty cache over `backend`, reading the time off
    /// `clock` (the system's in the proxy, a manual one in tests). With
    /// invalidation on, it caches nothing until the link to Redis is up.
    pub fn new(config: &Config, backend: Backend, metrics: Arc<Metrics>, clock: Clock) -> Service {
        let link = match config.invalidation {
            Invalidation::Off => LinkState::Off,
            Invalidation::Auto | Invalidation::Tracking => LinkState::Down,
        };
        let home = backend.default_db();
        Service {
            core: ReadThrough::new(config, (link, home), clock, Arc::clone(&metrics)),
            backend,
            wait_limit: config.redis_timeout,
            backend_warnings: LogLimiter::new(Duration::from_secs(5)),
            ttl_warnings: LogLimiter::new(Duration::from_secs(5)),
            admission: Admission::new(config.max_clients.get(), Arc::clone(&metrics)),
            deferred: Arc::default(),
            auth: Auth::new(config, Arc::clone(&metrics)),
            max_key_bytes: config.max_key_bytes,
            max_request: config.resp_max_request,
            max_reply: config.resp_max_reply,
            invalidation: config.invalidation,
            forwarding: config.forwarding,
            listener: std::sync::OnceLock::new(),
            databases: databases::Databases::default(),
            reported_version: config.reported_version.clone(),
            reads_settings: config.resp_addr.is_some() && config.forwarding != Forwarding::Off,
            cache_commands: replies::CacheCommands::new(&config.cache_commands),
            caches_mget: config.cache_commands.iter().any(|name| name == "mget"),
            metrics,
        }
    }

    /// The longest key the cache keeps (MAX_KEY_BYTES): HTTP refuses longer
    /// ones before they reach the lock or Redis; RESP passes them to Redis
    /// uncached (with RESP_FORWARD=off, refuses them).
    pub fn max_key_bytes(&self) -> usize {
        self.max_key_bytes
    }

    /// The largest RESP request taken (RESP_MAX_REQUEST_BYTES): what one
    /// connection's input may make the proxy hold.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request
    }

    /// The per-item limit (an eighth of CACHE_MAX_BYTES): the most one
    /// value may cost the cache, and what the HTTP front end's JSON of one
    /// value may cost at most.
    pub fn max_entry_bytes(&self) -> usize {
        self.core.max_entry_bytes()
    }

    /// The proxy's counters, for the front ends' metrics endpoints.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Redis's command table (see `crate::commands`): what the forwarder,
    /// the cache and `COMMAND GETKEYS` ask about a command. The first call
    /// reads it from Redis: call it off the event loop.
    pub fn commands(&self) -> Result<Arc<crate::commands::CommandTable>, ReadError> {
        self.backend.commands().map_err(ReadError::from)
    }

    /// Redis's command table if it has been read, without asking Redis:
    /// for the event loop, which must never wait on it.
    pub fn commands_known(&self) -> Option<Arc<crate::commands::CommandTable>> {
        self.backend.commands_known()
    }

    /// Waits for one of the WORKERS places, in arrival order; a front end
    /// holds it while it serves a read that may fetch from Redis (a hit
    /// found with [`Service::cached_with`] needs none).
    pub fn admit(&self) -> Permit<'_> {
        self.admission.admit()
    }

    /// One of the WORKERS places if one is free right now, without
    /// waiting: for front ends that must not block (the RESP event loop).
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        self.admission.try_admit()
    }

    /// Whether clients must give PROXY_PASSWORD before reading.
    pub fn requires_password(&self) -> bool {
        self.auth.requires_password()
    }

    /// Whether /metrics is served without the password (METRICS_OPEN).
    pub fn metrics_open(&self) -> bool {
        self.auth.metrics_open()
    }

    /// Whether `given` is PROXY_PASSWORD (true when none is set), compared
    /// in constant time. A failure is counted for `protocol` and logged,
    /// rate-limited, without what was given.
    pub fn check_password(&self, given: &[u8], protocol: &str) -> bool {
        self.auth.check_password(given, protocol)
    }

    /// Counts (and logs, rate-limited) a refused authentication attempt.
    pub fn auth_failed(&self, protocol: &str) {
        self.auth.failed(protocol);
    }

    /// Whether Redis answers a PING now, on a connection outside the pool
    /// (so a pool busy with misses does not read as Redis being down).
    pub fn ready(&self) -> Result<(), ReadError> {
        self.backend.ping().map_err(ReadError::from)
    }

    /// The cached value of `key` in REDIS_ADDRESS's database, if it is
    /// cached and fresh; never asks Redis, never waits on a fetch. A hit
    /// counts as one; on `None` the caller goes on to [`Service::get`],
    /// which counts the miss. HTTP serves hits through it without taking a
    /// WORKERS place; the RESP loop uses [`Service::claim`], which also
    /// leads or joins the fetch.
    ///
    /// For a front end that answers from buffers of its own: `take` gets
    /// the cached value under the lock and makes what the answer keeps of
    /// it (HTTP copies a small value's bytes into a buffer its worker
    /// reuses, with no allocation, and clones a larger one's handle); it
    /// must do no more, since the lock is held. `at` is the caller's own
    /// reading of the system clock, taken when the request came (a few
    /// microseconds before, a time at which the request was already in
    /// flight), so the lookup reads no clock of its own.
    pub fn cached_with<T>(
        &self,
        key: &[u8],
        at: Instant,
        take: impl FnOnce(&Value) -> T,
    ) -> Option<Found<T>> {
        let now = self.core.time_at(at);
        let db = self.backend.default_db();
        let (value, life) = self.core.cached_with(db, key, now, take)?;
        self.metrics.hit();
        Some(hit(value, life))
    }

    /// [`Service::cached_with`] now, the value itself.
    #[cfg(test)]
    pub(crate) fn cached(&self, key: &[u8]) -> Option<Found> {
        self.cached_with(key, Instant::now(), Value::clone)
    }

    /// Reads `key` through the cache: `Ok(None)` when Redis has no such key
    /// (which is not cached). Concurrent misses on one key share one fetch.
    /// When Redis cannot be read, an entry that stopped being fresh less
    /// than STALE_IF_ERROR_SECS ago is served instead, marked stale, unless
    /// its key's TTL in Redis has ended meanwhile.
    ///
    /// The key is REDIS_ADDRESS's database's (HTTP's); [`Service::get_in`]
    /// reads another's.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>, ReadError> {
        self.get_in(self.backend.default_db(), key)
    }

    /// [`Service::get`] of `key` in Redis's database `db` (a RESP client's
    /// `SELECT`): cached under `db` and `key`, fetched from Redis in `db`.
    pub fn get_in(&self, db: i64, key: &[u8]) -> Result<Option<Found>, ReadError> {
        self.or_stale(db, key, self.read(db, key))
    }

    /// `read`, or, when Redis could not be read, the entry kept for `key`
    /// past its freshness, if any (STALE_IF_ERROR_SECS).
    fn or_stale(
        &self,
        db: i64,
        key: &[u8],
        read: Result<Option<Found>, ReadError>,
    ) -> Result<Option<Found>, ReadError> {
        read.or_else(|err| self.stale_or(err, || self.core.stale(db, key)).map(Some))
    }

    /// What a read that failed with `err` answers: when Redis could not be
    /// read (not for an error reply), the entry `stale` finds kept past
    /// its freshness (STALE_IF_ERROR_SECS), if any, served marked stale;
    /// else `err`. Looked up after the failure, so an entry an
    /// invalidation or a flush removed meanwhile is never served.
    fn stale_or(
        &self,
        err: ReadError,
        stale: impl FnOnce() -> Option<(Value, Life)>,
    ) -> Result<Found, ReadError> {
        let unreachable = matches!(err, ReadError::Unavailable(_) | ReadError::Timeout(_));
        if !unreachable || !self.core.keeps_stale() {
            return Err(err);
        }
        let Some((value, life)) = stale() else {
            return Err(err);
        };
        self.metrics.stale_served();
        Ok(Found {
            value,
            source: Source::Stale,
            fresh_for: Duration::ZERO,
            age: life.age,
        })
    }

    /// [`Service::get`] without stale-if-error.
    fn read(&self, db: i64, key: &[u8]) -> Result<Option<Found>, ReadError> {
        match self.core.probe(db, key) {
            Probe::Hit(value, life) => {
                self.metrics.hit();
                Ok(Some(hit(value, life)))
            }
            Probe::Lead(flight) => {
                self.metrics.miss();
                self.lead(db, key, &flight)
            }
            Probe::Follow(flight) => {
                self.metrics.miss();
                self.metrics.coalesced();
                self.as_found(flight.wait(self.wait_limit))
            }
        }
    }
}

impl Service {
    /// How many entries the cache holds in each of Redis's databases, by
    /// database, those with none left out (`INFO keyspace`).
    pub fn entries_by_db(&self) -> Vec<(i64, usize)> {
        self.core.entries_by_db()
    }
}

/// A hit on `value`, whose entry's life stands at `life`.
fn hit<V>(value: V, life: Life) -> Found<V> {
    Found {
        value,
        source: Source::Hit,
        fresh_for: life.fresh_for,
        age: life.age,
    }
}

#[cfg(test)]
mod db_tests;
#[cfg(test)]
mod tests;
