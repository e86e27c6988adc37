//! The read-through logic without Redis: flights put in place by hand, and
//! the invalidation link's calls made directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::flight::Flight;
use super::*;
use crate::backend::InvalidationSink;
use crate::clock::ManualClock;

/// A service whose time stands still unless a test moves it.
fn service_with(timeout_ms: &str, invalidation: &str) -> Service {
    build(timeout_ms, invalidation, ManualClock::new().clock())
}

/// A service with INVALIDATION=off, and the hand of its clock.
fn timed(timeout_ms: &str) -> (Service, ManualClock) {
    let hand = ManualClock::new();
    (build(timeout_ms, "off", hand.clock()), hand)
}

fn build(timeout_ms: &str, invalidation: &str, clock: Clock) -> Service {
    // Nothing listens on port 1: the backend is never reached here.
    let config = Config::from_lookup(|name| match name {
        "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
        "REDIS_TIMEOUT_MS" => Some(timeout_ms.to_owned()),
        "INVALIDATION" => Some(invalidation.to_owned()),
        "INVALIDATION_PREFIXES" if invalidation == "tracking" => Some("t:".to_owned()),
        _ => None,
    })
    .expect("valid config");
    let backend = Backend::new(&config).expect("backend");
    Service::new(&config, backend, Arc::new(Metrics::new()), clock)
}

fn service(timeout_ms: &str) -> Service {
    service_with(timeout_ms, "off")
}

/// A fetch of `key` in flight that only the test finishes.
fn in_flight(service: &Service, key: &[u8]) -> Arc<Flight> {
    match service.core.lock().join_or_lead(0, key) {
        Probe::Lead(flight) => flight,
        _ => panic!("a flight for the key was already in place"),
    }
}

fn value(bytes: &'static [u8]) -> Value {
    Value::new(bytes)
}

/// A value read from Redis for a key without a TTL there.
fn fetched(bytes: &'static [u8]) -> Fetched {
    Fetched {
        value: Value::new(bytes),
        ends: None,
    }
}

/// Waits, up to a bound, until `check` holds.
fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn a_waiter_gives_up_with_a_timeout_when_the_fetch_never_ends() {
    let service = service("50");
    let _stuck = in_flight(&service, b"k");
    assert!(matches!(service.get(b"k"), Err(ReadError::Timeout(_))));
    assert_eq!(service.metrics().misses(), 1);
}

#[test]
fn a_waiter_gets_the_leaders_value() {
    let (service, hand) = timed("5000");
    let service = Arc::new(service);
    let flight = in_flight(&service, b"k");
    let waiter = {
        let service = Arc::clone(&service);
        std::thread::spawn(move || service.get(b"k"))
    };
    until("the waiter to join the flight", || {
        service.metrics().coalesced_count() == 1
    });
    service.finish_flight(0, b"k", &flight, Ok(Some(fetched(b"v"))));
    let found = waiter
        .join()
        .expect("waiter")
        .expect("value")
        .expect("found");
    assert_eq!((found.value, found.source), (value(b"v"), Source::Miss));
    // Just read from Redis: fresh for the whole lifetime (60 s by default).
    assert_eq!(
        (found.fresh_for, found.age),
        (Duration::from_secs(60), Duration::ZERO)
    );
    // The fill is cached for the next reader, fresh for what is left.
    let hit = service.get(b"k").expect("read").expect("found");
    assert_eq!((hit.value, hit.source), (value(b"v"), Source::Hit));
    assert_eq!(
        (hit.fresh_for, hit.age),
        (Duration::from_secs(60), Duration::ZERO)
    );
    hand.advance(Duration::from_secs(10));
    let hit = service.get(b"k").expect("read").expect("found");
    assert_eq!(
        (hit.source, hit.fresh_for, hit.age),
        (
            Source::Hit,
            Duration::from_secs(50),
            Duration::from_secs(10)
        )
    );
}

#[test]
fn an_entry_expires_after_the_lifetime_however_often_it_is_read() {
    let (service, hand) = timed("1000");
    let flight = in_flight(&service, b"k");
    service.finish_flight(0, b"k", &flight, Ok(Some(fetched(b"v"))));
    // Read just before the end: had a read extended the lifetime, the
    // entry would still be fresh at 60 s.
    hand.advance(Duration::from_secs(59));
    let hit = service.cached(b"k").expect("fresh until 60 s");
    assert_eq!(hit.fresh_for, Duration::from_secs(1));
    hand.advance(Duration::from_secs(1));
    assert!(service.cached(b"k").is_none());
    assert_eq!(service.metrics().expirations(), 1);
}

/// A tracking service whose link is up.
fn tracking() -> Service {
    let service = service_with("5000", "tracking");
    service.link_up();
    service
}

