//! Unit tests of keys by database: the same bytes in two databases are two
//! entries, each removed on its own or all at once, with the bytes
//! accounting and the per-database counts exact throughout.

use super::*;

type Bytes = Box<[u8]>;

fn lru(capacity: usize) -> Lru<Bytes> {
    Lru::new(
        NonZeroUsize::new(capacity).expect("non-zero"),
        Duration::from_secs(10),
    )
}

fn value(text: &str) -> Bytes {
    text.as_bytes().into()
}

fn insert(cache: &mut Lru<Bytes>, db: Db, key: &[u8], text: &str) -> Displaced<Bytes> {
    let hash = cache.hasher().hash_in(db, key);
    cache.insert_hashed(hash, db, key, value(text), Time::ZERO)
}

fn get(cache: &mut Lru<Bytes>, db: Db, key: &[u8]) -> Option<String> {
    let hash = cache.hasher().hash_in(db, key);
    match cache.get_hashed(hash, db, key, Time::ZERO) {
        Lookup::Hit(v) => Some(String::from_utf8_lossy(v).into_owned()),
        _ => None,
    }
}

fn remove(cache: &mut Lru<Bytes>, db: Db, key: &[u8]) -> Option<Bytes> {
    let hash = cache.hasher().hash_in(db, key);
    cache.remove_hashed(hash, db, key)
}

#[test]
fn database_0_hashes_as_the_key_alone() {
    let hasher = KeyHasher::new();
    assert_eq!(hasher.hash_in(0, b"k"), hasher.hash(b"k"));
    assert_ne!(hasher.hash_in(1, b"k"), hasher.hash(b"k"));
    assert_ne!(hasher.hash_in(1, b"k"), hasher.hash_in(2, b"k"));
}

#[test]
fn the_same_key_in_two_databases_is_two_entries() {
    let mut cache = lru(8);
    assert_eq!(insert(&mut cache, 1, b"k", "one"), Displaced::Nothing);
    assert_eq!(insert(&mut cache, 2, b"k", "two"), Displaced::Nothing);
    assert_eq!(cache.len(), 2);
    assert_eq!(get(&mut cache, 1, b"k").as_deref(), Some("one"));
    assert_eq!(get(&mut cache, 2, b"k").as_deref(), Some("two"));
    // Database 0 (the plain methods') has none.
    assert_eq!(cache.get(b"k", Time::ZERO), Lookup::Miss);
    assert_eq!(get(&mut cache, 3, b"k"), None);
    // Replacing one leaves the other.
    assert!(matches!(
        insert(&mut cache, 2, b"k", "TWO"),
        Displaced::Replaced(_)
    ));
    assert_eq!(get(&mut cache, 1, b"k").as_deref(), Some("one"));
    assert_eq!(cache.entries_by_db(), vec![(1, 1), (2, 1)]);
    cache.validate();
    // Removing one leaves the other.
    assert_eq!(remove(&mut cache, 1, b"k").as_deref(), Some(&b"one"[..]));
    assert_eq!(get(&mut cache, 1, b"k"), None);
    assert_eq!(get(&mut cache, 2, b"k").as_deref(), Some("TWO"));
    assert_eq!(cache.entries_by_db(), vec![(2, 1)]);
    cache.validate();
}

#[test]
fn remove_everywhere_drops_a_key_from_every_database_and_no_other_key() {
    let mut cache = lru(16);
    cache.insert(b"k", value("zero"), Time::ZERO);
    for db in [1, 7, 300, Db::MAX] {
        insert(&mut cache, db, b"k", "v");
        insert(&mut cache, db, b"other", "v");
    }
    assert_eq!(
        cache.entries_by_db(),
        vec![(0, 1), (1, 2), (7, 2), (300, 2), (Db::MAX, 2)]
    );
    let mut out = Vec::new();
    cache.remove_everywhere_filed(cache.hasher().hash(b"k"), b"k", &mut out, None);
    assert_eq!(out.len(), 5);
    assert_eq!(
        cache.entries_by_db(),
        vec![(1, 1), (7, 1), (300, 1), (Db::MAX, 1)]
    );
    for db in [0, 1, 7, 300, Db::MAX] {
        assert_eq!(get(&mut cache, db, b"k"), None);
    }
    assert_eq!(get(&mut cache, 300, b"other").as_deref(), Some("v"));
    cache.validate();
    // Only database 0 in use: one probe, nothing else to look at.
    let mut home = lru(4);
    home.insert(b"k", value("v"), Time::ZERO);
    out.clear();
    home.remove_everywhere_filed(home.hasher().hash(b"k"), b"k", &mut out, None);
    assert_eq!((out.len(), home.len()), (1, 0));
}

#[test]
fn bytes_count_a_key_boxed_where_its_database_leaves_it_no_room() {
    let overhead = entry_overhead::<Bytes>();
    let mut cache = lru(16);
    let k21 = [b'a'; 21];
    let k22 = [b'b'; 22];
    // Database 0 keeps 22 bytes inline; 1 to 255 keep 21; 256 up none.
    let cases: [(Db, &[u8], usize); 6] = [
        (0, &k22, 0),
        (1, &k21, 0),
        (1, &k22, 22),
        (255, &k21, 0),
        (256, b"k", 1),
        (256, &k22, 22),
    ];
    let mut total = 0;
    for (db, key, heap) in cases {
        let charge = Lru::<Bytes>::charge_in(db, key, &value("vv"));
        assert_eq!(charge, overhead + heap + 2, "db {db}, {} bytes", key.len());
        insert(&mut cache, db, key, "vv");
        total += charge;
        assert_eq!(cache.bytes(), total);
        cache.validate();
    }
    // Each removal takes back exactly its charge.
    for (db, key, heap) in cases {
        assert!(remove(&mut cache, db, key).is_some());
        total -= overhead + heap + 2;
        assert_eq!(cache.bytes(), total);
        cache.validate();
    }
    assert_eq!((cache.bytes(), cache.entries_by_db()), (0, vec![]));
}

#[test]
fn eviction_across_databases_keeps_the_counts() {
    let mut cache = lru(3).with_max_bytes(1 << 20);
    for i in 0u8..40 {
        let db = Db::from(i % 4) * 100;
        insert(&mut cache, db, &[i % 5], "v");
        cache.validate();
    }
    assert_eq!(cache.len(), 3);
    let held: usize = cache.entries_by_db().iter().map(|(_, n)| n).sum();
    assert_eq!(held, 3);
    let mut out = Vec::new();
    for k in 0u8..5 {
        cache.remove_everywhere_filed(cache.hasher().hash(&[k]), &[k], &mut out, None);
    }
    assert_eq!((out.len(), cache.len(), cache.bytes()), (3, 0, 0));
    cache.validate();
}

#[test]
fn remove_everywhere_filed_hands_files_apart_and_skips_replies() {
    use crate::cache::{FILE, REPLY, RESP3};
    let mut cache = lru(16);
    insert(&mut cache, 0, b"k", "get");
    insert(&mut cache, FILE | 3, b"k", "file");
    insert(&mut cache, REPLY | RESP3 | 3, b"k", "request bytes");
    let (mut out, mut files) = (Vec::new(), Vec::new());
    let hash = cache.hasher().hash(b"k");
    cache.remove_everywhere_filed(hash, b"k", &mut out, Some(&mut files));
    assert_eq!(out.len(), 1);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, FILE | 3);
    assert!(get(&mut cache, REPLY | RESP3 | 3, b"k").is_some());
    cache.validate();
}
