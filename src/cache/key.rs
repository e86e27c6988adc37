//! Cache keys: a Redis database number and the key's bytes, stored inline
//! in the node when short.
//!
//! A lookup is bound by memory latency: the table probe, the node, then the
//! key's bytes. A key on the heap costs one more cache miss per lookup than
//! a key inside the node, and one allocation per insert. Most Redis keys are
//! short (`user:1234:name`), so keys up to [`INLINE`] bytes live in the node.
//!
//! The database rides in the key's spare bytes, so a [`Key`] stays 24
//! bytes: database 0 (the cache's own numbering: the service makes it the
//! one REDIS_ADDRESS names) keeps all 22 inline bytes, another database
//! below 256 gives one of them up, and a long key, or one in a database
//! from 256 up, is boxed beside a 4-byte number.

use std::fmt;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;

/// Longest key kept inline in database 0; sized so a [`Key`] is 24 bytes,
/// as a `Vec` is.
pub const INLINE: usize = 22;

/// Longest key kept inline in databases 1 to 255: one byte holds the
/// database.
pub const INLINE_IN: usize = INLINE - 1;

/// A database number, as the cache's caller numbers them. Database 0 is
/// the one stored and hashed as cheaply as a key alone.
pub type Db = u32;

/// Marks a database number as a *reply* database (issue #22): its keys are
/// a request's canonical bytes, not a Redis key, so a change announced
/// for a key never looks among them ([`super::Lru::remove_everywhere_filed`]).
/// The service's numbering leaves room: its databases stay below
/// [`KIND_BASE`].
pub const REPLY: Db = 1 << 31;

/// Marks a database number as a *file* database: its keys are Redis keys
/// whose values list the reply entries filed under that key, so the change
/// that drops the key's entries finds its file too (handed back apart by
/// [`super::Lru::remove_everywhere_filed`]).
pub const FILE: Db = 1 << 30;

/// Marks a reply database as RESP3's (RESP2's and RESP3's bytes differ).
pub const RESP3: Db = 1 << 29;

/// The first database number with a kind bit: the caller's own databases
/// stay below it.
pub const KIND_BASE: Db = RESP3;

/// A key's database and bytes: inline when short, boxed otherwise.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// In database 0, at most 22 (`INLINE`) bytes, the first `len` of
    /// `bytes`.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE],
    },
    /// In databases 1 to 255, at most 21 (`INLINE_IN`) bytes.
    InlineIn {
        /// The database.
        db: u8,
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE_IN],
    },
    /// A longer key, or one in a database from 256 up.
    Heap {
        /// The database.
        db: Db,
        /// The key.
        bytes: Box<[u8]>,
    },
}

impl Key {
    /// Copies `bytes` into a key of database `db`, allocating only when
    /// they are long (or the database's number is).
    pub fn new(db: Db, bytes: &[u8]) -> Key {
        match u8::try_from(db) {
            Ok(0) if bytes.len() <= INLINE => {
                let mut inline = [0u8; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::Inline {
                    // At most INLINE (22), so it fits a u8.
                    len: bytes.len() as u8,
                    bytes: inline,
                }
            }
            Ok(small) if bytes.len() <= INLINE_IN => {
                let mut inline = [0u8; INLINE_IN];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::InlineIn {
                    db: small,
                    len: bytes.len() as u8,
                    bytes: inline,
                }
            }
            _ => Key::Heap {
                db,
                bytes: bytes.into(),
            },
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::InlineIn { len, bytes, .. } => &bytes[..usize::from(*len)],
            Key::Heap { bytes, .. } => bytes,
        }
    }

    /// The key's database.
    #[inline]
    pub fn db(&self) -> Db {
        match self {
            Key::Inline { .. } => 0,
            Key::InlineIn { db, .. } => Db::from(*db),
            Key::Heap { db, .. } => *db,
        }
    }

    /// Whether this is `key` in database `db`.
    #[inline]
    pub fn is(&self, db: Db, key: &[u8]) -> bool {
        self.db() == db && self.as_bytes() == key
    }

    /// Whether a key of `len` bytes in database `db` is boxed.
    pub(super) fn boxed(db: Db, len: usize) -> bool {
        match db {
            0 => len > INLINE,
            1..=255 => len > INLINE_IN,
            _ => true,
        }
    }
}

/// Hashes keys the way one cache does (foldhash, seeded at random once), so
/// a caller can hash a key before it takes the lock around the cache and
/// hand the hash in (`get_hashed`, `insert_hashed`, `remove_hashed`); the lock
/// then covers only the probe. Caches built with one `KeyHasher` (see
/// [`super::Lru::with_hasher`]) hash alike.
#[derive(Clone, Debug, Default)]
pub struct KeyHasher(RandomState);

impl KeyHasher {
    /// A hasher with a fresh random seed.
    pub fn new() -> KeyHasher {
        KeyHasher(RandomState::default())
    }

    /// The hash of `key` in database 0 for caches using this hasher: the
    /// key's own.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }

    /// The hash of `key` in database `db`: database 0's is the key's own
    /// ([`KeyHasher::hash`]), another's mixes the number in.
    #[inline]
    pub fn hash_in(&self, db: Db, key: &[u8]) -> u64 {
        match db {
            0 => self.0.hash_one(key),
            _ => self.0.hash_one((db, key)),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = String::from_utf8_lossy(self.as_bytes());
        match self.db() {
            0 => write!(f, "Key({bytes:?})"),
            db => write!(f, "Key({db}, {bytes:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_long_ones_boxed() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, INLINE_IN, INLINE, INLINE + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::new(0, &bytes);
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(key.db(), 0);
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE);
            assert_eq!(matches!(key, Key::Heap { .. }), Key::boxed(0, len));
        }
    }

    #[test]
    fn the_database_rides_in_the_spare_bytes() {
        for db in [1, 2, 255, 256, 65_536, Db::MAX] {
            for len in [0, 1, INLINE_IN, INLINE, 1000] {
                let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let key = Key::new(db, &bytes);
                assert_eq!((key.db(), key.as_bytes()), (db, &bytes[..]));
                assert!(key.is(db, &bytes) && !key.is(0, &bytes));
                assert_eq!(matches!(key, Key::Heap { .. }), Key::boxed(db, len));
                assert_eq!(
                    matches!(key, Key::InlineIn { .. }),
                    db <= 255 && len <= INLINE_IN
                );
            }
        }
        // The same bytes in two databases are two keys.
        assert_ne!(Key::new(0, b"k"), Key::new(1, b"k"));
        assert_ne!(Key::new(1, b"k"), Key::new(2, b"k"));
    }
}
