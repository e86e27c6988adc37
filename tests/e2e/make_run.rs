//! What `make run` does before the proxy starts (scripts/ensure-redis.sh):
//! it starts a redis-server only for one plain address on this machine's
//! loopback where none answers, bound to that address, and never for
//! rediss://, a list of nodes, REDIS_MODE=cluster or sentinel, or a remote
//! host (README, "Quick start"). Each case runs the real script from a
//! scratch copy, so its `.redis-local/` is the test's own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::{eventually, free_port, RedisServer, TempDir};

/// A scratch copy of the scripts; kills on drop the redis-server the script
/// started there, if any.
struct Checkout(TempDir);

impl Checkout {
    fn new() -> Checkout {
        let dir = TempDir::new("make-run");
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("create scripts/");
        for name in ["ensure-redis.sh", "lib.sh"] {
            let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(name);
            std::fs::copy(from, scripts.join(name)).expect("copy a script");
        }
        Checkout(dir)
    }

    /// Runs the script with these variables (and no REDIS_* of the test's).
    fn ensure(&self, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("bash");
        command
            .arg("scripts/ensure-redis.sh")
            .current_dir(self.0.path())
            .env_remove("REDIS_ADDRESS")
            .env_remove("REDIS_MODE");
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().expect("run bash");
        eprintln!(
            "{env:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Whether the script started a redis-server (its pid file).
    fn started(&self) -> bool {
        self.pid_file().exists()
    }

    fn pid_file(&self) -> std::path::PathBuf {
        self.0.path().join(".redis-local/redis.pid")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.pid_file()) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Whether a Redis answers PING at `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
}

/// Whether this machine has an IPv6 loopback (a container may not): the
/// `[::1]` cases need one, and say so when they are skipped.
fn has_ipv6_loopback(test: &str) -> bool {
    let there = TcpListener::bind(v6(0)).is_ok();
    if !there {
        eprintln!("{test}: skipped, no IPv6 loopback here");
    }
    there
}

/// A port free on 127.0.0.1 and on ::1 (where there is one).
fn free_port_both() -> u16 {
    loop {
        let port = free_port();
        if TcpListener::bind(v6(port)).is_ok() || TcpListener::bind(v6(0)).is_err() {
            return port;
        }
    }
}

#[test]
fn a_plain_local_address_with_no_redis_gets_one_bound_to_it() {
    let port = free_port_both();
    let here = Checkout::new();
    let url = format!("redis://user:secret@127.0.0.1:{port}/2");
    assert!(here.ensure(&[("REDIS_ADDRESS", &url)]).status.success());
    assert!(here.started() && answers(v4(port)));

    if !has_ipv6_loopback("[::1] started") {
        return;
    }
    let port = free_port_both();
    let here = Checkout::new();
    let url = format!("redis://[::1]:{port}");
    assert!(here.ensure(&[("REDIS_ADDRESS", &url)]).status.success());
    assert!(here.started(), "a redis-server started for {url}");
    assert!(answers(v6(port)), "it answers on [::1]:{port}");
}

#[test]
fn a_redis_answering_on_ipv6_loopback_is_not_started_again() {
    if !has_ipv6_loopback("[::1] answering") {
        return;
    }
    let port = free_port_both();
    let dir = TempDir::new("make-run-v6");
    let mut ours: Child = Command::new("redis-server")
        .args(["--bind", "::1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.path().to_string_lossy()])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    eventually("redis-server on ::1", || answers(v6(port)).then_some(()));
    let here = Checkout::new();
    let out = here.ensure(&[("REDIS_ADDRESS", &format!("[::1]:{port}"))]);
    let _ = ours.kill();
    let _ = ours.wait();
    assert!(out.status.success());
    assert!(!here.started(), "a second redis-server was started");
}

/// The variables for the script, and ports where nothing may answer after.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u16]);

#[test]
fn tls_lists_other_modes_and_remote_hosts_are_never_started() {
    let redis = RedisServer::start();
    let (a, b) = (free_port(), free_port());
    let cases: [Case; 5] = [
        (
            &[("REDIS_ADDRESS", &format!("rediss://127.0.0.1:{a}"))],
            &[a],
        ),
        (
            &[
                ("REDIS_MODE", "cluster"),
                ("REDIS_ADDRESS", &format!("127.0.0.1:{a},127.0.0.1:{b}")),
            ],
            &[a, b],
        ),
        (
            &[
                ("REDIS_MODE", "Sentinel"),
                ("REDIS_ADDRESS", &format!("127.0.0.1:{a}")),
            ],
            &[a],
        ),
        // A documentation address (TEST-NET-1): never this machine.
        (&[("REDIS_ADDRESS", "redis://192.0.2.1:6379")], &[]),
        // Standalone with a list: the proxy refuses it, with its own words.
        (
            &[(
                "REDIS_ADDRESS",
                &format!("127.0.0.1:{a}, 127.0.0.1:{}", redis.port()),
            )],
            &[a],
        ),
    ];
    for (env, ports) in cases {
        let here = Checkout::new();
        let out = here.ensure(env);
        assert!(out.status.success(), "{env:?}: the proxy should start");
        assert!(!here.started(), "{env:?}: a redis-server was started");
        for port in ports {
            assert!(TcpStream::connect(v4(*port)).is_err(), "{env:?}: {port}");
        }
    }
    // A list is still checked, node by node.
    let here = Checkout::new();
    let seeds = format!("127.0.0.1:{a},redis://127.0.0.1:{}", redis.port());
    let out = here.ensure(&[("REDIS_MODE", "sentinel"), ("REDIS_ADDRESS", &seeds)]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("Redis answers at 127.0.0.1:{}", redis.port())));
    assert!(out.status.success() && !here.started());
}
