//! `rediss://`: the proxy reaches a Redis that speaks TLS only on its TLS
//! port, trusting the CA named by REDIS_TLS_CA, and refuses an untrusted one;
//! it presents REDIS_TLS_CERT_FILE's certificate to a Redis that asks for
//! one; and settings that cannot work stop start-up naming the variable.

use crate::common::certs::make_certificates;
use crate::common::sentinel::{spawn_sentinel, MASTER};
use crate::common::{eventually, free_port, refused_start, InProcess, RedisServer, TempDir};

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

/// A Redis speaking TLS on a port of its own (returned; the plain port is
/// the test's own way in), with the certificates `make_certificates` wrote
/// to `dir`; `extra` arguments too.
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
        // Not redis-server's default (yes): `extra` may ask for it back (a
        // later argument wins).
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (RedisServer::start_with(&args), tls_port)
}

/// A Redis at its TLS default, `tls-auth-clients yes`: with REDIS_TLS_CERT_FILE
/// and REDIS_TLS_KEY_FILE every connection the proxy opens presents the
/// client certificate (the pool's read over HTTP, the RESP port's forwarded
/// write, the probe and the invalidation link: writes made at Redis reach
/// the cache); without them, the handshake failure is reported naming them.
#[test]
fn rediss_to_a_redis_asking_for_client_certificates_presents_one() {
    let dir = TempDir::new("mtls");
    let (redis, tls_port) = tls_redis(&dir, &["--tls-auth-clients", "yes"]);
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    redis.set("k", "v1");
    let address = format!("rediss://127.0.0.1:{tls_port}");
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let proxy = InProcess::start_at(
        &address,
        &[
            ("REDIS_TLS_CA", &ca),
            ("REDIS_TLS_CERT_FILE", &cert),
            ("REDIS_TLS_KEY_FILE", &key),
            ("RESP_PORT", "auto"),
            ("GLOBAL_CACHE_EXPIRY", "3600"),
        ],
    );
    proxy.wait_for_link("up");
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    let reply = proxy.get_key("k");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v1"[..]));
    let mut resp = redis::Client::open(proxy.resp_url())
        .and_then(|client| client.get_connection())
        .expect("connect to the RESP port");
    let got: String = redis::cmd("GET").arg("k").query(&mut resp).expect("GET");
    assert_eq!(got, "v1");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v2")
        .query(&mut resp)
        .expect("a forwarded SET");
    let at_redis: String = redis.cmd(&["GET", "k"]);
    assert_eq!(at_redis, "v2");
    let got: String = redis::cmd("GET").arg("k").query(&mut resp).expect("GET");
    assert_eq!(got, "v2");
    // Cached now; a write made at Redis itself reaches the cache through
    // the invalidation link (over TLS, with the certificate).
    // (GLOBAL_CACHE_EXPIRY is an hour: expiry cannot be what drops it.)
    assert_eq!(proxy.get_key("k").body, b"v2");
    let announced = proxy.metric("redis_proxy_invalidations_total");
    redis.set("k", "v3");
    proxy.wait_for_invalidations(announced + 1.0);
    let reply = proxy.get_key("k");
    assert_eq!(reply.body, b"v3", "{}", reply.text());

    // No certificate: Redis ends the handshake, and /readyz says so and
    // which settings answer it.
    let without = InProcess::start_at(
        &address,
        &[("REDIS_TLS_CA", &ca), ("REDIS_TIMEOUT_MS", "500")],
    );
    let ready = without.get("/readyz");
    let text = ready.text();
    assert_eq!(ready.status, 503, "{text}");
    assert!(
        text.contains("CertificateRequired") && text.contains("REDIS_TLS_CERT_FILE"),
        "{text}"
    );
    assert_eq!(without.get_key("k").status, 503);
}

