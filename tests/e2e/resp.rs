//! The Redis protocol front end, with real clients: the `redis` crate over
//! RESP2 and RESP3, `redis-cli`, `redis-benchmark`, and raw sockets for the
//! byte-level cases.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::tmux::Tmux;
use crate::common::{eventually, resp_command, InProcess, Proxy, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

fn client(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to the proxy's RESP port")
}

fn get(conn: &mut redis::Connection, key: &[u8]) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("GET").arg(key).query(conn)
}

/// A raw connection that reads replies byte for byte.
struct Raw(TcpStream);

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw(crate::common::connect(addr))
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("write");
    }

    /// Reads until `expected` bytes have arrived (or the peer closes).
    fn read_exact_len(&mut self, expected: usize) -> Vec<u8> {
        let mut out = vec![0; expected];
        self.0.read_exact(&mut out).expect("read reply");
        out
    }

    /// Reads until the proxy closes the connection.
    fn read_to_close(&mut self) -> Vec<u8> {
        crate::common::read_until_closed(&mut self.0)
    }
}

fn check_client_basics(url: &str, redis: &RedisServer) {
    let mut conn = client(url);
    assert_eq!(
        get(&mut conn, b"text").expect("GET"),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        get(&mut conn, b"text").expect("GET hit"),
        Some(b"hello".to_vec())
    );
    assert_eq!(get(&mut conn, b"nope").expect("GET absent"), None);
    assert_eq!(
        get(&mut conn, b"empty").expect("GET empty"),
        Some(Vec::new())
    );
    assert_eq!(
        get(&mut conn, b"bin\xff").expect("GET binary"),
        Some(b"\x00\xff\r\n".to_vec())
    );
    let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
        .arg(&b"text"[..])
        .arg(&b"nope"[..])
        .arg(&b"list"[..])
        .arg(&b"empty"[..])
        .query(&mut conn)
        .expect("MGET");
    assert_eq!(
        values,
        vec![Some(b"hello".to_vec()), None, None, Some(Vec::new())]
    );
    let err = get(&mut conn, b"list").expect_err("WRONGTYPE");
    assert_eq!(err.code(), Some("WRONGTYPE"));
    // A write goes to Redis (RESP_FORWARD=all, the default), and the
    // next read sees it, past the cached value.
    let _: () = redis::cmd("SET")
        .arg("text")
        .arg("changed")
        .query(&mut conn)
        .expect("SET is forwarded");
    assert_eq!(
        get(&mut conn, b"text").expect("GET after SET"),
        Some(b"changed".to_vec())
    );
    let err = redis::cmd("GET").query::<()>(&mut conn).expect_err("arity");
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    // The write reached Redis, and the connection is still usable.
    assert_eq!(redis.cmd::<String>(&["GET", "text"]), "changed");
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
}

fn seeded() -> RedisServer {
    let redis = RedisServer::start();
    redis.set("text", "hello");
    redis.set("empty", "");
    redis.set(b"bin\xff", b"\x00\xff\r\n");
    let _: i64 = redis.cmd(&["RPUSH", "list", "x"]);
    redis
}

#[test]
fn redis_crate_over_resp2() {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[RESP]);
    check_client_basics(&proxy.resp_url(), &redis);
}

#[test]
fn redis_crate_over_resp3() {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[RESP]);
    check_client_basics(&format!("{}/?protocol=resp3", proxy.resp_url()), &redis);
}

#[test]
fn hello_switches_protocols_and_rejects_others() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.send(&resp_command(&[b"GET", b"absent"]));
    assert_eq!(raw.read_exact_len(5), b"$-1\r\n");
    raw.send(&resp_command(&[b"HELLO", b"3"]));
    assert_eq!(raw.read_exact_len(4), b"%8\r\n");
    raw.send(&resp_command(&[b"PING"]));
    // Skip the rest of the HELLO map by reading up to the PONG.
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        seen.extend(raw.read_exact_len(1));
    }
    raw.send(&resp_command(&[b"GET", b"absent"]));
    assert_eq!(raw.read_exact_len(3), b"_\r\n");
    raw.send(&resp_command(&[b"HELLO", b"4"]));
    let expected = b"-NOPROTO unsupported protocol version\r\n";
    assert_eq!(raw.read_exact_len(expected.len()), expected);
}

