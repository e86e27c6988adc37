//! Issue #21, the commands about the connection or the server: `SELECT`
//! into any database Redis has, `INFO` with what client libraries read,
//! `CLIENT LIST/INFO/KILL` about the proxy's own clients, Redis's own
//! `COMMAND` and `CONFIG GET` answers, and the refused list
//! (docs/forwarding.md). A real redis-server behind the proxy, real
//! clients in front.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::common::{connect, eventually, read_until_closed, resp_command, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

fn client(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to the proxy's RESP port")
}

fn query<T: redis::FromRedisValue>(conn: &mut redis::Connection, words: &[&str]) -> T {
    try_query(conn, words).unwrap_or_else(|err| panic!("{words:?}: {err}"))
}

fn try_query<T: redis::FromRedisValue>(
    conn: &mut redis::Connection,
    words: &[&str],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query(conn)
}

/// The error text of a command that must fail.
fn error(conn: &mut redis::Connection, words: &[&str]) -> String {
    match try_query::<redis::Value>(conn, words) {
        Ok(value) => panic!("{words:?} answered {value:?}"),
        Err(err) => err.to_string(),
    }
}

/// One request over a raw socket; the reply's bytes, read until `done`
/// says they are whole.
fn raw(stream: &mut TcpStream, words: &[&[u8]], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    stream.write_all(&resp_command(words)).expect("write");
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&reply) {
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&chunk[..n]);
    }
    reply
}

/// Whether a bulk or verbatim string reply (`$n` / `=n`) is whole.
fn whole_string(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let len: usize = std::str::from_utf8(&reply[1..end])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    reply.len() >= end + 2 + len + 2
}

