//! The LRU against a plain reference model, over random operation sequences
//! with an injected clock, checking every structural invariant after every
//! step. 600 cases of 1 to 400 operations: about 120k operations a run.
//! Runs in every build: the structural check (`Lru::validate`) needs
//! `--features test-hooks`, but the comparison with the model does not.
//!
//! Values are byte strings of random length and the cache is bounded in
//! bytes as well as in entries (CACHE_MAX_BYTES): the model charges each
//! entry the fixed overhead plus its value's length, pushes out entries
//! until both bounds hold, and refuses an entry over an eighth of the
//! byte bound.

use std::num::NonZeroUsize;
use std::time::Duration;

use proptest::prelude::*;
use redis_proxy::cache::{entry_overhead, Displaced, Lookup, Lru, Time, ENTRY_FRACTION};

type Value = Box<[u8]>;

#[derive(Clone, Debug)]
enum Op {
    Get(u8),
    Insert(u8, u16),
    Advance(u16),
    Remove(u8),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24).prop_map(Op::Get),
        4 => (0u8..24, 0u16..700).prop_map(|(k, len)| Op::Insert(k, len)),
        2 => (0u16..400).prop_map(Op::Advance),
        1 => (0u8..24).prop_map(Op::Remove),
        1 => Just(Op::Purge),
    ]
}

/// The obvious O(n) model: a list, most recently read first.
struct Model {
    entries: Vec<(u8, u16, u64, u64)>, // key, value length, inserted at (ms), insertion number
    inserted: u64,
    capacity: usize,
    max_bytes: usize,
    ttl_ms: u64,
}

/// What an entry with a value of `len` bytes is charged (keys are inline).
fn charge(len: u16) -> usize {
    entry_overhead::<Value>() + usize::from(len)
}

impl Model {
    fn expired(&self, inserted: u64, now: u64) -> bool {
        inserted + self.ttl_ms <= now
    }

    fn bytes(&self) -> usize {
        self.entries.iter().map(|e| charge(e.1)).sum()
    }

    /// The entry to push out: the oldest if expired, else the least recent.
    fn victim(&self, now: u64) -> usize {
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| (e.2, e.3))
            .map(|(i, e)| (i, e.2))
            .expect("a victim is only looked for among entries");
        if self.expired(oldest.1, now) {
            oldest.0
        } else {
            self.entries.len() - 1
        }
    }

    fn get(&mut self, key: u8, now: u64) -> Option<u16> {
        let i = self.entries.iter().position(|e| e.0 == key)?;
        let entry = self.entries.remove(i);
        if self.expired(entry.2, now) {
            return None;
        }
        self.entries.insert(0, entry);
        Some(entry.1)
    }

    /// Returns the keys pushed out (in order), or None if refused.
    fn insert(&mut self, key: u8, len: u16, now: u64) -> Option<Vec<u8>> {
        let existing = self.entries.iter().position(|e| e.0 == key);
        if charge(len) > self.max_bytes / ENTRY_FRACTION {
            if let Some(i) = existing {
                self.entries.remove(i);
            }
            return None;
        }
        self.inserted += 1;
        let mut out = Vec::new();
        if let Some(i) = existing {
            self.entries.remove(i);
            self.entries.insert(0, (key, len, now, self.inserted));
            while self.bytes() > self.max_bytes {
                let victim = self.victim(now);
                out.push(self.entries.remove(victim).0);
            }
            return Some(out);
        }
        while self.entries.len() == self.capacity || self.bytes() + charge(len) > self.max_bytes {
            let victim = self.victim(now);
            out.push(self.entries.remove(victim).0);
        }
        self.entries.insert(0, (key, len, now, self.inserted));
        Some(out)
    }
}

/// The keys an insert pushed out, in order; None if it was refused.
fn pushed_out(displaced: &Displaced<Value>) -> Option<Vec<u8>> {
    Some(match displaced {
        Displaced::Evicted(old, _) | Displaced::Expired(old, _) => vec![old.as_bytes()[0]],
        Displaced::Nothing | Displaced::Replaced(_) => Vec::new(),
        Displaced::Several(all) => all
            .iter()
            .flat_map(|d| pushed_out(d).unwrap_or_default())
            .collect(),
        Displaced::Refused(..) => return None,
    })
}

fn key(k: u8) -> [u8; 1] {
    [k]
}

fn run(capacity: usize, max_bytes: usize, ttl_ms: u64, ops: &[Op]) {
    let mut lru: Lru<Value> = Lru::new(
        NonZeroUsize::new(capacity).expect("positive"),
        Duration::from_millis(ttl_ms),
    )
    .with_max_bytes(max_bytes);
    // Times count from the cache's creation.
    let start = Time::ZERO;
    let mut now_ms = 0u64;
    let mut model = Model {
        entries: Vec::new(),
        inserted: 0,
        capacity,
        max_bytes,
        ttl_ms,
    };
    for op in ops {
        let now = start + Duration::from_millis(now_ms);
        match *op {
            Op::Get(k) => {
                let got = match lru.get(&key(k), now) {
                    Lookup::Hit(v) => Some(v.len() as u16),
                    Lookup::Miss | Lookup::Expired(_) | Lookup::Stale => None,
                };
                assert_eq!(got, model.get(k, now_ms), "get {k} at {now_ms}");
            }
            Op::Insert(k, len) => {
                let value: Value = vec![k; usize::from(len)].into_boxed_slice();
                let out = pushed_out(&lru.insert(&key(k), value, now));
                assert_eq!(out, model.insert(k, len, now_ms), "insert {k} at {now_ms}");
            }
            Op::Advance(ms) => now_ms += u64::from(ms),
            Op::Remove(k) => {
                let removed = lru.remove(&key(k));
                let i = model.entries.iter().position(|e| e.0 == k);
                let removed = removed.map(|v| v.len() as u16);
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
        assert_eq!(lru.bytes(), model.bytes(), "bytes after {op:?}");
        assert!(lru.bytes() <= max_bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn lru_matches_the_reference_model(
        // Up to more keys than there are, so either bound may bite (the
        // byte bound only past eight entries: each is at most an eighth).
        capacity in 1usize..30,
        // From a bound the largest values pass (an eighth of 2,000 is
        // under 770) to one that holds every entry.
        max_bytes in 2_000usize..20_000,
        ttl_ms in 1u64..1500,
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        run(capacity, max_bytes, ttl_ms, &ops);
    }
}