#[test]
fn redis_cli_one_shot_and_commands_on_stdin() {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[RESP]);
    let port = proxy.resp_addr().port().to_string();
    let out = Command::new("redis-cli")
        .args(["-p", &port, "GET", "text"])
        .output()
        .expect("redis-cli is installed (redis-tools)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");

    let mut cli = Command::new("redis-cli")
        .args(["-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    cli.stdin
        .take()
        .expect("stdin")
        .write_all(b"PING\nGET text\nGET nope\nMGET text empty\nSET a b\n")
        .expect("write commands");
    let out = cli.wait_with_output().expect("redis-cli output");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // SET is forwarded to Redis (RESP_FORWARD=all, the default).
    assert_eq!(lines, ["PONG", "hello", "", "hello", "", "OK"], "{text}");
    assert_eq!(redis.cmd::<String>(&["GET", "a"]), "b");
}

#[test]
fn redis_cli_interactive_mode_in_a_terminal() {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[RESP]);
    let port = proxy.resp_addr().port();
    // In a terminal, redis-cli runs its interactive start (COMMAND DOCS for
    // its hints) and reads commands as a person types them.
    let tmux = Tmux::start(
        format!("redis-proxy-test-{port}"),
        &format!("redis-cli -p {port}"),
    );
    let screen = |want: &str| tmux.screen(want);
    screen(&format!("127.0.0.1:{port}>"));
    tmux.run(&["send-keys", "GET text", "Enter"]);
    screen("\"hello\"");
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let count: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut conn)
        .expect("count");
    tmux.run(&["send-keys", "COMMAND COUNT", "Enter"]);
    let text = screen(&format!("(integer) {count}"));
    assert!(!text.contains("ERR"), "{text}");
}

#[test]
fn redis_cli_pipe_mode() {
    let redis = seeded();
    let proxy = InProcess::start(&redis, &[RESP]);
    let port = proxy.resp_addr().port().to_string();
    let mut cli = Command::new("redis-cli")
        .args(["-p", &port, "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut input = Vec::new();
    for _ in 0..500 {
        input.extend(resp_command(&[b"GET", b"text"]));
    }
    cli.stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write");
    let out = cli.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 500"), "{text}");
}

#[test]
fn redis_benchmark_with_its_defaults_runs_to_the_end_without_warnings() {
    let redis = RedisServer::start();
    // The proxy's own defaults for every limit.
    let proxy = InProcess::start(&redis, &[RESP]);
    let out = Command::new("redis-benchmark")
        .args(["-p", &proxy.resp_addr().port().to_string()])
        .args(["-t", "get,ping", "-n", "20000", "-q"])
        .output()
        .expect("redis-benchmark is installed (redis-tools)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for test in ["PING_INLINE", "PING_MBULK", "GET"] {
        assert!(
            text.contains(&format!("{test}: ")),
            "{test} missing: {text}"
        );
    }
    assert!(!text.to_uppercase().contains("WARNING"), "{text}");
    assert!(!text.contains("ERR"), "{text}");
}

#[test]
fn a_hundred_pipelined_gets_in_one_write_are_answered_in_order() {
    let redis = RedisServer::start();
    for i in 0..100 {
        redis.set(format!("p{i}"), format!("v{i:03}"));
    }
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(resp_command(&[b"GET", format!("p{i}").as_bytes()]));
    }
    raw.send(&batch);
    let mut expected = Vec::new();
    for i in 0..100 {
        expected.extend(format!("$4\r\nv{i:03}\r\n").bytes());
    }
    assert_eq!(raw.read_exact_len(expected.len()), expected);
}

#[test]
fn a_command_sent_one_byte_at_a_time() {
    let redis = RedisServer::start();
    redis.set("k", "slowly");
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.0.set_nodelay(true).expect("nodelay");
    for byte in resp_command(&[b"GET", b"k"]) {
        raw.send(&[byte]);
        raw.0.flush().expect("flush");
    }
    assert_eq!(raw.read_exact_len(12), b"$6\r\nslowly\r\n");
    // An inline command, byte by byte too.
    for &byte in b"PING\r\n" {
        raw.send(&[byte]);
    }
    assert_eq!(raw.read_exact_len(7), b"+PONG\r\n");
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut bystander = Raw::connect(proxy.resp_addr());
    for (garbage, reply) in [
        (
            &b"*99999999999\r\n"[..],
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$'\r\n",
        ),
        (
            b"*1\r\n$1\r\nabc\r\n",
            "-ERR Protocol error: bulk string not terminated by CRLF\r\n",
        ),
    ] {
        let mut raw = Raw::connect(proxy.resp_addr());
        raw.send(garbage);
        assert_eq!(String::from_utf8_lossy(&raw.read_to_close()), reply);
    }
    // A huge line with no end is cut off too, without buffering it all.
    let mut raw = Raw::connect(proxy.resp_addr());
    let _ = raw.0.write_all(&vec![b'A'; 200 * 1024]);
    let answer = raw.read_to_close();
    assert!(answer.starts_with(b"-ERR Protocol error: too big inline request"));
    bystander.send(&resp_command(&[b"GET", b"k"]));
    assert_eq!(bystander.read_exact_len(7), b"$1\r\nv\r\n");
}

#[test]
fn resp_and_http_share_one_cache() {
    let redis = RedisServer::start();
    redis.set("shared", "first");
    // TTL only: the write below tells which cache answered.
    let proxy = InProcess::start(&redis, &[RESP, ("INVALIDATION", "off")]);
    assert!(!proxy.get_key("shared").is_hit());
    redis.set("shared", "second");
    let mut conn = client(&proxy.resp_url());
    assert_eq!(
        get(&mut conn, b"shared").expect("GET"),
        Some(b"first".to_vec())
    );
    assert_eq!(redis.calls("get"), 1);
}

#[test]
fn config_get_answers_what_redis_benchmark_asks() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut conn = client(&proxy.resp_url());
    let save: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut conn)
        .expect("save");
    assert_eq!(save, vec!["save", ""]);
    let aof: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query(&mut conn)
        .expect("appendonly");
    assert_eq!(aof, vec!["appendonly", "no"]);
    let count: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut conn)
        .expect("count");
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut conn).expect("COMMAND");
    assert_eq!(
        count as usize,
        all.len(),
        "COMMAND COUNT counts what COMMAND lists"
    );
    assert!(count > 10);
    let name: Option<String> = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query(&mut conn)
        .expect("name");
    assert_eq!(name, None);
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("me")
        .query(&mut conn)
        .expect("setname");
    let name: Option<String> = redis::cmd("CLIENT")
        .arg("GETNAME")
        .query(&mut conn)
        .expect("name");
    assert_eq!(name.as_deref(), Some("me"));
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query(&mut conn)
        .expect("select 0");
    // Any database Redis has (issue #21); beyond its `databases`, its error.
    let _: () = redis::cmd("SELECT")
        .arg(1)
        .query(&mut conn)
        .expect("select 1");
    assert!(redis::cmd("SELECT").arg(99).query::<()>(&mut conn).is_err());
    let info: String = redis::cmd("INFO").query(&mut conn).expect("info");
    assert!(info.contains("keyspace_hits:"), "{info}");
}

