//! TLS towards clients (TLS_CERT_FILE, TLS_KEY_FILE): HTTPS and TLS on the
//! RESP port, with the clients people use, and what happens to clients that
//! do not speak it or to a configuration that cannot work.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::common::certs::{make_certificates, tls_client};
use crate::common::{
    connect, eventually, read_until_closed, refused_start, run_ok, Endpoints, InProcess,
    RedisServer, TempDir,
};

/// Redis with `k` and a 1 MiB `big`, and a proxy serving both ports over
/// TLS with a certificate signed by the test CA in the returned directory.
fn start() -> (RedisServer, InProcess, TempDir) {
    start_with(&[])
}

/// [`start`], with more settings for the proxy.
fn start_with(env: &[(&str, &str)]) -> (RedisServer, InProcess, TempDir) {
    let dir = TempDir::new("client-tls");
    make_certificates(dir.path());
    let redis = RedisServer::start();
    redis.set("k", "v");
    redis.set("big", vec![b'x'; 1 << 20]);
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // (Not InProcess::start, which asks /readyz over plain HTTP; these reads
    // do not need the cache.)
    let (cert, key) = (file("server.pem"), file("server.key"));
    let mut vars = vec![
        ("RESP_PORT", "auto"),
        ("TLS_CERT_FILE", cert.as_str()),
        ("TLS_KEY_FILE", key.as_str()),
        ("HTTP_IDLE_TIMEOUT_SECS", "300"),
    ];
    vars.extend_from_slice(env);
    let proxy = InProcess::start_at(&redis.url(), &vars);
    (redis, proxy, dir)
}

fn ca(dir: &TempDir) -> String {
    dir.path().join("ca.pem").to_string_lossy().into_owned()
}

#[test]
fn curl_reads_over_https_with_keep_alive() {
    let (_redis, proxy, dir) = start();
    let port = proxy.addr.port();
    let url = |host: &str, key: &str| format!("https://{host}:{port}/proxy?key={key}");
    // Two requests on one connection, both answered.
    let out = curl(
        &dir,
        &[
            "-w",
            " %{http_code} %{num_connects}\n",
            &url("127.0.0.1", "k"),
            &url("127.0.0.1", "k"),
        ],
    );
    assert_eq!(out, "v 200 1\nv 200 0\n", "one connection, two answers");
    // By name, and a 1 MiB value whole.
    let out = curl(
        &dir,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            &url("localhost", "big"),
        ],
    );
    assert_eq!(out, format!("200 {}", 1 << 20));
}

/// TLS 1.2 clients (older libraries, `curl --tls-max 1.2`) are served too.
#[test]
fn a_tls_1_2_client_is_served_over_https() {
    let (_redis, proxy, dir) = start();
    let url = format!("https://127.0.0.1:{}/proxy?key=k", proxy.addr.port());
    let out = curl(&dir, &["--tls-max", "1.2", "-w", " %{http_code}", &url]);
    assert_eq!(out, "v 200");
}

#[test]
fn redis_cli_redis_py_and_the_redis_crate_read_over_tls() {
    let (_redis, proxy, dir) = start();
    let port = proxy.resp_addr().port().to_string();
    let out = run_ok(
        "redis-cli",
        &["--tls", "--cacert", &ca(&dir), "-p", &port, "GET", "k"],
        &[],
    );
    assert_eq!(out.trim(), "v");

    let script = format!(
        "import redis\n\
         r = redis.Redis(port={port}, ssl=True, ssl_ca_certs='{}')\n\
         print(r.get('k'), len(r.get('big')), r.mget('k', 'nope', 'k'))",
        ca(&dir)
    );
    let out = run_ok("python3", &["-c", &script], &[]);
    assert_eq!(out.trim(), format!("b'v' {} [b'v', None, b'v']", 1 << 20));

    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(ca(&dir)).expect("read the CA")),
    };
    let client = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}"), certificates)
        .expect("a rediss:// client");
    let mut conn = client.get_connection().expect("a TLS connection");
    // A pipeline: many replies, one large, through TLS's own buffering.
    let (a, big, b): (String, Vec<u8>, String) = redis::pipe()
        .cmd("GET")
        .arg("k")
        .cmd("GET")
        .arg("big")
        .cmd("GET")
        .arg("k")
        .query(&mut conn)
        .expect("pipelined GETs");
    assert_eq!((a.as_str(), big.len(), b.as_str()), ("v", 1 << 20, "v"));
}

