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

#[test]
fn answers_to_refused_heads_count_as_http_requests_by_status() {
    let metrics = Metrics::new();
    metrics.http_request(400, Duration::from_micros(30));
    // tiny_http's own count: 2 of each status it answers heads with.
    metrics.watch_head_errors(|status| {
        if tiny_http::HEAD_ERROR_STATUSES.contains(&status) {
            2
        } else {
            0
        }
    });
    let text = metrics.render();
    let series = "redis_proxy_requests_total{protocol=\"http\",status=";
    assert!(text.contains(&format!("{series}\"400\"}} 3\n")), "{text}");
    for status in tiny_http::HEAD_ERROR_STATUSES
        .into_iter()
        .filter(|&s| s != 400)
    {
        // Each by its own name: none lost in "other".
        assert!(
            text.contains(&format!("{series}\"{status}\"}} 2\n")),
            "{status}"
        );
    }
    assert!(text.contains(&format!("{series}\"other\"}} 0\n")));
    assert!(text.contains(&format!("{series}\"200\"}} 0\n")));
}
