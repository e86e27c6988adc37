//! The LRU's unit tests: each operation, expiry, grace, and the invariants.

use super::*;

fn lru(capacity: usize, ttl_secs: u64) -> Lru<u32> {
    Lru::new(
        NonZeroUsize::new(capacity).expect("test capacity is positive"),
        Duration::from_secs(ttl_secs),
    )
}

#[test]
fn hit_after_insert_and_miss_for_unknown() {
    let now = Time::ZERO;
    let mut cache = lru(2, 10);
    assert_eq!(cache.insert(b"a", 1, now), Displaced::Nothing);
    assert_eq!(cache.get(b"a", now), Lookup::Hit(&1));
    assert_eq!(cache.get(b"b", now), Lookup::Miss);
    cache.validate();
}

#[test]
fn evicts_least_recently_read() {
    let now = Time::ZERO;
    let mut cache = lru(3, 10);
    for (i, key) in [b"a", b"b", b"c"].iter().enumerate() {
        cache.insert(*key, i as u32, now);
    }
    assert_eq!(cache.get(b"a", now), Lookup::Hit(&0));
    assert_eq!(
        cache.insert(b"d", 3, now),
        Displaced::Evicted(Key::new(0, b"b"), 1)
    );
    assert_eq!(cache.keys_by_recency(), vec![&b"d"[..], b"a", b"c"]);
    cache.validate();
}

#[test]
fn expiry_counts_from_insertion_and_reads_do_not_extend_it() {
    let mut cache = lru(2, 10);
    let start = Time::ZERO;
    cache.insert(b"a", 1, start);
    assert_eq!(
        cache.get(b"a", start + Duration::from_secs(9)),
        Lookup::Hit(&1)
    );
    assert_eq!(
        cache.get(b"a", start + Duration::from_secs(10)),
        Lookup::Expired(1)
    );
    assert_eq!(
        cache.get(b"a", start + Duration::from_secs(10)),
        Lookup::Miss
    );
    assert!(cache.is_empty());
    cache.validate();
}

#[test]
fn full_cache_reclaims_an_expired_entry_before_evicting_a_live_one() {
    let mut cache = lru(2, 10);
    let start = Time::ZERO;
    cache.insert(b"old", 1, start);
    cache.insert(b"new", 2, start + Duration::from_secs(5));
    // "old" is the most recently read, "new" the least, but "old" expired.
    let later = start + Duration::from_secs(11);
    assert_eq!(cache.get(b"new", later), Lookup::Hit(&2));
    cache.insert(b"x", 3, later);
    cache.validate();
    assert_eq!(cache.get(b"new", later), Lookup::Hit(&2));
    assert_eq!(cache.get(b"old", later), Lookup::Miss);
}

#[test]
fn reinsert_replaces_value_and_restamps() {
    let mut cache = lru(2, 10);
    let start = Time::ZERO;
    cache.insert(b"a", 1, start);
    let later = start + Duration::from_secs(8);
    assert_eq!(cache.insert(b"a", 2, later), Displaced::Replaced(1));
    assert_eq!(
        cache.get(b"a", start + Duration::from_secs(12)),
        Lookup::Hit(&2)
    );
    cache.validate();
}

#[test]
fn purge_expired_removes_only_expired() {
    let mut cache = lru(4, 10);
    let start = Time::ZERO;
    cache.insert(b"a", 1, start);
    cache.insert(b"b", 2, start + Duration::from_secs(3));
    cache.insert(b"c", 3, start + Duration::from_secs(6));
    let purged = cache.purge_expired(start + Duration::from_secs(13));
    assert_eq!(purged.len(), 2);
    assert_eq!(cache.keys_by_recency(), vec![&b"c"[..]]);
    cache.validate();
}

#[test]
fn capacity_one() {
    let now = Time::ZERO;
    let mut cache = lru(1, 10);
    cache.insert(b"a", 1, now);
    assert_eq!(
        cache.insert(b"b", 2, now),
        Displaced::Evicted(Key::new(0, b"a"), 1)
    );
    assert_eq!(cache.len(), 1);
    cache.validate();
}

