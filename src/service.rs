//! The read-through logic every front end calls: look the key up in the
//! cache, and on a miss fetch it from Redis once, however many requests ask
//! for it at the same time, then fill the cache.
//!
//! One `Mutex` guards the LRU and the table of fetches in flight together, so
//! a request takes the lock once on a hit and twice on a miss, and holds it
//! only for map and list work: never across Redis I/O or response writing.
//! Values hold [`Bytes`], so a hit clones a pointer, not the value.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::{Backend, BackendError};
use crate::cache::{Displaced, Lookup, Lru};
use crate::config::Config;
use crate::limit::{Limiter, Permit};
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;

/// A cached value: its bytes, refcounted so a hit clones a pointer, and
/// whether they are UTF-8, decided once at fill time rather than per hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The exact bytes Redis returned.
    pub bytes: Bytes,
    /// True when `bytes` is valid UTF-8.
    pub is_utf8: bool,
}

impl Value {
    /// Wraps `bytes`, checking their encoding once.
    pub fn new(bytes: Bytes) -> Value {
        let is_utf8 = std::str::from_utf8(&bytes).is_ok();
        Value { bytes, is_utf8 }
    }
}

/// A value read through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The value.
    pub value: Value,
    /// True when it came from the cache without asking Redis.
    pub hit: bool,
}

/// What one backing fetch ended with; shared with every waiter.
type Outcome = Result<Option<Value>, BackendError>;

/// One fetch in flight: the leader fills `outcome`, waiters sleep on `done`.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

/// What the lock protects.
struct State {
    lru: Lru<Value>,
    flights: HashMap<Box<[u8]>, Arc<Flight>>,
}

/// The read-through cache shared by every worker of every front end.
///
/// Thread-safe; share it with an `Arc`. Every method holds the lock only for
/// O(1) map and list work.
pub struct Service {
    state: Mutex<State>,
    backend: Backend,
    wait_limit: Duration,
    metrics: Arc<Metrics>,
    backend_warnings: LogLimiter,
    /// MAX_CLIENTS places shared by every front end.
    places: Limiter,
    max_key_bytes: usize,
}

/// What the locked part of a lookup decided.
enum Step {
    Hit(Value),
    Lead(Arc<Flight>),
    Follow(Arc<Flight>),
}

impl Service {
    /// A service with an empty cache over `backend`.
    pub fn new(config: &Config, backend: Backend, metrics: Arc<Metrics>) -> Service {
        metrics.set_capacity(config.cache_capacity.get());
        Service {
            state: Mutex::new(State {
                lru: Lru::new(config.cache_capacity, config.cache_expiry),
                flights: HashMap::new(),
            }),
            backend,
            wait_limit: config.redis_timeout,
            metrics,
            backend_warnings: LogLimiter::new(Duration::from_secs(5)),
            places: Limiter::new(config.max_clients.get()),
            max_key_bytes: config.max_key_bytes,
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

    /// Waits for one of the MAX_CLIENTS places, in arrival order; a front end
    /// holds it while it serves a request that reads keys.
    pub fn admit(&self) -> Permit<'_> {
        self.places.acquire(Some(&self.metrics))
    }

    /// One of the MAX_CLIENTS places if one is free right now, without
    /// waiting: for front ends that must not block (the RESP event loop).
    pub fn try_admit(&self) -> Option<Permit<'_>> {
        self.places.try_acquire()
    }

    /// The cached value of `key`, if it is cached and fresh; never asks
    /// Redis, never waits on a fetch. A hit counts as one; on `None` the
    /// caller goes on to [`Service::get`], which counts the miss.
    pub fn cached(&self, key: &[u8]) -> Option<Found> {
        let value = self.lookup(key, Some, |_| None)?;
        self.metrics.hit();
        Some(Found { value, hit: true })
    }

    /// Looks `key` up under the lock: `on_hit` gets a fresh value, and
    /// `on_miss` runs, still under the lock, when the key is absent or has
    /// just expired. An expired value is counted and dropped after unlocking.
    fn lookup<T>(
        &self,
        key: &[u8],
        on_hit: impl FnOnce(Value) -> T,
        on_miss: impl FnOnce(&mut State) -> T,
    ) -> T {
        let now = Instant::now();
        let (result, expired) = {
            let mut state = self.lock();
            match state.lru.get(key, now) {
                Lookup::Hit(value) => (on_hit(value.clone()), None),
                Lookup::Miss => (on_miss(&mut state), None),
                Lookup::Expired(value) => (on_miss(&mut state), Some(value)),
            }
        };
        if expired.is_some() {
            self.metrics.expired(1);
        }
        drop(expired);
        result
    }

    /// Whether Redis answers a PING now, on a connection outside the pool
    /// (so a pool busy with misses does not read as Redis being down).
    pub fn ready(&self) -> Result<(), BackendError> {
        self.backend.ping()
    }

