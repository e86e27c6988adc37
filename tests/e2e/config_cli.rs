//! Start-up: `--help`, and bad configuration stopping the binary with a
//! message that names the variable.

use std::process::Command;

use crate::common::{proxy_binary, Proxy, RedisServer, TempDir};

fn run(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let dir = TempDir::new("cli");
    let output = Command::new(proxy_binary())
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run the proxy binary");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_variable() {
    let (code, stdout, _) = run(&[], &["--help"]);
    assert_eq!(code, 0);
    for name in [
        "REDIS_ADDRESS",
        "GLOBAL_CACHE_EXPIRY",
        "CACHE_CAPACITY",
        "PROXY_HOST",
        "PROXY_PORT",
        "WORKERS",
        "REDIS_TIMEOUT_MS",
        "RUST_LOG",
    ] {
        assert!(stdout.contains(name), "--help misses {name}");
    }
}

#[test]
fn bad_values_stop_start_up_naming_the_variable() {
    for (name, value) in [
        ("CACHE_CAPACITY", "0"),
        ("GLOBAL_CACHE_EXPIRY", "soon"),
        ("WORKERS", "-3"),
        ("MAX_CLIENTS", "-3"),
        ("PROXY_PORT", "99999"),
        ("REDIS_ADDRESS", "ftp://x:1"),
        ("REDIS_TIMEOUT_MS", "0"),
    ] {
        let (code, _, stderr) = run(&[(name, value)], &[]);
        assert_ne!(code, 0, "{name}={value} was accepted");
        assert!(stderr.contains(name), "{name}: {stderr}");
        // Once: not as a log line and again as a plain one.
        let said = stderr.lines().filter(|l| l.contains(name)).count();
        assert_eq!(said, 1, "{name}: {stderr}");
    }
    // With the log off, still said (once).
    let (code, _, stderr) = run(&[("CACHE_CAPACITY", "0"), ("RUST_LOG", "off")], &[]);
    assert_ne!(code, 0);
    let said = stderr
        .lines()
        .filter(|l| l.contains("CACHE_CAPACITY"))
        .count();
    assert_eq!(said, 1, "{stderr}");
}

/// Not UTF-8: refused, not taken for unset (its default: no password).
#[test]
fn a_value_that_is_not_utf8_stops_start_up_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    for name in [
        "PROXY_PASSWORD",
        "REDIS_ADDRESS",
        "CACHE_CAPACITY",
        "MAX_CLIENTS",
    ] {
        let dir = TempDir::new("cli");
        let child = Command::new(proxy_binary())
            .env_clear()
            .env(name, std::ffi::OsStr::from_bytes(b"pa\xffss"))
            .envs([("PROXY_PORT", "0"), ("RESP_PORT", "off")])
            .current_dir(dir.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the proxy binary");
        // Started (the old behaviour): stopped, and the test fails.
        let (exited, output) = crate::common::proxy::exit_or_kill(child);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(exited, "{name} not UTF-8: the proxy started ({stderr})");
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("UTF-8"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn dotenv_is_read_and_the_environment_wins() {
    let dir = TempDir::new("dotenv");
    std::fs::write(dir.path().join(".env"), "CACHE_CAPACITY=0\nWORKERS=0\n").expect("write .env");
    let output = Command::new(proxy_binary())
        .env_clear()
        .env("CACHE_CAPACITY", "5")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // CACHE_CAPACITY=5 from the environment beats the .env's 0, so the
    // error is the .env's WORKERS=0.
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr.contains("WORKERS") && !stderr.contains("CACHE_CAPACITY"),
        "{stderr}"
    );
}

#[test]
fn unknown_argument_is_refused() {
    let (code, _, stderr) = run(&[], &["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--help"));
}

#[test]
fn a_taken_port_stops_start_up_naming_the_port_and_its_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, _, stderr) = run(
        &[("PROXY_PORT", port.as_str()), ("INVALIDATION", "off")],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "cannot start: cannot serve HTTP on 127.0.0.1:{port} (PROXY_HOST/PROXY_PORT)"
        )),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        &[
            ("PROXY_PORT", "0"),
            ("RESP_PORT", port.as_str()),
            ("INVALIDATION", "off"),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "cannot serve RESP on 127.0.0.1:{port} (PROXY_HOST/RESP_PORT)"
        )),
        "{stderr}"
    );
}

#[test]
fn a_malformed_dotenv_is_reported_in_the_log() {
    let dir = TempDir::new("bad-dotenv");
    std::fs::write(dir.path().join(".env"), "WORKERS='unterminated\n").expect("write .env");
    // A bad value in the environment stops it once the warning is out.
    let output = Command::new(proxy_binary())
        .env_clear()
        .env("CACHE_CAPACITY", "0")
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("ignoring .env"))
        .unwrap_or_else(|| panic!("no warning about .env: {stderr}"));
    assert!(warning.contains("WARN"), "not a log line: {warning}");
}

#[test]
fn max_clients_still_sets_the_workers_and_is_logged_as_deprecated() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("MAX_CLIENTS", "3")]);
    let log = proxy.log();
    assert!(
        log.contains("MAX_CLIENTS is deprecated: it is now called WORKERS")
            && log.contains("workers=3"),
        "{log}"
    );
}
