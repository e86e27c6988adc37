//! Client authentication (PROXY_PASSWORD), tried with the clients people
//! use: curl (`-u`, `-H Authorization: Bearer`), redis-cli `-a`, redis-py
//! `password=`, the redis crate `redis://:pw@`, and raw RESP.

use std::process::Command;

use crate::common::{
    connect, request, roundtrip_line, Endpoints, InProcess, Proxy, RedisServer, PATIENCE,
};

const PASSWORD: &str = "s3cret-proxy-pw";

/// Redis holding `k`, and the proxy in this process asking for PASSWORD.
fn start(extra: &[(&str, &str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &settings(extra));
    (redis, proxy)
}

/// RESP on, PROXY_PASSWORD set, then `extra`.
fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("RESP_PORT", "auto"), ("PROXY_PASSWORD", PASSWORD)];
    env.extend_from_slice(extra);
    env
}

fn curl(proxy: &Endpoints, path: &str, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-"])
        .args(args)
        .arg(format!("http://{}{path}", proxy.addr))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, text)
}

#[test]
fn http_needs_the_password_as_bearer_or_basic() {
    // The binary: its log is read.
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = Proxy::start(&redis, &settings(&[]));
    let (status, text) = curl(&proxy, "/proxy?key=k", &[]);
    assert_eq!(status, "401", "{text}");
    assert!(
        text.contains("WWW-Authenticate: Basic realm=\"redis-proxy\""),
        "{text}"
    );
    assert!(text.contains("{\"error\":"), "{text}");
    let bearer = format!("Authorization: Bearer {PASSWORD}");
    let (status, text) = curl(&proxy, "/proxy?key=k", &["-H", &bearer]);
    assert_eq!(status, "200", "{text}");
    assert!(text.ends_with("\r\n\r\nv"), "{text}");
    let basic = format!("anyone:{PASSWORD}");
    assert_eq!(curl(&proxy, "/proxy?key=k", &["-u", &basic]).0, "200");
    assert_eq!(
        curl(&proxy, "/proxy?key=k", &["-u", "anyone:wrong"]).0,
        "401"
    );
    assert_eq!(
        curl(
            &proxy,
            "/proxy?key=k",
            &["-H", "Authorization: Bearer wrong"]
        )
        .0,
        "401"
    );
    // Health and readiness stay open; metrics need the password.
    assert_eq!(curl(&proxy, "/healthz", &[]).0, "200");
    assert_eq!(curl(&proxy, "/readyz", &[]).0, "200");
    assert_eq!(curl(&proxy, "/metrics", &[]).0, "401");
    let (status, metrics) = curl(&proxy, "/metrics", &["-H", &bearer]);
    assert_eq!(status, "200");
    // Two wrong passwords; a missing one is not an attempt.
    assert!(
        metrics.contains("redis_proxy_auth_failures_total{protocol=\"http\"} 2\n"),
        "{metrics}"
    );
    // The password never reaches the log.
    assert!(!proxy.log().contains(PASSWORD), "{}", proxy.log());
}

#[test]
fn metrics_open_serves_metrics_without_the_password() {
    let (_redis, proxy) = start(&[("METRICS_OPEN", "true")]);
    assert_eq!(request(proxy.addr, "GET", "/metrics", &[]).status, 200);
    assert_eq!(request(proxy.addr, "GET", "/proxy?key=k", &[]).status, 401);
}

#[test]
fn resp_needs_auth_as_redis_with_requirepass_does() {
    let (_redis, proxy) = start(&[]);
    let mut stream = connect(proxy.resp_addr());
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    assert_eq!(
        roundtrip_line(&mut stream, b"GET k\r\n"),
        "-NOAUTH Authentication required.\r\n"
    );
    assert!(roundtrip_line(&mut stream, b"HELLO 3\r\n").starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        roundtrip_line(&mut stream, b"AUTH wrong\r\n"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(roundtrip_line(
        &mut stream,
        format!("AUTH someone {PASSWORD}\r\n").as_bytes()
    )
    .starts_with("-WRONGPASS"));
    assert_eq!(
        roundtrip_line(&mut stream, format!("AUTH {PASSWORD}\r\n").as_bytes()),
        "+OK\r\n"
    );
    assert_eq!(roundtrip_line(&mut stream, b"GET k\r\n"), "$1\r\n");
    // HELLO with AUTH authenticates a fresh connection in one step.
    let mut fresh = connect(proxy.resp_addr());
    let hello = format!("HELLO 3 AUTH default {PASSWORD}\r\n");
    assert!(roundtrip_line(&mut fresh, hello.as_bytes()).starts_with("%8"));
    let metrics = request(
        proxy.addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {PASSWORD}"))],
    )
    .text();
    assert!(
        metrics.contains("redis_proxy_auth_failures_total{protocol=\"resp\"} 2\n"),
        "{metrics}"
    );
}

#[test]
fn redis_clients_authenticate_with_their_usual_options() {
    let (_redis, proxy) = start(&[]);
    let port = proxy.resp_addr().port().to_string();
    // redis-cli -a
    let out = Command::new("redis-cli")
        .args(["-p", &port, "-a", PASSWORD, "--no-auth-warning", "GET", "k"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    // the redis crate, password in the URL
    let url = format!("redis://:{PASSWORD}@{}", proxy.resp_addr());
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("authenticated connection");
    let value: String = redis::cmd("GET").arg("k").query(&mut conn).expect("GET");
    assert_eq!(value, "v");
    // redis-py, password=
    let out = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import redis\nprint(redis.Redis(port={port}, password='{PASSWORD}').get('k'))"
            ),
        ])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "b'v'",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // and without the password, redis-py is refused
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import redis\nredis.Redis(port={port}).get('k')"),
        ])
        .output()
        .expect("python3");
    // (redis-py opens with HELLO 3, refused as Redis refuses it.)
    let refusal = String::from_utf8_lossy(&out.stderr);
    assert!(refusal.contains("AuthenticationError"), "{refusal}");
}
