//! A miss: the leader's fetch from Redis, the fill of the cache, and what
//! the fetch's waiters are told.
//!
//! Each read learns the key's remaining TTL in Redis with its value (see
//! `backend::read`), and the entry never outlives it: it is fresh until the
//! cache's lifetime or the key's end in Redis, whichever is first, and is
//! not kept as stale past that end. The end is counted from just before the
//! read was sent, so it is never later than Redis's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{BackendError, Read, Ttl};
use crate::cache::Time;
use crate::metrics::BackendResult;

use super::flight::{Flight, LeaderGuard};
use super::{FetchResult, Found, ReadError, Service, Source, Value};

/// A value read from Redis, with when its key ends there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fetched {
    pub(super) value: Value,
    /// `None`: no TTL in Redis. A moment not after the fill: the value has
    /// no life left (the key went between the GET and the PTTL, or its TTL
    /// could not be asked), so it answers the reads waiting on it and is
    /// not stored.
    pub(super) ends: Option<Time>,
}

impl Service {
    /// Fetches `key` in Redis's database `db` for everyone waiting on
    /// `flight`, fills the cache, and
    /// wakes the waiters. A guard finishes the flight even if the fetch
    /// panics, so no waiter is stranded.
    pub(super) fn lead(
        &self,
        db: i64,
        key: &[u8],
        flight: &Arc<Flight>,
    ) -> Result<Option<Found>, ReadError> {
        let mut guard = LeaderGuard::new(|outcome| self.finish_flight(db, key, flight, outcome));
        let outcome = self.fetch(db, key);
        guard.finish(outcome.clone());
        self.as_found(outcome)
    }

    /// `key` in Redis's database `db`, read from Redis (counted), as a
    /// flight's outcome.
    pub(super) fn fetch(&self, db: i64, key: &[u8]) -> FetchResult {
        let sent = self.core.now();
        let started = Instant::now();
        let fetched = self.backend.get(db, key);
        let result = match &fetched {
            Ok(Read { value: Some(_), .. }) => BackendResult::Found,
            Ok(Read { value: None, .. }) => BackendResult::Absent,
            Err(BackendError::Unavailable(_)) => BackendResult::Unavailable,
            Err(BackendError::Timeout(_)) => BackendResult::Timeout,
            Err(BackendError::Reply(_)) => BackendResult::ErrorReply,
        };
        self.backend_called(result, started, fetched.as_ref().err());
        self.fetched(fetched, sent)
    }

    /// A read from Redis sent at `sent`, as a flight's outcome.
    pub(super) fn fetched(&self, read: Result<Read, BackendError>, sent: Time) -> FetchResult {
        match read {
            Ok(Read { value: None, .. }) => Ok(None),
            Ok(Read {
                value: Some(bytes),
                ttl,
                storable,
            }) => Ok(Some(Fetched {
                value: Value::new(&bytes),
                // Not storable (a cluster node no link covers): served
                // to its readers as having no life left, so not kept.
                ends: match storable {
                    true => self.ends(sent, ttl),
                    false => Some(sent),
                },
            })),
            Err(err) => Err(ReadError::from(err)),
        }
    }

    /// Counts a fetch from Redis begun at `started` (GET's or a reply's)
    /// and logs its failure, rate-limited: an outage does not flood the log.
    pub(super) fn backend_called(
        &self,
        result: BackendResult,
        started: Instant,
        err: Option<&impl std::fmt::Display>,
    ) {
        self.metrics.backend_call(result, started.elapsed());
        if let Some(err) = err {
            self.backend_warnings.warn(format_args!("{err}"));
        }
    }

    /// When a key read at `sent` ends in Redis, from its `PTTL`.
    pub(super) fn ends(&self, sent: Time, ttl: Ttl) -> Option<Time> {
        match ttl {
            Ttl::Persistent => None,
            Ttl::Left(left) => Some(sent + left),
            Ttl::Gone => Some(sent),
            Ttl::Refused(why) => {
                self.ttl_warnings.warn(format_args!(
                    "Redis refused PTTL, so nothing is cached (the proxy's Redis user needs +pttl): {why}"
                ));
                Some(sent)
            }
        }
    }

    /// Ends a flight: the core retires it and caches what it found (see
    /// `ReadThrough::fill`), then the outcome goes to its waiters.
    pub(super) fn finish_flight(&self, db: i64, key: &[u8], flight: &Flight, outcome: FetchResult) {
        self.core.fill(db, key, flight, &outcome);
        flight.complete(outcome);
    }

    /// A value just read from Redis: fresh for the whole lifetime, or until
    /// its key ends in Redis if that is sooner.
    pub(super) fn as_found(&self, outcome: FetchResult) -> Result<Option<Found>, ReadError> {
        let now = self.core.now();
        let expiry = self.core.expiry();
        outcome.map(|fetched| {
            fetched.map(|Fetched { value, ends }| Found {
                value,
                source: Source::Miss,
                fresh_for: match ends {
                    None => expiry,
                    Some(ends) => expiry.min(ends.saturating_duration_since(now)),
                },
                age: Duration::ZERO,
            })
        })
    }
}
