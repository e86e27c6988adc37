//! What the invalidation link tells the cache: keys that changed in Redis,
//! flushes, and whether the link is up at all (see `backend::tracking`).
//!
//! The invariants (from the Redis client-side-caching docs and the races
//! several client libraries got wrong):
//! 1. An entry is served only if it was stored while the link was up, under
//!    the link's current epoch, and no invalidation for its key (nor a flush)
//!    arrived after the fetch that produced it began.
//! 2. Link down or not yet up: the cache is bypassed (reads still coalesce,
//!    nothing is stored). Link lost: everything held is dropped, since the
//!    writes made meanwhile will never be announced.
//! 3. An invalidation removes the entry and marks the fetch in flight for
//!    that key, under the same lock the fill takes.
//! 4. Invalidations are applied in arrival order by the link's one thread,
//!    a batch of keys under one lock.

use crate::backend::InvalidationSink;

use super::{Service, State};

/// Whether the cache can vouch for what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No tracking (INVALIDATION=off, or `auto` and Redis refused it):
    /// entries live out their TTL.
    Off,
    /// Tracking, but the link is not up (yet, or any more): bypass.
    Down,
    /// Tracking, and Redis will announce every write.
    Up,
}

impl LinkState {
    /// The name shown in `/readyz`, `INFO` and the logs.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Off => "off",
            LinkState::Down => "down",
            LinkState::Up => "up",
        }
    }
}

impl Service {
    /// The invalidation link's state now.
    pub fn link_state(&self) -> LinkState {
        self.lock().link
    }

    /// Moves the link to `link`: a new epoch, and every fetch in flight
    /// stale. Returns what the cache held, for the caller to drop after
    /// unlocking, when the cache can no longer vouch for it.
    fn relink(
        &self,
        state: &mut State,
        link: LinkState,
    ) -> Option<crate::cache::Lru<super::Value>> {
        let was = state.link;
        state.link = link;
        state.epoch += 1;
        for entry in state.flights.values_mut() {
            entry.stale = true;
        }
        self.metrics.set_link_up(link == LinkState::Up);
        (was == LinkState::Up && link == LinkState::Down).then(|| self.take_lru(state))
    }

    /// Swaps the LRU for an empty one; the old one is dropped by the caller
    /// after unlocking, so freeing many values never holds the lock.
    fn take_lru(&self, state: &mut State) -> crate::cache::Lru<super::Value> {
        let empty = crate::cache::Lru::new(self.capacity, self.expiry);
        let old = std::mem::replace(&mut state.lru, empty);
        self.metrics.set_entries(0);
        old
    }
}

impl InvalidationSink for Service {
    fn link_up(&self) {
        let mut state = self.lock();
        let _ = self.relink(&mut state, LinkState::Up);
    }

    fn link_lost(&self) {
        let dropped = {
            let mut state = self.lock();
            self.relink(&mut state, LinkState::Down)
        };
        if dropped.is_some() {
            self.metrics.flushed("link_lost");
        }
    }

    fn tracking_off(&self) {
        let mut state = self.lock();
        let _ = self.relink(&mut state, LinkState::Off);
    }

    fn invalidate(&self, keys: &[&[u8]]) {
        let mut dropped = Vec::new();
        {
            let mut state = self.lock();
            for key in keys {
                if let Some(value) = state.lru.remove(key) {
                    dropped.push(value);
                }
                if let Some(entry) = state.flights.get_mut(*key) {
                    entry.stale = true;
                }
            }
            self.metrics.set_entries(state.lru.len());
        }
        self.metrics.invalidated(keys.len() as u64);
        drop(dropped);
    }

    fn flush(&self) {
        let dropped = {
            let mut state = self.lock();
            for entry in state.flights.values_mut() {
                entry.stale = true;
            }
            self.take_lru(&mut state)
        };
        self.metrics.flushed("flushall");
        drop(dropped);
    }
}
