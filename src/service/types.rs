//! What reads through the service give back: a value, where it came from,
//! or why it could not be read.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::BackendError;

/// A cached value: its bytes, refcounted so a hit clones a pointer, and
/// what is derived from them once at fill time rather than per hit.
///
/// The bytes are an `Arc<[u8]>`: one allocation holding the count and the
/// bytes, and a 16-byte handle in the cache's node (a `Bytes` is 32 bytes
/// and, once shared, a second allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The exact bytes Redis returned.
    pub bytes: Arc<[u8]>,
    /// True when `bytes` is valid UTF-8.
    pub is_utf8: bool,
    /// A stable 64-bit hash of the bytes (xxh3, no seed): the same on every
    /// proxy of a fleet and across restarts, so it can be an HTTP `ETag`.
    pub digest: u64,
}

impl Value {
    /// Wraps `bytes`, checking their encoding and hashing them once.
    pub fn new(bytes: Arc<[u8]>) -> Value {
        let is_utf8 = std::str::from_utf8(&bytes).is_ok();
        let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
        Value {
            bytes,
            is_utf8,
            digest,
        }
    }
}

/// A value read through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The value.
    pub value: Value,
    /// Where it came from, for `X-Cache` and the access log.
    pub source: Source,
    /// How much longer the cache keeps it fresh (the whole lifetime for a
    /// value just read from Redis; zero for a stale one): HTTP `max-age`.
    pub fresh_for: Duration,
    /// How long ago it was read from Redis (zero unless a hit): HTTP `Age`.
    pub age: Duration,
}

/// Where a value read through the proxy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The cache, fresh, without asking Redis.
    Hit,
    /// Redis, just now.
    Miss,
    /// The cache, no longer fresh, because Redis could not be read
    /// (STALE_IF_ERROR_SECS).
    Stale,
}

impl Source {
    /// `HIT`, `MISS` or `STALE`, as `X-Cache` and the access log say it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Hit => "HIT",
            Source::Miss => "MISS",
            Source::Stale => "STALE",
        }
    }
}

/// Why a read through the proxy failed: what front ends turn into a status
/// (503, 504, 502) or an error reply. Cheap to clone, so one outcome can be
/// shared by every request waiting on the same fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Redis could not be reached, or every connection was busy, within
    /// REDIS_TIMEOUT_MS.
    Unavailable(String),
    /// Redis did not answer within REDIS_TIMEOUT_MS.
    Timeout(String),
    /// Redis answered with an error reply (such as WRONGTYPE).
    Reply(String),
}

impl From<BackendError> for ReadError {
    fn from(err: BackendError) -> ReadError {
        match err {
            BackendError::Unavailable(why) => ReadError::Unavailable(why),
            BackendError::Timeout(why) => ReadError::Timeout(why),
            BackendError::Reply(message) => ReadError::Reply(message),
        }
    }
}

impl From<ReadError> for BackendError {
    fn from(err: ReadError) -> BackendError {
        match err {
            ReadError::Unavailable(why) => BackendError::Unavailable(why),
            ReadError::Timeout(why) => BackendError::Timeout(why),
            ReadError::Reply(message) => BackendError::Reply(message),
        }
    }
}

/// Worded as the backend words it (errors only: the clone costs nothing
/// on a path that matters).
impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        BackendError::from(self.clone()).fmt(f)
    }
}

impl std::error::Error for ReadError {}