#[test]
fn grace_keeps_an_expired_entry_as_stale_then_lets_it_go() {
    let start = Time::ZERO;
    let secs = Duration::from_secs;
    let mut cache =
        Lru::new(NonZeroUsize::new(2).expect("non-zero"), secs(10)).with_stale_if_error(secs(5));
    cache.insert(b"k", 1, start);
    assert_eq!(cache.get(b"k", start + secs(12)), Lookup::Stale);
    assert_eq!(
        cache.stale(b"k", start + secs(12)).map(|(v, _)| *v),
        Some(1)
    );
    assert_eq!(cache.get(b"k", start + secs(16)), Lookup::Expired(1));
    assert_eq!(cache.stale(b"k", start + secs(16)), None);
    // Stale entries are the first to go when room is needed.
    cache.insert(b"a", 2, start);
    cache.insert(b"b", 3, start + secs(8));
    assert!(matches!(
        cache.insert(b"c", 4, start + secs(11)),
        Displaced::Expired(_, 2)
    ));
    cache.validate();
}

#[test]
fn expire_all_ends_freshness_now_and_keeps_the_grace() {
    let start = Time::ZERO;
    let secs = Duration::from_secs;
    let mut cache =
        Lru::new(NonZeroUsize::new(4).expect("non-zero"), secs(60)).with_stale_if_error(secs(5));
    cache.insert(b"a", 1, start);
    cache.insert(b"b", 2, start + secs(1));
    cache.expire_all(start + secs(2));
    assert_eq!(cache.get(b"a", start + secs(2)), Lookup::Stale);
    assert_eq!(cache.stale(b"b", start + secs(6)).map(|(v, _)| *v), Some(2));
    assert_eq!(cache.get(b"b", start + secs(7)), Lookup::Expired(2));
    cache.validate();
}

#[test]
fn hashes_made_outside_fit_the_cache_and_its_replacements() {
    let now = Time::ZERO;
    let mut cache = Lru::new(
        NonZeroUsize::new(4).expect("non-zero"),
        Duration::from_secs(60),
    );
    let hasher = cache.hasher().clone();
    cache.insert_hashed(hasher.hash(b"k"), 0, b"k", 1, now);
    assert_eq!(cache.get(b"k", now), Lookup::Hit(&1));
    assert_eq!(
        cache.get_hashed(hasher.hash(b"k"), 0, b"k", now),
        Lookup::Hit(&1)
    );
    // A replacement built with the same hasher takes the same hashes.
    let mut fresh = Lru::new(
        NonZeroUsize::new(4).expect("non-zero"),
        Duration::from_secs(60),
    )
    .with_hasher(hasher.clone());
    fresh.insert(b"k", 2, now);
    assert_eq!(fresh.remove_hashed(hasher.hash(b"k"), 0, b"k"), Some(2));
    fresh.validate();
}

#[test]
fn an_entry_ending_sooner_in_redis_is_no_hit_past_that_end() {
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let start = Time::ZERO + secs(100);
    let mut cache = lru(4, 60).with_stale_if_error(secs(30));
    cache.insert_until(b"short", 1, start, start + ms(300));
    cache.insert(b"plain", 2, start);
    assert_eq!(cache.get(b"short", start + ms(290)), Lookup::Hit(&1));
    let life = cache.most_recent_life(start + ms(290)).expect("an entry");
    assert!(life.fresh_for <= ms(10), "{life:?}");
    assert_eq!(cache.get(b"plain", start + ms(300)), Lookup::Hit(&2));
    // Past its end in Redis it is gone, with no stale grace either.
    assert_eq!(cache.stale(b"short", start + ms(300)), None);
    assert_eq!(cache.get(b"short", start + ms(300)), Lookup::Expired(1));
    cache.validate();
}