#[test]
fn plaintext_clients_on_tls_ports_are_closed_not_left_hanging() {
    let (_redis, proxy, _dir) = start();
    // read_until_closed fails if the proxy keeps the connection open.
    let mut resp = connect(proxy.resp_addr());
    resp.write_all(b"*1\r\n$4\r\nPING\r\n").expect("send PING");
    let answer = read_until_closed(&mut resp);
    assert!(!answer.starts_with(b"+PONG"), "{answer:?}");

    let mut http = connect(proxy.addr);
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send a request");
    let answer = read_until_closed(&mut http);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn an_unusable_certificate_or_key_stops_start_up_naming_the_variable() {
    let dir = TempDir::new("tls-config");
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let missing = file("missing.pem");
    for (cert, key, named) in [
        (missing.as_str(), file("server.key"), "TLS_CERT_FILE"),
        (&file("server.pem"), missing.clone(), "TLS_KEY_FILE"),
        // A key that is not the certificate's.
        (&file("server.pem"), file("ca.key"), "TLS_KEY_FILE"),
        // Not PEM at all.
        (&file("server.ext"), file("server.key"), "TLS_CERT_FILE"),
        // One without the other.
        (&file("server.pem"), String::new(), "TLS_KEY_FILE"),
        ("", file("server.key"), "TLS_CERT_FILE"),
    ] {
        let stderr = refused_start(&[
            ("REDIS_ADDRESS", "127.0.0.1:1"),
            ("PROXY_PORT", "0"),
            ("RESP_PORT", "off"),
            ("TLS_CERT_FILE", cert),
            ("TLS_KEY_FILE", &key),
        ]);
        assert!(stderr.contains(named), "{cert} {key}: {stderr}");
    }
}

/// GET `path` over HTTPS with curl: the body.
fn https_get(dir: &TempDir, proxy: &Endpoints, path: &str) -> String {
    curl(
        dir,
        &[&format!("https://localhost:{}{path}", proxy.addr.port())],
    )
}

/// curl trusting the test CA, with `args`; its output. --max-time only
/// keeps a hang from stalling the run.
fn curl(dir: &TempDir, args: &[&str]) -> String {
    let ca = ca(dir);
    let mut all = vec!["-s", "--max-time", "30", "--cacert", &ca];
    all.extend_from_slice(args);
    run_ok("curl", &all, &[])
}

#[test]
fn https_clients_that_never_read_a_large_answer_hold_no_worker() {
    let (redis, proxy, dir) = start_with(&[("WORKERS", "4")]);
    redis.set("huge", vec![b'x'; 8 << 20]);
    let config = tls_client(&ca(&dir));
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let name = ServerName::try_from("localhost").expect("a name");
            let tls = rustls::ClientConnection::new(Arc::clone(&config), name).expect("TLS");
            let socket = TcpStream::connect(proxy.addr).expect("connect");
            let mut stream = rustls::StreamOwned::new(tls, socket);
            stream
                .write_all(b"GET /proxy?key=huge HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            stream.flush().expect("send");
            stream
        })
        .collect();
    // Every one has been read through the cache and handed to be written ...
    eventually("the 20 large answers to be handed out", || {
        let metrics = https_get(&dir, &proxy, "/metrics");
        // Summed over the `protocol` label.
        let count = |name: &str| -> f64 {
            metrics
                .lines()
                .filter_map(|l| {
                    l.strip_prefix(name)?
                        .rsplit_once(' ')?
                        .1
                        .parse::<f64>()
                        .ok()
                })
                .sum::<f64>()
        };
        let reads =
            count("redis_proxy_cache_hits_total{") + count("redis_proxy_cache_misses_total{");
        (reads >= 20.0).then_some(())
    });
    // ... none of them reads, and a fresh client is still served.
    assert_eq!(https_get(&dir, &proxy, "/proxy?key=k"), "v");
    drop(slow);
}