/// REDIS_TLS_CA, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE that cannot
/// work stop start-up with exit code 2 and a message naming the variable
/// (before, some were accepted and every connection failed later, and
/// REDIS_TLS_CA with redis:// exited 1 with the redis crate's words); the
/// key's contents never appear in the message.
#[test]
fn tls_to_redis_settings_that_cannot_work_stop_start_up_naming_the_variable() {
    let dir = TempDir::new("mtls-config");
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let rediss = "rediss://127.0.0.1:1";
    let plain = "redis://127.0.0.1:1";
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let missing = file("missing.pem");
    let cases: [(&str, &str, &str, &str, &str); 9] = [
        // (address, CA, cert, key, the variable named)
        (rediss, "", &cert, "", "REDIS_TLS_KEY_FILE"),
        (rediss, "", "", &key, "REDIS_TLS_CERT_FILE"),
        (rediss, "", &missing, &key, "REDIS_TLS_CERT_FILE"),
        (rediss, "", &cert, &missing, "REDIS_TLS_KEY_FILE"),
        // A key that is not the certificate's; a key given as the chain.
        (rediss, "", &cert, &file("server.key"), "REDIS_TLS_KEY_FILE"),
        (rediss, "", &key, &key, "REDIS_TLS_CERT_FILE"),
        // For rediss:// only.
        (plain, "", &cert, &key, "REDIS_TLS_CERT_FILE"),
        (plain, &ca, "", "", "REDIS_TLS_CA"),
        // PEM without a certificate: it trusted nothing.
        (rediss, &file("server.key"), "", "", "REDIS_TLS_CA"),
    ];
    let secret = std::fs::read_to_string(&key).expect("the key");
    let secret_line = secret.lines().nth(1).expect("a line of the key");
    for (address, ca, cert, key, named) in cases {
        let stderr = refused_start(&[
            ("REDIS_ADDRESS", address),
            ("PROXY_PORT", "0"),
            ("RESP_PORT", "off"),
            ("REDIS_TLS_CA", ca),
            ("REDIS_TLS_CERT_FILE", cert),
            ("REDIS_TLS_KEY_FILE", key),
        ]);
        assert!(
            stderr.contains(named),
            "{address} {ca} {cert} {key}: {stderr}"
        );
        assert!(
            !stderr.contains(secret_line),
            "the key was logged: {stderr}"
        );
    }
}

/// Sentinel mode over TLS, the sentinel and the master both asking for
/// client certificates: the proxy presents REDIS_TLS_CERT_FILE's to the
/// sentinel (and trusts REDIS_TLS_CA there, as at the master) and to the
/// master it names, so it reads and its link comes up.
#[test]
fn sentinel_mode_over_tls_presents_the_certificate_to_sentinels_and_the_master() {
    let dir = TempDir::new("mtls-sentinel");
    let (master, master_tls) = tls_redis(&dir, &["--tls-auth-clients", "yes"]);
    master.set("k", "through a TLS sentinel");
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (plain, tls) = (free_port(), free_port());
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {plain}\nbind 127.0.0.1\ntls-port {tls}\n\
             tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
             tls-client-cert-file {}\ntls-client-key-file {}\n\
             tls-replication yes\ntls-auth-clients yes\n\
             sentinel monitor {MASTER} 127.0.0.1 {master_tls} 1\n",
            file("server.pem"),
            file("server.key"),
            file("ca.pem"),
            file("client.pem"),
            file("client.key"),
        ),
    )
    .expect("write the sentinel's config");
    let sentinel = Killed(spawn_sentinel(&conf));
    eventually("the sentinel to answer on its plain port", || {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{plain}"))
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("PING").query::<String>(&mut conn).ok()
    });
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let proxy = InProcess::start_at(
        &format!("rediss://127.0.0.1:{tls}"),
        &[
            ("REDIS_MODE", "sentinel"),
            ("REDIS_SENTINEL_MASTER", MASTER),
            ("REDIS_TLS_CA", &ca),
            ("REDIS_TLS_CERT_FILE", &cert),
            ("REDIS_TLS_KEY_FILE", &key),
        ],
    );
    proxy.wait_for_link("up");
    let reply = proxy.get_key("k");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, b"through a TLS sentinel");
    drop(proxy);
    drop(sentinel);
}

/// A child process killed (and reaped) when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
