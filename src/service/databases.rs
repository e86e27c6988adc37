//! What the proxy knows of Redis itself, learnt off the event loop so the
//! event loop answers with it without a round trip: `databases` (`SELECT n`
//! is answered as Redis answers it), Redis's version (what `HELLO` and
//! `INFO` report, unless RESP_REPORTED_VERSION fixes one), `maxmemory` and
//! `maxmemory-policy` (`INFO memory` passes them on).
//!
//! All are read together, in one round trip (`Backend::facts`): when the
//! invalidation link comes up (Redis may have restarted, or be another
//! server after a failover), on the link's thread; and on a worker, by the
//! first forwarded batch while `databases` is unknown (with
//! `INVALIDATION=off` there is no link) or stale. The count sits in an
//! atomic the event loop reads for free. A failed read (Redis down, or the
//! proxy's user lacks `+config|get`) is tried again at most every [`RETRY`].
//!
//! Only the version is read while the RESP port forwards nothing (off, or
//! `RESP_FORWARD=off`): no client then selects another database or runs a
//! queue on Redis, and the read-only Redis user documented for that case
//! lacks `+config|get`, whose refusal Redis's `ACL LOG` would record.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::MaxMemory;

use super::Service;

/// How long after a failed read the next one may be tried.
const RETRY: Duration = Duration::from_secs(5);

/// The version `HELLO` and `INFO` report while Redis's own is unknown (Redis
/// down since start-up): the oldest Redis the proxy supports, so a client
/// assumes nothing the Redis behind may lack. The proxy routes by the key
/// specifications and subcommands of Redis 7.0's `COMMAND`, reads Redis's
/// settings with 7.0's several-name `CONFIG GET`, sends a subscribed
/// client's `RESET` to Redis (6.2), and its link needs RESP3 and `CLIENT
/// TRACKING ... BCAST` (6.0); 7.0 is also the version it is tested against.
const FALLBACK_VERSION: &str = "7.0.0";

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
    /// Redis's version and memory settings, as last read with the count.
    facts: Mutex<Facts>,
}

/// Redis's version and memory settings, as last read.
#[derive(Default)]
struct Facts {
    version: Option<String>,
    memory: Option<MaxMemory>,
}

impl Databases {
    /// Redis may be another server now (the invalidation link reconnected).
    pub(super) fn changed(&self) {
        self.stale.store(true, Ordering::Release);
    }

    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Service {
    /// The version `HELLO` and `INFO` report: RESP_REPORTED_VERSION's if it
    /// fixes one, else Redis's own as last read (clients pick commands by
    /// it, and those reach this Redis), [`FALLBACK_VERSION`] until then.
    pub fn reported_version(&self) -> String {
        if let Some(fixed) = &self.reported_version {
            return fixed.clone();
        }
        self.databases
            .facts()
            .version
            .clone()
            .unwrap_or_else(|| FALLBACK_VERSION.to_owned())
    }

    /// Redis's `maxmemory` and `maxmemory-policy` as last read, for `INFO
    /// memory`; `None` while unread, or when Redis refused `CONFIG GET`.
    pub fn redis_max_memory(&self) -> Option<MaxMemory> {
        self.databases.facts().memory.clone()
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

    /// Reads everything this module keeps from Redis now, whatever is
    /// known: Redis may be another server. A round trip, off the event loop
    /// (the invalidation link's thread calls it when it comes up, before
    /// the link shows as up).
    pub(super) fn learn_server(&self) {
        self.databases.changed();
        self.read_facts();
    }

    /// Reads Redis's facts if `databases` is unknown or may have changed: a
    /// round trip then, two loads otherwise. Call it off the event loop.
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
        self.read_facts();
    }

    /// One round trip for every fact. The version and memory settings are
    /// replaced by what was read (`None` for a refused command: Redis's
    /// current answer); a count not read is tried again after [`RETRY`].
    fn read_facts(&self) {
        let state = &self.databases;
        let known = state.count.load(Ordering::Acquire) > 0;
        state.stale.store(false, Ordering::Release);
        let count = match self.backend.facts(self.reads_settings) {
            Ok(facts) => {
                *state.facts() = Facts {
                    version: facts.version,
                    memory: facts.memory,
                };
                facts.databases
            }
            Err(err) => {
                log::debug!("Redis's version and settings not read: {err}");
                None
            }
        };
        let mut failed_at = state
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match count {
            Some(count) => {
                state.count.store(count, Ordering::Release);
                *failed_at = None;
            }
            None => {
                state.stale.store(known, Ordering::Release);
                *failed_at = Some(Instant::now());
            }
        }
    }
}