#[test]
fn an_entry_ending_after_the_lifetime_lives_the_lifetime_and_grace_up_to_its_end() {
    let secs = Duration::from_secs;
    let start = Time::ZERO + secs(100);
    let mut cache = lru(4, 60).with_stale_if_error(secs(30));
    cache.insert_until(b"k", 1, start, start + secs(70));
    assert_eq!(cache.get(b"k", start + secs(59)), Lookup::Hit(&1));
    let life = cache.most_recent_life(start + secs(59)).expect("an entry");
    // The stamp rounds its expiry down by a few milliseconds.
    assert!(life.age >= secs(59) && life.age < secs(60), "{life:?}");
    assert!(life.fresh_for <= secs(1), "{life:?}");
    assert_eq!(cache.get(b"k", start + secs(60)), Lookup::Stale);
    let (_, stale) = cache.stale(b"k", start + secs(69)).expect("in grace");
    assert_eq!(stale.fresh_for, Duration::ZERO);
    assert!(stale.age >= secs(68), "{stale:?}");
    assert_eq!(cache.stale(b"k", start + secs(70)), None);
    cache.validate();
}

#[test]
fn life_reports_the_age_of_a_capped_entry_from_its_fill() {
    let secs = Duration::from_secs;
    let start = Time::ZERO + secs(100);
    let mut cache = lru(4, 60);
    cache.insert_until(b"k", 1, start, start + secs(10));
    cache.get(b"k", start + secs(4));
    let life = cache.most_recent_life(start + secs(4)).expect("an entry");
    // To within a second (the end in Redis is kept in whole seconds).
    let near = |d: Duration, true_d: Duration| d + secs(1) > true_d && d < true_d + secs(1);
    assert!(near(life.age, secs(4)), "{life:?}");
    assert!(near(life.fresh_for, secs(6)), "{life:?}");
}

#[test]
fn a_full_cache_counts_an_expired_least_recent_entry_as_expired() {
    let secs = Duration::from_secs;
    let start = Time::ZERO + secs(100);
    let mut cache = lru(2, 60);
    cache.insert(b"old", 1, start);
    cache.insert_until(b"short", 2, start + secs(1), start + secs(2));
    cache.get(b"old", start + secs(1));
    // "old" leads the age list and is live; "short" is least recent and dead.
    assert!(matches!(
        cache.insert(b"new", 3, start + secs(3)),
        Displaced::Expired(_, 2)
    ));
    cache.validate();
}

mod ending {
    //! Random sequences mixing entries with and without an end in Redis:
    //! the structure stays sound, and no entry is ever a hit, nor stale,
    //! past its key's end.

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Get(u8),
        Insert(u8),
        InsertUntil(u8, u16),
        Advance(u16),
        ExpireAll,
        Stale(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..10).prop_map(Op::Get),
            2 => (0u8..10).prop_map(Op::Insert),
            3 => (0u8..10, 0u16..3000).prop_map(|(k, ms)| Op::InsertUntil(k, ms)),
            3 => (0u16..800).prop_map(Op::Advance),
            1 => Just(Op::ExpireAll),
            2 => (0u8..10).prop_map(Op::Stale),
        ]
    }

    proptest! {
        #[test]
        fn never_served_past_its_end(ops in proptest::collection::vec(op(), 1..300)) {
            let ms = Duration::from_millis;
            let mut cache = lru(4, 1).with_stale_if_error(Duration::from_secs(2));
            // Where the clock starts does not matter; past its first ms.
            let mut now = Time::ZERO + Duration::from_secs(10);
            let mut ends: HashMap<u8, Option<Time>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Get(k) => {
                        if let Lookup::Hit(_) = cache.get(&[k], now) {
                            if let Some(Some(end)) = ends.get(&k) {
                                prop_assert!(now < *end, "hit on {k} past its end");
                            }
                        }
                    }
                    Op::Insert(k) => {
                        cache.insert(&[k], 0, now);
                        ends.insert(k, None);
                    }
                    Op::InsertUntil(k, left) => {
                        cache.insert_until(&[k], 0, now, now + ms(u64::from(left)));
                        ends.insert(k, Some(now + ms(u64::from(left))));
                    }
                    Op::Advance(by) => now = now + ms(u64::from(by)),
                    Op::ExpireAll => cache.expire_all(now),
                    Op::Stale(k) => {
                        if cache.stale(&[k], now).is_some() {
                            if let Some(Some(end)) = ends.get(&k) {
                                prop_assert!(now < *end, "stale {k} past its end");
                            }
                        }
                    }
                }
                cache.validate();
            }
        }
    }
}
