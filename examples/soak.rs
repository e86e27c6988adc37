//! The load half of `make soak` (scripts/soak.sh starts Redis and the proxy
//! and restarts Redis). Mixed HTTP and RESP reads over KEYS keys for SECONDS,
//! while a writer rewrites every value with a new version. A value must name
//! its own key and a version that was written: anything else is a wrong
//! value. Once every invalidation of a rewrite has reached the proxy (its
//! `redis_proxy_invalidations_total` says so), that version is settled: a
//! read begun after that which returns an older version is a stale read.
//! Prints a summary; exits 1 on any wrong value or stale read.
//!
//! Environment: HTTP_ADDR, RESP_ADDR, REDIS_URL, KEYS (100000), SECONDS (300),
//! CLIENTS (8 per protocol), REWRITE_SECS (20).

#[path = "support/scrape.rs"]
mod scrape;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn num(name: &str, default: u64) -> u64 {
    env(name, &default.to_string()).parse().unwrap_or(default)
}

struct Tally {
    outcomes: Mutex<BTreeMap<String, u64>>,
    wrong: AtomicU64,
    newest_version: AtomicU64,
    /// The newest version whose every invalidation the proxy has applied.
    settled_version: AtomicU64,
    stale: AtomicU64,
}

impl Tally {
    fn count(&self, outcome: &str) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    /// Checks a value read for `key`: `<key>:v<version>`, a version written
    /// and not older than `settled` (the settled version when the read began).
    fn check(&self, key: &str, value: &[u8], settled: u64) {
        let text = String::from_utf8_lossy(value);
        let version = text
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(":v"))
            .and_then(|v| v.parse::<u64>().ok());
        match version {
            Some(v) if v <= self.newest_version.load(SeqCst) => {
                if v < settled {
                    self.stale.fetch_add(1, SeqCst);
                    eprintln!("STALE READ for {key}: v{v} after v{settled} was settled");
                }
            }
            _ => {
                self.wrong.fetch_add(1, SeqCst);
                eprintln!("WRONG VALUE for {key}: {text:?}");
            }
        }
    }

    fn settled(&self) -> u64 {
        self.settled_version.load(SeqCst)
    }
}

fn rewrite(url: &str, keys: u64, version: u64) -> redis::RedisResult<()> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    for start in (0..keys).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(keys) {
            pipe.cmd("SET")
                .arg(format!("soak{i}"))
                .arg(format!("soak{i}:v{version}"))
                .ignore();
        }
        pipe.query::<()>(&mut conn)?;
    }
    Ok(())
}

/// The next of a client's pseudo-random keys (a 64-bit LCG, seeded per
/// client): `soak0` to `soak{keys - 1}`.
fn next_key(n: &mut u64, keys: u64) -> String {
    *n = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    format!("soak{}", (*n >> 33) % keys)
}

fn http_client(addr: &str, keys: u64, seed: u64, stop: &AtomicBool, tally: &Tally) {
    let mut n = seed;
    while !stop.load(SeqCst) {
        let Ok(stream) = TcpStream::connect(addr) else {
            tally.count("http connect error");
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        while !stop.load(SeqCst) {
            let key = next_key(&mut n, keys);
            let settled = tally.settled();
            let request = format!("GET /proxy?key={key} HTTP/1.1\r\nHost: soak\r\n\r\n");
            if reader.get_mut().write_all(request.as_bytes()).is_err() {
                tally.count("http write error");
                break;
            }
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                tally.count("http no answer");
                break;
            }
            let status = line.split_whitespace().nth(1).unwrap_or("?").to_owned();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                tally.count("http short body");
                break;
            }
            if status == "200" {
                tally.check(&key, &body, settled);
            }
            tally.count(&format!("http {status}"));
        }
    }
}

