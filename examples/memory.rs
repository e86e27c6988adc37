//! The memory half of `make bench`: what one cached key costs the proxy,
//! next to what the same key costs Redis, for the same keys and values.
//!
//! Writes KEYS keys of 16 bytes with VALUE_SIZE-byte values into an empty
//! Redis (measuring its `used_memory` before and after), then reads every
//! key once through the proxy's RESP port in pipelined MGETs (measuring the
//! proxy's resident memory, from /proc/PROXY_PID/status, before and after).
//!
//! Environment: REDIS_URL, RESP_ADDR, PROXY_PID, KEYS (1000000), VALUE_SIZE (100).

use std::time::Duration;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `used_memory` (what Redis's allocator handed out) and `used_memory_rss`
/// (what the process holds), from INFO memory.
fn redis_memory(conn: &mut redis::Connection) -> redis::RedisResult<(u64, u64)> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn)?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok((field("used_memory:"), field("used_memory_rss:")))
}

fn rss_bytes(pid: &str) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024)
}

fn key(i: u64) -> String {
    format!("mem:{i:012}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let proxy_url = format!("redis://{}", env("RESP_ADDR", "127.0.0.1:6380"));
    let pid = env("PROXY_PID", "");
    let keys: u64 = env("KEYS", "1000000").parse()?;
    let value = vec![b'v'; env("VALUE_SIZE", "100").parse()?];
    let mut redis = redis::Client::open(redis_url)?.get_connection()?;
    let mut proxy = redis::Client::open(proxy_url)?.get_connection()?;

    let before = redis_memory(&mut redis)?;
    for start in (0..keys).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(keys) {
            pipe.cmd("SET").arg(key(i)).arg(&value).ignore();
        }
        pipe.query::<()>(&mut redis)?;
    }
    let after = redis_memory(&mut redis)?;
    let redis_per_key = after.0.saturating_sub(before.0) as f64 / keys as f64;
    let redis_rss_per_key = after.1.saturating_sub(before.1) as f64 / keys as f64;

    let rss_before = rss_bytes(&pid)?;
    for start in (0..keys).step_by(1000) {
        let mut mget = redis::cmd("MGET");
        for i in start..(start + 1000).min(keys) {
            mget.arg(key(i));
        }
        let _: Vec<Option<Vec<u8>>> = mget.query(&mut proxy)?;
    }
    // Let freed request buffers settle before reading the resident size.
    std::thread::sleep(Duration::from_millis(200));
    let proxy_per_key = rss_bytes(&pid)?.saturating_sub(rss_before) as f64 / keys as f64;
    println!(
        "memory per key ({keys} keys of 16 bytes, {}-byte values): proxy {proxy_per_key:.0} B (resident growth), redis {redis_per_key:.0} B (used_memory growth; resident growth {redis_rss_per_key:.0} B)",
        value.len()
    );
    Ok(())
}
