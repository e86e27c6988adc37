//! Shared test support: a throwaway `redis-server` on a free port, the proxy
//! (in this process, or the real binary) on ports the kernel picks, a small
//! HTTP/1.1 client over raw sockets (so tests control every byte, keep-alive
//! and HEAD included), and polling.
#![allow(dead_code)]

pub mod busy;
pub mod certs;
pub mod cluster;
pub mod endpoints;
pub mod http;
pub mod in_process;
pub mod info;
pub mod proxy;
pub mod readers;
pub mod redis_server;
pub mod relay;
pub mod reply_cache;
pub mod resp_conn;
pub mod resp_wire;
pub mod sentinel;
pub mod tmux;
pub mod wire;
pub mod write_cases;

pub use endpoints::Endpoints;
pub use http::{request, try_request, HttpConnection};
pub use in_process::InProcess;
pub use proxy::{proxy_binary, refused_start, Proxy};
pub use redis_server::RedisServer;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
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
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    hand_out_port(&NEXT, 20_000, 12_000, |_| true)
}

/// The next port of `first..first + span` (taken in turn, from a place that
/// differs between test binaries) that is free, and for which `also` holds.
pub fn hand_out_port(
    next: &std::sync::atomic::AtomicU16,
    first: u16,
    span: u16,
    also: impl Fn(u16) -> bool,
) -> u16 {
    use std::sync::atomic::Ordering;
    let _ = next.compare_exchange(
        0,
        1 + (std::process::id() % u32::from(span)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = first + next.fetch_add(1, Ordering::SeqCst) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && also(port) {
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

/// A raw connection to `addr`, reads bounded by `PATIENCE`.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set read timeout");
    stream
}

/// Reads whatever the server sends until it closes (or resets). Fails if
/// the server keeps the connection open past `PATIENCE`: only the server
/// closing it counts.
pub fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server did not close the connection within {PATIENCE:?}")
            }
            Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One command as a client sends it: a RESP array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends raw bytes (RESP) and reads one reply line back (a simple reply, an
/// error, or the header of a bulk or array), CRLF included.
pub fn roundtrip_line(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).expect("send");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).expect("reply");
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Runs `program` with `args` (and `env` added), fails the test with its
/// stderr if it fails, and returns its stdout.
pub fn run_ok(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|err| panic!("{program} is installed: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
