//! A batch of lookups under one lock, for `MGET`: each key hits, or leads
//! its fetch, or joins the fetch in flight, as [`ReadThrough::probe`]
//! decides for one key. The keys are hashed and the clock read before the
//! lock is taken; expired values are dropped after it is released.

use crate::cache::Lookup;

use super::{Probe, ReadThrough};

impl ReadThrough {
    /// [`ReadThrough::probe`] of each of `keys` in Redis's database `db`,
    /// in order, under one lock. The caller keeps a batch short (MGET
    /// takes a chunk of keys at a time): every other reader waits while
    /// it runs.
    pub(in crate::service) fn probe_many(&self, db: i64, keys: &[Vec<u8>]) -> Vec<Probe> {
        let at = self.db(db);
        let hashed: Vec<(u64, bool)> = keys
            .iter()
            .map(|key| (self.hasher.hash_in(at, key), self.is_tracked(key)))
            .collect();
        let now = self.clock.now();
        let mut expired = Vec::new();
        let probes = {
            let mut state = self.lock();
            let mut probes = Vec::with_capacity(keys.len());
            for (key, (hash, tracked)) in keys.iter().zip(hashed) {
                let probe = match state.may_cache(tracked) {
                    false => state.join_or_lead(at, key),
                    true => match state.lru.get_hashed(hash, at, key, now) {
                        // The hit is now the most recent entry.
                        Lookup::Hit(_) => match state.lru.most_recent(now) {
                            Some((value, life)) => Probe::Hit(value.clone(), life),
                            None => state.join_or_lead(at, key),
                        },
                        Lookup::Miss | Lookup::Stale => state.join_or_lead(at, key),
                        Lookup::Expired(value) => {
                            expired.push(value);
                            state.join_or_lead(at, key)
                        }
                    },
                };
                probes.push(probe);
            }
            if !expired.is_empty() {
                self.metrics.set_entries(state.lru.len(), state.lru.bytes());
            }
            probes
        };
        if !expired.is_empty() {
            self.metrics.expired(expired.len() as u64);
        }
        drop(expired);
        probes
    }
}
