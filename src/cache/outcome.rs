//! What the cache hands back from a lookup or a change: the values it
//! took out come back to the caller, to be dropped (and counted) outside
//! any lock.

use super::Key;

/// What [`Lru::get`](super::Lru::get) found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V> {
    /// The key is cached and fresh; it is now the most recently read.
    Hit(&'a V),
    /// The key is not cached.
    Miss,
    /// The key was cached but has expired; it has been removed and its value
    /// is handed back so the caller can drop it outside any lock.
    Expired(V),
    /// The key has expired less than its stale-if-error period ago: not fresh, but
    /// kept (see [`Lru::with_stale_if_error`](super::Lru::with_stale_if_error))
    /// and left where it is.
    Stale,
}

/// What [`Lru::insert`](super::Lru::insert) pushed out to make room, handed back so the caller
/// drops it (and counts it) outside any lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Displaced<V> {
    /// Nothing: there was room, or the key was already cached.
    Nothing,
    /// The key was already cached; this was its old value.
    Replaced(V),
    /// The cache was full and its oldest entry had expired.
    Expired(Key, V),
    /// The cache was full; this least recently read live entry was evicted.
    Evicted(Key, V),
    /// Room (in bytes) took more than one entry, or a replacement grew
    /// past CACHE_MAX_BYTES: each thing displaced, oldest first (one of
    /// the variants above). Allocated only then.
    Several(Vec<Displaced<V>>),
    /// The entry was charged more than
    /// [`Lru::max_entry_bytes`](super::Lru::max_entry_bytes) and was not
    /// stored: the value handed back, with the value the key had cached
    /// before, removed since it is no longer Redis's.
    Refused(V, Option<V>),
}
