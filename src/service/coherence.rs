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

use std::sync::Arc;

use crate::backend::InvalidationSink;

use super::Service;

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
        self.core.link()
    }

    /// INVALIDATION as configured (`auto`, `tracking`, `off`).
    pub fn invalidation_mode(&self) -> &'static str {
        self.invalidation.name()
    }
}

/// What changed in Redis, as the service passes it on to a front end whose
/// own clients keep caches (RESP `CLIENT TRACKING`).
pub enum Change {
    /// These keys changed.
    Keys(Vec<Vec<u8>>),
    /// Anything may have: a flush, or the link to Redis lost or (re)made,
    /// so nothing read before can be vouched for.
    All,
}

/// A front end told of every change, after the cache has applied it (so a
/// client that reads again is not answered from the proxy's old copy).
pub trait ChangeListener: Send + Sync {
    /// Whether anyone listens now: when not, changes are not even built.
    fn wants(&self) -> bool;
    /// One change.
    fn changed(&self, change: Change);
}

impl Service {
    /// Registers the front end told of changes (one; later calls are
    /// ignored).
    pub fn listen_for_changes(&self, listener: Arc<dyn ChangeListener>) {
        let _ = self.listener.set(listener);
    }

    /// Whether clients of ours may keep caches: only while the proxy itself
    /// hears of every write.
    pub fn can_track(&self) -> bool {
        self.invalidation != crate::config::Invalidation::Off && self.core.link() != LinkState::Off
    }

    pub(super) fn announce(&self, change: impl FnOnce() -> Change) {
        if let Some(listener) = self.listener.get() {
            if listener.wants() {
                listener.changed(change());
            }
        }
    }
}

impl InvalidationSink for Service {
    fn link_up(&self) {
        // Redis may be another version now: read its command table again.
        self.backend.commands_changed();
        // Its version, databases and memory settings, learnt now (the
        // link's thread may wait on Redis; clients' threads must not), so
        // clients that connect next are told the version of the Redis
        // their commands reach, and INFO its maxmemory-policy.
        self.learn_server();
        // What clients read while the link was down was never vouched for.
        // Told before the link shows up (in /readyz, and to the cache):
        // the link is already tracking at Redis, so every later change
        // reaches clients as its keys, and a client that connects once
        // the link is up is not told a flush that concerns it not.
        self.announce(|| Change::All);
        self.core.relink(LinkState::Up);
    }

    fn link_lost(&self) {
        if self.core.relink(LinkState::Down) {
            self.metrics.flushed("link_lost");
        }
        self.announce(|| Change::All);
    }

    fn tracking_off(&self) {
        self.core.relink(LinkState::Off);
        self.announce(|| Change::All);
    }

    fn invalidate(&self, keys: &[&[u8]]) {
        self.core.invalidate(keys.iter().copied());
        self.metrics.invalidated(keys.len() as u64);
        self.announce(|| Change::Keys(keys.iter().map(|key| key.to_vec()).collect()));
    }

    fn flush(&self) {
        self.core.flush();
        self.metrics.flushed("flushall");
        self.announce(|| Change::All);
    }
}