#[test]
fn redis_down_is_an_error_and_the_connection_stays_usable() {
    let mut redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, ("REDIS_TIMEOUT_MS", "200")]);
    let mut conn = client(&proxy.resp_url());
    redis.stop();
    let err = get(&mut conn, b"k").expect_err("Redis is down");
    assert!(err.to_string().contains("unavailable"), "{err}");
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
    redis.restart();
    redis.set("k", "back");
    let value = eventually("the proxy to reconnect", || {
        get(&mut conn, b"k").ok().flatten()
    });
    assert_eq!(value, b"back");
}

#[test]
fn an_8_mib_value_comes_whole_over_resp() {
    let redis = RedisServer::start();
    let value: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    redis.set("big", &value);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut conn = client(&proxy.resp_url());
    for _ in 0..2 {
        let got = get(&mut conn, b"big").expect("GET").expect("a value");
        assert!(got == value, "8 MiB value differs");
    }
}

#[test]
fn sigterm_answers_resp_reads_in_flight_then_exits_zero() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let relay = crate::common::relay::Relay::start(redis.addr(), Duration::ZERO);
    let mut proxy = Proxy::start_at(
        &relay.url(),
        &[RESP, ("REDIS_TIMEOUT_MS", "10000"), ("INVALIDATION", "off")],
    );
    relay.hold();
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.send(&resp_command(&[b"GET", b"k"]));
    eventually("the read to reach Redis", || {
        (relay.in_flight() == 1).then_some(())
    });
    proxy.signal("TERM");
    eventually("the RESP listener to close", || {
        TcpStream::connect(proxy.resp_addr()).is_err().then_some(())
    });
    relay.release();
    assert_eq!(raw.read_exact_len(7), b"$1\r\nv\r\n");
    assert_eq!(proxy.wait_exit().code(), Some(0), "{}", proxy.log());
}
