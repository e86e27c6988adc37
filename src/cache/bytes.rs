//! Bytes accounting: what each entry costs, the running total, and the
//! bound on it (CACHE_MAX_BYTES), with the per-entry limit that keeps one
//! large value from emptying the cache.
//!
//! An entry's *charge* is its node in the arena (key inline, stamp, links,
//! the value's handle), its share of the hash table, and what its key and
//! value own on the heap ([`Weigh`]). The total is kept up to date with one
//! add when an entry goes in and one subtraction when it goes out; a hit
//! does not touch it. Not counted: the allocator's rounding of each heap
//! block, and the arena's and table's spare room between growths (both at
//! most doubling, and bounded by CACHE_CAPACITY entries, not by bytes).

use std::mem::size_of;

use super::{Displaced, Key, Lru, Node, Slot};

/// What a value owns on the heap beyond the handle the node holds: the
/// part of its size the cache cannot learn from `size_of`.
pub trait Weigh {
    /// Heap bytes this value keeps alive while cached.
    fn heap_bytes(&self) -> usize;
}

macro_rules! weightless {
    ($($t:ty),*) => {$(
        impl Weigh for $t {
            /// Nothing: the value lives in the node.
            fn heap_bytes(&self) -> usize {
                0
            }
        }
    )*};
}
weightless!(i32, u32, u64, usize);

impl Weigh for Box<[u8]> {
    /// Its bytes.
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

/// The hash table's share of one entry: a 4-byte slot and a 1-byte
/// control tag, at a load of at most 7/8 (hashbrown's), rounded up.
const TABLE_BYTES: usize = (size_of::<Slot>() + 1) * 8 / 7 + 1;

/// The fixed part of every entry's charge: its node (72 bytes for the
/// proxy's values: 24 of key, 8 of stamp, 16 of links, 24 of value
/// handle) and its share of the table.
pub const fn entry_overhead<V>() -> usize {
    size_of::<Node<V>>() + TABLE_BYTES
}

/// The largest entry kept, as a fraction of CACHE_MAX_BYTES: an entry
/// charged more than `max_bytes / ENTRY_FRACTION` is not stored, so one
/// value never pushes out more than an eighth of the cache.
pub const ENTRY_FRACTION: usize = 8;

impl<V: Weigh> Lru<V> {
    /// Bounds what entries take to `max_bytes` (CACHE_MAX_BYTES): storing
    /// an entry that would pass it first pushes out others, least
    /// recently read first (expired ones before live ones), and an entry
    /// charged more than `max_bytes / 8` is not stored at all.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The bytes the entries take now: the sum of their charges.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The most bytes the entries may take (CACHE_MAX_BYTES).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The largest charge an entry may have to be stored.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_bytes / ENTRY_FRACTION
    }

    /// What an entry of `key` (in database 0) and `value` is charged.
    pub fn charge(key: &[u8], value: &V) -> usize {
        Self::charge_in(0, key, value)
    }

    /// What an entry of `key` in database `db` and `value` is charged: a
    /// key is boxed (and its bytes counted) past 22 bytes in database 0,
    /// past 21 in databases 1 to 255, always from 256 up, whatever the
    /// database's kind bits (`key.rs`).
    pub fn charge_in(db: super::Db, key: &[u8], value: &V) -> usize {
        let key_heap = if Key::boxed(db, key.len()) {
            key.len()
        } else {
            0
        };
        entry_overhead::<V>() + key_heap + value.heap_bytes()
    }

    /// What the node in `slot` is charged.
    pub(super) fn charge_at(&self, slot: Slot) -> usize {
        let node = &self.nodes[slot];
        entry_overhead::<V>() + node.key.heap_bytes() + node.value.heap_bytes()
    }

    /// The entry room is made from: the oldest if it has expired, else
    /// the least recently read (which may have expired too, if it had an
    /// end in Redis). The cache must not be empty.
    pub(super) fn victim(&self, now: super::Time) -> Slot {
        let oldest = self.age.head;
        match self.nodes[oldest].stamp.expires_at() <= now {
            true => oldest,
            false => self.recency.tail,
        }
    }

    /// Removes the entry in `slot` to make room, saying whether it had
    /// expired or was evicted live.
    pub(super) fn push_out(&mut self, slot: Slot, now: super::Time) -> Displaced<V> {
        let expired = self.nodes[slot].stamp.expires_at() <= now;
        let (key, value) = self.remove_slot(slot);
        match expired {
            true => Displaced::Expired(key, value),
            false => Displaced::Evicted(key, value),
        }
    }
}

impl<V> Displaced<V> {
    /// How many live entries were evicted, and how many expired ones
    /// reclaimed, for the metrics.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            Displaced::Evicted(..) => (1, 0),
            Displaced::Expired(..) => (0, 1),
            Displaced::Several(all) => all.iter().fold((0, 0), |(e, x), d| {
                let (de, dx) = d.counts();
                (e + de, x + dx)
            }),
            Displaced::Nothing | Displaced::Replaced(_) | Displaced::Refused(..) => (0, 0),
        }
    }
}

impl Key {
    /// The bytes this key owns on the heap (none when inline).
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Key::Inline { .. } | Key::InlineIn { .. } => 0,
            Key::Heap { bytes, .. } => bytes.len(),
        }
    }
}
