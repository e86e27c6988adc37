//! Shared test support: a throwaway `redis-server` on a free port, the real
//! proxy binary on a free port, a small HTTP/1.1 client over raw sockets (so
//! tests control every byte, keep-alive and HEAD included), and polling.
#![allow(dead_code)]

pub mod relay;
pub mod tmux;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any start-up or eventual condition may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A port nobody listens on right now, and that no other test of this
/// process has been given: ports are handed out in turn from below Linux's
/// ephemeral range (32768+), where the kernel also picks ports for outgoing
/// connections and for `bind(0)`, so two tests, or a test and a connection,
/// could otherwise get the same one. Each is checked free before it is
/// handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Different test binaries start at different places in the range.
    let _ = NEXT.compare_exchange(
        0,
        1 + (std::process::id() % u32::from(SPAN)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `PATIENCE`.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "redis-proxy-test-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `redis-server` child process on its own port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server with persistence off.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a fresh server with extra `--option value` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let url = self.url();
        eventually("redis-server to answer PING", || {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_connection().ok()?;
            match redis::cmd("PING").query::<String>(&mut conn) {
                Ok(_) => Some(()),
                // Up, and asking for the password it was started with.
                Err(err) if err.code() == Some("NOAUTH") => Some(()),
                Err(_) => None,
            }
        });
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its TCP address, for the relay.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A direct connection, bypassing the proxy.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }

    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let _: () = redis::cmd("SET")
            .arg(key.as_ref())
            .arg(value.as_ref())
            .query(&mut self.conn())
            .expect("SET");
    }

    /// Runs any command directly against this server.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.conn()).expect("direct redis command")
    }

    /// How many times Redis has run `command` (from `INFO commandstats`).
    pub fn calls(&self, command: &str) -> u64 {
        let info: String = self.cmd(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{}:calls=", command.to_lowercase());
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("calls is a number"))
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
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
        eventually("the proxy to answer /healthz", || {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("proxy exited with {status}: {}", proxy.log());
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

    /// The value of one series of /metrics, labels included as written
    /// (`redis_proxy_requests_total{protocol="resp",status="error"}`); 0 if
    /// the series is absent.
    pub fn metric(&self, series: &str) -> f64 {
        self.get("/metrics")
            .text()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().expect("a metric value"))
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

/// Percent-encodes every byte that is not unreserved.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// `X-Cache` is `HIT`.
    pub fn is_hit(&self) -> bool {
        self.header("x-cache") == Some("HIT")
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    try_request(addr, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
}

pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut client = HttpConnection::new(stream);
    let mut all = vec![("Connection", "close")];
    all.extend_from_slice(headers);
    client.send(method, path, &all)?;
    client.read_reply(method == "HEAD")
}

/// A keep-alive HTTP/1.1 connection.
pub struct HttpConnection {
    reader: BufReader<TcpStream>,
}

impl HttpConnection {
    pub fn new(stream: TcpStream) -> HttpConnection {
        HttpConnection {
            reader: BufReader::new(stream),
        }
    }

    pub fn connect(addr: SocketAddr) -> HttpConnection {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set read timeout");
        HttpConnection::new(stream)
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.reader.get_mut().write_all(head.as_bytes())
    }

    pub fn read_reply(&mut self, head_only: bool) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
            }
        }
        let mut body = Vec::new();
        if !head_only {
            if let Some(len) = headers.get("content-length") {
                let len: usize = len.parse().map_err(std::io::Error::other)?;
                body.resize(len, 0);
                self.reader.read_exact(&mut body)?;
            } else if headers.contains_key("transfer-encoding") {
                return Err(std::io::Error::other("response is chunked"));
            } else {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Writes raw bytes on this connection.
    pub fn reader_send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send raw request");
    }

    /// A GET on this connection, kept alive.
    pub fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[]).expect("send request");
        self.read_reply(false).expect("read reply")
    }
}
