//! Flow control: what one connection can make the proxy hold is bounded, and
//! waiting on one client's socket never holds anything shared (a worker, a
//! WORKERS place, the lock). Each test keeps a bad client connected and
//! unread while a well-behaved one is served, and reads the proxy's memory
//! from /proc rather than timing anything.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use crate::common::relay::Relay;
use crate::common::{
    eventually, roundtrip_line, HttpConnection, InProcess, Proxy, RedisServer, PATIENCE,
};

/// The most a bad client may try to send: far more than the proxy may hold.
const FLOOD_BYTES: usize = 300 * 1024 * 1024;
/// What the proxy may hold at most while flooded (the bound).
const MEMORY_BOUND_KIB: u64 = 256 * 1024;

/// Writes `request` over and over on `stream` without reading anything,
/// until the socket stops taking bytes (the proxy stopped reading and every
/// buffer between is full) or `FLOOD_BYTES` have gone. Returns the bytes
/// sent. The write timeout only decides "blocked"; nothing is timed.
fn flood(stream: &mut TcpStream, request: &[u8]) -> usize {
    let batch: Vec<u8> = request.repeat(64 * 1024 / request.len() + 1);
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("write timeout");
    let mut sent = 0;
    while sent < FLOOD_BYTES {
        match stream.write(&batch) {
            Ok(n) => sent += n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(err) => panic!("the proxy dropped the flooding client: {err}"),
        }
    }
    sent
}

/// Whether the proxy still holds its end of `client`'s connection open: the
/// socket from the proxy's address to the client's is ESTABLISHED in
/// /proc/net/tcp. Had the proxy closed or shut it down, it would be in
/// FIN_WAIT (a shutdown, or a close with nothing unread) or gone (a close
/// over unread input resets it). The client's own `peer_addr()` sees only
/// the reset: it stays `Ok` after a FIN.
fn proxy_holds_open(client: &TcpStream) -> bool {
    fn hex(addr: SocketAddr) -> String {
        let SocketAddr::V4(v4) = addr else {
            panic!("the tests use IPv4 loopback, not {addr}")
        };
        // /proc/net/tcp prints the address as the kernel stores it (network
        // order read as a native integer) and the port in host order.
        let ip = u32::from_le_bytes(v4.ip().octets());
        format!("{ip:08X}:{:04X}", v4.port())
    }
    // Reset: the client's side is closed too.
    let Ok(proxy_side) = client.peer_addr() else {
        return false;
    };
    let proxy_side = hex(proxy_side);
    let client_side = hex(client.local_addr().expect("local address"));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local address, remote address, state (01: ESTABLISHED)
        fields.get(1..4) == Some(&[proxy_side.as_str(), client_side.as_str(), "01"][..])
    })
}

fn assert_bounded(proxy: &Proxy, what: &str) {
    let rss = proxy.rss_kib();
    assert!(
        rss < MEMORY_BOUND_KIB,
        "proxy RSS {rss} KiB while {what} (bound {MEMORY_BOUND_KIB} KiB)"
    );
}

fn redis_with_value(key: &str, size: usize) -> RedisServer {
    let redis = RedisServer::start();
    redis.set(key, vec![b'v'; size]);
    redis.set("small", "ok");
    redis
}

#[test]
fn an_http_client_pipelining_without_reading_holds_only_its_own_connection() {
    let redis = redis_with_value("big", 2048);
    let proxy = Proxy::start(&redis, &[]);
    let mut bad = TcpStream::connect(proxy.addr).expect("connect");
    let sent = flood(&mut bad, b"GET /proxy?key=big HTTP/1.1\r\nHost: x\r\n\r\n");
    // The proxy stopped reading it: its own sends blocked long before the
    // flood was out.
    assert!(sent < FLOOD_BYTES, "the proxy read all {sent} bytes");
    let reply = proxy.get_key("small");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok"[..]));
    assert_bounded(&proxy, "a client pipelines without reading");
    // Still connected and unread all along: the proxy stopped reading it
    // rather than dropping it.
    assert!(
        proxy_holds_open(&bad),
        "the proxy closed the flooding client"
    );
}

#[test]
fn http_clients_that_never_read_a_large_answer_hold_no_worker() {
    let redis = redis_with_value("huge", 8 * 1024 * 1024);
    // Fewer workers than slow readers: any worker held by one starves all.
    let proxy = Proxy::start(&redis, &[("WORKERS", "4")]);
    let slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(proxy.addr).expect("connect");
            stream
                .write_all(b"GET /proxy?key=huge HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            stream
        })
        .collect();
    // Every one of them has been read through the cache (the answer is
    // made, and handed to be written, right after) ...
    eventually("the 20 large answers to be handed out", || {
        (proxy.reads() >= 20.0).then_some(())
    });
    // ... none of them reads, and a fresh client is still served.
    let reply = proxy.get_key("small");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"ok"[..]));
    // One value, shared by twenty writers: no copy each.
    assert_bounded(&proxy, "20 clients hold an 8 MiB answer each");
    drop(slow);
}

