//! The read-through core: the cache and the table of fetches in flight under
//! one lock, in quick_cache's shape (a lookup either hits, or leads the
//! fetch of its key, or joins the fetch already in flight), and whether the
//! invalidation link lets the cache vouch for what it holds. No Redis and
//! no front end here: the service fetches and answers around it.
//!
//! The lock is held only for map and list work, never across Redis I/O or
//! response writing; keys are hashed and the clock read before it is taken,
//! and whatever a change drops is freed after it is released.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::cache::{Db, KeyHasher, Life, Lookup, Lru, Time};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;

use super::flight::{Flight, Flights, InFlight};
use super::{LinkState, Value};

mod changes;
mod filing;
mod many;
mod replies;
mod retire;

#[cfg(test)]
pub(in crate::service) use replies::MAX_PER_FILE;
/// The reply fetches in flight (reply database, request bytes) by each
/// key they read.
pub(super) type ReplyDeps =
    std::collections::HashMap<Box<[u8]>, Vec<(Db, Box<[u8]>)>, foldhash::fast::RandomState>;

/// What the lock protects.
pub(super) struct CacheState {
    pub(super) lru: Lru<Value>,
    pub(super) flights: Flights,
    /// Whether the cache can vouch for what it holds.
    link: LinkState,
    /// Bumped whenever the link goes up or down (see [`InFlight::epoch`]).
    epoch: u64,
    /// The reply fetches in flight (their reply database and request
    /// bytes) by each key they read: a change of the key marks them stale,
    /// since their flights are not keyed by it (see `replies.rs`).
    pub(super) reply_deps: ReplyDeps,
}

/// What a lookup under the lock decided.
pub(super) enum Probe {
    /// A fresh value, and how its entry's life stands.
    Hit(Value, Life),
    /// No usable entry and no fetch in flight: the caller fetches.
    Lead(Arc<Flight>),
    /// A fetch of the key is in flight: the caller waits for it.
    Follow(Arc<Flight>),
}

/// What the RESP event loop's lookup decided (see `claim.rs`).
pub(super) enum Claimed {
    /// A fresh value, and how its entry's life stands.
    Hit(Value, Life),
    /// No usable entry and no fetch in flight: the caller fetches.
    Lead(Arc<Flight>),
    /// A fetch of the key is in flight: the caller waits for it.
    Follow(Arc<Flight>),
    /// No usable entry, no fetch in flight, and the caller may not lead.
    Pass,
}

/// The cache and its fetches in flight, shared by every worker, keyed by
/// database and key. Callers name databases by Redis's numbers; the cache
/// numbers them from REDIS_ADDRESS's (its database 0, whose keys are
/// stored and hashed as cheaply as before there were others: see
/// [`ReadThrough::db`]).
pub(super) struct ReadThrough {
    state: Mutex<CacheState>,
    /// REDIS_ADDRESS's database.
    home: i64,
    /// The LRU's key hasher: keys are hashed before the lock is taken.
    hasher: KeyHasher,
    /// Read before the lock is taken, and kept across flushes so no
    /// reading is ever compared against another origin.
    clock: Clock,
    /// For a fresh LRU when the cache is flushed.
    capacity: NonZeroUsize,
    /// CACHE_MAX_BYTES, likewise.
    max_bytes: usize,
    expiry: Duration,
    /// STALE_IF_ERROR_SECS: how long an entry is kept past its freshness.
    stale_if_error: Duration,
    /// INVALIDATION_PREFIXES: only keys under one of these are cached while
    /// tracking (empty: every key).
    prefixes: Vec<Vec<u8>>,
    /// Whether CACHE_COMMANDS names GET: when not, a string read is
    /// fetched (and coalesced) as ever but never stored.
    caches_strings: bool,
    /// For the cache's own figures: entries, evictions, expiries, link.
    metrics: Arc<Metrics>,
    /// How often the lock was taken, for the unit tests that count it.
    #[cfg(test)]
    pub(super) locks: std::sync::atomic::AtomicUsize,
}

