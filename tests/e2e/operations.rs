//! What an operator relies on: health and readiness, metrics, logs, and a
//! graceful shutdown.

use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crate::common::relay::Relay;
use crate::common::{eventually, request, InProcess, Proxy, RedisServer};

#[test]
fn healthz_ignores_redis_and_readyz_follows_it() {
    let mut redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("REDIS_TIMEOUT_MS", "300")]);
    assert_eq!(proxy.get("/healthz").status, 200);
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["backend"], "up");

    redis.stop();
    assert_eq!(proxy.get("/healthz").status, 200);
    // The first probe after the stop, on the connection kept from the
    // last one, names the cause (not that connection's end of file).
    let refused = format!(
        "backing Redis unavailable: connection refused to 127.0.0.1:{}",
        redis.port()
    );
    for _ in 0..2 {
        let ready = proxy.get("/readyz");
        assert_eq!(ready.status, 503);
        assert_eq!(ready.json()["error"], refused.as_str());
    }

    redis.restart();
    eventually("/readyz to recover", || {
        (proxy.get("/readyz").status == 200).then_some(())
    });
    assert_eq!(proxy.get("/healthz").status, 200);
}

#[test]
fn metrics_count_a_known_sequence_exactly() {
    let redis = RedisServer::start();
    for key in ["a", "b", "c"] {
        redis.set(key, "v");
    }
    let proxy = InProcess::start(&redis, &[("CACHE_CAPACITY", "2")]);
    let ok = "redis_proxy_requests_total{protocol=\"http\",status=\"200\"}";
    let before = proxy.metric(ok);
    for key in ["a", "a", "b", "c", "absent"] {
        proxy.get_key(key);
    }
    let reply = proxy.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let m = proxy.scrape();
    assert_eq!(m.value("redis_proxy_cache_hits_total"), 1.0);
    assert_eq!(m.value("redis_proxy_cache_misses_total"), 4.0);
    assert_eq!(m.value("redis_proxy_cache_evictions_total"), 1.0);
    assert_eq!(m.value("redis_proxy_cache_expired_total"), 0.0);
    assert_eq!(m.value("redis_proxy_cache_entries"), 2.0);
    assert_eq!(m.value("redis_proxy_cache_capacity"), 2.0);
    assert_eq!(m.value("redis_proxy_coalesced_total"), 0.0);
    let backend = |result: &str| {
        m.value(&format!(
            "redis_proxy_backend_requests_total{{result=\"{result}\"}}"
        ))
    };
    assert_eq!(
        (backend("found"), backend("absent"), backend("unavailable")),
        (3.0, 1.0, 0.0)
    );
    // Four reads, the first scrape and the one above answered 200 since.
    assert_eq!(m.value(ok) - before, 4.0 + 2.0);
    assert_eq!(
        m.value("redis_proxy_requests_total{protocol=\"http\",status=\"404\"}"),
        1.0
    );
    // The histogram: cumulative buckets ending in +Inf, with a count.
    let buckets: Vec<&(String, f64)> = m
        .iter()
        .filter(|(name, _)| {
            name.starts_with("redis_proxy_request_duration_seconds_bucket{protocol=\"http\"")
        })
        .collect();
    assert!(buckets.len() > 5);
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "not cumulative"
    );
    let (last, total) = buckets.last().copied().cloned().expect("buckets");
    assert_eq!(
        last,
        "redis_proxy_request_duration_seconds_bucket{protocol=\"http\",le=\"+Inf\"}"
    );
    assert_eq!(
        total,
        m.value("redis_proxy_request_duration_seconds_count{protocol=\"http\"}")
    );
    assert!(total >= 7.0);
    assert_eq!(m.value("redis_proxy_backend_duration_seconds_count"), 4.0);
    // The scrape that reads this is the only request in flight.
    assert_eq!(m.value("redis_proxy_requests_in_flight"), 1.0);
}

