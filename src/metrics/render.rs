//! The Prometheus text exposition (format 0.0.4) of the proxy's counters.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::front_end::PROTOCOLS;
use super::process;
use super::{
    Histogram, Metrics, AUTH_PROTOCOLS, BACKEND_RESULTS, BUCKETS, FLUSH_REASONS, HTTP_STATUSES,
    RESP_STATUSES,
};

impl Metrics {
    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_front_ends(&mut out);
        let counters = [
            (
                "redis_proxy_cache_evictions_total",
                "Live entries evicted to make room.",
                &self.evictions,
            ),
            (
                "redis_proxy_cache_expired_total",
                "Entries dropped at the end of their lifetime.",
                &self.expired,
            ),
            (
                "redis_proxy_coalesced_total",
                "Misses that shared another request's backing fetch.",
                &self.coalesced,
            ),
            (
                "redis_proxy_invalidations_total",
                "Keys Redis announced as changed on the invalidation link.",
                &self.invalidations,
            ),
            (
                "redis_proxy_tracking_changes_total",
                "Changed keys the RESP front end matched against its tracking clients' reads and prefixes.",
                &self.client_tracking_changes,
            ),
            (
                "redis_proxy_stale_served_total",
                "Entries served past their freshness because Redis could not be read.",
                &self.stale_served,
            ),
            (
                "redis_proxy_replies_unfiled_total",
                "Replies relayed but not cached because one of their keys already had as many replies filed as a key may.",
                &self.replies_unfiled,
            ),
        ];
        for (name, help, value) in counters {
            describe(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", value.load(Relaxed));
        }
        let gauges = [
            (
                "redis_proxy_cache_entries",
                "Entries in the cache.",
                self.entries.load(Relaxed) as i64,
            ),
            (
                "redis_proxy_cache_capacity",
                "Most entries the cache holds.",
                self.capacity.load(Relaxed) as i64,
            ),
            (
                "redis_proxy_cache_bytes",
                "Bytes the cache's entries take: keys, values and bookkeeping (bounded by CACHE_MAX_BYTES).",
                self.cache_bytes[0].load(Relaxed) as i64,
            ),
            (
                "redis_proxy_cache_max_bytes",
                "Most bytes the cache's entries may take (CACHE_MAX_BYTES).",
                self.cache_bytes[1].load(Relaxed) as i64,
            ),
            (
                "redis_proxy_requests_in_flight",
                "Requests being served now.",
                self.in_flight.load(Relaxed),
            ),
            (
                "redis_proxy_requests_queued",
                "Requests waiting for one of the WORKERS places.",
                self.queued.load(Relaxed).max(0),
            ),
            (
                "redis_proxy_tracking_keys",
                "Keys remembered for RESP clients with CLIENT TRACKING.",
                self.client_tracking[0].load(Relaxed) as i64,
            ),
            (
                "redis_proxy_tracking_bytes",
                "Bytes those keys take, bookkeeping included (bounded by TRACKING_TABLE_MAX_BYTES).",
                self.client_tracking[1].load(Relaxed) as i64,
            ),
            (
                "redis_proxy_tracking_prefixes",
                "BCAST prefixes held for RESP clients with CLIENT TRACKING.",
                self.client_tracking[2].load(Relaxed) as i64,
            ),
            (
                "redis_proxy_invalidation_link_up",
                "1 while the invalidation link to Redis is up, else 0.",
                self.link_up.load(Relaxed) as i64,
            ),
        ];
        for (name, help, value) in gauges {
            describe(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "redis_proxy_requests_total";
        describe(
            &mut out,
            name,
            "Requests answered, by front end and status.",
            "counter",
        );
        let refused_heads = |status| {
            self.head_errors
                .get()
                .map_or(0, |answered| answered(status))
        };
        for (i, &status) in HTTP_STATUSES.iter().enumerate() {
            let n = self.http_requests[i].load(Relaxed) + refused_heads(status);
            let _ = writeln!(out, "{name}{{protocol=\"http\",status=\"{status}\"}} {n}");
        }
        let other = self.http_requests[HTTP_STATUSES.len()].load(Relaxed);
        let _ = writeln!(out, "{name}{{protocol=\"http\",status=\"other\"}} {other}");
        for (i, status) in RESP_STATUSES.iter().enumerate() {
            let n = self.resp_requests[i].load(Relaxed);
            let _ = writeln!(out, "{name}{{protocol=\"resp\",status=\"{status}\"}} {n}");
        }
        let name = "redis_proxy_auth_failures_total";
        describe(
            &mut out,
            name,
            "Authentication attempts refused: a wrong PROXY_PASSWORD, or user.",
            "counter",
        );
        for (i, protocol) in AUTH_PROTOCOLS.iter().enumerate() {
            let n = self.auth_failures[i].load(Relaxed);
            let _ = writeln!(out, "{name}{{protocol=\"{protocol}\"}} {n}");
        }
        let name = "redis_proxy_rejected_connections_total";
        describe(
            &mut out,
            name,
            "Connections turned away at MAX_CONNECTIONS (RESP answers -ERR max number of clients reached).",
            "counter",
        );
        let n = self.resp_rejected.load(Relaxed);
        let _ = writeln!(out, "{name}{{protocol=\"resp\"}} {n}");
        let name = "redis_proxy_cache_flushes_total";
        describe(
            &mut out,
            name,
            "Times the whole cache was dropped: the invalidation link was lost, or Redis was flushed.",
            "counter",
        );
        for (i, reason) in FLUSH_REASONS.iter().enumerate() {
            let n = self.flushes[i].load(Relaxed);
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
        }
        let name = "redis_proxy_request_duration_seconds";
        describe(
            &mut out,
            name,
            "Time from a request's dispatch to its answer, by front end.",
            "histogram",
        );
        for (histogram, protocol) in self.request_duration.iter().zip(PROTOCOLS) {
            histogram.render_series(&mut out, name, &format!("protocol=\"{protocol}\","));
        }
        let name = "redis_proxy_backend_requests_total";
        describe(&mut out, name, "Backing Redis GETs, by result.", "counter");
        for (i, result) in BACKEND_RESULTS.iter().enumerate() {
            let n = self.backend_results[i].load(Relaxed);
            let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
        }
        self.backend_duration.render(
            &mut out,
            "redis_proxy_backend_duration_seconds",
            "Time of one backing Redis GET, checkout included.",
        );
        self.render_forwarded(&mut out);
        process::render_build_info(&mut out);
        process::render_memory_limit(&mut out);
        if let Some(figures) = process::ProcessFigures::read() {
            figures.render(&mut out);
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
pub(super) fn describe(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Histogram {
    /// The histogram's family: cumulative buckets, sum and count.
    pub(super) fn render(&self, out: &mut String, name: &str, help: &str) {
        describe(out, name, help, "histogram");
        self.render_series(out, name, "");
    }

    /// One histogram's series, with `labels` (empty, or `name="value",`)
    /// before `le`.
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let labels = labels.trim_end_matches(',');
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
        } else {
            let _ = writeln!(
                out,
                "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {cumulative}"
            );
        }
    }
}
