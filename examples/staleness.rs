//! The coherence half of `make bench` (scripts/bench.sh starts Redis and a
//! proxy with invalidation on). Two figures:
//!
//! 1. Staleness: WRITES times, a key cached in the proxy is rewritten in
//!    Redis; from the write's acknowledgement, the proxy is read (RESP) until
//!    it answers the new value. Prints p50, p99 and the worst.
//! 2. Invalidations applied per second: BURST keys written to Redis in
//!    pipelines, timed until the proxy's `redis_proxy_invalidations_total`
//!    has counted them all (so Redis's own write rate is included: a floor).
//!
//! Environment: RESP_ADDR, HTTP_ADDR, REDIS_URL, WRITES (10000), BURST (200000).

#[path = "support/scrape.rs"]
mod scrape;

use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection()
}

/// `redis_proxy_invalidations_total` from the proxy's /metrics.
fn invalidations(http: &str) -> std::io::Result<u64> {
    scrape::metric(http, "redis_proxy_invalidations_total")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proxy_url = format!("redis://{}", env("RESP_ADDR", "127.0.0.1:6380"));
    let http = env("HTTP_ADDR", "127.0.0.1:8080");
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let writes: usize = env("WRITES", "10000").parse()?;
    let burst: u64 = env("BURST", "200000").parse()?;
    let mut proxy = connect(&proxy_url)?;
    let mut redis = connect(&redis_url)?;

    let mut delays = Vec::with_capacity(writes);
    let deadline = Duration::from_secs(5);
    for i in 0..writes {
        let key = format!("stale:{}", i % 100);
        let old = format!("v{i}-old");
        let new = format!("v{i}");
        redis::cmd("SET")
            .arg(&key)
            .arg(&old)
            .query::<()>(&mut redis)?;
        // Read until cached: the old value, twice.
        for _ in 0..2 {
            while redis::cmd("GET").arg(&key).query::<String>(&mut proxy)? != old {}
        }
        redis::cmd("SET")
            .arg(&key)
            .arg(&new)
            .query::<()>(&mut redis)?;
        let acknowledged = Instant::now();
        loop {
            let got: String = redis::cmd("GET").arg(&key).query(&mut proxy)?;
            if got == new {
                break;
            }
            if acknowledged.elapsed() > deadline {
                return Err(format!("{key} still {got:?} {deadline:?} after the write").into());
            }
        }
        delays.push(acknowledged.elapsed());
    }
    delays.sort_unstable();
    println!(
        "staleness over {writes} writes: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );

    let before = invalidations(&http)?;
    let started = Instant::now();
    for start in (0..burst).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(burst) {
            pipe.cmd("SET").arg(format!("burst:{i}")).arg(i).ignore();
        }
        pipe.query::<()>(&mut redis)?;
    }
    let written = started.elapsed();
    while invalidations(&http)? < before + burst {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the invalidations never all arrived".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let applied = started.elapsed();
    println!(
        "invalidations: {burst} applied in {applied:?} ({:.0}/s; Redis took {written:?} to write them)",
        burst as f64 / applied.as_secs_f64()
    );
    Ok(())
}