#[test]
fn start_up_line_shows_the_config_with_the_password_masked() {
    let redis = RedisServer::start();
    let address = format!("redis://reader:s3cret-pw@127.0.0.1:{}/0", redis.port());
    let proxy = Proxy::start_at(&address, &[("CACHE_CAPACITY", "77")]);
    // The proxy serves as soon as it is bound and logs the line just after.
    let (log, line) = eventually("the start-up line", || {
        let log = proxy.log();
        let line = log.lines().find(|l| l.contains("listening on"))?.to_owned();
        Some((log, line))
    });
    assert!(line.contains("capacity=77"), "{line}");
    assert!(line.contains("reader:***@"), "{line}");
    assert!(!log.contains("s3cret-pw"), "{log}");
}

#[test]
fn backend_failures_are_logged_with_their_cause_but_not_flooded() {
    let mut redis = RedisServer::start();
    let proxy = Proxy::start(
        &redis,
        &[("REDIS_TIMEOUT_MS", "100"), ("INVALIDATION", "off")],
    );
    redis.stop();
    let started = std::time::Instant::now();
    for i in 0..30 {
        assert_eq!(proxy.get_key(format!("k{i}")).status, 503);
    }
    // At most one warning every 5 s: however long the 30 failures took,
    // the log holds at most one for each 5 s begun.
    let allowed = 1 + started.elapsed().as_secs() as usize / 5;
    let log = proxy.log();
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings >= 1, "no warning: {log}");
    assert!(
        warnings <= allowed.min(29),
        "{warnings} warnings for 30 failures (at most {allowed}): {log}"
    );
    assert!(log.contains("unavailable"), "{log}");
}

#[test]
fn access_lines_are_logged_at_debug_level_only() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let debug = Proxy::start(&redis, &[("RUST_LOG", "redis_proxy=debug")]);
    debug.get_key("k");
    let info = Proxy::start(&redis, &[("RUST_LOG", "info")]);
    info.get_key("k");
    eventually("the access line", || {
        debug
            .log()
            .lines()
            .any(|l| l.contains("GET /proxy?key=k 200 MISS"))
            .then_some(())
    });
    assert!(!info.log().contains("/proxy?key=k"));
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_zero() {
    let redis = RedisServer::start();
    for i in 0..8 {
        redis.set(format!("s{i}"), format!("v{i}"));
    }
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let mut proxy = Proxy::start_at(
        &relay.url(),
        // The relay counts every request: no invalidation link's PINGs.
        &[
            ("WORKERS", "8"),
            ("REDIS_TIMEOUT_MS", "10000"),
            ("INVALIDATION", "off"),
        ],
    );
    relay.hold();
    let addr = proxy.addr;
    let readers: Vec<_> = (0..8)
        .map(|i| thread::spawn(move || request(addr, "GET", &format!("/proxy?key=s{i}"), &[])))
        .collect();
    eventually("8 slow requests in flight", || {
        (relay.in_flight() == 8).then_some(())
    });
    proxy.signal("TERM");
    // New connections are no longer taken ...
    eventually("the listener to close", || {
        TcpStream::connect(addr).is_err().then_some(())
    });
    relay.release();
    // ... and every request already in flight is answered.
    for (i, reader) in readers.into_iter().enumerate() {
        let reply = reader.join().expect("reader");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, format!("v{i}").as_bytes());
    }
    let status = proxy.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", proxy.log());
}

#[test]
fn a_second_signal_exits_at_once() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let mut proxy = Proxy::start_at(
        &relay.url(),
        &[("REDIS_TIMEOUT_MS", "30000"), ("INVALIDATION", "off")],
    );
    relay.hold();
    let addr = proxy.addr;
    let reader =
        thread::spawn(move || crate::common::try_request(addr, "GET", "/proxy?key=k", &[]));
    eventually("a request in flight", || {
        (relay.in_flight() == 1).then_some(())
    });
    proxy.signal("INT");
    eventually("the first signal to be handled", || {
        proxy.log().contains("draining").then_some(())
    });
    proxy.signal("INT");
    let status = proxy.wait_exit();
    assert_eq!(status.code(), Some(128 + 2));
    relay.release();
    assert!(
        reader.join().expect("reader").is_err(),
        "the held request was cut off"
    );
}