#[test]
fn a_resp_client_pipelining_without_reading_holds_only_its_own_connection() {
    let redis = redis_with_value("big", 2048);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut bad = TcpStream::connect(proxy.resp_addr()).expect("connect");
    let sent = flood(&mut bad, b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    assert!(sent < FLOOD_BYTES, "the proxy read all {sent} bytes");
    let mut good = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let value: String = redis::cmd("GET")
        .arg("small")
        .query(&mut good)
        .expect("GET");
    assert_eq!(value, "ok");
    assert_bounded(&proxy, "a RESP client pipelines without reading");
    assert!(
        proxy_holds_open(&bad),
        "the proxy closed the flooding client"
    );
}

/// With RESP_FORWARD=on (the default) Redis answers such a read, uncached
/// (`limits::a_get_or_mget_of_a_key_too_long_to_cache_answers_as_redis_uncached`).
#[test]
fn an_overlong_resp_key_is_refused_before_redis_with_resp_forward_off() {
    let redis = redis_with_value("k", 1);
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto"), ("RESP_FORWARD", "off")]);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let long = vec![b'x'; 1024 * 1024];
    let mut get = format!("*2\r\n$3\r\nGET\r\n${}\r\n", long.len()).into_bytes();
    get.extend_from_slice(&long);
    get.extend_from_slice(b"\r\n");
    assert_eq!(
        roundtrip_line(&mut stream, &get),
        "-ERR key too long (max 8192 bytes)\r\n"
    );
    let mut mget = format!("*3\r\n$4\r\nMGET\r\n$5\r\nsmall\r\n${}\r\n", long.len()).into_bytes();
    mget.extend_from_slice(&long);
    mget.extend_from_slice(b"\r\n");
    assert_eq!(
        roundtrip_line(&mut stream, &mget),
        "-ERR key too long (max 8192 bytes)\r\n"
    );
    // The connection is still usable, and nothing reached Redis.
    assert_eq!(roundtrip_line(&mut stream, b"PING\r\n"), "+PONG\r\n");
    assert_eq!(redis.calls("get"), 0);
    assert_eq!(redis.calls("mget"), 0);
    assert_eq!(
        proxy.metric("redis_proxy_requests_total{protocol=\"resp\",status=\"error\"}"),
        2.0
    );
}

#[test]
fn max_key_bytes_bounds_http_keys_and_what_resp_caches() {
    let redis = redis_with_value("k", 1);
    redis.set("12345", "long");
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto"), ("MAX_KEY_BYTES", "4")]);
    let reply = proxy.get_key("12345");
    assert_eq!(reply.status, 414);
    assert_eq!(reply.json()["error"], "key too long (max 4 bytes)");
    assert_eq!(proxy.get_key("1234").status, 404);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // Over RESP, Redis answers it, uncached: each read reaches Redis.
    for _ in 0..2 {
        let before = redis.calls("get");
        stream.write_all(b"GET 12345\r\n").expect("send");
        let mut reply = [0; 10];
        stream.read_exact(&mut reply).expect("reply");
        assert_eq!(&reply, b"$4\r\nlong\r\n");
        assert_eq!(redis.calls("get"), before + 1);
    }
    assert_eq!(roundtrip_line(&mut stream, b"GET k\r\n"), "$1\r\n");
}

#[test]
fn a_resp_request_declared_larger_than_the_proxy_takes_is_refused_at_once() {
    let redis = redis_with_value("k", 1);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // 500 MB declared, nothing of it sent: refused without waiting for it.
    let line = roundtrip_line(&mut stream, b"*2\r\n$3\r\nGET\r\n$524288000\r\n");
    assert!(line.starts_with("-ERR Protocol error"), "{line}");
    assert_bounded(&proxy, "a 500 MB key was declared");
}

#[test]
fn a_resp_request_in_tiny_pieces_is_answered() {
    let redis = redis_with_value("k", 1);
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // An MGET of 2,000 keys, one byte per write: resumed, not re-parsed.
    let mut request = b"*2001\r\n$4\r\nMGET\r\n".to_vec();
    for _ in 0..2000 {
        request.extend_from_slice(b"$1\r\nk\r\n");
    }
    for byte in &request {
        stream.write_all(std::slice::from_ref(byte)).expect("send");
    }
    assert_eq!(roundtrip_line(&mut stream, b""), "*2000\r\n");
}

#[test]
fn resp_errors_from_redis_count_as_errors() {
    // Nothing listens at the backing address: every miss fails.
    let dead = format!("127.0.0.1:{}", crate::common::free_port());
    let proxy = InProcess::start_at(&dead, &[("RESP_PORT", "auto"), ("REDIS_TIMEOUT_MS", "200")]);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let line = roundtrip_line(&mut stream, b"GET k\r\n");
    assert!(line.starts_with("-ERR backing Redis"), "{line}");
    let line = roundtrip_line(&mut stream, b"MGET a b\r\n");
    assert!(line.starts_with("-ERR backing Redis"), "{line}");
    let resp = |status: &str| {
        proxy.metric(&format!(
            "redis_proxy_requests_total{{protocol=\"resp\",status=\"{status}\"}}"
        ))
    };
    assert_eq!(resp("error"), 2.0);
    assert_eq!(resp("ok"), 0.0);
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs the test-hooks feature (make test turns it on)"
)]
fn a_panicking_resp_worker_answers_an_error_and_service_goes_on() {
    let redis = redis_with_value("k", 1);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto"), ("WORKERS", "2")]);
    let mut stream = TcpStream::connect(proxy.resp_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // More panics than workers: each must survive (or be replaced).
    for _ in 0..3 {
        assert_eq!(
            roundtrip_line(&mut stream, b"GET redis-proxy:test-hooks:panic\r\n"),
            "-ERR internal error\r\n"
        );
    }
    assert_eq!(roundtrip_line(&mut stream, b"GET k\r\n"), "$1\r\n");
    assert!(proxy.log().contains("a RESP worker panicked"));
    // Nothing is left counted in flight by the panics: only the scrape
    // itself is in flight while /metrics is rendered.
    assert_eq!(proxy.metric("redis_proxy_requests_in_flight"), 1.0);
}

#[test]
fn readyz_reports_redis_not_the_pools_load() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    // Long enough that nothing held at the relay times out meanwhile.
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            ("WORKERS", "2"),
            ("REDIS_TIMEOUT_MS", "10000"),
            ("RESP_PORT", "auto"),
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
        ],
    );
    relay.hold();
    // Every pooled connection busy with a RESP miss held at the relay (the
    // HTTP workers stay free to answer the probe).
    let url = proxy.resp_url();
    let misses: Vec<_> = (0..2)
        .map(|i| {
            let url = url.clone();
            thread::spawn(move || {
                let mut conn = redis::Client::open(url)
                    .and_then(|c| c.get_connection())
                    .expect("connect");
                redis::cmd("GET")
                    .arg(format!("m{i}"))
                    .query::<Option<String>>(&mut conn)
            })
        })
        .collect();
    eventually("both pooled connections to be busy", || {
        (relay.in_flight() == 2).then_some(())
    });
    relay.exempt_new_connections();
    let ready = proxy.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    // The probe did not take a place in the pool: the misses still hold both.
    assert_eq!(relay.in_flight(), 2);
    relay.release();
    for miss in misses {
        assert_eq!(miss.join().expect("miss"), Ok(None));
    }
}