#[test]
fn nothing_is_cached_until_the_link_is_up() {
    let service = service_with("5000", "tracking");
    assert_eq!(service.link_state(), LinkState::Down);
    let flight = in_flight(&service, b"t:k");
    service.finish_flight(0, b"t:k", &flight, Ok(Some(fetched(b"v"))));
    assert!(service.cached(b"t:k").is_none());
}

#[test]
fn a_fill_racing_an_invalidation_answers_but_is_not_stored() {
    let service = tracking();
    let flight = in_flight(&service, b"t:k");
    service.invalidate(&[b"t:k"]);
    service.finish_flight(0, b"t:k", &flight, Ok(Some(fetched(b"old"))));
    assert_eq!(flight.wait(Duration::ZERO), Ok(Some(fetched(b"old"))));
    assert!(service.cached(b"t:k").is_none());
    // Without the race, the same fill is stored.
    let flight = in_flight(&service, b"t:k");
    service.finish_flight(0, b"t:k", &flight, Ok(Some(fetched(b"new"))));
    assert_eq!(service.cached(b"t:k").map(|f| f.value), Some(value(b"new")));
}

#[test]
fn a_read_after_an_invalidation_does_not_wait_on_the_fetch_it_made_stale() {
    let service = tracking();
    let stale = in_flight(&service, b"t:k");
    service.invalidate(&[b"t:k"]);
    // The fetch begun before the change may bring back the old value: a
    // read that comes after the change leads one of its own.
    let fresh = in_flight(&service, b"t:k");
    assert!(!Arc::ptr_eq(&stale, &fresh));
    // The stale fetch ends first: not stored, and the new one stays.
    service.finish_flight(0, b"t:k", &stale, Ok(Some(fetched(b"old"))));
    assert!(service.cached(b"t:k").is_none());
    service.finish_flight(0, b"t:k", &fresh, Ok(Some(fetched(b"new"))));
    assert_eq!(service.cached(b"t:k").map(|f| f.value), Some(value(b"new")));
    // Likewise after a flush.
    let stale = in_flight(&service, b"t:k2");
    service.flush();
    let fresh = in_flight(&service, b"t:k2");
    assert!(!Arc::ptr_eq(&stale, &fresh));
}

#[test]
fn an_invalidation_drops_the_entry_and_a_flush_drops_all() {
    let service = tracking();
    for key in [&b"t:a"[..], b"t:b", b"t:c"] {
        let flight = in_flight(&service, key);
        service.finish_flight(0, key, &flight, Ok(Some(fetched(b"v"))));
    }
    service.invalidate(&[b"t:a", b"t:unknown"]);
    assert!(service.cached(b"t:a").is_none());
    assert!(service.cached(b"t:b").is_some());
    let racing = in_flight(&service, b"t:d");
    service.flush();
    assert!(service.cached(b"t:b").is_none() && service.cached(b"t:c").is_none());
    service.finish_flight(0, b"t:d", &racing, Ok(Some(fetched(b"v"))));
    assert!(service.cached(b"t:d").is_none());
}

#[test]
fn a_lost_link_drops_everything_and_bypasses_until_it_is_back() {
    let service = tracking();
    let flight = in_flight(&service, b"t:a");
    service.finish_flight(0, b"t:a", &flight, Ok(Some(fetched(b"v"))));
    let begun_before = in_flight(&service, b"t:b");
    service.link_lost();
    assert_eq!(service.link_state(), LinkState::Down);
    assert!(service.cached(b"t:a").is_none());
    // Back up: a fetch begun before the loss is still not stored.
    service.link_up();
    service.finish_flight(0, b"t:b", &begun_before, Ok(Some(fetched(b"v"))));
    assert!(service.cached(b"t:b").is_none());
}

#[test]
fn keys_outside_the_tracked_prefixes_are_read_through_uncached() {
    let service = tracking();
    let flight = in_flight(&service, b"other");
    service.finish_flight(0, b"other", &flight, Ok(Some(fetched(b"v"))));
    assert!(service.cached(b"other").is_none());
}

#[test]
fn auto_falling_back_to_off_caches_by_ttl_alone() {
    let service = service_with("5000", "auto");
    service.tracking_off();
    assert_eq!(service.link_state(), LinkState::Off);
    let flight = in_flight(&service, b"k");
    service.finish_flight(0, b"k", &flight, Ok(Some(fetched(b"v"))));
    assert!(service.cached(b"k").is_some());
}

