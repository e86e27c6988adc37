//! Issue 19: HTTP request heads a hostile or unlucky client sends, and the
//! caching headers downstream caches read. Every malformed head gets one
//! complete answer with a JSON body and the connection closes; nothing
//! after a head whose body cannot be framed is read as a request; a version
//! other than HTTP/1 is a 505 that leaves no thread or descriptor behind.
//! (vendor/tiny_http patches 10-12, and src/http.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::common::certs::{make_certificates, tls_client};
use crate::common::{
    self, connect, eventually, request, Endpoints, HttpConnection, InProcess, Proxy, RedisServer,
};

/// Redis holding `k` and `smuggled`, and the proxy in this process.
pub(super) fn setup() -> (RedisServer, InProcess) {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[("GLOBAL_CACHE_EXPIRY", "60")]);
    (redis, proxy)
}

/// [`setup`] with the binary, whose threads and descriptors are counted.
fn setup_binary() -> (RedisServer, Proxy) {
    let redis = seeded();
    let proxy = Proxy::start(&redis, &[("GLOBAL_CACHE_EXPIRY", "60")]);
    (redis, proxy)
}

fn seeded() -> RedisServer {
    let redis = RedisServer::start();
    redis.set("k", "v");
    redis.set("smuggled", "s");
    redis
}

/// The responses in what a connection received: (status, body) each, the
/// body by its `Content-Length`.
fn responses(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let text = String::from_utf8_lossy(rest);
        let Some(end) = text.find("\r\n\r\n") else {
            panic!("a response head that does not end: {text:?}");
        };
        let head = &text[..end];
        assert!(head.starts_with("HTTP/1."), "not a response: {text:?}");
        let status = head[9..12].parse().expect("a status");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().expect("a length"))
            })
            .expect("a Content-Length");
        let body = &rest[end + 4..];
        assert!(body.len() >= length, "the body is cut short: {text:?}");
        found.push((status, body[..length].to_vec()));
        rest = &body[length..];
    }
    found
}

/// Sends `raw` on a fresh connection; the one answer, which must be all
/// the proxy sends before it closes the connection: status and JSON body.
pub(super) fn one_answer(proxy: &Endpoints, raw: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = connect(proxy.addr);
    stream.write_all(raw).expect("send");
    let received = common::read_until_closed(&mut stream);
    let answers = responses(&received);
    assert_eq!(
        answers.len(),
        1,
        "{:?}: {}",
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&received)
    );
    // RFC 9112 section 9.6: a server that closes after an answer says so.
    let head = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let (status, body) = &answers[0];
    let json: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert!(json["error"].is_string(), "{json}");
    (*status, json)
}

/// Threads and open descriptors of a process.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/{what}: {e}"))
            .count()
    };
    (count("task"), count("fd"))
}

/// Waits until the proxy holds no more threads and descriptors than it did
/// (`before`) give or take a few, while the clients are still connected.
fn released(proxy: &Proxy, before: (usize, usize)) {
    eventually("the threads and descriptors to be released", || {
        let now = threads_and_fds(proxy.pid());
        (now.0 <= before.0 + 4 && now.1 <= before.1 + 4).then_some(())
    });
}

const VERSIONS: [&str; 4] = ["HTTP/2.0", "HTTP/3.0", "HTTP/2", "HTTP/0.9"];

#[test]
fn issue_19_a_major_version_other_than_1_is_505_and_holds_nothing() {
    let (_redis, proxy) = setup_binary();
    let before = threads_and_fds(proxy.pid());
    let mut clients: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut stream = connect(proxy.addr);
            let line = format!("GET /healthz {}\r\nHost: x\r\n\r\n", VERSIONS[i % 4]);
            stream.write_all(line.as_bytes()).expect("send");
            stream
        })
        .collect();
    for stream in &mut clients {
        assert_one_505(&common::read_until_closed(stream));
    }
    // The clients keep their end open; the proxy has let go of its own.
    released(&proxy, before);
    // HTTP/1.2 is HTTP/1 (RFC 9110 section 2.5): served as 1.1.
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(b"GET /proxy?key=k HTTP/1.2\r\nHost: x\r\n\r\n");
    let reply = conn.read_reply(false).expect("a reply");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
    drop(clients);
}

