//! A read split between a thread that must not block and one that may: the
//! RESP event loop looks the key up once, under one lock, and on a miss
//! leads or joins the key's fetch there and then; a worker finishes the
//! read from what the loop learned, without hashing the key or taking the
//! lock again to look it up. (The fill still takes the lock once.)
//!
//! Places (WORKERS) and fetches never wait on each other in a circle:
//! - a fetch the loop leads keeps the place the loop's lookup took, so a
//!   leader never queues for a place behind readers waiting on its fetch;
//! - a read that joins a fetch gives its place back at once: waiting
//!   needs none;
//! - the loop leads only while no read it handed over is still queued for
//!   a place ([`Service::defer`]): a worker blocked waiting for a place is
//!   then never ahead of a leader holding one in the job queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::limit::{Detached, Permit};

use super::flight::Flight;
use super::read_through::Claimed;
use super::{hit, Found, ReadError, Service};

/// What the event loop's lookup found.
pub enum Claim {
    /// A fresh value, served from the cache.
    Hit(Found),
    /// A miss whose fetch is now led or joined, for a worker to finish.
    Fetch(Ticket),
    /// A miss not led here (reads handed over earlier still queue for a
    /// place): a worker reads it through [`Service::get`].
    Pass,
}

/// A key's fetch, led or joined on the event loop, for a worker to finish
/// with [`Service::finish`]. A leader's ticket holds the WORKERS place the
/// lookup took.
///
/// A ticket dropped unfinished leaves its place taken and, had it led, its
/// key's fetch without a leader: only a worker pool that is gone (the proxy
/// stopping) drops one.
pub struct Ticket {
    /// Redis's number of the key's database.
    db: i64,
    flight: Arc<Flight>,
    /// The leader's place; `None` for a read that waits on the fetch.
    place: Option<Detached>,
}

/// A read handed to a worker that will wait for a place: while any is
/// outstanding, the loop leads no fetch. [`Deferred::done`] once the worker
/// has its place, or dropping it (if the read is never run), ends that.
pub struct Deferred(Option<Arc<AtomicUsize>>);

impl Deferred {
    /// The read has its place (or will never wait for one).
    pub fn done(&mut self) {
        if let Some(count) = self.0.take() {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        self.done();
    }
}

impl Service {
    /// Looks `key` in Redis's database `db` (the client's `SELECT`) up
    /// under one lock, holding the WORKERS place `place`
    /// (taken without waiting): a hit, or a miss whose fetch is now led or
    /// joined, counted as [`Service::get`] counts them. `worker_free` says
    /// whether a worker would start a led fetch at once: without one, a
    /// miss leads nothing here (its readers would all wait behind busy
    /// workers), but a hit is still served. `at` is the loop's own reading
    /// of the clock when the command came (see [`Service::cached_with`]).
    pub fn claim(
        &self,
        db: i64,
        key: &[u8],
        place: Permit<'_>,
        worker_free: bool,
        at: Instant,
    ) -> Claim {
        let may_lead = worker_free && self.deferred.load(Ordering::Acquire) == 0;
        let now = self.core.time_at(at);
        match self.core.claim(db, key, now, may_lead) {
            Claimed::Hit(value, life) => {
                self.metrics.hit();
                Claim::Hit(hit(value, life))
            }
            Claimed::Lead(flight) => {
                self.metrics.miss();
                Claim::Fetch(Ticket {
                    db,
                    flight,
                    place: Some(place.detach()),
                })
            }
            Claimed::Follow(flight) => {
                self.metrics.miss();
                self.metrics.coalesced();
                Claim::Fetch(Ticket {
                    db,
                    flight,
                    place: None,
                })
            }
            Claimed::Pass => Claim::Pass,
        }
    }

    /// Marks a read handed to a worker that will wait for a place with
    /// [`Service::admit`]; the worker drops the mark once admitted.
    pub fn defer(&self) -> Deferred {
        self.deferred.fetch_add(1, Ordering::AcqRel);
        Deferred(Some(Arc::clone(&self.deferred)))
    }

    /// Finishes the read of `key` that [`Service::claim`] began for that
    /// same key (in its database), as [`Service::get_in`] would (stale-if-error included), then
    /// releases the leader's place.
    pub fn finish(&self, key: &[u8], ticket: Ticket) -> Result<Option<Found>, ReadError> {
        let Ticket { db, flight, place } = ticket;
        let read = match place {
            Some(place) => {
                let _place = self.admission.reattach(place);
                self.lead(db, key, &flight)
            }
            None => self.as_found(flight.wait(self.wait_limit)),
        };
        self.or_stale(db, key, read)
    }
}
