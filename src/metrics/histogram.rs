//! The latency histogram: a fixed array of atomic buckets, so observing is
//! two relaxed adds with no lock (rendered in `render.rs`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histograms' buckets.
pub(super) const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// A latency histogram of atomics: a count per bucket (not cumulative; the
/// exposition sums them), the sum in nanoseconds, and the total.
pub(super) struct Histogram {
    pub(super) buckets: [AtomicU64; BUCKETS.len() + 1],
    pub(super) sum_nanos: AtomicU64,
}

impl Histogram {
    pub(super) fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, elapsed: Duration) {
        self.observe_n(elapsed, 1);
    }

    /// `n` observations of `elapsed` at once (a batch's requests).
    pub(super) fn observe_n(&self, elapsed: Duration, n: u64) {
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(n, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos.saturating_mul(n), Relaxed);
    }
}