#[test]
fn issue_19_a_major_version_other_than_1_is_505_over_https_too() {
    let dir = common::TempDir::new("http-framing-tls");
    make_certificates(dir.path());
    let redis = RedisServer::start();
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (cert, key) = (file("server.pem"), file("server.key"));
    let proxy = Proxy::start_at(
        &redis.url(),
        &[
            ("TLS_CERT_FILE", cert.as_str()),
            ("TLS_KEY_FILE", key.as_str()),
        ],
    );
    let config = tls_client(&file("ca.pem"));
    let connect_tls = || {
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = rustls::ClientConnection::new(Arc::clone(&config), name).expect("TLS");
        let socket = connect(proxy.addr);
        rustls::StreamOwned::new(tls, socket)
    };
    // One handshake first, so the baseline counts what HTTPS set up once.
    let mut first = connect_tls();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    assert!(read_tls(&mut first).starts_with(b"HTTP/1.1 200"));
    let before = threads_and_fds(proxy.pid());
    let mut clients: Vec<_> = (0..200)
        .map(|i| {
            let mut stream = connect_tls();
            let line = format!("GET /healthz {}\r\nHost: x\r\n\r\n", VERSIONS[i % 4]);
            stream.write_all(line.as_bytes()).expect("send");
            stream
        })
        .collect();
    for stream in &mut clients {
        assert_one_505(&read_tls(stream));
    }
    released(&proxy, before);
    drop(clients);
}

/// Everything the server sends over TLS until it closes (a close without
/// `close_notify` counts as closing).
fn read_tls(stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(err) => {
                assert!(
                    !matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the server did not close the connection"
                );
                return out;
            }
        }
    }
}

pub(super) const SMUGGLED: &str = "GET /proxy?key=smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn issue_19_a_body_that_cannot_be_framed_is_refused_and_never_read_as_a_request() {
    let (_redis, proxy) = setup();
    let len = SMUGGLED.len();
    let framings = [
        "Transfer-Encoding: chunked".to_owned(),
        "Transfer-Encoding: gzip".to_owned(),
        "Transfer-Encoding: gzip, chunked".to_owned(),
        format!("Transfer-Encoding: chunked\r\nContent-Length: {len}"),
        format!("Content-Length: {len}\r\nTransfer-Encoding: chunked"),
        format!("Content-Length: 0\r\nContent-Length: {len}"),
        format!("Content-Length: {len}, {len}"),
        "Content-Length: abc".to_owned(),
        "Content-Length: -1".to_owned(),
        "Content-Length: 99999999999999999999999".to_owned(),
    ];
    for framing in &framings {
        for method in ["GET", "POST"] {
            let head = format!("{method} /proxy?key=k HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n");
            let (status, json) = one_answer(&proxy, format!("{head}{SMUGGLED}").as_bytes());
            assert!(matches!(status, 400 | 413), "{framing}: {status} {json}");
        }
    }
    // Neither the request nor what its body holds reached a key.
    assert_eq!(proxy.reads(), 0.0);
    assert_eq!(proxy.get_key("k").status, 200);
}

#[test]
fn issue_19_a_body_the_proxy_would_wait_for_is_refused_at_once() {
    let (_redis, proxy) = setup();
    // Longer than what is read before the request is queued.
    let (status, _) = one_answer(
        &proxy,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    );
    assert_eq!(status, 413);
    // Announced with Expect: 100-continue, so it would come only later.
    let (status, _) = one_answer(
        &proxy,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
    );
    assert_eq!(status, 413);
    // A small body with its length is read and the connection goes on.
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(conn.read_reply(false).expect("a reply").status, 200);
    assert_eq!(conn.get("/proxy?key=k").status, 200);
}

