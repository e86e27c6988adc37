//! The read-through logic every front end calls: look the key up in the
//! cache, and on a miss fetch it from Redis once, however many requests ask
//! for it at the same time, then fill the cache, unless Redis said the key
//! changed while the fetch was in flight.
//!
//! One `Mutex` guards the LRU, the table of fetches in flight and the state
//! of the invalidation link together, and is held only for map and list
//! work: never across Redis I/O or response writing. [`Service::get`] takes
//! it once on a hit and twice on a miss (look up, then fill), hashing the
//! key each time; the RESP front end first tries [`Service::cached`] on its
//! event loop, so a RESP miss takes it three times. A stale-if-error answer
//! takes it once more. Values of up to 256 bytes (`SHARED_ABOVE`) are copied
//! under the lock on a hit; larger ones are shared (a refcounted
//! allocation), so a hit clones a pointer, not the value.

mod auth;
mod coherence;
mod fill;
mod flight;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::backend::Backend;
use crate::cache::{KeyHasher, Life, Lookup, Lru};
use crate::clock::Clock;
use crate::config::{Config, Invalidation, Secret};
use crate::limit::{Limiter, Permit};
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;

pub use coherence::{Change, ChangeListener, LinkState};
use fill::Fetched;
use flight::{Flight, InFlight};
pub use types::{Found, ReadError, Source, Value};

/// What one backing fetch ended with; shared with every waiter.
type FetchResult = Result<Option<Fetched>, ReadError>;

/// What the lock protects.
struct CacheState {
    lru: Lru<Value>,
    flights: HashMap<Box<[u8]>, InFlight>,
    /// Whether the cache can vouch for what it holds.
    link: LinkState,
    /// Bumped whenever the link goes up or down (see [`InFlight::epoch`]).
    epoch: u64,
}

/// The read-through cache shared by every worker of every front end.
///
/// Thread-safe; share it with an `Arc`. Every method holds the lock only for
/// O(1) map and list work (a flush swaps the whole LRU out).
pub struct Service {
    state: Mutex<CacheState>,
    backend: Backend,
    wait_limit: Duration,
    metrics: Arc<Metrics>,
    backend_warnings: LogLimiter,
    /// For Redis refusing `PTTL` (nothing is cached then).
    ttl_warnings: LogLimiter,
    /// WORKERS places shared by every front end.
    places: Limiter,
    max_key_bytes: usize,
    /// INVALIDATION_PREFIXES: only keys under one of these are cached while
    /// tracking (empty: every key).
    prefixes: Vec<Vec<u8>>,
    /// The LRU's key hasher: keys are hashed before the lock is taken.
    hasher: KeyHasher,
    /// The LRU's clock, read before the lock is taken, and kept across
    /// flushes so no reading is ever compared against another origin.
    clock: Clock,
    /// For a fresh LRU when the cache is flushed.
    capacity: std::num::NonZeroUsize,
    expiry: Duration,
    /// STALE_IF_ERROR_SECS: how long an entry is kept past its freshness.
    stale_if_error: Duration,
    /// INVALIDATION as configured, for `INFO`.
    invalidation: Invalidation,
    /// PROXY_PASSWORD, if clients must give one.
    password: Option<Secret>,
    metrics_open: bool,
    auth_warnings: LogLimiter,
    /// The front end that passes changes on to its own tracking clients.
    listener: std::sync::OnceLock<Arc<dyn ChangeListener>>,
}

/// What the locked part of a lookup decided.
enum Probe {
    Hit(Found),
    Lead(Arc<Flight>),
    Follow(Arc<Flight>),
}

impl Service {
    /// A service with an empty cache over `backend`, reading the time off
    /// `clock` (the system's in the proxy, a manual one in tests). With
    /// invalidation on, it caches nothing until the link to Redis is up.
    pub fn new(config: &Config, backend: Backend, metrics: Arc<Metrics>, clock: Clock) -> Service {
        metrics.set_capacity(config.cache_capacity.get());
        let link = match config.invalidation {
            Invalidation::Off => LinkState::Off,
            Invalidation::Auto | Invalidation::Tracking => LinkState::Down,
        };
        metrics.set_link_up(link == LinkState::Up);
        let lru = Lru::new(config.cache_capacity, config.cache_expiry)
            .with_stale_if_error(config.stale_if_error);
        let hasher = lru.hasher().clone();
        Service {
            state: Mutex::new(CacheState {
                lru,
                flights: HashMap::new(),
                link,
                epoch: 0,
            }),
            backend,
            wait_limit: config.redis_timeout,
            metrics,
            backend_warnings: LogLimiter::new(Duration::from_secs(5)),
            ttl_warnings: LogLimiter::new(Duration::from_secs(5)),
            places: Limiter::new(config.max_clients.get()),
            max_key_bytes: config.max_key_bytes,
            prefixes: config.invalidation_prefixes.clone(),
            hasher,
            clock,
            capacity: config.cache_capacity,
            expiry: config.cache_expiry,
            stale_if_error: config.stale_if_error,
            invalidation: config.invalidation,
            password: config.proxy_password.clone(),
            metrics_open: config.metrics_open,
            auth_warnings: LogLimiter::new(Duration::from_secs(5)),
            listener: std::sync::OnceLock::new(),
        }
    }

    /// The longest key read (MAX_KEY_BYTES): front ends refuse longer ones
    /// before they reach the lock or Redis.
    pub fn max_key_bytes(&self) -> usize {
        self.max_key_bytes
    }

