//! Fetches in flight: the table entry concurrent misses on one key share, so
//! Redis is asked once however many requests want the key at that moment.
//!
//! The table (in the service's locked state) is also the placeholder the
//! Redis client-side-caching docs describe: an invalidation that arrives
//! while a fetch is in flight marks it stale, and a stale fetch still
//! answers its waiters but is not stored.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::{FetchResult, ReadError, Service};

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

/// Finishes the leader's flight exactly once, with an error if the leader
/// unwinds before it has an outcome, so no waiter is stranded.
pub(super) struct LeaderGuard<'a> {
    pub(super) service: &'a Service,
    pub(super) key: &'a [u8],
    pub(super) flight: &'a Flight,
    pub(super) finished: bool,
}

impl LeaderGuard<'_> {
    pub(super) fn finish(&mut self, outcome: FetchResult) {
        self.finished = true;
        self.service.finish_flight(self.key, self.flight, outcome);
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.service.finish_flight(
                self.key,
                self.flight,
                Err(ReadError::Unavailable("fetch aborted".to_owned())),
            );
        }
    }
}
