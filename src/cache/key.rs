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
//! from 256 up, is boxed beside a 4-byte number. A database's kind bits
//! ([`REPLY`], [`FILE`], [`RESP3`]) ride in the top three bits of the
//! inline length's byte, so a reply's request and a file's key are inline
//! as often as a plain key is (issue #22: a boxed key costs its bytes, an
//! allocation and a cache miss more per entry).
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

/// The kind bits of a database number, the top three.
const KIND_SHIFT: u32 = 29;

/// The low bits of an inline key's `tag`: its length (at most 22).
const LEN_MASK: u8 = (1 << 5) - 1;

/// An inline key's `tag` for `len` bytes in database `db`: the kind bits
/// of `db` above the length.
#[inline]
fn tag(db: Db, len: usize) -> u8 {
    // The kind bits are the top 3 of 32, the length at most 22.
    ((db >> KIND_SHIFT) as u8) << 5 | len as u8
}

/// A key's database and bytes: inline when short, boxed otherwise.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// In database 0 (whatever its kind bits), at most 22 (`INLINE`)
    /// bytes, the first `tag & 31` of `bytes`.
    Inline {
        /// The database's kind bits (the top three), then how many of
        /// `bytes` are the key.
        tag: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE],
    },
    /// In databases 1 to 255 (whatever their kind bits), at most 21
    /// (`INLINE_IN`) bytes.
    InlineIn {
        /// The database's number, without its kind bits.
        db: u8,
        /// The database's kind bits, then how many of `bytes` are the key.
        tag: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE_IN],
    },
    /// A longer key, or one in a database numbered from 256 up.
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
        match u8::try_from(db & (KIND_BASE - 1)) {
            Ok(0) if bytes.len() <= INLINE => {
                let mut inline = [0u8; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::Inline {
                    tag: tag(db, bytes.len()),
                    bytes: inline,
                }
            }
            Ok(small) if bytes.len() <= INLINE_IN => {
                let mut inline = [0u8; INLINE_IN];
                inline[..bytes.len()].copy_from_slice(bytes);
                Key::InlineIn {
                    db: small,
                    tag: tag(db, bytes.len()),
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
            Key::Inline { tag, bytes } => &bytes[..usize::from(tag & LEN_MASK)],
            Key::InlineIn { tag, bytes, .. } => &bytes[..usize::from(tag & LEN_MASK)],
            Key::Heap { bytes, .. } => bytes,
        }
    }

    /// The key's database.
    #[inline]
    pub fn db(&self) -> Db {
        match self {
            Key::Inline { tag, .. } => Db::from(tag >> 5) << KIND_SHIFT,
            Key::InlineIn { db, tag, .. } => Db::from(tag >> 5) << KIND_SHIFT | Db::from(*db),
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
        match db & (KIND_BASE - 1) {
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

    #[test]
    fn kind_bits_ride_inline_too() {
        // A reply's request and a file's key are inline when short, in
        // database 0 and in the small ones, each kind a database apart.
        let kinds = [0, REPLY, REPLY | RESP3, FILE, REPLY | FILE | RESP3];
        for kind in kinds {
            for number in [0, 1, 255, 256, KIND_BASE - 1] {
                let db = kind | number;
                for len in [0, 1, INLINE_IN, INLINE, INLINE + 1] {
                    let bytes: Vec<u8> = (0..len).map(|i| i as u8 | 0x80).collect();
                    let key = Key::new(db, &bytes);
                    assert_eq!((key.db(), key.as_bytes()), (db, &bytes[..]));
                    assert!(key.is(db, &bytes));
                    let inline = match number {
                        0 => len <= INLINE,
                        1..=255 => len <= INLINE_IN,
                        _ => false,
                    };
                    assert_eq!(!matches!(key, Key::Heap { .. }), inline, "{db:#x} {len}");
                    assert_eq!(Key::boxed(db, len), !inline);
                    for other in kinds.iter().filter(|&&k| k != kind) {
                        assert!(!key.is(other | number, &bytes));
                    }
                }
            }
        }
    }
}
