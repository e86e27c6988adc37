//! The figures the proxy's counters hold, read back as numbers: for
//! `INFO` and `/stats` (the Prometheus text is `render.rs`'s). Every read is a relaxed atomic load, except
//! [`Metrics::ops_per_sec`]'s sample.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::Metrics;

impl Metrics {
    /// Requests waiting for a permit now.
    pub fn requests_queued(&self) -> i64 {
        self.queued.load(Relaxed)
    }

    /// Requests in service now.
    pub fn requests_in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    /// Changed keys matched for tracking clients so far.
    pub fn client_tracking_changes(&self) -> u64 {
        self.client_tracking_changes.load(Relaxed)
    }

    /// The RESP tracking table's keys, bytes and BCAST prefixes.
    pub fn client_tracking(&self) -> [u64; 3] {
        std::array::from_fn(|i| self.client_tracking[i].load(Relaxed))
    }

    /// Keys announced as changed so far.
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Relaxed)
    }

    /// RESP connections turned away so far (`rejected_connections`).
    pub fn resp_rejections(&self) -> u64 {
        self.resp_rejected.load(Relaxed)
    }

    /// RESP connections accepted so far.
    pub fn resp_connections(&self) -> u64 {
        self.resp_connections.load(Relaxed)
    }

    /// RESP commands answered so far, errors included.
    pub fn resp_commands(&self) -> u64 {
        self.resp_requests.iter().map(|n| n.load(Relaxed)).sum()
    }

    /// RESP commands a second, over the time since the previous call (at
    /// least 100 ms; a closer call gets the previous figure). For `INFO`,
    /// which `redis-cli --stat` calls every second; never on a hot path.
    pub fn ops_per_sec(&self) -> u64 {
        let now = Instant::now();
        let count = self.resp_commands();
        let mut sample = self
            .ops_sample
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (at, then, rate) = *sample;
        let elapsed = now.duration_since(at);
        if elapsed < Duration::from_millis(100) {
            return rate;
        }
        let rate = (count.saturating_sub(then) as f64 / elapsed.as_secs_f64()) as u64;
        *sample = (now, count, rate);
        rate
    }

    /// How long since the proxy started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Most entries the cache holds.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Relaxed)
    }

    /// The bytes the cache's entries take now, and the most they may take.
    pub fn cache_bytes(&self) -> [u64; 2] {
        [0, 1].map(|i| self.cache_bytes[i].load(Relaxed))
    }

    /// Stale entries served so far.
    pub fn stale_served_count(&self) -> u64 {
        self.stale_served.load(Relaxed)
    }

    /// Entries the cache holds now.
    pub fn entries(&self) -> u64 {
        self.entries.load(Relaxed)
    }

    /// Live entries evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    /// Entries expired so far.
    pub fn expirations(&self) -> u64 {
        self.expired.load(Relaxed)
    }

    /// Cache hits so far.
    pub fn hits(&self) -> u64 {
        self.hits.iter().map(|n| n.load(Relaxed)).sum()
    }

    /// Misses that waited on another request's fetch so far.
    #[cfg(test)]
    pub fn coalesced_count(&self) -> u64 {
        self.coalesced.load(Relaxed)
    }

    /// Cache misses so far.
    pub fn misses(&self) -> u64 {
        self.misses.iter().map(|n| n.load(Relaxed)).sum()
    }
}
