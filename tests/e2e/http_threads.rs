//! tiny_http gives each HTTP connection a thread of its own. When the OS
//! refuses one (RLIMIT_NPROC here; systemd `TasksMax`, a container's
//! `pids.max` or `kernel.threads-max` in production), that connection is
//! closed at once and the server goes on: it must neither panic (which
//! poisoned the pool's lock and left the port deaf for good) nor leave the
//! connection waiting for an answer that never comes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use crate::common::{eventually, try_request, Proxy, RedisServer, PATIENCE};

/// Threads the proxy may start beyond those it has once serving: fewer
/// than the connections the test opens, so some get none.
const HEADROOM: usize = 24;
/// Connections opened past `HEADROOM`: few enough that, were the accept
/// thread dead, they would all still fit the listen backlog (128), so
/// connecting never hangs and the failure shows as a missing answer.
const BEYOND: usize = 40;
/// `setpriv`'s arguments to run a command as `nobody`.
const NOBODY: [&str; 4] = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];

#[test]
fn tiny_http_patch_24_a_connection_that_gets_no_thread_is_closed_and_the_server_goes_on() {
    if !is_root() {
        println!("skipped: running the proxy as `nobody` under RLIMIT_NPROC needs root (RLIMIT_NPROC does not apply to root itself)");
        return;
    }
    let redis = RedisServer::start();
    // As `nobody`: RLIMIT_NPROC is not enforced for root.
    let proxy = Proxy::start_wrapped(
        &redis.url(),
        &[("WORKERS", "2")],
        &[&["setpriv"][..], &NOBODY[..]].concat(),
    );
    // The limit counts every task of the user: the proxy's threads now
    // (and whatever else `nobody` runs), plus a little room.
    let limit = threads(proxy.pid()) + HEADROOM;
    // Set by a process of the same user: lowering another user's limit
    // takes CAP_SYS_RESOURCE, which a container may not grant root.
    let status = Command::new("setpriv")
        .args(NOBODY)
        .args([
            "prlimit",
            "--pid",
            &proxy.pid().to_string(),
            &format!("--nproc={limit}:{limit}"),
        ])
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");

    // Twice: a pool that ran out of threads once works as before.
    for round in 1..=2 {
        let (answered, closed) = exhaust(proxy.addr, HEADROOM + BEYOND);
        assert!(
            closed > 0,
            "round {round}: every connection got a thread ({answered} answered): the limit was never reached"
        );
        // With them all closed, a new connection is served again.
        let health = eventually("/healthz to answer again", || {
            try_request(proxy.addr, "GET", "/healthz", &[]).ok()
        });
        assert_eq!(health.status, 200, "round {round}");
    }

    let log = proxy.log();
    assert!(!log.contains("panicked"), "the proxy panicked: {log}");
    let warnings = log
        .lines()
        .filter(|l| l.contains("No thread for a new client"))
        .count();
    // Rate-limited: the refusals of both rounds fit one 30 s interval
    // (a slow run may start a second), far fewer lines than refusals.
    assert!((1..=2).contains(&warnings), "{warnings} warnings: {log}");
}

/// Opens `count` connections and keeps them all open, then asks each for
/// `/healthz`: each must either answer 200 (it has a thread) or have been
/// closed by the server (it got none); one that keeps the request
/// unanswered for `PATIENCE` fails the test. Returns (answered, closed).
fn exhaust(addr: SocketAddr, count: usize) -> (usize, usize) {
    let mut conns: Vec<TcpStream> = (0..count)
        .map(|i| {
            let stream = TcpStream::connect_timeout(&addr, PATIENCE)
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            stream
                .set_read_timeout(Some(PATIENCE))
                .expect("set read timeout");
            stream
        })
        .collect();
    let (mut answered, mut closed) = (0, 0);
    for (i, stream) in conns.iter_mut().enumerate() {
        let sent = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
        let mut buf = [0u8; 512];
        match sent.and_then(|()| stream.read(&mut buf)) {
            Ok(0) => closed += 1,
            Ok(n) => {
                assert!(
                    buf[..n].starts_with(b"HTTP/1.1 200 "),
                    "connection {i}: {}",
                    String::from_utf8_lossy(&buf[..n])
                );
                answered += 1;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection {i} of {count}: no answer and not closed within {PATIENCE:?} ({answered} answered, {closed} closed before it)")
            }
            Err(_) => closed += 1,
        }
    }
    (answered, closed)
}

/// The number of threads of process `pid`, from /proc.
fn threads(pid: u32) -> usize {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

/// Whether this test runs as root (effective uid 0), from /proc.
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}
