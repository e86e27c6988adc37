//! What operators put on a screen or a pager (issue 23): the process and
//! per-front-end series of `/metrics`, checked by `promtool`, the names the
//! Grafana dashboard and the alert rules query, and a real Prometheus
//! scraping the proxy and evaluating the rules.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::http::HttpConnection;
use crate::common::{eventually, free_port, Endpoints, InProcess, Proxy, RedisServer, TempDir};

/// A file of the repository.
fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A RESP connection to the proxy.
fn resp(proxy: &Endpoints) -> redis::Connection {
    redis::Client::open(proxy.resp_url())
        .and_then(|client| client.get_connection())
        .expect("a RESP connection")
}

/// Waits until `series` reads `value`.
fn wait_for(proxy: &Endpoints, series: &str, value: f64) {
    eventually(&format!("{series} to be {value}"), || {
        (proxy.metric(series) == value).then_some(())
    });
}

#[test]
fn connections_are_counted_per_front_end_and_hits_per_protocol() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto"), ("MAX_CONNECTIONS", "77")]);
    let http = "redis_proxy_connections{protocol=\"http\"}";
    let resp_open = "redis_proxy_connections{protocol=\"resp\"}";
    // The scrape's own connection is the one open.
    wait_for(&proxy, http, 1.0);
    let mut keep_alive: Vec<HttpConnection> = (0..5)
        .map(|_| HttpConnection::connect(proxy.addr))
        .collect();
    for conn in &mut keep_alive {
        assert_eq!(conn.get("/healthz").status, 200);
    }
    wait_for(&proxy, http, 6.0);
    drop(keep_alive);
    wait_for(&proxy, http, 1.0);

    // Three RESP clients; one tracks the key it reads.
    let mut clients: Vec<redis::Connection> = (0..3).map(|_| resp(&proxy)).collect();
    wait_for(&proxy, resp_open, 3.0);
    let tracking = &mut clients[0];
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .exec(tracking)
        .expect("CLIENT TRACKING ON");
    for _ in 0..2 {
        let value: Option<String> = redis::cmd("GET").arg("k").query(tracking).expect("GET");
        assert_eq!(value.as_deref(), Some("v"));
    }
    wait_for(&proxy, "redis_proxy_tracking_clients", 1.0);
    wait_for(&proxy, "redis_proxy_tracking_keys", 1.0);
    // The RESP reads were a miss and a hit; an HTTP read is then a hit.
    assert!(proxy.get_key("k").is_hit());
    let m = proxy.scrape();
    assert_eq!(
        m.value("redis_proxy_cache_misses_total{protocol=\"resp\"}"),
        1.0
    );
    assert_eq!(
        m.value("redis_proxy_cache_hits_total{protocol=\"resp\"}"),
        1.0
    );
    assert_eq!(
        m.value("redis_proxy_cache_hits_total{protocol=\"http\"}"),
        1.0
    );
    assert_eq!(
        m.value("redis_proxy_cache_misses_total{protocol=\"http\"}"),
        0.0
    );
    assert!(m.value("redis_proxy_request_duration_seconds_count{protocol=\"resp\"}") >= 3.0);
    assert_eq!(m.value("redis_proxy_max_connections"), 77.0);
    assert_eq!(m.value("redis_proxy_invalidation_enabled"), 1.0);
    let version = format!(
        "redis_proxy_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(m.value(&version), 1.0);
    drop(clients);
    wait_for(&proxy, resp_open, 0.0);
    wait_for(&proxy, "redis_proxy_tracking_clients", 0.0);
}

#[test]
fn process_series_match_what_proc_says() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[]);
    let pid = proxy.pid();
    // Open descriptors: /proc/PID/fd, plus those of the scrape itself while
    // it is served (its connection's socket and tiny_http's clones of it,
    // and the directory being read): at most 6 more. The pool may be
    // opening connections meanwhile: polled until two readings agree.
    let count_fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("/proc/PID/fd")
            .count() as f64
    };
    eventually("process_open_fds to match /proc/PID/fd", || {
        let before = count_fds();
        let reported = proxy.metric("process_open_fds");
        let after = count_fds();
        (before == after && reported >= after && reported <= after + 6.0).then_some(())
    });
    let m = proxy.scrape();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let max_fds: f64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("a soft fd limit");
    assert_eq!(m.value("process_max_fds"), max_fds);
    // Resident memory within 25% of VmRSS read a moment later.
    let rss = proxy.rss_kib() as f64 * 1024.0;
    let reported = m.value("process_resident_memory_bytes");
    assert!(
        reported > 0.75 * rss && reported < 1.25 * rss,
        "{reported} vs {rss}"
    );
    assert!(m.value("process_virtual_memory_bytes") >= reported);
    // Started after this test's Redis did, and not in the future.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let started = m.value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} vs {now}"
    );
    assert!(m.value("process_cpu_seconds_total") >= 0.0);
}

