//! Retiring a fetch in flight: its entry taken out of the table, and what
//! it found stored, unless a change, a flush or the link raced it (the
//! placeholder of the Redis client-side-caching docs, see `flight.rs`).
//! A key's fill is here; a reply's, which also files it under its keys,
//! is in `replies.rs`.

use std::sync::Arc;

use crate::cache::{Db, Displaced};

use super::super::fill::Fetched;
use super::super::flight::Flight;
use super::super::{FetchResult, Value};
use super::{CacheState, ReadThrough};

impl ReadThrough {
    /// Retires the flight for `key` in `db` and caches what it found, unless the
    /// flight went stale (an invalidation or flush arrived meanwhile, or
    /// the link changed since it began) or the value has no life left. A
    /// read that found the key absent, or with no life left, removes what
    /// the cache kept of it (an entry kept for stale-if-error), since Redis
    /// has just said it is gone.
    pub(in crate::service) fn fill(
        &self,
        db: i64,
        key: &[u8],
        flight: &Flight,
        outcome: &FetchResult,
    ) {
        let tracked = self.is_tracked(key);
        let db = self.db(db);
        let hash = self.hasher.hash_in(db, key);
        let now = self.clock.now();
        let displaced = {
            let mut state = self.lock();
            // Without GET in CACHE_COMMANDS no string is kept, whatever
            // the link (INVALIDATION=off would let any key be).
            let fresh = state.retire((db, key), flight, tracked) && self.caches_strings;
            let lru = &mut state.lru;
            let displaced = match outcome {
                Ok(Some(Fetched { value, ends: None })) if fresh => {
                    lru.insert_hashed(hash, db, key, value.clone(), now)
                }
                Ok(Some(Fetched {
                    value,
                    ends: Some(ends),
                })) if fresh && *ends > now => {
                    lru.insert_hashed_until(hash, db, key, value.clone(), now, *ends)
                }
                Ok(Some(Fetched { ends: Some(_), .. })) | Ok(None) => lru
                    .remove_hashed(hash, db, key)
                    .map_or(Displaced::Nothing, Displaced::Replaced),
                Ok(Some(_)) | Err(_) => Displaced::Nothing,
            };
            // A reply file pushed out takes the replies it lists with it.
            let cascaded = self.drop_filed(&mut state, &displaced);
            self.metrics.set_entries(state.lru.len(), state.lru.bytes());
            (displaced, cascaded)
        };
        let (displaced, cascaded) = displaced;
        drop(cascaded);
        self.count_displaced(&displaced);
        drop(displaced);
    }

    /// Counts what a change of the LRU pushed out (evicted) or found
    /// expired, after unlocking.
    pub(super) fn count_displaced(&self, displaced: &Displaced<Value>) {
        let (evicted, expired) = displaced.counts();
        if evicted > 0 {
            self.metrics.evicted(evicted);
        }
        if expired > 0 {
            self.metrics.expired(expired);
        }
    }
}

impl CacheState {
    /// Takes `flight` out of the table of fetches in flight, as `key`'s
    /// in `db`, and says whether what it fetched may be stored: only this
    /// flight's own entry goes (one a later read put in place of it, this
    /// one having gone stale, stays for its own leader), and it may be
    /// stored only if it is still there, did not go stale (an
    /// invalidation or flush arrived meanwhile), began under the link's
    /// current epoch, and the cache may hold a `tracked` key now.
    pub(super) fn retire(
        &mut self,
        (db, key): (Db, &[u8]),
        flight: &Flight,
        tracked: bool,
    ) -> bool {
        let ours = self
            .flights
            .get(db, key)
            .is_some_and(|e| std::ptr::eq(Arc::as_ptr(&e.flight), flight));
        let entry = match ours {
            true => self.flights.remove(db, key),
            false => None,
        };
        entry.is_some_and(|e| !e.stale && e.epoch == self.epoch) && self.may_cache(tracked)
    }
}