#[test]
fn issue_19_every_malformed_head_gets_an_answer() {
    let (_redis, proxy) = setup();
    let cases: [(&[u8], u16); 7] = [
        (b"GET /proxy?key=\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /proxy?key=\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nX-Name: \xff\r\n\r\n",
            400,
        ),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n",
            417,
        ),
        (b"GET /proxy?key=k HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET /proxy?key=k HTTP/1\r\n\r\n", 400),
        (b"nonsense\r\n\r\n", 400),
    ];
    for (raw, expected) in cases {
        let (status, json) = one_answer(&proxy, raw);
        assert_eq!(status, expected, "{}: {json}", String::from_utf8_lossy(raw));
    }
    // The 417 as curl reads it: complete (no "transfer closed with N bytes
    // remaining").
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.send("GET", "/proxy?key=k", &[("Expect", "foo")])
        .expect("send");
    let reply = conn.read_reply(false).expect("the whole 417");
    assert_eq!(reply.status, 417);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.json()["error"].is_string());
}

#[test]
fn issue_19_an_absolute_form_target_is_served() {
    let (_redis, proxy) = setup();
    let port = proxy.addr.port();
    let mut conn = HttpConnection::connect(proxy.addr);
    for target in [
        format!("http://127.0.0.1:{port}/proxy?key=k"),
        format!("HTTP://localhost:{port}/proxy?key=k"),
    ] {
        conn.send("GET", &target, &[]).expect("send");
        let reply = conn.read_reply(false).expect("a reply");
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
    }
    let reply = request(proxy.addr, "GET", &format!("http://x:{port}/healthz"), &[]);
    assert_eq!(reply.status, 200);
}

#[test]
fn issue_19_max_age_minus_age_is_what_is_left_of_the_entry() {
    let (_redis, proxy) = setup();
    let miss = proxy.get_key("k");
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    assert_eq!(miss.header("cache-control"), Some("max-age=60"));
    // A hit at least 2 s after the fill.
    let hit = eventually("a hit 2 s old", || {
        let reply = proxy.get_key("k");
        let age: u64 = reply.header("age")?.parse().ok()?;
        (reply.is_hit() && age >= 2).then_some(reply)
    });
    let age: u64 = hit.header("age").expect("Age").parse().expect("a number");
    // max-age is the entry's whole lifetime (60 s), Age the time since the
    // fill: a downstream cache keeps it max-age - Age more, what is left.
    assert_eq!(hit.header("cache-control"), Some("max-age=60"), "Age {age}");
    assert!((2..60).contains(&age), "{age}");
}

#[test]
fn issue_19_a_304_does_not_say_its_body_is_empty() {
    let (_redis, proxy) = setup();
    for accept in ["*/*", "application/json"] {
        let full = request(proxy.addr, "GET", "/proxy?key=k", &[("Accept", accept)]);
        assert_eq!(full.status, 200);
        let tag = full.header("etag").expect("ETag").to_owned();
        let mut conn = HttpConnection::connect(proxy.addr);
        conn.send(
            "GET",
            "/proxy?key=k",
            &[("Accept", accept), ("If-None-Match", &tag)],
        )
        .expect("send");
        let reply = conn.read_reply(true).expect("a 304");
        assert_eq!(reply.status, 304);
        // None, or the 200's (RFC 9110 section 8.6).
        let length = reply.header("content-length");
        assert!(
            length.is_none() || length == Some(full.body.len().to_string().as_str()),
            "{accept}: Content-Length {length:?}, the 200 has {}",
            full.body.len()
        );
        // Nothing follows the 304's head: the next answer is read cleanly.
        assert_eq!(conn.get("/proxy?key=k").status, 200);
    }
}

/// `received` is exactly one answer, a 505 with a JSON error body.
fn assert_one_505(received: &[u8]) {
    let answers = responses(received);
    assert_eq!(answers.len(), 1, "{}", String::from_utf8_lossy(received));
    assert_eq!(answers[0].0, 505);
    let json: serde_json::Value = serde_json::from_slice(&answers[0].1).expect("JSON");
    assert!(json["error"].is_string(), "{json}");
}
