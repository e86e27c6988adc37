//! Unit tests of the bytes accounting: the total exact after every kind of
//! change, eviction by bytes in LRU order, and the per-entry limit.

use super::*;

type Bytes = Box<[u8]>;

/// What an entry of a `key_len`-byte key and `value_len`-byte value costs.
fn charge(key_len: usize, value_len: usize) -> usize {
    let key_heap = if key_len > key::INLINE { key_len } else { 0 };
    entry_overhead::<Bytes>() + key_heap + value_len
}

fn value(len: usize) -> Bytes {
    vec![7u8; len].into_boxed_slice()
}

/// A cache of many entries bounded to `max_bytes`.
fn lru(max_bytes: usize) -> Lru<Bytes> {
    Lru::new(
        NonZeroUsize::new(1000).expect("non-zero"),
        Duration::from_secs(10),
    )
    .with_max_bytes(max_bytes)
}

fn keys(cache: &Lru<Bytes>) -> Vec<&[u8]> {
    cache.keys_by_recency()
}

#[test]
fn the_overhead_is_the_node_and_its_table_share() {
    // Key 24, stamp 8, two links of 8, a 16-byte boxed slice.
    assert_eq!(std::mem::size_of::<Node<Bytes>>(), 64);
    assert_eq!(entry_overhead::<Bytes>(), 64 + 6);
}

#[test]
fn bytes_are_exact_after_inserts_replacements_removals_and_expiry() {
    let start = Time::ZERO;
    let mut cache = lru(1 << 20);
    let long_key = [b'k'; 40];
    assert_eq!(cache.bytes(), 0);
    cache.insert(b"a", value(100), start);
    cache.insert(&long_key, value(10), start);
    assert_eq!(cache.bytes(), charge(1, 100) + charge(40, 10));
    // A replacement charges the new value in place of the old.
    assert!(matches!(
        cache.insert(b"a", value(300), start),
        Displaced::Replaced(_)
    ));
    assert_eq!(cache.bytes(), charge(1, 300) + charge(40, 10));
    cache.insert_until(b"b", value(50), start, start + Duration::from_secs(1));
    assert_eq!(
        cache.bytes(),
        charge(1, 300) + charge(40, 10) + charge(1, 50)
    );
    cache.validate();
    assert_eq!(cache.remove(&long_key).map(|v| v.len()), Some(10));
    assert_eq!(cache.bytes(), charge(1, 300) + charge(1, 50));
    // Read after its end: removed, and no longer charged.
    let later = start + Duration::from_secs(2);
    assert!(matches!(cache.get(b"b", later), Lookup::Expired(_)));
    assert_eq!(cache.bytes(), charge(1, 300));
    assert_eq!(
        cache.purge_expired(start + Duration::from_secs(10)).len(),
        1
    );
    assert_eq!(cache.bytes(), 0);
    cache.validate();
}

