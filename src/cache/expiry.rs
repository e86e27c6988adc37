//! Expiry beyond the lookup itself: inserting an entry whose key ends in
//! Redis, an entry's [`Life`] (for HTTP's `max-age` and `Age`), the
//! stale-if-error period, ending every entry's freshness at
//! once, and purging expired entries.

use std::time::Duration;

use super::stamp::Stamp;
use super::time::{self, Time};
use super::{Db, Displaced, Key, Lru, Weigh, NIL};

/// How an entry's life stands at a given moment: what HTTP calls its
/// remaining freshness (`max-age`) and its `Age`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Life {
    /// How much longer it is fresh (zero once expired).
    pub fresh_for: Duration,
    /// How long ago it was stored (exact for an entry without an end in
    /// Redis; to within a second for one with an end, which keeps whole
    /// seconds, up to ~12 days: an entry whose lifetime and end both lie
    /// beyond that reports a smaller age, never a longer freshness).
    pub age: Duration,
}

impl<V: Weigh> Lru<V> {
    /// [`Lru::insert`] for a key that ends in Redis at `ends` (its TTL
    /// there): the entry is fresh until `now + ttl` or `ends`, whichever
    /// comes first, and is never kept as stale past `ends`. An `ends` not
    /// after `now` stores an entry that is already expired.
    pub fn insert_until(&mut self, key: &[u8], value: V, now: Time, ends: Time) -> Displaced<V> {
        self.insert_hashed_until(self.hasher.hash(key), 0, key, value, now, ends)
    }

    /// [`Lru::insert_until`] of `key` in database `db`, with its hash
    /// already made by [`Lru::hasher`].
    pub fn insert_hashed_until(
        &mut self,
        hash: u64,
        db: Db,
        key: &[u8],
        value: V,
        now: Time,
        ends: Time,
    ) -> Displaced<V> {
        let stamp = Stamp::ending(
            (now + self.ttl).min(ends),
            ends.saturating_duration_since(now),
        );
        self.insert_stamped(hash, db, key, value, now, stamp)
    }

    /// When the most recently read (or stored) entry stops being fresh: right
    /// after a hit, the hit's own expiry, with no second lookup.
    pub fn most_recent_expiry(&self) -> Option<Time> {
        (self.recency.head != NIL).then(|| self.nodes[self.recency.head].stamp.expires_at())
    }

    /// The most recently read (or stored) entry's [`Life`] at `now`: right
    /// after a hit, the hit's own, with no second lookup.
    pub fn most_recent_life(&self, now: Time) -> Option<Life> {
        (self.recency.head != NIL).then(|| self.life(self.nodes[self.recency.head].stamp, now))
    }

    /// The most recently read (or stored) entry's value and [`Life`] at
    /// `now`: right after a hit, the hit's own, with no second lookup.
    pub fn most_recent(&self, now: Time) -> Option<(&V, Life)> {
        let node = (self.recency.head != NIL).then(|| &self.nodes[self.recency.head])?;
        Some((&node.value, self.life(node.stamp, now)))
    }

    /// The value of `key` (of database 0) and its [`Life`] if it has
    /// expired less than its stale-if-error period ago (or is still fresh);
    /// its place in the lists is left as it is.
    pub fn stale(&self, key: &[u8], now: Time) -> Option<(&V, Life)> {
        self.stale_in(0, key, now)
    }

    /// [`Lru::stale`] of `key` in database `db`.
    pub fn stale_in(&self, db: Db, key: &[u8], now: Time) -> Option<(&V, Life)> {
        let slot = self.find(self.hasher.hash_in(db, key), db, key)?;
        let node = &self.nodes[slot];
        (node.stamp.expires_at() > now || self.in_stale_window(node.stamp, now))
            .then(|| (&node.value, self.life(node.stamp, now)))
    }

    /// Ends every entry's freshness at `now` (those already expired keep
    /// their expiry), keeping each for its stale-if-error period: for when nothing
    /// held can be vouched for any more. O(entries); entries without an end
    /// in Redis stay in expiry order along the age list.
    pub fn expire_all(&mut self, now: Time) {
        for node in &mut self.nodes.0 {
            node.stamp = node.stamp.at_most(now);
        }
    }

    pub(super) fn in_stale_window(&self, stamp: Stamp, now: Time) -> bool {
        now < stamp.expires_at() + stamp.stale_window(self.ttl, self.stale_if_error)
    }

    fn life(&self, stamp: Stamp, now: Time) -> Life {
        let expires_at = stamp.expires_at();
        let life = stamp.life(self.ttl);
        let filled = Time::from_nanos(
            expires_at
                .nanos()
                .saturating_sub(time::nanos(life))
                .min(now.nanos()),
        );
        Life {
            fresh_for: expires_at.saturating_duration_since(now),
            age: now.saturating_duration_since(filled),
        }
    }

    /// Removes the expired entries that lead the age list, oldest first,
    /// handing them back: every expired entry, except those with an end in
    /// Redis stored after a live one. Costs O(entries removed).
    pub fn purge_expired(&mut self, now: Time) -> Vec<(Key, V)> {
        let mut purged = Vec::new();
        while self.age.head != NIL && self.nodes[self.age.head].stamp.expires_at() <= now {
            purged.push(self.remove_slot(self.age.head));
        }
        purged
    }
}
