//! What reads through the service give back: a value, where it came from,
//! or why it could not be read.

use std::fmt;
use std::time::Duration;

use triomphe::HeaderSlice;

use crate::backend::BackendError;

/// A cached value: its bytes and a digest derived from them once, at fill
/// time, rather than per hit (whether they are UTF-8 rides in its lowest
/// bit, so a hit does not scan a small value to choose its content type).
///
/// Small values are owned by whoever holds them: a hit copies them (under
/// the lock, less than a cache line or four) instead of sharing a count,
/// which saves the count's 8 bytes, keeps the allocation in a smaller size
/// class, and leaves no shared counter for threads reading a hot key to
/// bounce between cores. Larger values are shared, so a hit never copies
/// much. Either way the node holds 24 bytes; docs/performance.md has the
/// arithmetic.
#[derive(Clone)]
pub struct Value(Repr);

/// Values up to this many bytes are copied on a hit, larger ones shared.
pub const SHARED_ABOVE: usize = 256;

#[derive(Clone)]
enum Repr {
    /// At most [`SHARED_ABOVE`] bytes.
    Owned { bytes: Box<[u8]>, digest: u64 },
    /// Larger values: one allocation holding a count (no weak count, which
    /// std's `Arc` adds and nothing here uses), the digest (whether the
    /// bytes are UTF-8 in its lowest bit, as for a small value, rather
    /// than in 8 bytes more) and the bytes: 16 bytes before the bytes.
    Shared(triomphe::Arc<HeaderSlice<u64, [u8]>>),
}

impl Value {
    /// Copies `bytes` into a value, hashing and validating them once.
    pub fn new(bytes: &[u8]) -> Value {
        let is_utf8 = std::str::from_utf8(bytes).is_ok();
        let digest = xxhash_rust::xxh3::xxh3_64(bytes) & !1 | u64::from(is_utf8);
        if bytes.len() <= SHARED_ABOVE {
            return Value(Repr::Owned {
                bytes: bytes.into(),
                digest,
            });
        }
        Value(Repr::Shared(triomphe::Arc::from_header_and_slice(
            digest, bytes,
        )))
    }

    /// The exact bytes Redis returned.
    pub fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned { bytes, .. } => bytes,
            Repr::Shared(shared) => &shared.slice,
        }
    }

    /// True when the bytes are valid UTF-8: text for HTTP, else binary.
    /// Worked out when the value was made, and kept in its digest's
    /// lowest bit (no room for a flag beside it in 24 bytes, and none
    /// needed in a shared value's header).
    pub fn is_utf8(&self) -> bool {
        self.digest() & 1 == 1
    }

    /// A stable 64-bit hash of the bytes (xxh3, no seed, its lowest bit
    /// replaced by whether they are UTF-8): the same on every proxy of a
    /// fleet and across restarts, so it can be an HTTP `ETag`.
    pub fn digest(&self) -> u64 {
        match &self.0 {
            Repr::Owned { digest, .. } => *digest,
            Repr::Shared(shared) => shared.header,
        }
    }
}

impl crate::cache::Weigh for Value {
    /// The bytes, plus a shared value's count and digest (its
    /// allocation's header). Read off the handle in the node: no
    /// dereference, so a removal costs no cache miss for it.
    fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Owned { bytes, .. } => bytes.len(),
            Repr::Shared(shared) => {
                std::mem::size_of::<usize>() + std::mem::size_of::<u64>() + shared.slice.len()
            }
        }
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Value {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("bytes", &String::from_utf8_lossy(self.bytes()))
            .field("digest", &self.digest())
            .finish()
    }
}

/// A value read through the proxy: the [`Value`] itself, or what a
/// front end made of it under the lock ([`crate::service::Service::cached_with`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<V = Value> {
    /// The value.
    pub value: V,
    /// Where it came from, for `X-Cache` and the access log.
    pub source: Source,
    /// How much longer the cache keeps it fresh: for a value just read
    /// from Redis the whole lifetime, or less when its key's TTL in Redis
    /// ends sooner (zero when the key went as it was read); what is left of
    /// the entry's for a hit; zero for a stale one. Never past the key's
    /// TTL in Redis.
    pub fresh_for: Duration,
    /// How long ago it was read from Redis: zero for a value just read, the
    /// entry's age for a hit or a stale one (to within a second for a key
    /// with a TTL in Redis). With `fresh_for`, what HTTP's `Cache-Control`
    /// and `Age` are made from: the entry's whole life is about their sum
    /// for a hit.
    pub age: Duration,
}

impl<V> Found<V> {
    /// The same answer, its value turned into `f`'s.
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Found<W> {
        Found {
            value: f(self.value),
            source: self.source,
            fresh_for: self.fresh_for,
            age: self.age,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_24_bytes_in_the_node_either_way() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        for len in [0, 1, SHARED_ABOVE, SHARED_ABOVE + 1, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let value = Value::new(&bytes);
            assert_eq!(value.bytes(), &bytes[..]);
            let is_utf8 = std::str::from_utf8(&bytes).is_ok();
            assert_eq!(value.is_utf8(), is_utf8);
            assert_eq!(
                value.digest(),
                xxhash_rust::xxh3::xxh3_64(&bytes) & !1 | u64::from(is_utf8)
            );
            assert_eq!(matches!(value.0, Repr::Shared(_)), len > SHARED_ABOVE);
        }
    }

    #[test]
    fn an_entry_is_charged_78_bytes_plus_what_its_value_owns() {
        use crate::cache::{entry_overhead, Weigh};
        // The figure README and --help give for CACHE_MAX_BYTES.
        assert_eq!(entry_overhead::<Value>(), 78);
        assert_eq!(Value::new(b"abc").heap_bytes(), 3);
        let shared = Value::new(&[b'x'; SHARED_ABOVE + 1]);
        assert_eq!(shared.heap_bytes(), 8 + 8 + SHARED_ABOVE + 1);
    }
}
