//! The read-through core keyed by database, without Redis: fetches in
//! flight and entries apart per database, an invalidation (which names no
//! database) reaching every one, and the cache's numbering of Redis's
//! databases around REDIS_ADDRESS's.

use std::sync::Arc;

use super::fill::Fetched;
use super::flight::Flight;
use super::read_through::Probe;
use super::*;
use crate::backend::InvalidationSink;
use crate::clock::ManualClock;

/// A service over REDIS_ADDRESS's database `home`, with INVALIDATION=off
/// and a stale-if-error period, and the hand of its clock. Nothing
/// listens on port 1: a fetch fails at once.
fn timed(home: u32) -> (Service, ManualClock) {
    let config = Config::from_lookup(|name| match name {
        "REDIS_ADDRESS" => Some(format!("redis://127.0.0.1:1/{home}")),
        "REDIS_TIMEOUT_MS" => Some("100".to_owned()),
        "INVALIDATION" => Some("off".to_owned()),
        "STALE_IF_ERROR_SECS" => Some("30".to_owned()),
        _ => None,
    })
    .expect("valid config");
    let backend = Backend::new(&config).expect("backend");
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let hand = ManualClock::new();
    let service = Service::new(&config, backend, metrics, hand.clock());
    (service, hand)
}

fn service(home: u32) -> Service {
    timed(home).0
}

/// A fetch of `key` in Redis's database `db` that only the test finishes.
fn in_flight(service: &Service, db: i64, key: &[u8]) -> Arc<Flight> {
    let at = service.core.db(db);
    match service.core.lock().join_or_lead(at, key) {
        Probe::Lead(flight) => flight,
        _ => panic!("a flight for the key was already in place"),
    }
}

/// Fills `key` in `db` with `value` through a flight of its own.
fn fill(service: &Service, db: i64, key: &[u8], value: &'static [u8]) {
    let flight = in_flight(service, db, key);
    let fetched = Fetched {
        value: Value::new(value),
        ends: None,
    };
    service.finish_flight(db, key, &flight, Ok(Some(fetched)));
}

fn cached(service: &Service, db: i64, key: &[u8]) -> Option<Value> {
    let now = service.core.now();
    let hit = service.core.cached_with(db, key, now, Value::clone);
    hit.map(|(value, _)| value)
}

#[test]
fn the_cache_numbers_redis_address_s_database_0_exactly_both_ways() {
    let service = service(3);
    assert_eq!(service.core.db(3), 0);
    for db in [0, 1, 2, 3, 15, 255, 256, i64::from(u32::MAX >> 1)] {
        assert_eq!(service.core.redis_db(service.core.db(db)), db);
    }
    // HTTP's reads (`cached_with`, `get`) are REDIS_ADDRESS's database's.
    fill(&service, 3, b"k", b"three");
    fill(&service, 0, b"k", b"zero");
    let hit = service.cached(b"k").map(|found| found.value);
    assert_eq!(hit, Some(Value::new(b"three")));
    assert_eq!(service.entries_by_db(), vec![(0, 1), (3, 1)]);
}

#[test]
fn fetches_in_flight_are_per_database_and_a_change_makes_every_one_stale() {
    let service = service(0);
    let one = in_flight(&service, 1, b"k");
    // Database 2's read of the same key does not join database 1's fetch.
    let two = in_flight(&service, 2, b"k");
    assert!(!Arc::ptr_eq(&one, &two));
    // A change announced (in no database) while both are in flight: neither
    // fill is stored.
    service.invalidate(&[b"k"]);
    let fetched = |value: &'static [u8]| {
        Ok(Some(Fetched {
            value: Value::new(value),
            ends: None,
        }))
    };
    service.finish_flight(1, b"k", &one, fetched(b"one"));
    service.finish_flight(2, b"k", &two, fetched(b"two"));
    assert_eq!(
        (cached(&service, 1, b"k"), cached(&service, 2, b"k")),
        (None, None)
    );
    // Fetches begun after it fill each database's own entry.
    fill(&service, 1, b"k", b"one");
    fill(&service, 2, b"k", b"two");
    assert_eq!(cached(&service, 1, b"k"), Some(Value::new(b"one")));
    assert_eq!(cached(&service, 2, b"k"), Some(Value::new(b"two")));
    assert_eq!(cached(&service, 0, b"k"), None);
    assert_eq!(service.entries_by_db(), vec![(1, 1), (2, 1)]);
    // The next change drops the key in both, and no other key.
    fill(&service, 2, b"other", b"v");
    service.invalidate(&[b"k"]);
    assert_eq!(
        (cached(&service, 1, b"k"), cached(&service, 2, b"k")),
        (None, None)
    );
    assert_eq!(service.entries_by_db(), vec![(2, 1)]);
}

#[test]
fn stale_if_error_serves_each_database_its_own_entry() {
    let (service, hand) = timed(0);
    fill(&service, 1, b"k", b"one");
    fill(&service, 2, b"k", b"two");
    // Past the lifetime (60 s), within the stale-if-error period: Redis
    // cannot be read, so each database's kept entry is served.
    hand.advance(std::time::Duration::from_secs(61));
    for (db, want) in [(1, &b"one"[..]), (2, b"two")] {
        let found = service.get_in(db, b"k").expect("stale").expect("found");
        assert_eq!(
            (found.value, found.source),
            (Value::new(want), Source::Stale)
        );
    }
    // None in a database that never held it.
    assert!(service.get_in(3, b"k").is_err());
}
