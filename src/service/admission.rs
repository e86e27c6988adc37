//! Admission: the WORKERS places every front end shares, taken in arrival
//! order, so what the proxy does at once is bounded whatever the number of
//! connections.

use std::sync::Arc;

use crate::limit::{Detached, Limiter, Permit};
use crate::metrics::Metrics;

/// The WORKERS places, and the count of requests queued for one.
pub(super) struct Admission {
    places: Limiter,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// `places` places, the queue counted in `metrics`.
    pub(super) fn new(places: usize, metrics: Arc<Metrics>) -> Admission {
        Admission {
            places: Limiter::new(places),
            metrics,
        }
    }

    /// Waits for a place, in arrival order.
    pub(super) fn admit(&self) -> Permit<'_> {
        self.places.acquire(|delta| self.metrics.queued(delta))
    }

    /// A place if one is free now, without waiting.
    pub(super) fn try_admit(&self) -> Option<Permit<'_>> {
        self.places.try_acquire()
    }

    /// The permit for a place taken on another thread and passed on.
    pub(super) fn reattach(&self, place: Detached) -> Permit<'_> {
        self.places.reattach(place)
    }
}
