//! The answers tiny_http writes itself to request heads it refuses
//! (malformed, too large, cut short, another HTTP version) are counted in
//! `redis_proxy_requests_total{protocol="http"}` by status, as every other
//! answer is: a flood of malformed requests shows, and a 505 counts towards
//! the 5xx rate (vendor/tiny_http patch 20).

use std::collections::HashMap;
use std::io::Write;

use crate::common::{self, connect, Endpoints, InProcess, RedisServer};
use crate::http_framing::one_answer;

/// The statuses tiny_http answers heads with itself.
const STATUSES: [u16; 7] = [400, 408, 413, 414, 417, 431, 505];

/// `redis_proxy_requests_total{protocol="http"}` for each of [`STATUSES`].
fn counted(proxy: &Endpoints) -> HashMap<u16, f64> {
    let scrape = proxy.scrape();
    STATUSES
        .iter()
        .map(|&status| {
            let series =
                format!("redis_proxy_requests_total{{protocol=\"http\",status=\"{status}\"}}");
            (status, scrape.value(&series))
        })
        .collect()
}

#[test]
fn tiny_http_patch_20_answers_to_refused_heads_are_counted_by_status() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[("HTTP_IDLE_TIMEOUT_SECS", "1")]);
    let before = counted(&proxy);
    let long_line = format!("GET /proxy?key={} HTTP/1.1\r\n\r\n", "k".repeat(40 * 1024));
    let many_headers = format!(
        "GET /proxy?key=k HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X: a\r\n".repeat(120)
    );
    let heads: [(&[u8], u16); 8] = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /proxy?key=k HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
            413,
        ),
        (long_line.as_bytes(), 414),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n",
            417,
        ),
        (many_headers.as_bytes(), 431),
        (b"GET /proxy?key=k HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        // Cut short: answered once the idle timeout passes.
        (b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\n", 408),
    ];
    for (raw, status) in heads {
        assert_eq!(
            one_answer(&proxy, raw).0,
            status,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // A connection that sends nothing is closed with a 408 too, but it made
    // no request: not counted.
    let mut idle = connect(proxy.addr);
    let answer = common::read_until_closed(&mut idle);
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Each is counted before it is written, so all are counted by now.
    let after = counted(&proxy);
    let added: Vec<(u16, f64)> = STATUSES
        .iter()
        .map(|status| (*status, after[status] - before[status]))
        .collect();
    let wanted = [2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    assert_eq!(added, STATUSES.into_iter().zip(wanted).collect::<Vec<_>>());
    // A keep-alive connection whose next request never comes is not
    // counted either, once it is closed; nor is the empty line some
    // clients send after a request (patch 22: ignored, not a request).
    let mut kept = connect(proxy.addr);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
        .expect("send");
    let answer = String::from_utf8_lossy(&common::read_until_closed(&mut kept)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("HTTP/1.1 408"), "{answer}");
    assert_eq!(counted(&proxy), after);
}