#[test]
fn an_idle_proxy_logs_no_error_or_warning() {
    let redis = redis_with_value("k", 1);
    let proxy = Proxy::start(
        &redis,
        &[
            ("HTTP_IDLE_TIMEOUT_SECS", "1"),
            ("RUST_LOG", "info,tiny_http=trace"),
        ],
    );
    // One request, then nothing until the accept timeout has passed twice
    // (the trace line says so).
    assert_eq!(proxy.get_key("k").status, 200);
    eventually("the listener's accept to time out twice", || {
        (proxy.log().matches("accept returned").count() >= 2).then_some(())
    });
    assert_eq!(proxy.warnings(), Vec::<String>::new(), "{}", proxy.log());
}

#[test]
fn answers_during_a_drain_say_connection_close() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    redis.set("k", "v");
    let mut proxy = Proxy::start_at(&relay.url(), &[("INVALIDATION", "off")]);
    // A keep-alive client whose request is in flight when the drain begins.
    relay.hold();
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.send("GET", "/proxy?key=k", &[]).expect("send");
    eventually("the read to reach the relay", || {
        (relay.in_flight() == 1).then_some(())
    });
    proxy.signal("TERM");
    // The listener closes once the drain has begun.
    eventually("the drain to begin", || {
        TcpStream::connect(proxy.addr).is_err().then_some(())
    });
    relay.release();
    let reply = conn.read_reply(false).expect("answer");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(proxy.wait_exit().success());
}

#[test]
fn a_connection_the_proxy_closes_is_told_so() {
    let redis = redis_with_value("k", 1);
    let proxy = InProcess::start(&redis, &[]);
    // `Connection: close` asked by the client (the test client always asks).
    assert_eq!(proxy.get_key("k").header("connection"), Some("close"));
    // HTTP/1.0 without keep-alive.
    let mut stream = TcpStream::connect(proxy.addr).expect("connect");
    stream
        .write_all(b"GET /proxy?key=k HTTP/1.0\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
}
