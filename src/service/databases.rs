//! Redis's `databases` setting, learnt once so `SELECT n` can be answered
//! on the RESP event loop as Redis answers it, without a round trip there.
//!
//! It is read on a worker (the first forwarded batch, or any later one
//! while it is unknown or after the invalidation link reconnected: Redis
//! may have restarted with another setting) and kept in an atomic the
//! event loop reads for free. A failed read (Redis down, or the proxy's
//! user lacks `+config|get`) is tried again at most every [`RETRY`].

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Service;

/// How long after a failed read the next one may be tried.
const RETRY: Duration = Duration::from_secs(5);

/// What the event loop reads, and when the workers may ask again.
#[derive(Default)]
pub(super) struct Databases {
    /// The count, 0 while unknown.
    count: AtomicI64,
    /// Set when Redis may have changed: read it again (the old count serves
    /// meanwhile).
    stale: AtomicBool,
    /// When the last read failed.
    failed_at: Mutex<Option<Instant>>,
    /// Redis's version, once read with the count.
    version: Mutex<Option<String>>,
}

impl Databases {
    /// Redis may be another server now (the invalidation link reconnected).
    pub(super) fn changed(&self) {
        self.stale.store(true, Ordering::Release);
    }
}

impl Service {
    /// Redis's version, if learnt (at link up): `HELLO` and `INFO` report
    /// it when it is above the one the proxy's own connection features
    /// follow, since clients choose commands by it and those reach this
    /// Redis.
    pub fn redis_version(&self) -> Option<String> {
        self.databases
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Redis's `databases`, if learnt: free, for the event loop.
    pub fn databases(&self) -> Option<i64> {
        let count = self.databases.count.load(Ordering::Acquire);
        (count > 0).then_some(count)
    }

    /// Whether the proxy fronts a Redis Cluster, where only database 0
    /// exists (`SELECT` answers as a cluster node does).
    pub fn is_cluster(&self) -> bool {
        self.backend.is_cluster()
    }

    /// Reads Redis's version (`HELLO`, which any user may run: a
    /// read-only ACL user is refused nothing). A round trip: off the event
    /// loop (the invalidation link's thread calls it when it comes up).
    pub fn learn_version(&self) {
        match self.backend.version() {
            Ok(version) => {
                *self
                    .databases
                    .version
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(version);
            }
            Err(err) => log::debug!("Redis's version not read: {err}"),
        }
    }

    /// Reads `databases` from Redis if it is unknown or may have changed:
    /// a round trip then, a load otherwise. Call it off the event loop.
    pub fn learn_databases(&self) {
        let state = &self.databases;
        let known = state.count.load(Ordering::Acquire) > 0;
        if known && !state.stale.load(Ordering::Acquire) {
            return;
        }
        {
            let failed_at = state
                .failed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if failed_at.is_some_and(|at| at.elapsed() < RETRY) {
                return;
            }
        }
        state.stale.store(false, Ordering::Release);
        match self.backend.databases() {
            Ok(count) => {
                state.count.store(count, Ordering::Release);
                *state
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }
            Err(err) => {
                log::debug!("Redis's `databases` not read: {err}");
                state.stale.store(known, Ordering::Release);
                *state
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            }
        }
    }
}
