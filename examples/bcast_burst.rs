//! The BCAST half of `make bench` (scripts/bench.sh starts Redis and a
//! proxy): what clients holding many `CLIENT TRACKING ON BCAST` prefixes
//! cost everyone else while keys change.
//!
//! RESP3 connections to the proxy ask for PREFIXES prefixes, 4000 each
//! (a connection may hold 4096), and read what they are told on threads
//! of their own; WRITES keys are then written straight
//! to Redis, in pipelines of 100, one in 100 under a prefix. Meanwhile
//! another connection PINGs the proxy, one at a time, from the first write
//! until the proxy has matched every change
//! (`redis_proxy_tracking_changes_total`). Prints the PINGs' p50,
//! p99 and worst latency, and how long the changes took to match.
//!
//! Environment: RESP_ADDR, HTTP_ADDR, REDIS_URL, PREFIXES (100000), WRITES
//! (20000).

#[path = "support/scrape.rs"]
mod scrape;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefixes a holding connection asks for: under the proxy's cap of 4096.
const PER_HOLDER: usize = 4000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn changes(http: &str) -> std::io::Result<u64> {
    scrape::metric(http, "redis_proxy_tracking_changes_total")
}

/// Sends one command as a RESP array of bulk strings.
fn send(stream: &mut TcpStream, words: &[&str]) -> std::io::Result<()> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        out.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
    }
    stream.write_all(&out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let resp = env("RESP_ADDR", "127.0.0.1:6380");
    let http = env("HTTP_ADDR", "127.0.0.1:8080");
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let prefixes: usize = env("PREFIXES", "100000").parse()?;
    let writes: usize = env("WRITES", "20000").parse()?;

    // The holders: HELLO 3, then their prefixes in one CLIENT TRACKING
    // each, at most PER_HOLDER a connection (the proxy's cap is 4096).
    let names: Vec<String> = (0..prefixes).map(|i| format!("p:{i:06}:")).collect();
    let mut holders = Vec::new();
    for share in names.chunks(PER_HOLDER) {
        let mut holder = TcpStream::connect(&resp)?;
        let mut reader = BufReader::new(holder.try_clone()?);
        send(&mut holder, &["HELLO", "3"])?;
        let mut words = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
        for name in share {
            words.extend(["PREFIX", name.as_str()]);
        }
        send(&mut holder, &words)?;
        // HELLO's map, then +OK: read lines until it.
        let mut line = String::new();
        while line.trim_end() != "+OK" {
            line.clear();
            if reader.read_line(&mut line)? == 0 || line.starts_with('-') {
                return Err(format!("CLIENT TRACKING refused: {line}").into());
            }
        }
        // What it is told is read and dropped, so it is never cut off.
        std::thread::spawn(move || {
            let mut sink = [0u8; 64 * 1024];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        });
        holders.push(holder);
    }

    let mut pinger = redis::Client::open(format!("redis://{resp}"))?.get_connection()?;
    let mut redis = redis::Client::open(redis_url)?.get_connection()?;
    let before = changes(&http)?;
    let written = Arc::new(AtomicBool::new(false));
    let writer = {
        let written = Arc::clone(&written);
        std::thread::spawn(move || -> redis::RedisResult<()> {
            for batch in 0..writes.div_ceil(100) {
                let mut pipe = redis::pipe();
                for n in batch * 100..((batch + 1) * 100).min(writes) {
                    let key = match n % 100 {
                        0 => format!("p:{:06}:{n}", n % prefixes.max(1)),
                        _ => format!("q:{n:06}:"),
                    };
                    pipe.cmd("SET").arg(key).arg(1).ignore();
                }
                pipe.query::<()>(&mut redis)?;
            }
            written.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    loop {
        let sent = Instant::now();
        redis::cmd("PING").query::<String>(&mut pinger)?;
        latencies.push(sent.elapsed());
        if latencies.len() % 16 == 0
            && written.load(Ordering::SeqCst)
            && changes(&http)? >= before + writes as u64
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the changes were never all matched".into());
        }
    }
    let matched = started.elapsed();
    writer.join().map_err(|_| "the writer panicked")??;
    latencies.sort_unstable();
    println!(
        "PING while {prefixes} BCAST prefixes meet {writes} writes: p50 {:?}, p99 {:?}, max {:?} ({} PINGs; all changes matched in {matched:?})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len()
    );
    drop(holders);
    Ok(())
}
