//! Hostile and careless clients: each case must leave the proxy serving
//! everyone else. Regression tests for vendor/tiny_http patches 2-4 are
//! named after them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use crate::common::{
    self, connect, eventually, request, Endpoints, HttpConnection, InProcess, Proxy, RedisServer,
};

/// Everything the proxy sends until it closes, as text.
fn read_until_closed(stream: &mut TcpStream) -> String {
    String::from_utf8_lossy(&common::read_until_closed(stream)).into_owned()
}

fn still_serves(proxy: &Endpoints) {
    let reply = proxy.get_key("k");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"v"[..]));
}

/// Redis holding `k`, and the proxy in this process.
fn setup(env: &[(&str, &str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, env);
    (redis, proxy)
}

/// [`setup`] with the binary: for its resident memory, or for thousands of
/// connections held against its own (raised) open-files limit.
fn setup_binary(env: &[(&str, &str)]) -> (RedisServer, Proxy) {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = Proxy::start(&redis, env);
    (redis, proxy)
}

#[test]
fn tiny_http_patch_2_oversized_header_is_431() {
    let (_redis, proxy) = setup(&[]);
    let mut stream = connect(proxy.addr);
    let huge = "a".repeat(1024 * 1024);
    let _ =
        stream.write_all(format!("GET /proxy?key=k HTTP/1.1\r\nX-Big: {huge}\r\n\r\n").as_bytes());
    let answer = read_until_closed(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    // Many small headers adding up are refused too.
    let mut stream = connect(proxy.addr);
    let many: String = (0..200)
        .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(500)))
        .collect();
    let _ = stream.write_all(format!("GET /proxy?key=k HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert!(read_until_closed(&mut stream).starts_with("HTTP/1.1 431"));
    still_serves(&proxy);
}

#[test]
fn tiny_http_patch_2_oversized_request_line_is_414() {
    let (_redis, proxy) = setup(&[]);
    let mut stream = connect(proxy.addr);
    let long = "k".repeat(64 * 1024);
    let _ = stream.write_all(format!("GET /proxy?key={long} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(read_until_closed(&mut stream).starts_with("HTTP/1.1 414"));
    still_serves(&proxy);
}

#[test]
fn a_body_on_get_is_413_and_does_not_hold_up_anyone() {
    let (_redis, proxy) = setup(&[]);
    let mut stream = connect(proxy.addr);
    let size = 100 * 1024 * 1024;
    stream
        .write_all(
            format!("GET /proxy?key=k HTTP/1.1\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
        )
        .expect("send head");
    let mut conn = HttpConnection::new(stream.try_clone().expect("clone"));
    let reply = conn.read_reply(false).expect("reply");
    assert_eq!(reply.status, 413);
    assert!(reply.json()["error"].is_string());
    // The body streams on while others are served.
    let writer = thread::spawn(move || {
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..100 {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    still_serves(&proxy);
    writer.join().expect("writer");
    still_serves(&proxy);
}

#[test]
fn idle_http_connections_are_closed() {
    let (_redis, proxy) = setup(&[("HTTP_IDLE_TIMEOUT_SECS", "1")]);
    // One that never sends anything ...
    let mut silent = connect(proxy.addr);
    // ... and a keep-alive one that goes quiet after a request.
    let mut conn = HttpConnection::connect(proxy.addr);
    assert_eq!(conn.get("/proxy?key=k").status, 200);
    let mut quiet = conn.stream().try_clone().expect("clone");
    for stream in [&mut silent, &mut quiet] {
        let answer = read_until_closed(stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    still_serves(&proxy);
}

#[test]
fn slowloris_does_not_hold_up_anyone_and_is_cut_off() {
    let (_redis, proxy) = setup(&[("HTTP_IDLE_TIMEOUT_SECS", "1")]);
    let mut slow: Vec<TcpStream> = (0..20).map(|_| connect(proxy.addr)).collect();
    for stream in &mut slow {
        stream
            .write_all(b"GET /proxy?key=k HTTP/1.1\r\nX-Slow: ")
            .expect("start");
    }
    for stream in &mut slow {
        stream.write_all(b"a").expect("dribble");
    }
    still_serves(&proxy);
    // Once they stop dribbling, the idle timeout closes them.
    for stream in &mut slow {
        let answer = read_until_closed(stream);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

#[test]
fn five_thousand_idle_connections_do_not_stop_service() {
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the test's own fd limit");
    let (_redis, proxy) = setup_binary(&[]);
    let mut idle = Vec::new();
    for _ in 0..5000 {
        match TcpStream::connect(proxy.addr) {
            Ok(stream) => idle.push(stream),
            Err(err) => panic!("connection {} refused: {err}", idle.len()),
        }
    }
    still_serves(&proxy);
    drop(idle);
    still_serves(&proxy);
}

#[test]
fn tiny_http_patch_3_accept_survives_running_out_of_file_descriptors() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    // A hard limit of 64 open files, which the proxy cannot raise.
    let proxy = Proxy::start_wrapped(&redis.url(), &[], &["prlimit", "--nofile=64:64", "--"]);
    still_serves(&proxy);
    // Each open connection costs the proxy two descriptors: run it out.
    let hogs: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(proxy.addr).ok())
        .collect();
    eventually("accept to fail for want of descriptors", || {
        proxy.log().contains("Too many open files").then_some(())
    });
    drop(hogs);
    // Accepting goes on once descriptors are free again.
    let reply = eventually("service to come back", || {
        crate::common::try_request(proxy.addr, "GET", "/proxy?key=k", &[]).ok()
    });
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"v");
}

#[test]
fn open_files_soft_limit_is_raised_to_the_hard_limit() {
    let redis = RedisServer::start();
    let proxy = Proxy::start_wrapped(&redis.url(), &[], &["prlimit", "--nofile=256:4096", "--"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3..5], ["4096", "4096"], "{line}");
}

#[test]
fn tiny_http_patch_4_http_1_0_keep_alive_is_acknowledged() {
    let (_redis, proxy) = setup(&[]);
    let mut conn = HttpConnection::connect(proxy.addr);
    for _ in 0..3 {
        conn.reader_send_raw(b"GET /proxy?key=k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let reply = conn
            .read_reply(false)
            .expect("reply on the same connection");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
        assert_eq!(reply.body, b"v");
    }
    // Without the header, HTTP/1.0 closes after the answer, as before.
    let reply = request_1_0(proxy.addr);
    assert_eq!(reply.lines().next(), Some("HTTP/1.0 200 OK"));
}

/// An HTTP/1.0 request without keep-alive: everything until the close.
fn request_1_0(addr: SocketAddr) -> String {
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /proxy?key=k HTTP/1.0\r\n\r\n")
        .expect("send");
    read_until_closed(&mut stream)
}

#[test]
fn idle_resp_connections_are_closed() {
    let (_redis, proxy) = setup(&[("RESP_PORT", "auto"), ("CLIENT_IDLE_TIMEOUT_SECS", "1")]);
    let mut idle = connect(proxy.resp_addr());
    idle.write_all(b"PING\r\n").expect("ping");
    let answer = read_until_closed(&mut idle);
    assert_eq!(answer, "+PONG\r\n");
    // Closing the idle one left both front ends serving.
    let health = request(proxy.addr, "GET", "/healthz", &[]);
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let mut fresh = connect(proxy.resp_addr());
    assert_eq!(common::roundtrip_line(&mut fresh, b"PING\r\n"), "+PONG\r\n");
}

#[test]
fn resp_large_declared_length_allocates_nothing_up_front() {
    let (_redis, proxy) = setup_binary(&[("RESP_PORT", "auto")]);
    let mut stream = connect(proxy.resp_addr());
    let before = proxy.rss_kib();
    // A PING, then 4 MB declared (within what one request may carry) with
    // a few bytes of it, in one write: the PONG shows the proxy has read
    // that far, and it waits for the rest without reserving it.
    stream
        .write_all(b"PING\r\n*2\r\n$3\r\nGET\r\n$4000000\r\nabc")
        .expect("send");
    let mut pong = [0u8; 7];
    stream.read_exact(&mut pong).expect("PONG");
    assert_eq!(&pong, b"+PONG\r\n");
    let after = proxy.rss_kib();
    assert!(after < before + 2048, "RSS {before} -> {after} KiB");
    // Others are served meanwhile.
    let mut other = connect(proxy.resp_addr());
    other.write_all(b"GET k\r\n").expect("send");
    let mut reply = [0u8; 7];
    other.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"$1\r\nv\r\n");
}

/// The JSON body of a raw HTTP answer, and its status line.
fn json_answer(answer: &str) -> (String, serde_json::Value) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a head and a body: {answer:?}"));
    let status = head.lines().next().unwrap_or_default().to_owned();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, json)
}

#[test]
fn tiny_http_patch_8_errors_it_answers_itself_are_json() {
    let (_redis, proxy) = setup(&[("HTTP_IDLE_TIMEOUT_SECS", "1")]);
    let cases: [(&[u8], &str); 4] = [
        (b"GARBAGE\r\n\r\n", "HTTP/1.1 400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400"),
        (
            format!("GET /{} HTTP/1.1\r\n\r\n", "k".repeat(40 * 1024))
                .leak()
                .as_bytes(),
            "HTTP/1.1 414",
        ),
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(40 * 1024))
                .leak()
                .as_bytes(),
            "HTTP/1.1 431",
        ),
    ];
    for (request, status) in cases {
        let mut stream = connect(proxy.addr);
        let _ = stream.write_all(request);
        let answer = read_until_closed(&mut stream);
        assert!(!answer.is_empty(), "no answer to {status}");
        let (line, json) = json_answer(&answer);
        assert!(line.starts_with(status), "{line}, wanted {status}");
        assert!(json["error"].is_string(), "{json}");
    }
    // A request head that stops half-way: 408 once the idle timeout passes.
    let mut stream = connect(proxy.addr);
    stream
        .write_all(b"GET /proxy?key=k HTTP/1.1\r\n")
        .expect("send");
    let (line, json) = json_answer(&read_until_closed(&mut stream));
    assert!(line.starts_with("HTTP/1.1 408"), "{line}");
    assert!(json["error"].is_string());
    still_serves(&proxy);
}