fn resp_client(url: &str, keys: u64, seed: u64, stop: &AtomicBool, tally: &Tally) {
    let mut n = seed;
    while !stop.load(SeqCst) {
        let Ok(mut conn) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
            tally.count("resp connect error");
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        while !stop.load(SeqCst) {
            let key = next_key(&mut n, keys);
            let settled = tally.settled();
            match redis::cmd("GET")
                .arg(&key)
                .query::<Option<Vec<u8>>>(&mut conn)
            {
                Ok(Some(value)) => {
                    tally.check(&key, &value, settled);
                    tally.count("resp value");
                }
                Ok(None) => tally.count("resp nil"),
                Err(err) if err.is_io_error() => {
                    tally.count("resp connection lost");
                    break;
                }
                Err(_) => tally.count("resp error reply"),
            }
        }
    }
}

fn main() {
    let http = env("HTTP_ADDR", "127.0.0.1:8080");
    let resp = format!("redis://{}", env("RESP_ADDR", "127.0.0.1:6380"));
    let redis_url = env("REDIS_URL", "redis://127.0.0.1:6379");
    let keys = num("KEYS", 100_000);
    let seconds = num("SECONDS", 300);
    let clients = num("CLIENTS", 8);
    let rewrite_every = Duration::from_secs(num("REWRITE_SECS", 20));
    let tally = Arc::new(Tally {
        outcomes: Mutex::new(BTreeMap::new()),
        wrong: AtomicU64::new(0),
        newest_version: AtomicU64::new(0),
        settled_version: AtomicU64::new(0),
        stale: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..clients {
        let (addr, flag, counts) = (http.clone(), stop.clone(), tally.clone());
        threads.push(thread::spawn(move || {
            http_client(&addr, keys, i * 2 + 1, &flag, &counts)
        }));
        let (url, flag, counts) = (resp.clone(), stop.clone(), tally.clone());
        threads.push(thread::spawn(move || {
            resp_client(&url, keys, i * 2 + 2, &flag, &counts)
        }));
    }
    let started = Instant::now();
    let mut version = 0;
    let mut next_rewrite = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        if Instant::now() >= next_rewrite {
            // Publish the version before writing it, so a reader never sees a
            // value newer than what it may accept.
            version += 1;
            tally.newest_version.store(version, SeqCst);
            let before = invalidations(&http);
            match rewrite(&redis_url, keys, version) {
                Ok(()) => {
                    eprintln!(
                        "{:>4}s rewrote every value to v{version}",
                        started.elapsed().as_secs()
                    );
                    // Settled once the proxy has applied every invalidation
                    // (a Redis restart meanwhile leaves it unsettled).
                    let settle_by = Instant::now() + Duration::from_secs(10);
                    while Instant::now() < settle_by {
                        match (before, invalidations(&http)) {
                            (Some(b), Some(now)) if now >= b + keys => {
                                tally.settled_version.store(version, SeqCst);
                                break;
                            }
                            _ => thread::sleep(Duration::from_millis(5)),
                        }
                    }
                }
                Err(err) => eprintln!(
                    "{:>4}s rewrite to v{version} failed: {err}",
                    started.elapsed().as_secs()
                ),
            }
            next_rewrite = Instant::now() + rewrite_every;
        }
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, SeqCst);
    for thread in threads {
        let _ = thread.join();
    }
    let outcomes = tally.outcomes.lock().unwrap_or_else(|e| e.into_inner());
    let total: u64 = outcomes.values().sum();
    println!(
        "requests: {total} in {seconds}s ({:.0}/s)",
        total as f64 / seconds as f64
    );
    for (outcome, n) in outcomes.iter() {
        println!("  {outcome:<22} {n}");
    }
    let wrong = tally.wrong.load(SeqCst);
    let stale = tally.stale.load(SeqCst);
    println!("wrong values: {wrong}");
    println!(
        "stale reads after a write's invalidation: {stale} (v{} settled)",
        tally.settled()
    );
    std::process::exit(i32::from(wrong != 0 || stale != 0));
}

/// `redis_proxy_invalidations_total` from the proxy's /metrics.
fn invalidations(http: &str) -> Option<u64> {
    scrape::metric(http, "redis_proxy_invalidations_total").ok()
}
