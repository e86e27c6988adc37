//! The proxy's counters and their Prometheus text exposition (format 0.0.4).
//!
//! Every series is a fixed set of atomics laid out at start-up, so counting on
//! the request path is a few relaxed atomic adds: no lock, no allocation, no
//! label lookup. Hand-written rather than `prometheus-client`, whose
//! histograms take a lock per observation and whose labelled families look
//! labels up in a locked map; the format itself is a few lines of text.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod commands;
mod forwarded;
mod front_end;
mod histogram;
mod process;
mod readings;
mod render;

pub use commands::{CommandFigures, MAX_COMMANDS};
pub use forwarded::{ForwardResult, ForwardedCommand};
pub use front_end::{serve_on_this_thread, FrontEnd};
use histogram::{Histogram, BUCKETS};
pub use process::resident_bytes;

/// HTTP statuses counted by name; anything else counts as "other". Every
/// status tiny_http answers a refused head with is among them (417, 505).
const HTTP_STATUSES: [u16; 16] = [
    200, 304, 400, 401, 404, 405, 408, 413, 414, 417, 431, 500, 502, 503, 504, 505,
];
/// RESP outcomes counted.
const RESP_STATUSES: [&str; 2] = ["ok", "error"];

/// Every counter the proxy keeps. One instance, shared by `Arc`.
pub struct Metrics {
    /// Per front end ([`FrontEnd`]), as are the other two-element arrays.
    hits: [AtomicU64; 2],
    misses: [AtomicU64; 2],
    evictions: AtomicU64,
    expired: AtomicU64,
    coalesced: AtomicU64,
    entries: AtomicU64,
    capacity: AtomicU64,
    /// The bytes the cache's entries take, and CACHE_MAX_BYTES.
    cache_bytes: [AtomicU64; 2],
    in_flight: AtomicI64,
    queued: AtomicI64,
    http_requests: [AtomicU64; HTTP_STATUSES.len() + 1],
    resp_requests: [AtomicU64; RESP_STATUSES.len()],
    request_duration: [Histogram; 2],
    backend_results: [AtomicU64; 5],
    backend_duration: Histogram,
    link_up: AtomicU64,
    invalidations: AtomicU64,
    client_tracking_changes: AtomicU64,
    /// The RESP tracking table: keys, their bytes, BCAST prefixes.
    client_tracking: [AtomicU64; 3],
    stale_served: AtomicU64,
    /// Replies relayed but not cached: a key had its fill of them filed.
    replies_unfiled: AtomicU64,
    resp_connections: AtomicU64,
    resp_rejected: AtomicU64,
    auth_failures: [AtomicU64; AUTH_PROTOCOLS.len()],
    started: Instant,
    /// The last `INFO` rate sample: when, the command count then, the rate.
    ops_sample: Mutex<(Instant, u64, u64)>,
    flushes: [AtomicU64; FLUSH_REASONS.len()],
    /// Each front end's own count of its open connections, once it runs.
    connections: [OnceLock<Arc<AtomicUsize>>; 2],
    /// The HTTP server's count of the answers it wrote itself to request
    /// heads it refused, by status (vendor patch 20), once it runs.
    head_errors: OnceLock<HeadErrors>,
    tracking_clients: AtomicUsize,
    /// MAX_CONNECTIONS (RESP), for alerts on connections near it.
    max_connections: AtomicUsize,
    /// Whether the cache relies on invalidations (INVALIDATION not off, and
    /// Redis took tracking), for alerts on the link.
    invalidation_enabled: AtomicUsize,
    /// RESP commands by their index in the command table (`INFO
    /// commandstats`).
    commands: [commands::CommandCounters; MAX_COMMANDS],
    /// Error replies in all, and by code (`INFO errorstats`).
    errors: Mutex<(u64, Vec<(String, u64)>)>,
    /// RESP subcommands (`client|setname`), by name.
    subcommands: Mutex<Vec<(String, CommandFigures)>>,
    /// Commands forwarded to Redis, by name (`INFO commandstats` too).
    forwarded: forwarded::ForwardedCommands,
    /// Forwarded batches' round trips.
    forward_duration: Histogram,
}

