//! The LRU against a plain reference model, over random operation sequences
//! with an injected clock, checking every structural invariant after every
//! step. 600 cases of 1 to 400 operations: about 120k operations a run.
//! Runs in every build: the structural check (`Lru::validate`) needs
//! `--features test-hooks`, but the comparison with the model does not.

use std::num::NonZeroUsize;
use std::time::Duration;

use proptest::prelude::*;
use redis_proxy::cache::{Displaced, Lookup, Lru, Time};

#[derive(Clone, Debug)]
enum Op {
    Get(u8),
    Insert(u8, u32),
    Advance(u16),
    Remove(u8),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12).prop_map(Op::Get),
        4 => (0u8..12, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u16..400).prop_map(Op::Advance),
        1 => (0u8..12).prop_map(Op::Remove),
        1 => Just(Op::Purge),
    ]
}

/// The obvious O(n) model: a list, most recently read first.
struct Model {
    entries: Vec<(u8, u32, u64, u64)>, // key, value, inserted at (ms), insertion number
    inserted: u64,
    capacity: usize,
    ttl_ms: u64,
}

impl Model {
    fn expired(&self, inserted: u64, now: u64) -> bool {
        inserted + self.ttl_ms <= now
    }

    fn get(&mut self, key: u8, now: u64) -> Option<u32> {
        let i = self.entries.iter().position(|e| e.0 == key)?;
        let entry = self.entries.remove(i);
        if self.expired(entry.2, now) {
            return None;
        }
        self.entries.insert(0, entry);
        Some(entry.1)
    }

    /// Returns the key pushed out, if any.
    fn insert(&mut self, key: u8, value: u32, now: u64) -> Option<u8> {
        self.inserted += 1;
        if let Some(i) = self.entries.iter().position(|e| e.0 == key) {
            self.entries.remove(i);
            self.entries.insert(0, (key, value, now, self.inserted));
            return None;
        }
        let mut out = None;
        if self.entries.len() == self.capacity {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| (e.2, e.3))
                .map(|(i, e)| (i, e.2))
                .expect("full cache has entries");
            let victim = if self.expired(oldest.1, now) {
                oldest.0
            } else {
                self.entries.len() - 1
            };
            out = Some(self.entries.remove(victim).0);
        }
        self.entries.insert(0, (key, value, now, self.inserted));
        out
    }
}

fn key(k: u8) -> [u8; 1] {
    [k]
}

fn run(capacity: usize, ttl_ms: u64, ops: &[Op]) {
    let mut lru = Lru::new(
        NonZeroUsize::new(capacity).expect("positive"),
        Duration::from_millis(ttl_ms),
    );
    // Times count from the cache's creation.
    let start = Time::ZERO;
    let mut now_ms = 0u64;
    let mut model = Model {
        entries: Vec::new(),
        inserted: 0,
        capacity,
        ttl_ms,
    };
    for op in ops {
        let now = start + Duration::from_millis(now_ms);
        match *op {
            Op::Get(k) => {
                let got = match lru.get(&key(k), now) {
                    Lookup::Hit(v) => Some(*v),
                    Lookup::Miss | Lookup::Expired(_) | Lookup::Stale => None,
                };
                assert_eq!(got, model.get(k, now_ms), "get {k} at {now_ms}");
            }
            Op::Insert(k, v) => {
                let out = match lru.insert(&key(k), v, now) {
                    Displaced::Evicted(old, _) | Displaced::Expired(old, _) => {
                        Some(old.as_bytes()[0])
                    }
                    Displaced::Nothing | Displaced::Replaced(_) => None,
                };
                assert_eq!(out, model.insert(k, v, now_ms), "insert {k} at {now_ms}");
            }
            Op::Advance(ms) => now_ms += u64::from(ms),
            Op::Remove(k) => {
                let removed = lru.remove(&key(k));
                let i = model.entries.iter().position(|e| e.0 == k);
                assert_eq!(removed, i.map(|i| model.entries.remove(i).1));
            }
            Op::Purge => {
                let purged = lru.purge_expired(now).len();
                let before = model.entries.len();
                model.entries.retain(|e| e.2 + ttl_ms > now_ms);
                assert_eq!(purged, before - model.entries.len());
            }
        }
        #[cfg(feature = "test-hooks")]
        lru.validate();
        let keys: Vec<Vec<u8>> = lru.keys_by_recency().iter().map(|k| k.to_vec()).collect();
        let model_keys: Vec<Vec<u8>> = model.entries.iter().map(|e| key(e.0).to_vec()).collect();
        assert_eq!(keys, model_keys, "recency order after {op:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn lru_matches_the_reference_model(
        capacity in 1usize..8,
        ttl_ms in 1u64..1500,
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        run(capacity, ttl_ms, &ops);
    }
}
