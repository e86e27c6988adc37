//! The page for browsers, in a real headless Chromium (Debian's `chromium`,
//! which `make test` installs): it loads with no console error, a lookup
//! shows the value, and the figures appear. A screenshot of it is written
//! to `target/tmp/browser-page.png` for a person to look at.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{request, InProcess, RedisServer, TempDir};

/// Chromium, headless, on `url`, with `extra` flags, in a fresh profile.
pub(crate) fn chromium(url: &str, extra: &[&str]) -> Output {
    let profile = TempDir::new("chromium");
    chromium_in(&profile, url, extra)
}

/// Chromium, headless, on `url`, keeping its state (its HTTP cache) in
/// `profile`.
fn chromium_in(profile: &TempDir, url: &str, extra: &[&str]) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            // Timers run on virtual time: the page's refreshes happen at
            // once, and the run ends when the budget is spent.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium is installed (apt-get install chromium)")
}

#[test]
fn the_page_looks_a_key_up_and_shows_the_figures_in_a_real_browser() {
    let redis = RedisServer::start();
    redis.set("greeting", "hello from redis");
    let proxy = InProcess::start(&redis, &[]);
    let url = format!("http://{}/?key=greeting", proxy.addr);
    let out = chromium(&url, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // The lookup: the value, and where it came from.
    assert!(dom.contains("id=\"value\">hello from redis<"), "{dom}");
    assert!(
        dom.contains("class=\"badge MISS\">MISS<") || dom.contains("class=\"badge HIT\">HIT<"),
        "{dom}"
    );
    // The figures, filled in from /stats.
    assert!(
        dom.contains("id=\"entries\">") && dom.contains(" / 10000<"),
        "{dom}"
    );
    assert!(dom.contains(" / 256.0 MiB<"), "cache bytes: {dom}");
    assert!(
        dom.contains("<span class=\"up\">up</span>"),
        "Redis and the link up: {dom}"
    );
    assert!(
        !dom.contains("id=\"hit_ratio\">…<"),
        "figures never filled in: {dom}"
    );
    // No console message at all: no error, no warning.
    assert!(!log.contains("CONSOLE"), "{log}");
    // A picture for a person.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-page.png");
    let out = chromium(
        &url,
        &[
            "--window-size=900,700",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}

#[test]
fn the_browser_revalidates_what_it_cached_and_gets_a_304() {
    let redis = RedisServer::start();
    redis.set("k", "cached in the browser");
    let proxy = InProcess::start(&redis, &[]);
    let url = format!("http://{}/?key=k", proxy.addr);
    let profile = TempDir::new("chromium-cache");
    let not_modified = "redis_proxy_requests_total{protocol=\"http\",status=\"304\"}";
    // The first visit fills the browser's cache, with the ETag.
    let first = chromium_in(&profile, &url, &["--dump-dom"]);
    assert!(String::from_utf8_lossy(&first.stdout).contains("cached in the browser"));
    assert_eq!(proxy.metric(not_modified), 0.0);
    // The second asks whether its copy is current: 304, and shows it.
    let second = chromium_in(&profile, &url, &["--dump-dom"]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("cached in the browser"));
    assert!(
        proxy.metric(not_modified) >= 1.0,
        "no revalidation reached the proxy"
    );
}

#[test]
fn the_page_and_its_figures_honour_the_password() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("PROXY_PASSWORD", "pw")]);
    for path in ["/", "/stats"] {
        let refused = request(proxy.addr, "GET", path, &[]);
        assert_eq!(refused.status, 401, "{path}");
        assert!(refused
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")));
        let allowed = request(proxy.addr, "GET", path, &[("Authorization", "Bearer pw")]);
        assert_eq!(allowed.status, 200, "{path}");
    }
    let stats = request(
        proxy.addr,
        "GET",
        "/stats",
        &[("Authorization", "Bearer pw")],
    )
    .json();
    for field in [
        "hits",
        "misses",
        "hit_ratio",
        "entries",
        "capacity",
        "cache_bytes",
        "cache_max_bytes",
        "in_flight",
        "queued",
    ] {
        assert!(stats[field].is_number(), "{field}: {stats}");
    }
    assert_eq!(stats["redis"], "up");
}