#[test]
fn storing_past_max_bytes_evicts_the_least_recently_read() {
    let now = Time::ZERO;
    // Room for sixteen entries of 400 bytes, not seventeen.
    let max = 16 * charge(1, 400) + 100;
    let mut cache = lru(max);
    let names: Vec<[u8; 1]> = (b'a'..=b'p').map(|c| [c]).collect();
    for key in &names {
        assert_eq!(cache.insert(key, value(400), now), Displaced::Nothing);
    }
    assert!(matches!(cache.get(b"a", now), Lookup::Hit(_)));
    // "b" is the least recently read: it goes, its slot reused.
    assert!(matches!(
        cache.insert(b"q", value(400), now),
        Displaced::Evicted(key, _) if key.as_bytes() == b"b"
    ));
    assert_eq!(keys(&cache)[..3], [&b"q"[..], b"a", b"p"]);
    assert_eq!(keys(&cache).last(), Some(&&b"c"[..]));
    assert_eq!(cache.bytes(), 16 * charge(1, 400));
    cache.validate();
    // A value worth two pushes out the two least recent, in that order.
    let Displaced::Several(gone) = cache.insert(b"r", value(800), now) else {
        panic!("two entries should make room");
    };
    let gone: Vec<&[u8]> = gone
        .iter()
        .map(|d| match d {
            Displaced::Evicted(key, _) => key.as_bytes(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(gone, vec![&b"c"[..], b"d"]);
    assert_eq!(keys(&cache)[..3], [&b"r"[..], b"q", b"a"]);
    assert_eq!(cache.len(), 15);
    assert_eq!(cache.bytes(), 14 * charge(1, 400) + charge(1, 800));
    assert!(cache.bytes() <= max);
    cache.validate();
}

#[test]
fn an_expired_entry_goes_before_a_live_one_when_bytes_are_short() {
    let start = Time::ZERO;
    let mut cache = lru(8 * charge(1, 1000));
    cache.insert(b"o", value(1000), start);
    let later = start + Duration::from_secs(5);
    for key in [b"a", b"b", b"c", b"d", b"e", b"f", b"g"] {
        cache.insert(key, value(1000), later);
    }
    let after = start + Duration::from_secs(11);
    assert!(matches!(cache.get(b"o", start), Lookup::Hit(_)));
    // "a" is the least recent, but "o" has expired: it goes first.
    assert!(matches!(
        cache.insert(b"h", value(1000), after),
        Displaced::Expired(key, _) if key.as_bytes() == b"o"
    ));
    assert!(matches!(cache.get(b"a", after), Lookup::Hit(_)));
    cache.validate();
}

#[test]
fn a_value_over_the_per_entry_limit_is_not_stored_and_ends_the_old_one() {
    let now = Time::ZERO;
    let max = 64 * 1024;
    let mut cache = lru(max);
    assert_eq!(cache.max_entry_bytes(), max / ENTRY_FRACTION);
    let fits = cache.max_entry_bytes() - entry_overhead::<Bytes>() - 1;
    cache.insert(b"k", value(fits), now);
    cache.insert(b"other", value(10), now);
    assert!(matches!(cache.get(b"k", now), Lookup::Hit(v) if v.len() == fits));
    // One byte more than fits: refused, and the key's old value goes.
    let Displaced::Refused(refused, old) = cache.insert(b"k", value(fits + 2), now) else {
        panic!("an entry over the limit is refused");
    };
    assert_eq!(
        (refused.len(), old.map(|v| v.len())),
        (fits + 2, Some(fits))
    );
    assert_eq!(cache.get(b"k", now), Lookup::Miss);
    assert_eq!(cache.bytes(), charge(5, 10));
    assert!(matches!(
        cache.insert(b"new", value(fits + 2), now),
        Displaced::Refused(_, None)
    ));
    assert_eq!(cache.len(), 1);
    cache.validate();
}

#[test]
fn a_replacement_that_grows_past_max_bytes_evicts_others() {
    let now = Time::ZERO;
    let max = 8000;
    let mut cache = lru(max);
    // Two small entries read least recently, eight of 900 bytes, "k".
    cache.insert(b"s1", value(0), now);
    cache.insert(b"s2", value(0), now);
    let fillers: Vec<[u8; 2]> = (b'0'..b'8').map(|c| [b'f', c]).collect();
    for key in &fillers {
        cache.insert(key, value(900 - entry_overhead::<Bytes>()), now);
    }
    cache.insert(b"k", value(100), now);
    assert_eq!(cache.bytes(), 2 * charge(2, 0) + 8 * 900 + charge(1, 100));
    // "k" at the per-entry limit: 830 bytes more than it was.
    let limit = cache.max_entry_bytes() - entry_overhead::<Bytes>();
    let Displaced::Several(gone) = cache.insert(b"k", value(limit), now) else {
        panic!("growing past the bound pushes others out");
    };
    assert!(matches!(&gone[0], Displaced::Replaced(v) if v.len() == 100));
    let evicted: Vec<&[u8]> = gone[1..]
        .iter()
        .map(|d| match d {
            Displaced::Evicted(key, _) => key.as_bytes(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(evicted, vec![&b"s1"[..], b"s2", b"f0"]);
    assert_eq!(Displaced::Several(gone).counts(), (3, 0));
    assert_eq!(keys(&cache)[0], b"k");
    assert_eq!(cache.bytes(), 7 * 900 + charge(1, limit));
    assert!(cache.bytes() <= max);
    cache.validate();
}

#[test]
fn both_bounds_apply() {
    let now = Time::ZERO;
    let mut cache = Lru::new(
        NonZeroUsize::new(2).expect("non-zero"),
        Duration::from_secs(10),
    )
    .with_max_bytes(1 << 20);
    cache.insert(b"a", value(1), now);
    cache.insert(b"b", value(1), now);
    assert!(matches!(
        cache.insert(b"c", value(1), now),
        Displaced::Evicted(key, _) if key.as_bytes() == b"a"
    ));
    assert_eq!(cache.bytes(), 2 * charge(1, 1));
    cache.validate();
}
