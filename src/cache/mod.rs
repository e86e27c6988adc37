//! The LRU cache with a global expiry, shortened per entry for a key whose
//! TTL in Redis ends sooner: a pure data structure.
//!
//! No I/O, no locks, no clock: the caller passes `now` (a [`Time`], which
//! the proxy's [`crate::clock::Clock`] reads) to every call, so tests drive time by hand and the
//! service reads the clock before it takes the lock.
//!
//! # Layout
//! Entries live in an arena (`Vec<Node>`), and a hash table maps each key to
//! its slot. The table (hashbrown's `HashTable`) stores only slot indexes and
//! finds keys through the arena, so each key is stored once. A lookup hashes
//! its key once (foldhash, randomly seeded per cache; the service hashes
//! before it takes the lock). The hash is not kept in the node: evicting,
//! removing or moving a node, and growing the table, hash its key again.
//! Every node sits on two intrusive doubly-linked lists threaded through
//! the arena by index:
//! - the *recency* list, most recently read first, whose tail is the entry to
//!   evict;
//! - the *age* list, in insertion order. Because the expiry is one global
//!   lifetime counted from insertion, the oldest entry is also the first to
//!   expire, so an expired entry is found in O(1) and reclaimed before a live
//!   one is evicted. An entry inserted with an end in Redis
//!   ([`Lru::insert_until`]) may expire sooner than its place says; it is
//!   never a hit past its end, and goes when read, when it reaches the head
//!   of either list, or when room is needed and it is the least recent.
//!
//! Each node's expiry is one 8-byte stamp (`stamp.rs`), which also carries
//! when the key ends in Redis, for [`Life`] and the stale-if-error period.
//!
//! Removing an entry moves the arena's last node into the freed slot, so the
//! arena stays dense and needs no free list (`table.rs`).
//!
//! # Databases
//! A key belongs to a database ([`Db`]): the same bytes in two databases
//! are two entries, sharing the one capacity. The database rides in the
//! key's spare bytes (`key.rs`); database 0's keys hash as the bytes alone
//! ([`KeyHasher::hash_in`]), so a cache used in one database costs what it
//! did before there were others. The plain methods (`get`, `insert`, ...)
//! are database 0's; the `_hashed` ones name the database.
//! [`Lru::remove_everywhere_filed`] drops a key from every database holding
//! entries, O(databases in use), for a change announced without one.
//!
//! # Two bounds
//! The cache holds at most `capacity` entries (CACHE_CAPACITY) and at most
//! `max_bytes` of them (CACHE_MAX_BYTES, [`Lru::with_max_bytes`]): each
//! entry is charged its node, its share of the table and what its key and
//! value own on the heap ([`Weigh`]; `bytes.rs` says what is counted).
//! Making room pushes out entries the same way for either bound, an
//! expired oldest entry first, else the least recently read. An entry
//! charged more than an eighth of `max_bytes` is not stored
//! ([`Displaced::Refused`]).
//!
//! Every operation is O(1) (expected, for the hash lookups); an insert that
//! needs room for a large value may push out several small ones, each of
//! which it had cost an insert to store, so O(1) amortised.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//! use redis_proxy::cache::{Displaced, Lookup, Lru, Time};
//!
//! let capacity = NonZeroUsize::new(2).expect("non-zero");
//! let mut lru = Lru::new(capacity, Duration::from_secs(60));
//! let now = Time::ZERO;
//! lru.insert(b"a", 1, now);
//! lru.insert(b"b", 2, now);
//! assert_eq!(lru.get(b"a", now), Lookup::Hit(&1)); // "b" is now the least recent
//! assert!(matches!(lru.insert(b"c", 3, now), Displaced::Evicted(_, 2)));
//! assert_eq!(lru.get(b"a", now + Duration::from_secs(60)), Lookup::Expired(1));
//! ```

use std::num::NonZeroUsize;
use std::time::Duration;

use hashbrown::HashTable;

mod arena;
mod bytes;
mod dbs;
mod expiry;
mod key;
mod lists;
mod outcome;
mod stamp;
mod table;
mod time;
#[cfg(any(test, feature = "test-hooks"))]
mod validate;
use arena::Arena;
pub use bytes::{entry_overhead, Weigh, ENTRY_FRACTION};
use dbs::Databases;
pub use expiry::Life;
pub use key::{Db, Key, KeyHasher, FILE, KIND_BASE, REPLY, RESP3};
use lists::{Ends, Links, List};
pub use outcome::{Displaced, Lookup};
use stamp::Stamp;
pub use time::Time;

/// An index into the arena. 32 bits keep a node small (its links are half
/// of it), which matters because lookups are bound by memory latency; the
/// capacity is capped just below `u32::MAX` to match.
type Slot = u32;

