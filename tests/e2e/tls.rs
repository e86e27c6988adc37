//! `rediss://`: the proxy reaches a Redis that speaks TLS only on its TLS
//! port, trusting the CA named by REDIS_TLS_CA, and refuses an untrusted one.

use crate::common::certs::make_certificates;
use crate::common::{free_port, InProcess, RedisServer, TempDir};

#[test]
fn rediss_with_a_trusted_ca_reads_through_and_an_untrusted_one_is_refused() {
    let dir = TempDir::new("tls");
    let (redis, tls_port) = tls_redis(&dir, &[]);
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    redis.set("secret", "over tls");
    let address = format!("rediss://127.0.0.1:{tls_port}");

    let proxy = InProcess::start_at(&address, &[("REDIS_TLS_CA", &file("ca.pem"))]);
    let reply = proxy.get_key("secret");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, b"over tls");
    assert_eq!(proxy.get("/readyz").status, 200);

    // Without our CA, the system's trust store does not know the server.
    let untrusting = InProcess::start_at(&address, &[("REDIS_TIMEOUT_MS", "500")]);
    let reply = untrusting.get_key("secret");
    assert_eq!(reply.status, 503, "{}", reply.text());
}

/// A Redis that speaks only TLS 1.2 (as some managed ones do) is reached.
#[test]
fn rediss_to_a_redis_speaking_only_tls_1_2_reads_through() {
    let dir = TempDir::new("tls12");
    let (redis, tls_port) = tls_redis(&dir, &["--tls-protocols", "TLSv1.2"]);
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    redis.set("secret", "over tls 1.2");
    let address = format!("rediss://127.0.0.1:{tls_port}");
    let proxy = InProcess::start_at(&address, &[("REDIS_TLS_CA", &file("ca.pem"))]);
    let reply = proxy.get_key("secret");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, b"over tls 1.2");
}

/// A Redis speaking TLS only on a port of its own (returned), with the
/// certificates `make_certificates` wrote to `dir`; `extra` arguments too.
fn tls_redis(dir: &TempDir, extra: &[&str]) -> (RedisServer, u16) {
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let tls_port = free_port();
    let mut args = vec![
        "--tls-port".to_owned(),
        tls_port.to_string(),
        "--tls-cert-file".to_owned(),
        file("server.pem"),
        "--tls-key-file".to_owned(),
        file("server.key"),
        "--tls-ca-cert-file".to_owned(),
        file("ca.pem"),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (RedisServer::start_with(&args), tls_port)
}
