//! The real proxy binary, as the tests start and observe it: for what only
//! a process of its own shows (start-up, signals, exit codes, its log, its
//! /proc entries, a wrapper such as `prlimit`). Everything else runs the
//! proxy in the test process ([`super::InProcess`]).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::endpoints::Endpoints;
use super::http::try_request;
use super::{eventually, RedisServer, TempDir, PATIENCE};

/// The path of the proxy binary under test.
pub fn proxy_binary() -> &'static str {
    env!("CARGO_BIN_EXE_redis-proxy")
}

/// The real proxy binary, started with a clean environment plus `env`, in a
/// scratch directory (so no `.env` is picked up), killed on drop. It binds
/// port 0 (unless `env` names a port) and the test reads the ports the
/// kernel gave it from its start-up line: no port is probed and released
/// for another process to take in between. (So a test's `RUST_LOG` must let
/// `redis_proxy`'s info lines through, as `info` and `debug` do.)
pub struct Proxy {
    child: Child,
    endpoints: Endpoints,
    log: PathBuf,
    _dir: TempDir,
}

impl Deref for Proxy {
    type Target = Endpoints;

    fn deref(&self) -> &Endpoints {
        &self.endpoints
    }
}

impl Proxy {
    /// Starts the proxy against `redis` with `env` overriding the defaults,
    /// and waits until it answers `/healthz` and its invalidation link has
    /// settled (up, or off), so reads are cached from the first.
    pub fn start(redis: &RedisServer, env: &[(&str, &str)]) -> Proxy {
        let proxy = Proxy::start_at(&redis.url(), env);
        proxy.wait_for_settled_link();
        proxy
    }

    /// Starts the proxy against any Redis address.
    pub fn start_at(redis_address: &str, env: &[(&str, &str)]) -> Proxy {
        Proxy::start_wrapped(redis_address, env, &[])
    }

    /// Starts the proxy under a wrapper command (such as `prlimit ...`),
    /// which is given the proxy's path and runs it.
    pub fn start_wrapped(redis_address: &str, env: &[(&str, &str)], wrapper: &[&str]) -> Proxy {
        let dir = TempDir::new("proxy");
        let log = dir.path().join("proxy.log");
        let vars = variables(redis_address, env);
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(proxy_binary());
                command
            }
            None => Command::new(proxy_binary()),
        };
        let mut child = command
            .env_clear()
            .envs(&vars)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create proxy log"))
            .spawn()
            .expect("start the proxy binary");
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let (addr, resp) = eventually("the proxy's start-up line", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("proxy exited with {status}: {}", read_log());
            }
            bound_addresses(&read_log())
        });
        let proxy = Proxy {
            child,
            endpoints: Endpoints { addr, resp },
            log,
            _dir: dir,
        };
        // Over HTTPS the plain-HTTP helpers cannot ask; the port accepting
        // (after the certificate loaded) is what can be seen from here.
        let https = vars.get("TLS_CERT_FILE").is_some_and(|f| !f.is_empty());
        wait_until_serving(addr, resp, https);
        proxy
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ERROR and WARN lines the proxy has logged so far: none under
    /// ordinary load.
    pub fn warnings(&self) -> Vec<String> {
        // The machine's open files limit, when below what MAX_CONNECTIONS'
        // default needs, is warned of at start: a fact of the machine the
        // tests run on, not of what they test (`limits.rs` tests it).
        self.log()
            .lines()
            .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
            .filter(|l| !(l.contains("MAX_CONNECTIONS=") && l.contains("open files")))
            .map(str::to_owned)
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The proxy's resident memory now, in KiB (`VmRSS` in /proc).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// The proxy's peak resident memory so far, in KiB (`VmHWM` in /proc).
    pub fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    /// A `kB` figure of /proc/PID/status, such as `VmRSS`.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
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

/// Runs the binary with only `env` (in a directory of its own, so no
/// `.env` is read) and expects it to refuse to start: to exit within
/// `PATIENCE` with code 2, as the README says a bad value does. One that
/// took its settings would serve until killed: it is killed and the test
/// fails. Returns its stderr, for the test to check it names the variable.
pub fn refused_start(env: &[(&str, &str)]) -> String {
    let dir = TempDir::new("refused-start");
    let log = dir.path().join("stderr");
    let mut child = Command::new(proxy_binary())
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create a log"))
        .spawn()
        .expect("run the proxy binary");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the proxy") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some(), "{env:?} was accepted: {stderr}");
    assert_eq!(
        status.and_then(|status| status.code()),
        Some(2),
        "{env:?}: a bad value exits 2: {stderr}"
    );
    stderr
}

/// The proxy's settings for a test: Redis at `redis_address`, both ports
/// picked by the kernel (`RESP_PORT=auto` turns RESP on, on port 0), RESP
/// off, `info` logging, then `env` over them.
pub(super) fn variables(redis_address: &str, env: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("REDIS_ADDRESS", redis_address),
        ("PROXY_HOST", "127.0.0.1"),
        ("PROXY_PORT", "0"),
        ("RESP_PORT", "off"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .chain(env.iter().copied())
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if vars["RESP_PORT"] == "auto" {
        vars.insert("RESP_PORT".to_owned(), "0".to_owned());
    }
    vars
}

/// Waits until the proxy answers `/healthz` at `addr` (over HTTPS: accepts
/// there) and its RESP port, if any, accepts.
pub(super) fn wait_until_serving(addr: SocketAddr, resp: Option<SocketAddr>, https: bool) {
    eventually("the proxy to answer /healthz", || {
        if https {
            return TcpStream::connect(addr).ok().map(drop);
        }
        let reply = try_request(addr, "GET", "/healthz", &[]).ok()?;
        (reply.status == 200).then_some(())
    });
    if let Some(resp) = resp {
        eventually("the RESP port to accept", || TcpStream::connect(resp).ok());
    }
}

/// The HTTP and RESP addresses named by the start-up line
/// (`redis-proxy listening on http://A and redis://B (...)`), once the
/// whole line is in `log`.
fn bound_addresses(log: &str) -> Option<(SocketAddr, Option<SocketAddr>)> {
    let line = log
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .find_map(|line| {
            line.split_once("redis-proxy listening on ")
                .map(|(_, rest)| rest)
        })?;
    let address = |url: &str| -> SocketAddr {
        let (_, addr) = url.split_once("://").expect("scheme://address");
        addr.parse().expect("an address in the start-up line")
    };
    let mut words = line.split(' ');
    let http = address(words.next()?);
    let resp = (words.next() == Some("and")).then(|| address(words.next().expect("RESP URL")));
    Some((http, resp))
}

/// A proxy started with settings it must refuse: waited for up to
/// `PATIENCE`, killed if still running (the test then fails on the
/// first value). Whether it exited by itself, and its output.
pub fn exit_or_kill(mut child: Child) -> (bool, Output) {
    let deadline = Instant::now() + PATIENCE;
    let mut exited = false;
    while !exited && Instant::now() < deadline {
        exited = matches!(child.try_wait(), Ok(Some(_)));
        std::thread::sleep(Duration::from_millis(10));
    }
    if !exited {
        let _ = child.kill();
    }
    (exited, child.wait_with_output().expect("its output"))
}