/// Every metric name (`redis_proxy_*`, `process_*`) a text names.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    for prefix in ["redis_proxy_", "process_"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix) {
            let start = from + at;
            let end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .map_or(text.len(), |n| start + n);
            let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric());
            if boundary && !names.iter().any(|n| n == &text[start..end]) {
                names.push(text[start..end].to_owned());
            }
            from = end;
        }
    }
    names
}

#[test]
fn a_real_scrape_passes_promtool_and_has_every_name_dashboards_and_alerts_use() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    proxy.get_key("absent");
    let text = proxy.get("/metrics").text();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed");
    use std::io::Write as _;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = check.wait_with_output().expect("promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    let exported: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard = std::fs::read_to_string(repo_file("deploy/grafana/redis-proxy.json"))
        .expect("the dashboard");
    let alerts = std::fs::read_to_string(repo_file("deploy/prometheus/alerts.yml"))
        .expect("the alert rules");
    for (what, text) in [("dashboard", &dashboard), ("alerts", &alerts)] {
        let names = metric_names(text);
        assert!(names.len() > 8, "{what} names {names:?}");
        for name in names {
            assert!(
                exported.contains(&name.as_str()),
                "the {what} queries {name}, which /metrics does not export"
            );
        }
    }
}

/// A Prometheus server in a scratch directory, killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Prometheus {
    /// Scrapes `target` every second as job `redis-proxy`, evaluating the
    /// proxy's alert rules every second.
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let rules = repo_file("deploy/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: redis-proxy\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write the config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// A GET of the HTTP API, as JSON (`data` of a success).
    fn api(&self, path_and_query: &str) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", "-G"])
            .arg(format!("{}{path_and_query}", self.url))
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["status"] == "success").then(|| json["data"].clone())
    }

    /// The value of an instant query, if it has one series.
    fn query(&self, expr: &str) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", "-G", "--data-urlencode"])
            .arg(format!("query={expr}"))
            .arg(format!("{}/api/v1/query", self.url))
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["status"] == "success").then(|| json["data"]["result"].clone())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_the_proxy_and_evaluates_the_rules() {
    let mut redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let prometheus = Prometheus::start(proxy.addr);
    eventually("Prometheus to see the proxy up", || {
        let targets = prometheus.api("/api/v1/targets")?;
        let target = targets["activeTargets"].as_array()?.first()?.clone();
        (target["health"] == "up" && target["labels"]["job"] == "redis-proxy").then_some(())
    });
    eventually("every rule to be evaluated without error", || {
        let data = prometheus.api("/api/v1/rules")?;
        let rules = data["groups"].as_array()?.first()?["rules"]
            .as_array()?
            .clone();
        let ok = rules.len() >= 8
            && rules.iter().all(|rule| {
                rule["health"] == "ok" && rule["lastEvaluation"] != "0001-01-01T00:00:00Z"
            });
        ok.then_some(())
    });
    // Every dashboard query runs on the scraped data and finds series.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/grafana/redis-proxy.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "1m")
                .replace("$job", ".+")
                .replace("$instance", ".+");
            // A query that filters (`< 1e18`: the container's memory limit,
            // where there is one) may rightly find nothing.
            let filters = expr.contains(" < ");
            eventually(&format!("{expr} to return series"), || {
                let result = prometheus.query(&expr)?;
                (filters || !result.as_array()?.is_empty()).then_some(())
            });
        }
    }
    // Redis goes away: the invalidation link drops and its alert goes
    // pending (it fires after a minute, which the unit tests cover).
    redis.stop();
    eventually("RedisProxyInvalidationLinkDown to be pending", || {
        let data = prometheus.api("/api/v1/alerts")?;
        let pending = data["alerts"].as_array()?.iter().any(|alert| {
            alert["labels"]["alertname"] == "RedisProxyInvalidationLinkDown"
                && alert["state"] == "pending"
        });
        pending.then_some(())
    });
}
