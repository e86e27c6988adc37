//! The real proxy binary, as the tests start and observe it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use super::http::{encode, request, try_request, Reply};
use super::{eventually, free_port, RedisServer, TempDir};

/// Every series of one /metrics scrape, with its labels, and its value.
pub struct Scrape(Vec<(String, f64)>);

impl Scrape {
    /// Every series, in the order the proxy wrote them.
    pub fn iter(&self) -> impl Iterator<Item = &(String, f64)> {
        self.0.iter()
    }

    /// The value of `series`; panics if the proxy does not export it. A
    /// name without labels whose family is labelled (hits and misses are
    /// counted per `protocol`) gives the sum over its labels.
    pub fn value(&self, series: &str) -> f64 {
        if let Some((_, value)) = self.0.iter().find(|(name, _)| name == series) {
            return *value;
        }
        let labelled = format!("{series}{{");
        let mut found = self
            .0
            .iter()
            .filter(|(name, _)| !series.contains('{') && name.starts_with(&labelled))
            .peekable();
        assert!(found.peek().is_some(), "{series} missing from /metrics");
        found.map(|(_, value)| value).sum()
    }
}

/// The path of the proxy binary under test.
pub fn proxy_binary() -> &'static str {
    env!("CARGO_BIN_EXE_redis-proxy")
}

/// The real proxy binary, started with a clean environment plus `env`, in a
/// scratch directory (so no `.env` is picked up), killed on drop.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    /// The RESP port, when the test turned it on with `RESP_PORT=auto`.
    pub resp: Option<SocketAddr>,
    log: PathBuf,
    _dir: TempDir,
}

impl Proxy {
    /// Starts the proxy against `redis` with `env` overriding the defaults,
    /// and waits until it answers `/healthz` and its invalidation link has
    /// settled (up, or off), so reads are cached from the first.
    pub fn start(redis: &RedisServer, env: &[(&str, &str)]) -> Proxy {
        let proxy = Proxy::start_at(&redis.url(), env);
        eventually("the invalidation link to settle", || {
            let state = proxy.link_state();
            (state == "up" || state == "off").then_some(())
        });
        proxy
    }

    /// The invalidation link's state as `/readyz` reports it.
    pub fn link_state(&self) -> String {
        let ready = self.get("/readyz").json();
        ready["invalidation"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until `/readyz` reports the invalidation link `state`.
    pub fn wait_for_link(&self, state: &str) {
        eventually(&format!("the invalidation link to be {state}"), || {
            (self.link_state() == state).then_some(())
        });
    }

    /// Starts the proxy against any Redis address.
    pub fn start_at(redis_address: &str, env: &[(&str, &str)]) -> Proxy {
        Proxy::start_wrapped(redis_address, env, &[])
    }

    /// Starts the proxy under a wrapper command (such as `prlimit ...`),
    /// which is given the proxy's path and runs it.
    pub fn start_wrapped(redis_address: &str, env: &[(&str, &str)], wrapper: &[&str]) -> Proxy {
        let dir = TempDir::new("proxy");
        let port = free_port();
        let log = dir.path().join("proxy.log");
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("REDIS_ADDRESS", redis_address.to_owned()),
            ("PROXY_HOST", "127.0.0.1".to_owned()),
            ("PROXY_PORT", port.to_string()),
            ("RESP_PORT", "off".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]);
        for (name, value) in env {
            vars.insert(name, value.to_string());
        }
        // `RESP_PORT=auto` picks a free port for the RESP front end.
        let resp = (vars["RESP_PORT"] == "auto").then(|| {
            let port = free_port();
            vars.insert("RESP_PORT", port.to_string());
            SocketAddr::from(([127, 0, 0, 1], port))
        });
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(proxy_binary());
                command
            }
            None => Command::new(proxy_binary()),
        };
        let child = command
            .env_clear()
            .envs(&vars)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create proxy log"))
            .spawn()
            .expect("start the proxy binary");
        let port: u16 = vars["PROXY_PORT"].parse().expect("port");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut proxy = Proxy {
            child,
            addr,
            resp,
            log,
            _dir: dir,
        };
        // Over HTTPS the plain-HTTP helpers cannot ask; the port accepting
        // (after the certificate loaded) is what can be seen from here.
        let https = vars.get("TLS_CERT_FILE").is_some_and(|f| !f.is_empty());
        eventually("the proxy to answer /healthz", || {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("proxy exited with {status}: {}", proxy.log());
            }
            if https {
                return TcpStream::connect(addr).ok().map(drop);
            }
            let reply = try_request(addr, "GET", "/healthz", &[]).ok()?;
            (reply.status == 200).then_some(())
        });
        if let Some(resp) = resp {
            eventually("the RESP port to accept", || TcpStream::connect(resp).ok());
        }
        proxy
    }

    /// The RESP address; panics if the test did not ask for one.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp.expect("start the proxy with RESP_PORT=auto")
    }

    /// A `redis://` URL for the RESP front end.
    pub fn resp_url(&self) -> String {
        format!("redis://{}", self.resp_addr())
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[])
    }

    /// `GET /proxy?key=...` with the key percent-encoded.
    pub fn get_key(&self, key: impl AsRef<[u8]>) -> Reply {
        self.get(&format!("/proxy?key={}", encode(key.as_ref())))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The proxy's resident memory now, in KiB (`VmRSS` in /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// One scrape of /metrics.
    pub fn scrape(&self) -> Scrape {
        Scrape(
            self.get("/metrics")
                .text()
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    Some((series.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Reads of keys the proxy has done (hits and misses): unlike the HTTP
    /// request counts, scraping /metrics to read it does not add to it.
    pub fn reads(&self) -> f64 {
        let scrape = self.scrape();
        scrape.value("redis_proxy_cache_hits_total")
            + scrape.value("redis_proxy_cache_misses_total")
    }

    /// The value of one series of /metrics now, labels included as written
    /// (`redis_proxy_requests_total{protocol="resp",status="error"}`).
    pub fn metric(&self, series: &str) -> f64 {
        self.scrape().value(series)
    }

    /// Sends a signal to the proxy.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the proxy to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        eventually("the proxy to exit", || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