/// Marks the end of a list.
const NIL: Slot = Slot::MAX;

/// Largest capacity: every slot must be below `NIL` (`u32::MAX`).
pub const MAX_CAPACITY: usize = (Slot::MAX - 1) as usize;

/// One entry. Laid out in the order a hit reads it (key, expiry, recency
/// links, value) so a hit touches as few cache lines as it can. The key's
/// hash is not kept: the table's own tag filters probes, and the rare paths
/// that need it again (eviction, removal, growing the table) rehash the key,
/// which costs less than 8 bytes on every entry.
#[derive(Debug)]
#[repr(C)]
struct Node<V> {
    key: Key,
    stamp: Stamp,
    recency: Links,
    value: V,
    age: Links,
}

/// A least-recently-read cache of at most `capacity` keys, each kept for
/// `ttl` from its insertion, or until its end in Redis if that is sooner.
///
/// Not thread-safe by itself: the service wraps one in a `Mutex`. Costs per
/// entry: a node of 48 bytes plus the value (24 bytes of key, longer keys
/// boxed on the heap; 16 of links; 8 of expiry stamp), and a table slot of 5
/// bytes at a load of at most 7/8: [`entry_overhead`], which CACHE_MAX_BYTES
/// counts with the key's and value's heap bytes.
#[derive(Debug)]
pub struct Lru<V> {
    table: HashTable<Slot>,
    hasher: KeyHasher,
    nodes: Arena<V>,
    recency: Ends,
    age: Ends,
    capacity: usize,
    /// The sum of every entry's charge (see `bytes.rs`).
    bytes: usize,
    /// CACHE_MAX_BYTES: `bytes` never passes it.
    max_bytes: usize,
    ttl: Duration,
    stale_if_error: Duration,
    /// How many entries each database other than 0 holds.
    dbs: Databases,
}

impl<V: Weigh> Lru<V> {
    /// An empty cache, bounded in entries only until
    /// [`Lru::with_max_bytes`]. Nothing is allocated up front, so a large capacity
    /// costs only what is used. A capacity above [`MAX_CAPACITY`] is capped.
    pub fn new(capacity: NonZeroUsize, ttl: Duration) -> Self {
        Lru {
            table: HashTable::new(),
            hasher: KeyHasher::new(),
            nodes: Arena(Vec::new()),
            recency: Ends::EMPTY,
            age: Ends::EMPTY,
            capacity: capacity.get().min(MAX_CAPACITY),
            bytes: 0,
            max_bytes: usize::MAX,
            ttl,
            stale_if_error: Duration::ZERO,
            dbs: Databases::default(),
        }
    }

    /// Uses `hasher` for keys, so hashes made with it fit this cache.
    pub fn with_hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The hasher this cache's keys are hashed with.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Keeps an entry for `stale_if_error` (STALE_IF_ERROR_SECS) past its expiry, as stale: never a hit,
    /// but available to [`Lru::stale`] (a proxy serving stale-if-error), and
    /// the first to go when room is needed, since expired entries lead the
    /// age list.
    pub fn with_stale_if_error(mut self, stale_if_error: Duration) -> Self {
        self.stale_if_error = stale_if_error;
        self
    }