impl ReadThrough {
    /// An empty cache, its link at `link`, reading the time off `clock`.
    pub(super) fn new(
        config: &Config,
        (link, home): (LinkState, i64),
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> ReadThrough {
        metrics.set_capacity(config.cache_capacity.get(), config.cache_max_bytes);
        metrics.set_link_up(link == LinkState::Up);
        let lru = Lru::new(config.cache_capacity, config.cache_expiry)
            .with_max_bytes(config.cache_max_bytes)
            .with_stale_if_error(config.stale_if_error);
        let hasher = lru.hasher().clone();
        ReadThrough {
            state: Mutex::new(CacheState {
                lru,
                flights: Flights::default(),
                link,
                epoch: 0,
                reply_deps: ReplyDeps::default(),
            }),
            home,
            hasher,
            clock,
            capacity: config.cache_capacity,
            max_bytes: config.cache_max_bytes,
            expiry: config.cache_expiry,
            stale_if_error: config.stale_if_error,
            prefixes: config.invalidation_prefixes.clone(),
            caches_strings: config.cache_commands.iter().any(|name| name == "get"),
            metrics,
            #[cfg(test)]
            locks: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The cache's number for Redis's database `db`: REDIS_ADDRESS's is 0.
    /// Exact, and its own inverse: Redis's numbers here are below 2^32
    /// (REDIS_ADDRESS's is checked to be a u32, `SELECT` takes those below
    /// Redis's `databases`, an int), so their XOR is too.
    pub(super) fn db(&self, db: i64) -> Db {
        (db ^ self.home) as Db
    }

    /// Redis's number for the cache's database `db`.
    pub(super) fn redis_db(&self, db: Db) -> i64 {
        i64::from(db) ^ self.home
    }

    /// The time now, by the clock the core was given.
    pub(super) fn now(&self) -> Time {
        self.clock.now()
    }

    /// Whether CACHE_COMMANDS names GET: without it no string is stored.
    pub(super) fn caches_strings(&self) -> bool {
        self.caches_strings
    }

    /// GLOBAL_CACHE_EXPIRY.
    pub(super) fn expiry(&self) -> Duration {
        self.expiry
    }

    /// Whether an entry is kept past its freshness (STALE_IF_ERROR_SECS).
    pub(super) fn keeps_stale(&self) -> bool {
        !self.stale_if_error.is_zero()
    }

    /// The time `instant` was, by the core's clock (see [`Clock::at`]).
    pub(super) fn time_at(&self, instant: std::time::Instant) -> Time {
        self.clock.at(instant)
    }

    /// A fresh cached value of `key` in Redis's database `db` at `now`, a
    /// time the caller read, never joining or leading a fetch: `take`
    /// gets the cached value under the lock, to copy a small one's bytes
    /// into a buffer of the caller's (no allocation) or clone its handle,
    /// and what it makes is handed back. It must do no more than that: the
    /// lock is held while it runs.
    pub(super) fn cached_with<T>(
        &self,
        db: i64,
        key: &[u8],
        now: Time,
        take: impl FnOnce(&Value) -> T,
    ) -> Option<(T, Life)> {
        self.lookup(
            db,
            key,
            now,
            |value, life| Some((take(value), life)),
            |_| None,
        )
    }

    /// A fresh cached value of `key` in `db`, or else the fetch to lead or
    /// join, under one lock.
    pub(super) fn probe(&self, db: i64, key: &[u8]) -> Probe {
        let at = self.db(db);
        let hit = |value: &Value, life| Probe::Hit(value.clone(), life);
        let now = self.clock.now();
        self.lookup(db, key, now, hit, |state| state.join_or_lead(at, key))
    }

    /// [`ReadThrough::probe`], except that with `may_lead` false a miss with
    /// no fetch in flight starts none.
    pub(super) fn claim(&self, db: i64, key: &[u8], now: Time, may_lead: bool) -> Claimed {
        let at = self.db(db);
        let on_miss = |state: &mut CacheState| match state.joinable(at, key) {
            Some(flight) => Claimed::Follow(flight),
            None if may_lead => match state.join_or_lead(at, key) {
                Probe::Lead(flight) => Claimed::Lead(flight),
                Probe::Follow(flight) => Claimed::Follow(flight),
                Probe::Hit(value, life) => Claimed::Hit(value, life),
            },
            None => Claimed::Pass,
        };
        let hit = |value: &Value, life| Claimed::Hit(value.clone(), life);
        self.lookup(db, key, now, hit, on_miss)
    }

    /// The entry kept for `key` in `db` past its freshness, if within
    /// STALE_IF_ERROR_SECS.
    pub(super) fn stale(&self, db: i64, key: &[u8]) -> Option<(Value, Life)> {
        self.reply_stale(self.db(db), key)
    }

    /// Looks `key` in `db` up at `now` under the lock: `on_hit` gets a
    /// fresh value and how its entry's life stands (fresh for how much
    /// longer, stored how long ago), still under the lock, and makes what
    /// the caller keeps of it; `on_miss` runs, under the lock too, when the key is
    /// absent, has just expired, or the cache cannot vouch for it (the
    /// invalidation link is down, or the key is outside the tracked
    /// prefixes). An expired value is counted and dropped after unlocking.
    fn lookup<T>(
        &self,
        db: i64,
        key: &[u8],
        now: Time,
        on_hit: impl FnOnce(&Value, Life) -> T,
        on_miss: impl FnOnce(&mut CacheState) -> T,
    ) -> T {
        let tracked = self.is_tracked(key);
        let db = self.db(db);
        let hash = self.hasher.hash_in(db, key);
        self.lookup_hashed((hash, db, key), (now, tracked), (on_hit, |_| ()), on_miss)
    }

    /// [`ReadThrough::lookup`] of the entry `key` in the cache's database
    /// `db`, hashed to `hash` (a key's, or a reply's), vouched for only if
    /// `tracked`: after `on_hit`, `after_hit` runs under the lock too, and
    /// what it hands back is dropped after unlocking, as an expired value
    /// is.
    fn lookup_hashed<T, D: Default>(
        &self,
        (hash, db, key): (u64, Db, &[u8]),
        (now, tracked): (Time, bool),
        (on_hit, after_hit): (
            impl FnOnce(&Value, Life) -> T,
            impl FnOnce(&mut CacheState) -> D,
        ),
        on_miss: impl FnOnce(&mut CacheState) -> T,
    ) -> T {
        let mut after = D::default();
        let (result, expired) = {
            let mut state = self.lock();
            if !state.may_cache(tracked) {
                (on_miss(&mut state), None)
            } else {
                match state.lru.get_hashed(hash, db, key, now) {
                    // The hit is now the most recent entry.
                    Lookup::Hit(_) => match state.lru.most_recent(now) {
                        Some((value, life)) => {
                            let result = on_hit(value, life);
                            after = after_hit(&mut state);
                            (result, None)
                        }
                        None => (on_miss(&mut state), None),
                    },
                    Lookup::Miss | Lookup::Stale => (on_miss(&mut state), None),
                    Lookup::Expired(value) => {
                        let lru = &state.lru;
                        self.metrics.set_entries(lru.len(), lru.bytes());
                        (on_miss(&mut state), Some(value))
                    }
                }
            }
        };
        if expired.is_some() {
            self.metrics.expired(1);
        }
        drop(expired);
        drop(after);
        result
    }

    /// Whether `key` is under one of INVALIDATION_PREFIXES (or none are set).
    fn is_tracked(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, CacheState> {
        // Every critical section leaves the state consistent before anything
        // that could panic, so a poisoned lock is still sound to use.
        #[cfg(test)]
        self.locks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    fn mark_flights_stale(&mut self) {
        self.flights.mark_all_stale();
    }

    /// The fetch of `key` in `db` in flight, if a read may still wait on it: not
    /// one an invalidation, a flush or a change of the link made stale,
    /// since what it brings back may be older than what the reader must
    /// see. A later read leads a fetch of its own in its place.
    fn joinable(&self, db: Db, key: &[u8]) -> Option<Arc<Flight>> {
        self.flights
            .get(db, key)
            .filter(|e| !e.stale && e.epoch == self.epoch)
            .map(|e| Arc::clone(&e.flight))
    }

    pub(super) fn join_or_lead(&mut self, db: Db, key: &[u8]) -> Probe {
        if let Some(flight) = self.joinable(db, key) {
            return Probe::Follow(flight);
        }
        let flight = Arc::new(Flight::default());
        let entry = InFlight {
            flight: Arc::clone(&flight),
            epoch: self.epoch,
            stale: false,
        };
        self.flights.insert(db, key, entry);
        Probe::Lead(flight)
    }
}