    /// The proxy's counters, for the front ends' metrics endpoints.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Waits for one of the WORKERS places, in arrival order; a front end
    /// holds it while it serves a request that reads keys.
    pub fn admit(&self) -> Permit<'_> {
        self.places.acquire(|delta| self.metrics.queued(delta))
    }

    /// One of the WORKERS places if one is free right now, without
    /// waiting: for front ends that must not block (the RESP event loop).
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        self.places.try_acquire()
    }

    /// Whether Redis answers a PING now, on a connection outside the pool
    /// (so a pool busy with misses does not read as Redis being down).
    pub fn ready(&self) -> Result<(), ReadError> {
        self.backend.ping().map_err(ReadError::from)
    }

    /// The cached value of `key`, if it is cached and fresh; never asks
    /// Redis, never waits on a fetch. A hit counts as one; on `None` the
    /// caller goes on to [`Service::get`], which counts the miss.
    pub fn cached(&self, key: &[u8]) -> Option<Found> {
        let found = self.lookup(key, |value, life| Some(self.hit(value, life)), |_| None)?;
        self.metrics.hit();
        Some(found)
    }

    /// A hit on `value`, whose entry's life stands at `life`.
    fn hit(&self, value: Value, life: Life) -> Found {
        Found {
            value,
            source: Source::Hit,
            fresh_for: life.fresh_for,
            age: life.age,
        }
    }

    /// Reads `key` through the cache: `Ok(None)` when Redis has no such key
    /// (which is not cached). Concurrent misses on one key share one fetch.
    /// When Redis cannot be read, an entry that stopped being fresh less
    /// than STALE_IF_ERROR_SECS ago is served instead, marked stale, unless
    /// its key's TTL in Redis has ended meanwhile.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>, ReadError> {
        match self.read(key) {
            Err(err @ (ReadError::Unavailable(_) | ReadError::Timeout(_)))
                if !self.stale_if_error.is_zero() =>
            {
                match self.stale_value(key) {
                    Some((value, life)) => {
                        self.metrics.stale_served();
                        Ok(Some(Found {
                            value,
                            source: Source::Stale,
                            fresh_for: Duration::ZERO,
                            age: life.age,
                        }))
                    }
                    None => Err(err),
                }
            }
            result => result,
        }
    }

    /// The entry kept for `key` past its freshness, if within STALE_IF_ERROR_SECS
    /// period. Looked up after the failure, so an entry an invalidation or
    /// a flush removed meanwhile is never served.
    fn stale_value(&self, key: &[u8]) -> Option<(Value, Life)> {
        let now = self.clock.now();
        let state = self.lock();
        let (value, life) = state.lru.stale(key, now)?;
        Some((value.clone(), life))
    }

    /// [`Service::get`] without stale-if-error.
    fn read(&self, key: &[u8]) -> Result<Option<Found>, ReadError> {
        let hit = |value, life| Probe::Hit(self.hit(value, life));
        match self.lookup(key, hit, |state| state.join_or_lead(key)) {
            Probe::Hit(found) => {
                self.metrics.hit();
                Ok(Some(found))
            }
            Probe::Lead(flight) => {
                self.metrics.miss();
                self.lead(key, &flight)
            }
            Probe::Follow(flight) => {
                self.metrics.miss();
                self.metrics.coalesced();
                self.as_found(flight.wait(self.wait_limit))
            }
        }
    }

    /// Looks `key` up under the lock: `on_hit` gets a fresh value and how
    /// its entry's life stands (fresh for how much longer, stored how long
    /// ago), and
    /// `on_miss` runs, still under the lock, when the key is absent, has
    /// just expired, or the cache cannot vouch for it (the invalidation link
    /// is down, or the key is outside the tracked prefixes). An expired
    /// value is counted and dropped after unlocking.
    fn lookup<T>(
        &self,
        key: &[u8],
        on_hit: impl FnOnce(Value, Life) -> T,
        on_miss: impl FnOnce(&mut CacheState) -> T,
    ) -> T {
        let tracked = self.is_tracked(key);
        let hash = self.hasher.hash(key);
        let now = self.clock.now();
        let (result, expired) = {
            let mut state = self.lock();
            if !state.may_cache(tracked) {
                (on_miss(&mut state), None)
            } else {
                match state.lru.get_hashed(hash, key, now) {
                    Lookup::Hit(value) => {
                        let value = value.clone();
                        // The hit is now the most recent entry.
                        let life = state.lru.most_recent_life(now).unwrap_or(Life {
                            fresh_for: Duration::ZERO,
                            age: Duration::ZERO,
                        });
                        (on_hit(value, life), None)
                    }
                    Lookup::Miss | Lookup::Stale => (on_miss(&mut state), None),
                    Lookup::Expired(value) => (on_miss(&mut state), Some(value)),
                }
            }
        };
        if expired.is_some() {
            self.metrics.expired(1);
        }
        drop(expired);
        result
    }

    /// Whether `key` is under one of INVALIDATION_PREFIXES (or none are set).
    fn is_tracked(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // Every critical section leaves the state consistent before anything
        // that could panic, so a poisoned lock is still sound to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CacheState {
    /// Whether a key may be served from, or stored in, the cache now.
    fn may_cache(&self, tracked: bool) -> bool {
        match self.link {
            LinkState::Off => true,
            LinkState::Down => false,
            LinkState::Up => tracked,
        }
    }

    fn join_or_lead(&mut self, key: &[u8]) -> Probe {
        if let Some(entry) = self.flights.get(key) {
            return Probe::Follow(Arc::clone(&entry.flight));
        }
        let flight = Arc::new(Flight::default());
        let entry = InFlight {
            flight: Arc::clone(&flight),
            epoch: self.epoch,
            stale: false,
        };
        self.flights.insert(key.into(), entry);
        Probe::Lead(flight)
    }
}

#[cfg(test)]
mod tests;