#[test]
fn a_key_ending_in_redis_is_cached_no_longer_than_its_ttl() {
    let (service, hand) = timed("1000");
    let now = service.core.now();
    let flight = in_flight(&service, b"k");
    let ends = now + Duration::from_secs(5);
    let outcome = Ok(Some(Fetched {
        value: value(b"v"),
        ends: Some(ends),
    }));
    service.finish_flight(0, b"k", &flight, outcome);
    let hit = service.cached(b"k").expect("cached");
    // Never past the end; earlier by at most the stamp's rounding (~4 ms).
    let within = |d: Duration| d <= Duration::from_secs(5) && d > Duration::from_millis(4990);
    assert!(within(hit.fresh_for), "{hit:?}");
    // The waiters' answer says the same.
    let found = service
        .as_found(flight.wait(Duration::ZERO))
        .expect("found")
        .expect("a value");
    assert_eq!(found.fresh_for, Duration::from_secs(5), "{found:?}");
    // Still a hit just before the end, gone at it.
    hand.advance(Duration::from_millis(4900));
    assert!(service.cached(b"k").is_some());
    hand.advance(Duration::from_millis(100));
    assert!(service.cached(b"k").is_none());
}

#[test]
fn a_value_with_no_life_left_answers_its_readers_and_is_not_cached() {
    let service = service("1000");
    let flight = in_flight(&service, b"k");
    service.finish_flight(0, b"k", &flight, Ok(Some(fetched(b"old"))));
    assert!(service.cached(b"k").is_some());
    service.core.lock().lru.expire_all(service.core.now());
    // Read again: the key went between the GET and the PTTL.
    let flight = in_flight(&service, b"k");
    let gone = Fetched {
        value: value(b"v"),
        ends: Some(service.core.now()),
    };
    service.finish_flight(0, b"k", &flight, Ok(Some(gone)));
    let found = service
        .as_found(flight.wait(Duration::ZERO))
        .expect("found")
        .expect("a value");
    assert_eq!(
        (found.value, found.fresh_for),
        (value(b"v"), Duration::ZERO)
    );
    assert!(service.cached(b"k").is_none());
    // And nothing was kept of the old value, even for stale-if-error.
    assert!(service.core.stale(0, b"k").is_none());
}

/// The fetch a claim led or joined.
fn ticket(claim: Claim) -> Ticket {
    match claim {
        Claim::Fetch(ticket) => ticket,
        Claim::Hit(_) | Claim::Pass => panic!("not a fetch"),
    }
}

/// The places free now (taken and given back).
fn free_places(service: &Service) -> usize {
    std::iter::from_fn(|| service.try_admit())
        .collect::<Vec<_>>()
        .len()
}

#[test]
fn a_claimed_miss_is_finished_without_looking_the_key_up_again() {
    use std::sync::atomic::Ordering::Relaxed;
    let service = service("100");
    let places = free_places(&service);
    // Two RESP reads of one key on the event loop: each looks it up once,
    // the first leading the fetch, the second joining it.
    let locks = service.core.locks.load(Relaxed);
    let lead = ticket(service.claim(
        0,
        b"k",
        service.try_admit().expect("a place"),
        true,
        Instant::now(),
    ));
    let follow = ticket(service.claim(
        0,
        b"k",
        service.try_admit().expect("a place"),
        true,
        Instant::now(),
    ));
    assert_eq!(service.core.locks.load(Relaxed) - locks, 2);
    assert_eq!(service.metrics().coalesced_count(), 1);
    // The leader keeps the place its lookup took until a worker finishes
    // it; the follower, which only waits, gave its back.
    assert_eq!(free_places(&service), places - 1);
    let locks = service.core.locks.load(Relaxed);
    // Nothing listens on port 1: the fetch fails, for both readers (the
    // follower, finished second, finds the outcome waiting).
    let led = service.finish(b"k", lead);
    assert!(matches!(led, Err(ReadError::Unavailable(_))), "{led:?}");
    assert_eq!(service.finish(b"k", follow), led);
    // The workers took the lock once between them, to retire the fetch:
    // no second lookup.
    assert_eq!(service.core.locks.load(Relaxed) - locks, 1);
    assert_eq!(service.metrics().misses(), 2);
    assert_eq!(free_places(&service), places);
}

#[test]
fn while_a_handed_over_read_waits_for_a_place_a_claim_leads_nothing() {
    let service = service("100");
    let mut deferred = service.defer();
    // No fetch in flight: none is started; the worker reads through.
    let claim = service.claim(
        0,
        b"k",
        service.try_admit().expect("a place"),
        true,
        Instant::now(),
    );
    assert!(matches!(claim, Claim::Pass));
    // A fetch in flight is still joined: waiting needs no place.
    let flight = in_flight(&service, b"k");
    let follow = ticket(service.claim(
        0,
        b"k",
        service.try_admit().expect("a place"),
        true,
        Instant::now(),
    ));
    service.finish_flight(0, b"k", &flight, Ok(Some(fetched(b"v"))));
    let found = service.finish(b"k", follow).expect("read").expect("found");
    assert_eq!(found.value, value(b"v"));
    // Once the handed-over read has its place, the loop leads again.
    deferred.done();
    let lead = ticket(service.claim(
        0,
        b"other",
        service.try_admit().expect("a place"),
        true,
        Instant::now(),
    ));
    assert!(service.finish(b"other", lead).is_err());
}