    /// Reads `key` through the cache: `Ok(None)` when Redis has no such key
    /// (which is not cached). Concurrent misses on one key share one fetch.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>, BackendError> {
        match self.lookup(key, Step::Hit, |state| state.join_or_lead(key)) {
            Step::Hit(value) => {
                self.metrics.hit();
                Ok(Some(Found { value, hit: true }))
            }
            Step::Lead(flight) => {
                self.metrics.miss();
                self.lead(key, &flight)
            }
            Step::Follow(flight) => {
                self.metrics.miss();
                self.metrics.coalesced();
                self.follow(&flight)
            }
        }
    }

    /// Fetches `key` for everyone waiting on `flight`, fills the cache, and
    /// wakes the waiters. A guard finishes the flight even if the fetch
    /// panics, so no waiter is stranded.
    fn lead(&self, key: &[u8], flight: &Arc<Flight>) -> Result<Option<Found>, BackendError> {
        let mut guard = LeaderGuard {
            service: self,
            key,
            flight,
            finished: false,
        };
        let started = Instant::now();
        let fetched = self.backend.get(key);
        self.metrics.backend_call(&fetched, started.elapsed());
        if let Err(err) = &fetched {
            self.backend_warnings.warn(format_args!("{err}"));
        }
        let outcome = fetched.map(|bytes| bytes.map(Value::new));
        guard.finish(outcome.clone());
        outcome.map(|value| value.map(|value| Found { value, hit: false }))
    }

    /// Waits for another request's fetch of the same key, up to the Redis
    /// timeout.
    fn follow(&self, flight: &Flight) -> Result<Option<Found>, BackendError> {
        let slot = flight
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (slot, _) = flight
            .done
            .wait_timeout_while(slot, self.wait_limit, |outcome| outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(outcome) => outcome
                .clone()
                .map(|value| value.map(|value| Found { value, hit: false })),
            None => Err(BackendError::Timeout(format!(
                "no answer within {} ms",
                self.wait_limit.as_millis()
            ))),
        }
    }

    /// Ends a flight: caches a found value, retires the flight, then hands
    /// the outcome to its waiters.
    fn finish_flight(&self, key: &[u8], flight: &Flight, outcome: Outcome) {
        let displaced = {
            let mut state = self.lock();
            state.flights.remove(key);
            let displaced = match &outcome {
                Ok(Some(value)) => state.lru.insert(key, value.clone(), Instant::now()),
                _ => Displaced::Nothing,
            };
            self.metrics.set_entries(state.lru.len());
            displaced
        };
        match displaced {
            Displaced::Evicted(..) => self.metrics.evicted(1),
            Displaced::Expired(..) => self.metrics.expired(1),
            Displaced::Nothing | Displaced::Replaced(_) => {}
        }
        drop(displaced);
        let mut slot = flight
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(outcome);
        flight.done.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything
        // that could panic, so a poisoned lock is still sound to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn join_or_lead(&mut self, key: &[u8]) -> Step {
        if let Some(flight) = self.flights.get(key) {
            return Step::Follow(Arc::clone(flight));
        }
        let flight = Arc::new(Flight::default());
        self.flights.insert(key.into(), Arc::clone(&flight));
        Step::Lead(flight)
    }
}

/// Finishes the leader's flight exactly once, with an error if the leader
/// unwinds before it has an outcome.
struct LeaderGuard<'a> {
    service: &'a Service,
    key: &'a [u8],
    flight: &'a Flight,
    finished: bool,
}

impl LeaderGuard<'_> {
    fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.service.finish_flight(self.key, self.flight, outcome);
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.service.finish_flight(
                self.key,
                self.flight,
                Err(BackendError::Unavailable("fetch aborted".to_owned())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(timeout_ms: &str) -> Service {
        // Nothing listens on port 1: the backend is never reached here.
        let config = Config::from_lookup(|name| match name {
            "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
            "REDIS_TIMEOUT_MS" => Some(timeout_ms.to_owned()),
            _ => None,
        })
        .expect("valid config");
        let backend = Backend::new(&config).expect("backend");
        Service::new(&config, backend, Arc::new(Metrics::new()))
    }

    #[test]
    fn a_waiter_gives_up_with_a_timeout_when_the_fetch_never_ends() {
        let service = service("50");
        // A fetch that is in flight and never finishes.
        let stuck = Arc::new(Flight::default());
        service
            .lock()
            .flights
            .insert(b"k"[..].into(), Arc::clone(&stuck));
        assert!(matches!(service.get(b"k"), Err(BackendError::Timeout(_))));
        assert_eq!(service.metrics().misses(), 1);
    }

    #[test]
    fn a_waiter_gets_the_leaders_value() {
        let service = Arc::new(service("5000"));
        let flight = Arc::new(Flight::default());
        service
            .lock()
            .flights
            .insert(b"k"[..].into(), Arc::clone(&flight));
        let waiter = {
            let service = Arc::clone(&service);
            std::thread::spawn(move || service.get(b"k"))
        };
        while service.metrics().coalesced_count() == 0 {
            std::thread::yield_now();
        }
        let value = Value::new(Bytes::from_static(b"v"));
        service.finish_flight(b"k", &flight, Ok(Some(value.clone())));
        let found = waiter.join().expect("waiter").expect("value");
        assert_eq!(
            found,
            Some(Found {
                value: value.clone(),
                hit: false
            })
        );
        // The fill is cached for the next reader.
        assert_eq!(service.get(b"k"), Ok(Some(Found { value, hit: true })));
    }
}