    /// The number of entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.nodes.0.is_empty()
    }

    /// The most entries this cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Looks `key` (of database 0) up at time `now`. A hit becomes the most
    /// recently read entry; its expiry is not extended. An expired entry is
    /// removed and behaves as if it had never been stored, unless it is
    /// within its stale-if-error period ([`Lookup::Stale`]).
    pub fn get(&mut self, key: &[u8], now: Time) -> Lookup<'_, V> {
        self.get_hashed(self.hasher.hash(key), 0, key, now)
    }

    /// [`Lru::get`] of `key` in database `db`, with its hash already made
    /// by [`Lru::hasher`] ([`KeyHasher::hash_in`]).
    #[inline]
    pub fn get_hashed(&mut self, hash: u64, db: Db, key: &[u8], now: Time) -> Lookup<'_, V> {
        let Some(slot) = self.find(hash, db, key) else {
            return Lookup::Miss;
        };
        let stamp = self.nodes[slot].stamp;
        if stamp.expires_at() <= now {
            if self.in_stale_window(stamp, now) {
                return Lookup::Stale;
            }
            let (_, value) = self.remove_slot(slot);
            return Lookup::Expired(value);
        }
        if self.recency.head != slot {
            self.unlink(List::Recency, slot);
            self.push_front(List::Recency, slot);
        }
        Lookup::Hit(&self.nodes[slot].value)
    }

    /// Stores `value` under `key` (of database 0) at time `now`, fresh
    /// until `now + ttl`, as the most recently read entry. When the cache is
    /// full, an expired entry is reclaimed if there is one, else the least
    /// recently read is evicted.
    pub fn insert(&mut self, key: &[u8], value: V, now: Time) -> Displaced<V> {
        self.insert_hashed(self.hasher.hash(key), 0, key, value, now)
    }

    /// [`Lru::insert`] of `key` in database `db`, with its hash already
    /// made by [`Lru::hasher`].
    pub fn insert_hashed(
        &mut self,
        hash: u64,
        db: Db,
        key: &[u8],
        value: V,
        now: Time,
    ) -> Displaced<V> {
        let stamp = Stamp::plain(now + self.ttl);
        self.insert_stamped(hash, db, key, value, now, stamp)
    }

    /// Stores `value` under `key` of database `db`, expiring as `stamp`
    /// says.
    fn insert_stamped(
        &mut self,
        hash: u64,
        db: Db,
        key: &[u8],
        value: V,
        now: Time,
        stamp: Stamp,
    ) -> Displaced<V> {
        let charge = Self::charge_in(db, key, &value);
        if charge > self.max_entry_bytes() {
            let old = self
                .find(hash, db, key)
                .map(|slot| self.remove_slot(slot).1);
            return Displaced::Refused(value, old);
        }
        if let Some(slot) = self.find(hash, db, key) {
            let node = &mut self.nodes[slot];
            self.bytes += value.heap_bytes();
            let old = std::mem::replace(&mut node.value, value);
            node.stamp = stamp;
            self.bytes -= old.heap_bytes();
            self.unlink(List::Recency, slot);
            self.push_front(List::Recency, slot);
            self.unlink(List::Age, slot);
            self.push_back(List::Age, slot);
            if self.bytes <= self.max_bytes {
                return Displaced::Replaced(old);
            }
            // Grown past the bound: the entry, now most recent and newest,
            // is not a victim while others remain, and alone it fits.
            let mut gone = vec![Displaced::Replaced(old)];
            while self.bytes > self.max_bytes && self.nodes.len() > 1 {
                let victim = self.victim(now);
                gone.push(self.push_out(victim, now));
            }
            return Displaced::Several(gone);
        }
        let key = Key::new(db, key);
        self.dbs.added(db);
        let mut gone = Vec::new();
        let last = loop {
            // (An empty cache always has room: `charge` is at most an
            // eighth of the bound.)
            let room = self.nodes.len() < self.capacity && self.bytes + charge <= self.max_bytes;
            if room || self.is_empty() {
                let slot = self.nodes.next_slot();
                self.nodes.0.push(Node {
                    key,
                    value,
                    stamp,
                    recency: Links::DETACHED,
                    age: Links::DETACHED,
                });
                self.bytes += charge;
                self.index(hash, slot);
                self.push_front(List::Recency, slot);
                self.push_back(List::Age, slot);
                break Displaced::Nothing;
            }
            let slot = self.victim(now);
            let freed = self.charge_at(slot);
            if self.bytes - freed + charge > self.max_bytes {
                // Not enough on its own: it goes, and the next is looked at.
                gone.push(self.push_out(slot, now));
                continue;
            }
            // The last victim: its slot is reused for the new entry.
            let expired = self.nodes[slot].stamp.expires_at() <= now;
            self.unlink(List::Recency, slot);
            self.unlink(List::Age, slot);
            self.unindex(slot);
            let node = &mut self.nodes[slot];
            let old_key = std::mem::replace(&mut node.key, key);
            let old_value = std::mem::replace(&mut node.value, value);
            self.dbs.removed(old_key.db());
            node.stamp = stamp;
            self.bytes = self.bytes - freed + charge;
            self.index(hash, slot);
            self.push_front(List::Recency, slot);
            self.push_back(List::Age, slot);
            break match expired {
                true => Displaced::Expired(old_key, old_value),
                false => Displaced::Evicted(old_key, old_value),
            };
        };
        if gone.is_empty() {
            return last;
        }
        if !matches!(last, Displaced::Nothing) {
            gone.push(last);
        }
        Displaced::Several(gone)
    }

    /// Removes `key` (of database 0) if present, handing back its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_hashed(self.hasher.hash(key), 0, key)
    }

    /// [`Lru::remove`] of `key` in database `db`, with its hash already
    /// made by [`Lru::hasher`].
    pub fn remove_hashed(&mut self, hash: u64, db: Db, key: &[u8]) -> Option<V> {
        let slot = self.find(hash, db, key)?;
        Some(self.remove_slot(slot).1)
    }
}

#[cfg(test)]
mod bytes_tests;
#[cfg(test)]
mod db_tests;
#[cfg(test)]
mod tests;
