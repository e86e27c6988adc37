//! What real clients tripped on, each tried with the client that found it:
//! redis-cli (`--stat` in a terminal, one-shot commands), redis-py, curl.

use std::process::Command;

use crate::common::tmux::Tmux;
use crate::common::{eventually, run_ok, Endpoints, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

fn redis_cli(proxy: &Endpoints, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &proxy.resp_addr().port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs a Python snippet with redis-py; its output.
fn redis_py(script: &str) -> String {
    run_ok("python3", &["-c", script], &[])
}

/// `curl -s -D -` (headers then body) with `args`.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-D", "-"])
        .args(args)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn seeded() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    redis.set("a", "1");
    redis.set("b", "2");
    let proxy = InProcess::start(&redis, &[RESP]);
    for key in ["a", "b"] {
        assert_eq!(proxy.get_key(key).status, 200);
    }
    (redis, proxy)
}

#[test]
fn redis_cli_stat_shows_real_figures() {
    let (_redis, proxy) = seeded();
    let port = proxy.resp_addr().port();
    let tmux = Tmux::start(
        format!("redis-proxy-stat-{port}"),
        &format!("redis-cli -p {port} --stat -i 0.2"),
    );
    // The header, then a line of figures: keys (2 cached), memory, clients.
    let screen = tmux.screen("connections");
    let figures = eventually("a line of figures", || {
        let text = tmux.run(&["capture-pane", "-p"]);
        text.lines()
            .skip_while(|l| !l.contains("connections"))
            .nth(1)
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_owned)
    });
    let fields: Vec<&str> = figures.split_whitespace().collect();
    assert_eq!(fields[0], "2", "keys: {figures}\n{screen}");
    assert!(
        fields[1].ends_with('M') || fields[1].ends_with('K'),
        "mem: {figures}"
    );
    assert!(
        !figures.contains('-') && !figures.contains("9223372036854775808"),
        "a negative figure: {figures}"
    );
}

#[test]
fn redis_py_reads_the_keyspace_from_info() {
    let (_redis, proxy) = seeded();
    let port = proxy.resp_addr().port();
    let out = redis_py(&format!(
        "import redis\n\
         r = redis.Redis(port={port})\n\
         print(r.info('keyspace'))\n\
         print(r.info()['connected_clients'] >= 1, r.info('memory')['used_memory'] > 0)"
    ));
    assert!(
        out.contains("'db0': {'keys': 2, 'expires': 2, 'avg_ttl': 0}"),
        "{out}"
    );
    assert!(out.contains("True True"), "{out}");
}

#[test]
fn json_keys_that_are_not_utf8_come_base64_encoded() {
    let redis = RedisServer::start();
    redis.set(b"\xff", "binary key");
    let proxy = InProcess::start(&redis, &[]);
    let url = |key: &str| format!("http://{}/proxy?key={key}", proxy.addr);
    let json = |key: &str| {
        let out = curl(&["-H", "Accept: application/json", &url(key)]);
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    // 0xFF and the replacement character's UTF-8 used to come back alike.
    assert_eq!(
        json("%FF"),
        serde_json::json!({"key": "/w==", "key_encoding": "base64", "value": "binary key"})
    );
    let absent = json("%EF%BF%BD");
    assert_eq!(absent["key"], "\u{fffd}");
    assert!(absent.get("key_encoding").is_none(), "{absent}");
    let absent_binary = json("%FE");
    assert_eq!(absent_binary["key"], "/g==");
    assert_eq!(absent_binary["key_encoding"], "base64");
}

#[test]
fn auth_answers_as_a_passwordless_redis_7() {
    let (_redis, proxy) = seeded();
    assert!(redis_cli(&proxy, &["AUTH", "pw"])
        .contains("AUTH <password> called without any password configured for the default user"));
    assert_eq!(redis_cli(&proxy, &["AUTH", "default", "pw"]).trim(), "OK");
    assert!(redis_cli(&proxy, &["AUTH", "bob", "pw"]).contains("WRONGPASS"));
    // redis-cli's own --user/--pass go through HELLO or AUTH as well.
    let out = redis_cli(&proxy, &["--user", "default", "--pass", "pw", "GET", "a"]);
    assert!(out.contains('1'), "{out}");
}

#[test]
fn client_and_command_help_list_what_is_served() {
    let (_redis, proxy) = seeded();
    let client = redis_cli(&proxy, &["CLIENT", "HELP"]);
    for sub in ["GETNAME", "SETNAME", "ID", "SETINFO"] {
        assert!(client.contains(sub), "{client}");
    }
    let command = redis_cli(&proxy, &["COMMAND", "HELP"]);
    assert!(
        command.contains("COUNT") && command.contains("INFO"),
        "{command}"
    );
}

#[test]
fn curl_is_told_when_the_proxy_closes_the_connection() {
    let (_redis, proxy) = seeded();
    let url = format!("http://{}/proxy?key=a", proxy.addr);
    let closing = curl(&["-H", "Connection: close", &url]);
    assert!(
        closing
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{closing}"
    );
    let http10 = curl(&["-0", &url]);
    assert!(
        http10
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{http10}"
    );
    let kept = curl(&[&url]);
    assert!(
        !kept.to_ascii_lowercase().contains("connection: close"),
        "{kept}"
    );
}

#[test]
fn curl_gets_json_for_a_malformed_request() {
    let (_redis, proxy) = seeded();
    // A space in the target makes the request line malformed.
    let out = curl(&[
        "--request-target",
        "/proxy?key=a b",
        &format!("http://{}/", proxy.addr),
    ]);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("{\"error\":"), "{out}");
}