#[test]
fn select_reaches_any_database_redis_has_and_refuses_as_redis_does() {
    let redis = RedisServer::start_with(&["--databases", "4"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut conn = client(&proxy.resp_url());
    // A forwarded command first: the proxy has asked Redis's `databases`
    // by the time its reply is in.
    let _: () = query(&mut conn, &["SET", "k", "in db 0"]);
    assert_eq!(
        error(&mut conn, &["SELECT", "x"]),
        "ResponseError: value is not an integer or out of range"
    );
    // 4 databases: 4 is out of range (Redis's default, 16, would allow it).
    for bad in ["4", "5", "-1"] {
        assert!(
            error(&mut conn, &["SELECT", bad]).contains("DB index is out of range"),
            "SELECT {bad}"
        );
    }
    let _: () = query(&mut conn, &["SELECT", "3"]);
    let _: () = query(&mut conn, &["SET", "k", "in db 3"]);
    let value: String = query(&mut conn, &["GET", "k"]);
    assert_eq!(value, "in db 3");
    // Twice: a second GET would be a hit if db 3's value had been cached
    // as db 0's.
    let value: String = query(&mut conn, &["GET", "k"]);
    assert_eq!(value, "in db 3");
    let _: () = query(&mut conn, &["SELECT", "0"]);
    let value: String = query(&mut conn, &["GET", "k"]);
    assert_eq!(value, "in db 0");
    // In Redis itself: each database holds its own.
    let mut direct = redis.conn();
    let _: () = query(&mut direct, &["SELECT", "3"]);
    let value: String = query(&mut direct, &["GET", "k"]);
    assert_eq!(value, "in db 3");
    let mut other = client(&proxy.resp_url());
    let values: Vec<Option<String>> = query(&mut other, &["MGET", "k", "nope"]);
    assert_eq!(values, vec![Some("in db 0".to_owned()), None]);
}

#[test]
fn a_redis_url_naming_database_1_works_through_the_proxy() {
    let redis = RedisServer::start();
    let proxy = InProcess::start_at(&format!("{}/1", redis.url()), &[RESP]);
    proxy.wait_for_settled_link();
    // The client's own URL names database 1 too: it sends SELECT 1.
    let mut conn = client(&format!("{}/1", proxy.resp_url()));
    let _: () = query(&mut conn, &["SET", "one", "only in db 1"]);
    let value: String = query(&mut conn, &["GET", "one"]);
    assert_eq!(value, "only in db 1");
    // Not seen in database 0, through the proxy or in Redis. (A client
    // starts in REDIS_ADDRESS's database, as one of Redis's starts in 0;
    // the redis crate sends no SELECT for /0.)
    let mut zero = client(&proxy.resp_url());
    let _: () = query(&mut zero, &["SELECT", "0"]);
    let value: Option<String> = query(&mut zero, &["GET", "one"]);
    assert_eq!(value, None);
    let value: Option<String> = query(&mut redis.conn(), &["GET", "one"]);
    assert_eq!(value, None);
}

#[test]
fn info_gives_the_fields_client_libraries_read_at_start() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let port = proxy.resp_addr().port();
    // The version is Redis's own (clients pick commands by it, and those
    // reach Redis): read at link up.
    let info: String = redis.cmd(&["INFO", "server"]);
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .expect("Redis's version")
        .trim()
        .to_owned();
    eventually("the proxy to report the version", || {
        let ours: String = query(&mut client(&proxy.resp_url()), &["INFO", "server"]);
        ours.contains(&format!("redis_version:{version}\r\n"))
            .then_some(())
    });
    // redis-py parses INFO into a dict; ioredis waits while `loading:1`.
    let script = format!(
        "import redis\n\
         i = redis.Redis(port={port}).info('everything')\n\
         print(i['redis_version'], i['redis_mode'], i['arch_bits'], i['tcp_port'], \
         i['loading'], i['role'], i['cluster_enabled'], i['connected_clients'] >= 1, \
         i['process_id'] > 0, 'os' in i, i['uptime_in_seconds'] >= 0)"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with redis-py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{version} standalone 64 {port} 0 master 0 True True True True")
    );
    // In RESP3 a verbatim string, as Redis sends it.
    let mut stream = connect(proxy.resp_addr());
    let hello = raw(&mut stream, &[b"HELLO", b"3"], |r| {
        r.ends_with(b"redis-proxy\r\n")
    });
    assert!(hello.starts_with(b"%8\r\n"));
    let info = raw(&mut stream, &[b"INFO", b"server"], whole_string);
    let text = String::from_utf8_lossy(&info);
    assert!(text.starts_with('='), "{text}");
    assert!(
        text.contains(&format!("txt:# Server\r\nredis_version:{version}\r\n")),
        "{text}"
    );
}

#[test]
fn client_list_info_and_kill_are_about_the_proxys_own_clients() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut me = client(&proxy.resp_url());
    let my_id: i64 = query(&mut me, &["CLIENT", "ID"]);
    let mut victim = connect(proxy.resp_addr());
    let named = raw(&mut victim, &[b"CLIENT", b"SETNAME", b"victim"], |r| {
        r.ends_with(b"\r\n")
    });
    assert_eq!(named, b"+OK\r\n");
    let victim_addr = victim.local_addr().expect("addr").to_string();
    let list: String = query(&mut me, &["CLIENT", "LIST"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let victim_line = lines
        .iter()
        .find(|line| line.contains(" name=victim "))
        .unwrap_or_else(|| panic!("no victim in {list}"));
    assert!(
        victim_line.contains(&format!(" addr={victim_addr} ")),
        "{victim_line}"
    );
    assert!(
        victim_line.contains(&format!(" laddr={} ", proxy.resp_addr())),
        "{victim_line}"
    );
    assert!(victim_line.contains(" cmd=client "), "{victim_line}");
    let victim_id: i64 = victim_line
        .strip_prefix("id=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .expect("id");
    let info: String = query(&mut me, &["CLIENT", "INFO"]);
    assert!(info.starts_with(&format!("id={my_id} ")), "{info}");
    assert!(info.contains(" cmd=client|info "), "{info}");
    // redis-py reads the list into dicts.
    let script = format!(
        "import redis\n\
         print(sorted(c['name'] for c in redis.Redis(port={}).client_list()))",
        proxy.resp_addr().port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "['', '', 'victim']"
    );
    // KILL by ID: the victim's connection is closed.
    let killed: i64 = query(&mut me, &["CLIENT", "KILL", "ID", &victim_id.to_string()]);
    assert_eq!(killed, 1);
    assert!(read_until_closed(&mut victim).is_empty());
    let list: String = query(&mut me, &["CLIENT", "LIST"]);
    assert!(!list.contains("victim"), "{list}");
    // The old form, by address.
    let mut other = connect(proxy.resp_addr());
    let pong = raw(&mut other, &[b"PING"], |r| r.ends_with(b"\r\n"));
    assert_eq!(pong, b"+PONG\r\n");
    let other_addr = other.local_addr().expect("addr").to_string();
    let ok: String = query(&mut me, &["CLIENT", "KILL", &other_addr]);
    assert_eq!(ok, "OK");
    assert!(read_until_closed(&mut other).is_empty());
    assert!(error(&mut me, &["CLIENT", "KILL", &other_addr]).contains("No such client"));
    // SKIPME yes by default: the caller survives its own filter.
    let none: i64 = query(&mut me, &["CLIENT", "KILL", "ID", &my_id.to_string()]);
    assert_eq!(none, 0);
    let pong: String = query(&mut me, &["PING"]);
    assert_eq!(pong, "PONG");
    // SKIPME no: the reply, then the close.
    let mut own = connect(proxy.resp_addr());
    let id = raw(&mut own, &[b"CLIENT", b"ID"], |r| r.ends_with(b"\r\n"));
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    own.write_all(&resp_command(&[
        b"CLIENT",
        b"KILL",
        b"ID",
        id.as_bytes(),
        b"SKIPME",
        b"no",
    ]))
    .expect("write");
    assert_eq!(read_until_closed(&mut own), b":1\r\n");
    eventually("the killed clients to leave the list", || {
        let list: String = query(&mut me, &["CLIENT", "LIST"]);
        (list.lines().count() == 1).then_some(())
    });
    // TYPE pubsub: only the subscriber; LADDR: everyone else on this port.
    let mut subscriber = connect(proxy.resp_addr());
    let subscribed = raw(
        &mut subscriber,
        &[b"SUBSCRIBE", b"__redis__:invalidate"],
        |r| r.ends_with(b":1\r\n"),
    );
    assert!(subscribed.starts_with(b"*3\r\n"));
    let mut plain = connect(proxy.resp_addr());
    let pong = raw(&mut plain, &[b"PING"], |r| r.ends_with(b"\r\n"));
    assert_eq!(pong, b"+PONG\r\n");
    let list: String = query(&mut me, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert!(
        list.contains(" flags=P ") && list.lines().count() == 1,
        "{list}"
    );
    let killed: i64 = query(&mut me, &["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, 1);
    assert!(read_until_closed(&mut subscriber).is_empty());
    let laddr = proxy.resp_addr().to_string();
    let killed: i64 = query(&mut me, &["CLIENT", "KILL", "LADDR", &laddr]);
    assert_eq!(killed, 1, "all but the caller");
    assert!(read_until_closed(&mut plain).is_empty());
}

#[test]
fn command_and_config_get_answer_as_the_backing_redis() {
    let redis = RedisServer::start_with(&["--databases", "7"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut conn = client(&proxy.resp_url());
    let mut direct = redis.conn();
    for words in [
        &["COMMAND", "COUNT"][..],
        &["COMMAND", "INFO", "get", "set", "nosuch"],
        &["COMMAND", "DOCS", "get"],
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "z*"],
        &["CONFIG", "GET", "databases"],
        &["CONFIG", "GET", "maxmemory*"],
    ] {
        let through: redis::Value = query(&mut conn, words);
        let redis_own: redis::Value = query(&mut direct, words);
        assert_eq!(through, redis_own, "{words:?}");
    }
    let all: Vec<redis::Value> = query(&mut conn, &["COMMAND"]);
    let count: usize = query(&mut direct, &["COMMAND", "COUNT"]);
    assert_eq!(all.len(), count);
    assert!(count > 100, "{count}");
    // GETKEYS stays the proxy's, from the same table.
    let keys: Vec<String> = query(
        &mut conn,
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    );
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn commands_that_change_the_server_are_refused_with_the_documented_error() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut conn = client(&proxy.resp_url());
    for (words, name) in [
        (&["SHUTDOWN"][..], "shutdown"),
        (&["SHUTDOWN", "NOSAVE"], "shutdown"),
        (&["DEBUG", "SLEEP", "0"], "debug"),
        (&["MONITOR"], "monitor"),
        (&["SAVE"], "save"),
        (&["CONFIG", "SET", "maxmemory", "1"], "config|set"),
        (&["CONFIG", "RESETSTAT"], "config|resetstat"),
        (&["CONFIG", "REWRITE"], "config|rewrite"),
        (&["REPLICAOF", "NO", "ONE"], "replicaof"),
        (&["SLAVEOF", "NO", "ONE"], "slaveof"),
        (&["FAILOVER"], "failover"),
        (&["CLUSTER", "RESET"], "cluster|reset"),
        (&["MODULE", "LOAD", "/nonexistent.so"], "module|load"),
        (&["ACL", "SETUSER", "eve", "on"], "acl|setuser"),
        (&["SLOWLOG", "RESET"], "slowlog|reset"),
        (&["CLIENT", "PAUSE", "100"], "client|pause"),
        (&["CLIENT", "UNPAUSE"], "client|unpause"),
        (&["SCRIPT", "DEBUG", "YES"], "script|debug"),
        (&["SCRIPT", "DEBUG", "SYNC"], "script|debug"),
    ] {
        assert_eq!(
            error(&mut conn, words),
            format!(
                "ResponseError: '{name}' is not allowed through the proxy: it changes the server itself (see docs/forwarding.md)"
            ),
            "{words:?}"
        );
    }
    // Nothing reached Redis, which still runs with its settings.
    assert_eq!(redis.calls("shutdown"), 0);
    assert_eq!(redis.calls("config|set"), 0);
    assert_eq!(redis.calls("slowlog|reset"), 0);
    assert_eq!(redis.calls("script|debug"), 0);
    // The connections the proxy shares are as they were: a script run by
    // another client is answered by Redis, not by a Lua debugger.
    let mut other = client(&proxy.resp_url());
    let one: i64 = query(&mut other, &["EVAL", "return 1", "0"]);
    assert_eq!(one, 1);
    let maxmemory: Vec<String> = query(&mut redis.conn(), &["CONFIG", "GET", "maxmemory"]);
    assert_eq!(maxmemory, ["maxmemory", "0"]);
    // What reads the server's state is forwarded.
    let lastsave: i64 = query(&mut conn, &["LASTSAVE"]);
    assert!(lastsave > 0);
    let slowlog: i64 = query(&mut conn, &["SLOWLOG", "LEN"]);
    assert!(slowlog >= 0);
}
