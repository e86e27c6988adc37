//! What changes do to the read-through core: the invalidation link going
//! up or down, keys announced changed (in no database: Redis's
//! invalidations name none, so every database's entry goes), flushes; and
//! what the cache holds per database, for `INFO keyspace`.

use crate::cache::{Lru, KIND_BASE};

use super::super::{LinkState, Value};
use super::{CacheState, ReadThrough};

impl ReadThrough {
    /// The invalidation link's state now.
    pub(in crate::service) fn link(&self) -> LinkState {
        self.lock().link
    }

    /// Moves the link to `link`: a new epoch, and every fetch in flight
    /// stale. When the link is lost, nothing held can be vouched for: it is
    /// dropped (after unlocking), or, with STALE_IF_ERROR_SECS, kept as
    /// stale for stale-if-error alone. Returns whether the link was lost.
    pub(in crate::service) fn relink(&self, link: LinkState) -> bool {
        let dropped = {
            let mut state = self.lock();
            let lost = state.link == LinkState::Up && link == LinkState::Down;
            state.link = link;
            state.epoch += 1;
            state.mark_flights_stale();
            self.metrics.set_link_up(link == LinkState::Up);
            if !lost {
                return false;
            }
            if self.keeps_stale() {
                state.lru.expire_all(self.clock.now());
                None
            } else {
                Some(self.take_lru(&mut state))
            }
        };
        drop(dropped);
        true
    }

    /// Removes `keys` (announced changed, in no database: Redis's
    /// invalidations name none) from every database that holds entries,
    /// and marks their fetches in flight stale in every database, under
    /// one lock. Database 0's hashes are made before it is taken; another
    /// database's, only when it holds entries, under it. With nothing
    /// cached and nothing in flight (a proxy that only forwards writes,
    /// each announced back by Redis) that is all it does.
    ///
    /// `keys` is walked twice (hashed, then removed): a forwarded batch's
    /// written keys are passed as slices of its bytes without a list of
    /// them being made.
    pub(in crate::service) fn invalidate<'k, K>(&self, keys: K)
    where
        K: IntoIterator<Item = &'k [u8]>,
        K::IntoIter: Clone,
    {
        let keys = keys.into_iter();
        let hashes: Vec<u64> = keys.clone().map(|key| self.hasher.hash(key)).collect();
        let mut dropped = Vec::new();
        let mut files = Vec::new();
        {
            let mut state = self.lock();
            if holds_nothing(&state) {
                return;
            }
            for (key, hash) in keys.zip(hashes) {
                let lru = &mut state.lru;
                lru.remove_everywhere_filed(hash, key, &mut dropped, Some(&mut files));
                state.flights.mark_stale_everywhere(key);
                // Replies filed under the key, and reply fetches reading it.
                self.replies_changed(&mut state, key, &mut files, &mut dropped);
            }
            self.metrics.set_entries(state.lru.len(), state.lru.bytes());
        }
        drop(dropped);
    }

    /// Drops everything held and marks every fetch in flight stale.
    pub(in crate::service) fn flush(&self) {
        let dropped = {
            let mut state = self.lock();
            state.mark_flights_stale();
            self.take_lru(&mut state)
        };
        drop(dropped);
    }

    /// Swaps the LRU for an empty one; the old one is dropped by the caller
    /// after unlocking, so freeing many values never holds the lock.
    fn take_lru(&self, state: &mut CacheState) -> Lru<Value> {
        let empty = Lru::new(self.capacity, self.expiry)
            .with_max_bytes(self.max_bytes)
            .with_stale_if_error(self.stale_if_error)
            .with_hasher(self.hasher.clone());
        let old = std::mem::replace(&mut state.lru, empty);
        self.metrics.set_entries(0, 0);
        old
    }

    /// How many entries each of Redis's databases has cached (expired ones
    /// not yet reclaimed included), by database, those with none left
    /// out: O(databases in use), under the lock.
    pub(in crate::service) fn entries_by_db(&self) -> Vec<(i64, usize)> {
        let counts = self.lock().lru.entries_by_db();
        // Replies and their files count in the database they were read in.
        let mut counts: Vec<(i64, usize)> = counts
            .into_iter()
            .map(|(db, n)| (self.redis_db(db & (KIND_BASE - 1)), n))
            .collect();
        counts.sort_unstable();
        counts.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 += later.1;
            }
            same
        });
        counts
    }
}

/// Whether nothing is cached and nothing in flight: an announced key then
/// has nothing to drop or mark. (Whatever else is filed under keys must be
/// counted here.)
fn holds_nothing(state: &CacheState) -> bool {
    // Replies and their files are entries of the LRU; a reply fetch in
    // flight is a flight, listed under its keys in `reply_deps` meanwhile.
    state.lru.is_empty() && state.flights.is_empty() && state.reply_deps.is_empty()
}