/// How many answers with a status the HTTP server wrote itself, to request
/// heads it refused (a function of the status).
type HeadErrors = Box<dyn Fn(u16) -> u64 + Send + Sync>;

/// Labels of `redis_proxy_auth_failures_total`.
const AUTH_PROTOCOLS: [&str; 2] = ["http", "resp"];

/// Labels of `redis_proxy_cache_flushes_total`: why the whole cache went.
const FLUSH_REASONS: [&str; 2] = ["link_lost", "flushall"];

/// Labels of `redis_proxy_backend_requests_total`, in [`BackendResult`]'s order.
const BACKEND_RESULTS: [&str; 5] = ["found", "absent", "unavailable", "timeout", "error_reply"];

/// How a backing GET ended, as `redis_proxy_backend_requests_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendResult {
    /// The key was there.
    Found,
    /// Redis has no such key.
    Absent,
    /// Redis could not be reached in time.
    Unavailable,
    /// Redis did not answer in time.
    Timeout,
    /// Redis answered with an error.
    ErrorReply,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// All zero.
    pub fn new() -> Metrics {
        Metrics {
            hits: std::array::from_fn(|_| AtomicU64::new(0)),
            misses: std::array::from_fn(|_| AtomicU64::new(0)),
            evictions: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            capacity: AtomicU64::new(0),
            cache_bytes: std::array::from_fn(|_| AtomicU64::new(0)),
            in_flight: AtomicI64::new(0),
            queued: AtomicI64::new(0),
            http_requests: std::array::from_fn(|_| AtomicU64::new(0)),
            resp_requests: std::array::from_fn(|_| AtomicU64::new(0)),
            request_duration: [Histogram::new(), Histogram::new()],
            backend_results: std::array::from_fn(|_| AtomicU64::new(0)),
            backend_duration: Histogram::new(),
            link_up: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            client_tracking_changes: AtomicU64::new(0),
            client_tracking: std::array::from_fn(|_| AtomicU64::new(0)),
            stale_served: AtomicU64::new(0),
            replies_unfiled: AtomicU64::new(0),
            resp_connections: AtomicU64::new(0),
            resp_rejected: AtomicU64::new(0),
            auth_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            started: Instant::now(),
            ops_sample: Mutex::new((Instant::now(), 0, 0)),
            flushes: std::array::from_fn(|_| AtomicU64::new(0)),
            connections: [OnceLock::new(), OnceLock::new()],
            head_errors: OnceLock::new(),
            tracking_clients: AtomicUsize::new(0),
            max_connections: AtomicUsize::new(0),
            invalidation_enabled: AtomicUsize::new(0),
            commands: std::array::from_fn(|_| Default::default()),
            errors: Mutex::new((0, Vec::new())),
            subcommands: Mutex::new(Vec::new()),
            forwarded: forwarded::ForwardedCommands::new(),
            forward_duration: Histogram::new(),
        }
    }

    /// A read answered from the cache, counted for the front end the
    /// calling thread serves.
    pub fn hit(&self) {
        self.hits[front_end::current()].fetch_add(1, Relaxed);
    }

    /// A read the cache could not answer, counted for the front end the
    /// calling thread serves.
    pub fn miss(&self) {
        self.misses[front_end::current()].fetch_add(1, Relaxed);
    }

    /// A miss that waited for another request's fetch instead of its own.
    pub fn coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }

    /// Live entries pushed out to make room.
    pub fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Relaxed);
    }

    /// Entries dropped because their lifetime ran out.
    pub fn expired(&self, n: u64) {
        self.expired.fetch_add(n, Relaxed);
    }

    /// The cache's current entry count, and the bytes they take.
    pub fn set_entries(&self, n: usize, bytes: usize) {
        self.entries.store(n as u64, Relaxed);
        self.cache_bytes[0].store(bytes as u64, Relaxed);
    }

    /// The cache's capacity and CACHE_MAX_BYTES, set once.
    pub fn set_capacity(&self, n: usize, max_bytes: usize) {
        self.capacity.store(n as u64, Relaxed);
        self.cache_bytes[1].store(max_bytes as u64, Relaxed);
    }

    /// A request entered (+1) or left (-1) service.
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Relaxed);
    }

    /// A request started (+1) or stopped (-1) waiting for a worker.
    pub fn queued(&self, delta: i64) {
        self.queued.fetch_add(delta, Relaxed);
    }

    /// A finished HTTP request.
    pub fn http_request(&self, status: u16, elapsed: Duration) {
        let index = HTTP_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(HTTP_STATUSES.len());
        self.http_requests[index].fetch_add(1, Relaxed);
        self.request_duration[FrontEnd::Http as usize].observe(elapsed);
    }

    /// A finished RESP command.
    pub fn resp_request(&self, ok: bool, elapsed: Duration) {
        self.resp_requests[usize::from(!ok)].fetch_add(1, Relaxed);
        self.request_duration[FrontEnd::Resp as usize].observe(elapsed);
    }

    /// A finished backing GET.
    pub fn backend_call(&self, result: BackendResult, elapsed: Duration) {
        self.backend_results[result as usize].fetch_add(1, Relaxed);
        self.backend_duration.observe(elapsed);
    }

    /// A batch of forwarded requests was answered, `elapsed` after a
    /// worker took it.
    pub fn forward_batch(&self, elapsed: Duration) {
        self.forward_duration.observe(elapsed);
    }

    /// The invalidation link went up (true) or down.
    pub fn set_link_up(&self, up: bool) {
        self.link_up.store(u64::from(up), Relaxed);
    }

    /// Keys Redis announced as changed.
    pub fn invalidated(&self, keys: u64) {
        self.invalidations.fetch_add(keys, Relaxed);
    }

    /// Changed keys the RESP front end has matched against its tracking
    /// clients' reads and prefixes.
    pub fn client_tracking_changed(&self, keys: u64) {
        self.client_tracking_changes.fetch_add(keys, Relaxed);
    }

    /// The RESP tracking table's size now: keys, their bytes, prefixes.
    pub fn set_client_tracking(&self, keys: u64, bytes: u64, prefixes: u64) {
        for (gauge, value) in self.client_tracking.iter().zip([keys, bytes, prefixes]) {
            gauge.store(value, Relaxed);
        }
    }

    /// The whole cache was dropped, for one of `FLUSH_REASONS`.
    pub fn flushed(&self, reason: &str) {
        if let Some(i) = FLUSH_REASONS.iter().position(|&r| r == reason) {
            self.flushes[i].fetch_add(1, Relaxed);
        }
    }

    /// An entry past its freshness served because Redis could not be read.
    pub fn stale_served(&self) {
        self.stale_served.fetch_add(1, Relaxed);
    }

    /// A reply relayed but not cached: one of its keys had as many replies
    /// filed as one key may (issue #22).
    pub fn reply_unfiled(&self) {
        self.replies_unfiled.fetch_add(1, Relaxed);
    }

    /// A client gave a wrong (or no) password, over `protocol`.
    pub fn auth_failure(&self, protocol: &str) {
        if let Some(i) = AUTH_PROTOCOLS.iter().position(|&p| p == protocol) {
            self.auth_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// A RESP connection was accepted.
    pub fn resp_connection(&self) {
        self.resp_connections.fetch_add(1, Relaxed);
    }

    /// A RESP connection was turned away: MAX_CONNECTIONS were open.
    pub fn resp_rejected(&self) {
        self.resp_rejected.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests;
