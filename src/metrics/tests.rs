//! Unit tests of the metrics' exposition.

use super::*;
use std::time::Duration;

#[test]
fn histogram_buckets_are_cumulative() {
    let metrics = Metrics::new();
    metrics.http_request(200, Duration::from_micros(30));
    metrics.http_request(404, Duration::from_millis(3));
    metrics.http_request(299, Duration::from_secs(9));
    let text = metrics.render();
    let series = "redis_proxy_request_duration_seconds";
    assert!(text.contains(&format!(
        "{series}_bucket{{protocol=\"http\",le=\"0.00005\"}} 1\n"
    )));
    assert!(text.contains(&format!(
        "{series}_bucket{{protocol=\"http\",le=\"0.005\"}} 2\n"
    )));
    assert!(text.contains(&format!(
        "{series}_bucket{{protocol=\"http\",le=\"+Inf\"}} 3\n"
    )));
    assert!(text.contains(&format!("{series}_count{{protocol=\"http\"}} 3\n")));
    assert!(text.contains(&format!("{series}_count{{protocol=\"resp\"}} 0\n")));
    assert!(text.contains("redis_proxy_requests_total{protocol=\"http\",status=\"other\"} 1\n"));
}
