//! Which front end (HTTP or RESP) a count belongs to, and the series kept
//! per front end: open connections, and tracking clients.
//!
//! Hits and misses are counted in `service`, which serves both front ends
//! through one `get` and does not know which one called. Rather than thread
//! a protocol through every service call, each front end marks its own
//! threads once at start ([`serve_on_this_thread`]): a thread serves one
//! front end for its life, so the mark is always right, and reading it is a
//! thread-local load, no lock and no allocation on the request path.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::render::describe;
use super::Metrics;

/// A front end of the proxy, as the `protocol` label names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEnd {
    /// The HTTP port (tiny_http workers).
    Http = 0,
    /// The Redis protocol port (the event loop and its workers).
    Resp = 1,
}

/// The `protocol` label values, indexed by [`FrontEnd`].
pub(super) const PROTOCOLS: [&str; 2] = ["http", "resp"];

thread_local! {
    /// The front end this thread serves. Threads never marked (tests
    /// calling the service directly) count as HTTP.
    static CURRENT: Cell<FrontEnd> = const { Cell::new(FrontEnd::Http) };
}

/// Marks the calling thread as serving `front_end`, for the `protocol`
/// label of the hits and misses it counts. Called once, when a front end
/// starts one of its threads.
pub fn serve_on_this_thread(front_end: FrontEnd) {
    CURRENT.with(|current| current.set(front_end));
}

/// The index of the front end the calling thread serves.
pub(super) fn current() -> usize {
    CURRENT.with(Cell::get) as usize
}

impl Metrics {
    /// Hands the metrics the counter of `front_end`'s open connections,
    /// which the front end keeps itself (the RESP event loop's count, the
    /// HTTP server's). The first call for a front end wins: one proxy
    /// starts each front end once.
    pub fn watch_connections(&self, front_end: FrontEnd, open: Arc<AtomicUsize>) {
        let _ = self.connections[front_end as usize].set(open);
    }

    /// Hands the metrics the HTTP server's count of the answers it writes
    /// itself to request heads it refuses (malformed, too large, timed out,
    /// another HTTP version: vendor patch 20), `answered(status)`, added to
    /// `redis_proxy_requests_total{protocol="http"}` when rendered: no
    /// worker sees those requests, and a flood of them must show. The first
    /// call wins.
    pub fn watch_head_errors(&self, answered: impl Fn(u16) -> u64 + Send + Sync + 'static) {
        let _ = self.head_errors.set(Box::new(answered));
    }

    /// The RESP event loop's connections with `CLIENT TRACKING` on (the
    /// table's own sizes come through `set_client_tracking`).
    pub fn set_tracking_clients(&self, clients: usize) {
        self.tracking_clients.store(clients, Relaxed);
    }

    /// MAX_CONNECTIONS, set once at start.
    pub fn set_max_connections(&self, n: usize) {
        self.max_connections.store(n, Relaxed);
    }

    /// Whether the cache relies on invalidations now (the link state is
    /// not `off`): refreshed by the HTTP front end at each scrape.
    pub fn set_invalidation_enabled(&self, enabled: bool) {
        self.invalidation_enabled
            .store(usize::from(enabled), Relaxed);
    }

    /// MAX_CONNECTIONS.
    pub fn max_connections(&self) -> usize {
        self.max_connections.load(Relaxed)
    }

    /// Connections with `CLIENT TRACKING` on.
    pub fn tracking_clients(&self) -> usize {
        self.tracking_clients.load(Relaxed)
    }

    /// The families labelled by front end, and the tracking gauges.
    pub(super) fn render_front_ends(&self, out: &mut String) {
        let counters = [
            (
                "redis_proxy_cache_hits_total",
                "Reads answered from the cache, by front end.",
                &self.hits,
            ),
            (
                "redis_proxy_cache_misses_total",
                "Reads the cache could not answer, by front end.",
                &self.misses,
            ),
        ];
        for (name, help, values) in counters {
            describe(out, name, help, "counter");
            for (value, protocol) in values.iter().zip(PROTOCOLS) {
                let n = value.load(Relaxed);
                let _ = writeln!(out, "{name}{{protocol=\"{protocol}\"}} {n}");
            }
        }
        let name = "redis_proxy_connections";
        describe(
            out,
            name,
            "Client connections open now, by front end.",
            "gauge",
        );
        for (i, protocol) in PROTOCOLS.iter().enumerate() {
            let n = self.connections[i]
                .get()
                .map_or(0, |open| open.load(Relaxed));
            let _ = writeln!(out, "{name}{{protocol=\"{protocol}\"}} {n}");
        }
        let gauges = [
            (
                "redis_proxy_max_connections",
                "MAX_CONNECTIONS: most RESP connections open at once.",
                self.max_connections(),
            ),
            (
                "redis_proxy_invalidation_enabled",
                "1 when the cache relies on Redis's invalidations (INVALIDATION not off, and Redis took tracking), else 0.",
                self.invalidation_enabled.load(Relaxed),
            ),
            (
                "redis_proxy_tracking_clients",
                "RESP connections with CLIENT TRACKING on.",
                self.tracking_clients(),
            ),
        ];
        for (name, help, value) in gauges {
            describe(out, name, help, "gauge");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_under_the_front_end_of_their_thread() {
        let metrics = Arc::new(Metrics::new());
        metrics.hit();
        let resp = Arc::clone(&metrics);
        std::thread::spawn(move || {
            serve_on_this_thread(FrontEnd::Resp);
            resp.hit();
            resp.miss();
        })
        .join()
        .expect("thread");
        assert_eq!((metrics.hits(), metrics.misses()), (2, 1));
        let text = metrics.render();
        assert!(text.contains("redis_proxy_cache_hits_total{protocol=\"http\"} 1\n"));
        assert!(text.contains("redis_proxy_cache_hits_total{protocol=\"resp\"} 1\n"));
        assert!(text.contains("redis_proxy_cache_misses_total{protocol=\"http\"} 0\n"));
    }
}
