//! The Redis protocol front end, with real clients: the `redis` crate over
//! RESP2 and RESP3, `redis-cli`, `redis-benchmark` (the byte-level cases,
//! over raw sockets, are `resp_bytes.rs`'s).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::tmux::Tmux;
use crate::common::{eventually, resp_command, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

fn client(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to the proxy's RESP port")
}

fn get(conn: &mut redis::Connection, key: &[u8]) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("GET").arg(key).query(conn)
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
