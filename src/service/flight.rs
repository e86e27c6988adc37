//! Fetches in flight: the table entry concurrent misses on one key share, so
//! Redis is asked once however many requests want the key at that moment.
//!
//! The table (in the service's locked state) is also the placeholder the
//! Redis client-side-caching docs describe: an invalidation that arrives
//! while a fetch is in flight marks it stale, and a stale fetch still
//! answers its waiters but is not stored.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::cache::Db;

use super::{FetchResult, ReadError};

/// One fetch in flight: the leader fills `outcome`, waiters sleep on `done`.
#[derive(Default)]
pub(super) struct Flight {
    outcome: Mutex<Option<FetchResult>>,
    done: Condvar,
}

impl Flight {
    /// Waits for the leader's outcome, up to `limit`.
    pub(super) fn wait(&self, limit: Duration) -> FetchResult {
        let slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (slot, _) = self
            .done
            .wait_timeout_while(slot, limit, |outcome| outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(outcome) => outcome.clone(),
            None => Err(ReadError::Timeout(format!(
                "no answer within {} ms",
                limit.as_millis()
            ))),
        }
    }

    /// Hands the outcome to every waiter.
    pub(super) fn complete(&self, outcome: FetchResult) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(outcome);
        self.done.notify_all();
    }
}

/// A flight's entry in the table of fetches in flight.
pub(super) struct InFlight {
    pub(super) flight: Arc<Flight>,
    /// The link epoch the fetch began under: one begun before the link last
    /// went up or down is not stored.
    pub(super) epoch: u64,
    /// An invalidation for the key (or a flush) arrived while in flight.
    pub(super) stale: bool,
}

/// The fetches in flight, by database (the cache's numbering) and key.
/// Database 0's, REDIS_ADDRESS's, has its own map, so its lookups cost
/// what they did before there were others; another database's map goes
/// with its last flight, so marking a key's flights stale in every
/// database costs O(databases with flights).
#[derive(Default)]
pub(super) struct Flights {
    home: HashMap<Box<[u8]>, InFlight>,
    others: HashMap<Db, HashMap<Box<[u8]>, InFlight>>,
}

impl Flights {
    /// The flight of `key` in `db`, if any.
    pub(super) fn get(&self, db: Db, key: &[u8]) -> Option<&InFlight> {
        match db {
            0 => self.home.get(key),
            _ => self.others.get(&db)?.get(key),
        }
    }

    /// The flight of `key` in `db`, if any, to mark it.
    pub(super) fn get_mut(&mut self, db: Db, key: &[u8]) -> Option<&mut InFlight> {
        match db {
            0 => self.home.get_mut(key),
            _ => self.others.get_mut(&db)?.get_mut(key),
        }
    }

    /// Puts `entry` in place as the flight of `key` in `db`.
    pub(super) fn insert(&mut self, db: Db, key: &[u8], entry: InFlight) {
        match db {
            0 => self.home.insert(key.into(), entry),
            _ => self.others.entry(db).or_default().insert(key.into(), entry),
        };
    }

    /// Takes the flight of `key` in `db` out of the table.
    pub(super) fn remove(&mut self, db: Db, key: &[u8]) -> Option<InFlight> {
        if db == 0 {
            return self.home.remove(key);
        }
        let flights = self.others.get_mut(&db)?;
        let entry = flights.remove(key);
        if flights.is_empty() {
            self.others.remove(&db);
        }
        entry
    }

    /// Whether no fetch is in flight at all.
    pub(super) fn is_empty(&self) -> bool {
        self.home.is_empty() && self.others.is_empty()
    }

    /// Marks the flights of `key` stale in every database: a change
    /// announced without a database.
    pub(super) fn mark_stale_everywhere(&mut self, key: &[u8]) {
        let others = self.others.values_mut();
        for flights in std::iter::once(&mut self.home).chain(others) {
            if let Some(entry) = flights.get_mut(key) {
                entry.stale = true;
            }
        }
    }

    /// Marks every flight stale.
    pub(super) fn mark_all_stale(&mut self) {
        let others = self.others.values_mut();
        for flights in std::iter::once(&mut self.home).chain(others) {
            for entry in flights.values_mut() {
                entry.stale = true;
            }
        }
    }
}

/// Finishes a leader's flight exactly once, by `finish` (which fills the
/// cache and hands the outcome to the flight's waiters: a GET's or a
/// reply's), with an error if the leader unwinds before it has an outcome,
/// so no waiter is stranded.
pub(super) struct LeaderGuard<F: FnMut(FetchResult)> {
    finish: F,
    finished: bool,
}

impl<F: FnMut(FetchResult)> LeaderGuard<F> {
    /// A guard that calls `finish` exactly once: with the outcome given to
    /// it, or with a failure if the leader unwinds first (so its waiters
    /// are never left waiting).
    pub(super) fn new(finish: F) -> LeaderGuard<F> {
        LeaderGuard {
            finish,
            finished: false,
        }
    }

    /// Finishes the flight with `outcome`.
    pub(super) fn finish(&mut self, outcome: FetchResult) {
        self.finished = true;
        (self.finish)(outcome);
    }
}

impl<F: FnMut(FetchResult)> Drop for LeaderGuard<F> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Err(ReadError::Unavailable("fetch aborted".to_owned())));
        }
    }
}
