//! The operators' endpoints: the figures the page shows (`/stats`), the
//! Prometheus exposition (`/metrics`) and readiness (`/readyz`), kept apart
//! from `proxy`'s hot path; none of them reads the cache's entries.

use serde_json::json;

use super::response::{self, HttpResponse};
use crate::service::Service;

/// The figures the page shows, as JSON.
pub fn stats(service: &Service) -> HttpResponse {
    let metrics = service.metrics();
    let (hits, misses) = (metrics.hits(), metrics.misses());
    let ratio = if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    };
    response::json(
        200,
        &json!({
            "hits": hits,
            "misses": misses,
            "hit_ratio": ratio,
            "entries": metrics.entries(),
            "capacity": metrics.capacity(),
            "cache_bytes": metrics.cache_bytes()[0],
            "cache_max_bytes": metrics.cache_bytes()[1],
            "in_flight": metrics.requests_in_flight(),
            "queued": metrics.requests_queued().max(0),
            "stale_served": metrics.stale_served_count(),
            "redis": if service.ready().is_ok() { "up" } else { "down" },
            "invalidation": service.link_state().name(),
        }),
    )
}

/// The Prometheus exposition (`/metrics`).
pub fn metrics(service: &Service) -> HttpResponse {
    response::build(
        200,
        b"text/plain; version=0.0.4; charset=utf-8",
        service.render_metrics().into_bytes(),
    )
}

/// Readiness (`/readyz`): Redis answers, and the link's state.
pub fn ready(service: &Service) -> HttpResponse {
    let invalidation = service.link_state().name();
    match service.ready() {
        Ok(()) => response::json(
            200,
            &json!({ "status": "ready", "backend": "up", "invalidation": invalidation }),
        ),
        Err(err) => response::json(
            503,
            &json!({
                "status": "not ready",
                "backend": "down",
                "invalidation": invalidation,
                "error": err.to_string(),
            }),
        ),
    }
}
